"""A private cgroup v2 for one program run: made, joined by the child, killed and removed."""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

__all__ = ["Cgroup", "cgroup2_mount", "sweep_stale"]


def cgroup2_mount() -> Path | None:
    """Where cgroup v2 is mounted (the unified hierarchy), or None."""
    found: list[Path] = []
    with contextlib.suppress(OSError), open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            if right.split(" ", 1)[0] == "cgroup2":
                found.append(Path(left.split(" ")[4]))
    for path in found:
        if path == Path("/sys/fs/cgroup"):
            return path
    return found[0] if found else None


def _own_cgroup() -> str:
    with contextlib.suppress(OSError), open("/proc/self/cgroup") as f:
        for line in f:
            if line.startswith("0::"):
                return line[3:].strip().lstrip("/")
    return ""


def _parent(mount: Path) -> Path:
    parent = mount / _own_cgroup()
    return parent if (parent / "cgroup.procs").exists() else mount


def sweep_stale(mount: Path, tag: str) -> list[Path]:
    """Removes the empty cgroups of earlier runs whose process died without cleaning up
    (killed with SIGKILL): their names carry the owner's pid. Returns what was removed."""
    removed = []
    for path in _parent(mount).glob(f"freeoffload-{tag}-*-*"):
        try:
            owner = int(path.name.split("-")[2])
        except (IndexError, ValueError):
            continue
        if owner == os.getpid() or Path(f"/proc/{owner}").exists():
            continue
        with contextlib.suppress(OSError):
            if (path / "cgroup.procs").read_text().strip():
                continue  # its program still runs (unredirected now): not ours to stop
            path.rmdir()
            removed.append(path)
    return removed


class Cgroup:
    """A new child of this process's cgroup v2 (or of the root when that is not usable)."""

    def __init__(self, mount: Path, tag: str) -> None:
        parent = _parent(mount)
        name = f"freeoffload-{tag}-{os.getpid()}-{time.monotonic_ns() % 1_000_000}"
        self.path = parent / name
        self.path.mkdir()
        self.fd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY)

    def procs_file(self) -> str:
        return str(self.path / "cgroup.procs")

    def pids(self) -> list[int]:
        try:
            return [int(p) for p in (self.path / "cgroup.procs").read_text().split()]
        except OSError:
            return []

    def remove(self, timeout: float = 5.0) -> None:
        """Kills whatever still runs inside, then removes the cgroup."""
        with contextlib.suppress(OSError):
            os.close(self.fd)
        deadline = time.monotonic() + timeout
        while self.path.exists():
            self._kill_all()
            try:
                self.path.rmdir()
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)

    def _kill_all(self) -> None:
        kill = self.path / "cgroup.kill"
        if kill.exists():
            with contextlib.suppress(OSError):
                kill.write_text("1")
            return
        for pid in self.pids():
            with contextlib.suppress(OSError):
                os.kill(pid, 9)
