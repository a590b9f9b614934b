"""Shared by the VM's tests: the .data file format of the conformance suite, extended.

Sections: ``asm``, ``raw``, ``mem``, ``result`` (as in the suite), plus for our own cases
``error`` (``rejected: TEXT`` or ``fault: TEXT``: the kind of error and a part of its
message; ``at PC n`` in TEXT is checked against the error's pc), ``budget`` (an instruction
budget), ``maps`` (one ``name type key_size value_size max_entries`` per line, made before
loading; type is hash, array or lru_hash; programs name them ``map[i]``), ``host`` (lines
``update MAP KEY_HEX VALUE_HEX`` the host does before the run) and ``expect`` (lines
``MAP KEY_HEX VALUE_HEX`` that must hold after it).
"""

from __future__ import annotations

import ctypes
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from freeoffload.offload_vm import Map

SHARED = Path(
    os.environ.get("FREEOFFLOAD_SHARED", Path(__file__).resolve().parents[3] / "shared")
)
CONFORMANCE = SHARED / "bpf_conformance" / "tests"
DATA = Path(__file__).resolve().parent / "data"


@dataclass
class DataFile:
    path: Path
    sections: dict[str, str] = field(default_factory=dict)

    @property
    def runnable(self) -> bool:
        return ("asm" in self.sections or "raw" in self.sections) and all(
            name in KNOWN for name in self.sections
        )

    def program(self) -> bytes:
        from freeoffload.offload_vm import assemble

        if "raw" in self.sections:
            words = [w for w in self.sections["raw"].split() if w]
            return b"".join(int(w, 0).to_bytes(8, "little") for w in words)
        return assemble(self.sections["asm"])

    def mem(self) -> bytearray:
        return bytearray(bytes.fromhex("".join(self.sections.get("mem", "").split())))

    def result(self) -> int | None:
        lines = [ln.strip() for ln in self.sections.get("result", "").splitlines() if ln.strip()]
        if not lines:
            return None
        last = lines[-1]
        return int(last, 16) if "0x" in last else int(last, 10)


KNOWN = {
    "asm", "raw", "mem", "result", "error", "c", "no register offset", "budget", "maps", "host",
    "expect",
}


def parse(path: Path) -> DataFile:
    out = DataFile(path)
    current: str | None = None
    for raw in path.read_text().splitlines():
        if raw.startswith("--"):
            current = raw[2:].strip()
            out.sections[current] = ""
            continue
        if current is None:
            continue
        line = raw if current in ("asm", "c") else re.sub(r"#.*", "", raw)
        out.sections[current] += line + "\n"
    return out


def attach_shared(m: Map) -> bytearray:
    """Moves map ``m`` into shared storage (caller memory, 8-byte aligned, in this process),
    as the hook's store does; keep what it returns for as long as the map is used."""
    storage = bytearray(m.storage_size() + 8)
    address = ctypes.addressof(ctypes.c_char.from_buffer(storage))
    m.attach_storage(memoryview(storage)[(-address) % 8:][: m.storage_size()], init=True)
    return storage
