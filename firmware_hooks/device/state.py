"""What the device has installed, on disk, so that a restart (or a reboot that empties the
policy store under /run) loses nothing.

``state_dir`` holds ``state.json`` (the installed policy's name, version and sha256, the
highest version accepted per policy name, each map's update version), the signed package
``policy-<sha>.fop`` and each map's rows ``maps/<name>.rows``. Every file is written to a
temporary name, synced and renamed, and ``state.json`` last, so a crash leaves the previous
state or the new one, never a mix the daemon would trust.
"""

from __future__ import annotations

import contextlib
import json
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from freeoffload.errors import HookError

__all__ = ["DeviceState", "InstalledRecord"]

_ROWS_HEADER = struct.Struct("<4sIII")
_ROWS_MAGIC = b"FORW"


@dataclass
class InstalledRecord:
    name: str
    version: int
    sha256: str  # of the ELF object
    package: str  # file name of the signed package in state_dir
    installed_at: float


@dataclass
class DeviceState:
    directory: Path
    policy: InstalledRecord | None = None
    seen: dict[str, int] = field(default_factory=dict)  # policy name -> highest version
    map_versions: dict[str, int] = field(default_factory=dict)  # of the installed policy

    @classmethod
    def load(cls, directory: Path) -> DeviceState:
        try:
            directory.mkdir(parents=True, exist_ok=True)
            (directory / "maps").mkdir(exist_ok=True)
        except OSError as err:
            raise HookError(f"cannot create the state directory {directory}: "
                            f"{err.strerror}") from err
        path = directory / "state.json"
        try:
            raw: dict[str, Any] = json.loads(path.read_text())
        except FileNotFoundError:
            return cls(directory)
        except (OSError, ValueError) as err:
            raise HookError(f"{path}: unreadable device state ({err}); move it away to "
                            "start empty") from err
        try:
            policy = raw.get("policy")
            return cls(directory, InstalledRecord(**policy) if policy else None,
                       {str(k): int(v) for k, v in raw.get("seen", {}).items()},
                       {str(k): int(v) for k, v in raw.get("map_versions", {}).items()})
        except (AttributeError, TypeError, ValueError) as err:
            raise HookError(f"{path}: unreadable device state ({err}); move it away to "
                            "start empty") from err

    def save(self) -> None:
        raw = {"policy": vars(self.policy) if self.policy else None, "seen": self.seen,
               "map_versions": self.map_versions}
        _write_atomic(self.directory / "state.json", json.dumps(raw, indent=1).encode())
        self._drop_stale_packages()

    def save_package(self, sha256: str, data: bytes) -> str:
        name = f"policy-{sha256[:16]}.fop"
        _write_atomic(self.directory / name, data)
        return name

    def package_bytes(self) -> bytes | None:
        if self.policy is None:
            return None
        try:
            return (self.directory / self.policy.package).read_bytes()
        except OSError:
            return None

    def save_rows(self, map_name: str, rows: list[tuple[bytes, bytes]]) -> None:
        ksize = len(rows[0][0]) if rows else 0
        vsize = len(rows[0][1]) if rows else 0
        body = b"".join(k + v for k, v in rows)
        _write_atomic(self.directory / "maps" / f"{map_name}.rows",
                      _ROWS_HEADER.pack(_ROWS_MAGIC, len(rows), ksize, vsize) + body)

    def load_rows(self, map_name: str) -> list[tuple[bytes, bytes]] | None:
        try:
            data = (self.directory / "maps" / f"{map_name}.rows").read_bytes()
            magic, count, ksize, vsize = _ROWS_HEADER.unpack_from(data)
        except (OSError, struct.error):
            return None
        if magic != _ROWS_MAGIC or len(data) != _ROWS_HEADER.size + count * (ksize + vsize):
            return None
        off, step = _ROWS_HEADER.size, ksize + vsize
        return [(data[off + i * step:off + i * step + ksize],
                 data[off + i * step + ksize:off + (i + 1) * step]) for i in range(count)]

    def clear_rows(self) -> None:
        for path in (self.directory / "maps").glob("*.rows"):
            with contextlib.suppress(OSError):
                path.unlink()

    def _drop_stale_packages(self) -> None:
        keep = self.policy.package if self.policy else None
        for path in self.directory.glob("policy-*.fop"):
            if path.name != keep:
                with contextlib.suppress(OSError):
                    path.unlink()


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        dir_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError as err:
        raise HookError(f"cannot write {path}: {err.strerror}") from err
