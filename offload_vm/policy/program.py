"""Loading a policy object into our VM: verification, map schemas, and source lines for PCs.

The VM's verifier names a rejected instruction by its PC; with the object's debug info
(``clang -g``) we turn that into ``file.c:LINE`` through ``llvm-objdump -l``.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from freeoffload.errors import Location, PolicyError, Problem, ProgramRejectedError, VMError

from .manifest import MapSchema

__all__ = ["SECTION", "load_program", "map_schemas", "pc_lines", "verify_program"]

SECTION = "connect"  # the program section of a connect policy (FO_CONNECT_POLICY)
_SOURCE_LINE = re.compile(r"^; (.+):(\d+)$")
_INSN = re.compile(r"^\s*(\d+):\s")
_SECTION_HDR = re.compile(r"^Disassembly of section (.+):$")


def _objdump() -> str | None:
    return shutil.which("llvm-objdump") or shutil.which("llvm-objdump-14")


_SIZE = re.compile(r"^\s*\d+\s+(\S+)\s+([0-9a-f]+)\s")


def _parse_objdump(out: str) -> tuple[dict[str, int], dict[str, dict[int, tuple[str, int]]]]:
    """Section sizes in instructions, and per section: instruction index -> (file, line)."""
    sizes: dict[str, int] = {}
    lines: dict[str, dict[int, tuple[str, int]]] = {}
    section: dict[int, tuple[str, int]] | None = None
    current: tuple[str, int] | None = None
    for text in out.splitlines():
        size = _SIZE.match(text)
        hdr = _SECTION_HDR.match(text)
        src = _SOURCE_LINE.match(text)
        insn = _INSN.match(text)
        if hdr:
            section, current = lines.setdefault(hdr.group(1), {}), None
        elif src:
            current = (src.group(1), int(src.group(2)))
        elif insn and section is not None and current is not None:
            section[int(insn.group(1))] = current
        elif size and section is None:
            sizes[size.group(1)] = int(size.group(2), 16) // 8
    return sizes, lines


def pc_lines(elf: bytes, section: str = SECTION) -> dict[int, tuple[str, int]]:
    """PC -> (source file, line), from the debug info. The VM's program is the section's
    instructions followed by those of ``.text`` (the functions it calls)."""
    tool = _objdump()
    if tool is None:
        return {}
    with tempfile.NamedTemporaryFile(suffix=".o") as tmp:
        tmp.write(elf)
        tmp.flush()
        out = subprocess.run([tool, "-h", "-d", "-l", "--no-show-raw-insn", tmp.name],
                             capture_output=True, text=True, check=False).stdout
    sizes, lines = _parse_objdump(out)
    found = dict(lines.get(section, {}))
    base = sizes.get(section, 0)
    found.update({base + pc: where for pc, where in lines.get(".text", {}).items()})
    return found


def load_program(elf: bytes) -> Any:
    """A VM holding the policy (raises ProgramRejectedError as the VM does)."""
    try:
        from freeoffload.offload_vm import VM
    except ImportError as err:
        raise PolicyError.at(Location("freeoffload.offload_vm"), "", f"the VM is not available "
                             f"({err})", "build it with `make install`") from err
    vm = VM()
    vm.load_elf(elf, SECTION)
    return vm


def _schema(name: str, m: Any) -> MapSchema:
    info = getattr(m, "info", m)
    return MapSchema(str(getattr(info, "name", name)), int(info.type), int(info.key_size),
                     int(info.value_size), int(info.max_entries))


def map_schemas(vm: Any) -> tuple[MapSchema, ...]:
    """The schemas of the loaded program's maps, by name (the VM's own .rodata/.data/.bss
    arrays included, as the loader made them)."""
    return tuple(sorted((_schema(n, m) for n, m in vm.maps.items()), key=lambda s: s.name))


def rejection_problem(err: VMError, elf: bytes, source: str) -> Problem:
    """One line naming the C source line of the rejected instruction when debug info has it."""
    where = pc_lines(elf).get(err.pc) if err.pc is not None else None
    if where is not None:
        return Problem(Location(where[0], where[1]), "verifier",
                       f"the VM rejects the program: {err}")
    return Problem(Location(source), "verifier", f"the VM rejects the program: {err}",
                   "compile with -g to see the source line")


def verify_program(elf: bytes, source: str) -> tuple[MapSchema, ...]:
    """Load ``elf`` into the VM; its map schemas, or PolicyError naming the rejection."""
    try:
        vm = load_program(elf)
    except ProgramRejectedError as err:
        raise PolicyError([rejection_problem(err, elf, source)]) from err
    return map_schemas(vm)


def read_source(path: str | Path) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as err:
        raise PolicyError.at(Location(str(path)), "", f"cannot read: {err.strerror}") from err
