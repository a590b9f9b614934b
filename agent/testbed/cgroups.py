"""CPU shares of the testbed's nodes: one cgroup per node under ``PREFIX + "testbed"``.

cgroup v2 (``cpu.max``, ``cpu.stat`` usage) where the unified hierarchy has the ``cpu``
controller; otherwise cgroup v1 (``cpu.cfs_quota_us`` in the ``cpu`` hierarchy, usage from
``cpuacct.usage``), as on hybrid hosts where systemd keeps ``cpu`` on v1. The choice is made once,
from ``/proc/self/mountinfo``.
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from freeoffload.errors import TestbedError

__all__ = ["Cgroups", "find_cgroups", "kill_pids"]

PERIOD_US = 100_000
ROOT_WEIGHT = 16 * 1024


def _mounts() -> list[tuple[str, str, set[str]]]:
    """(mount point, fstype, super options) of every cgroup mount."""
    out = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        pre, _, post = line.partition(" - ")
        fields, rest = pre.split(), post.split()
        if len(rest) >= 3 and rest[0] in ("cgroup", "cgroup2"):
            out.append((fields[4], rest[0], set(rest[2].split(","))))
    return out


@dataclass(frozen=True)
class Cgroups:
    """The testbed's cgroups: ``quota_dir`` holds the CPU limit, ``usage_dir`` the usage."""

    version: int
    quota_root: Path  # <hierarchy>/<prefix>testbed
    usage_root: Path
    # v1 hosts: the same cgroups in the v2 hierarchy too (no controllers), so that tools that
    # scope by cgroup v2 (the probes) find each node's processes
    scope_root: Path | None = None
    v2_mount: Path | None = None

    @property
    def roots(self) -> list[Path]:
        roots = {self.quota_root, self.usage_root}
        if self.scope_root is not None:
            roots.add(self.scope_root)
        return sorted(roots)

    def dirs(self, node: str) -> list[Path]:
        return [root / node for root in self.roots]

    def scope(self, node: str) -> str:
        """``node``'s cgroup as a path under the cgroup v2 root ("" when there is none)."""
        root = self.scope_root if self.version == 1 else self.quota_root
        if root is None or self.v2_mount is None:
            return ""
        return "/" + str((root / node).relative_to(self.v2_mount))

    def procs_files(self, node: str) -> list[Path]:
        """The ``cgroup.procs`` files a process of ``node`` must be written into."""
        return [d / "cgroup.procs" for d in self.dirs(node)]

    def _weight(self, path: Path, weight: int) -> None:
        """CPU weight relative to siblings (v1 cpu.shares, 1024 = normal; v2 cpu.weight)."""
        if self.version == 2:
            (path / "cpu.weight").write_text(str(max(1, min(10000, weight * 100 // 1024))))
        else:
            (path / "cpu.shares").write_text(str(weight))

    def create(self, node: str, cores: float | None, weight: int = 1024) -> None:
        """Make ``node``'s cgroup(s) and limit it to ``cores`` of this machine (None: no limit).

        The testbed's root gets ROOT_WEIGHT so that, on a busy host, every node still gets its
        quota and the delay stage is not starved (its delay would grow).
        """
        try:
            for root in self.roots:
                if not root.exists():
                    root.mkdir()
                    if self.version == 2:
                        (root / "cgroup.subtree_control").write_text("+cpu")
            self._weight(self.quota_root, ROOT_WEIGHT)
            for d in self.dirs(node):
                d.mkdir(exist_ok=True)
            self._weight(self.quota_root / node, weight)
        except OSError as err:
            raise TestbedError(f"cannot set up cgroup for {node} under {self.quota_root}: "
                               f"{err.strerror} ({err.filename})") from err
        self.set_quota(node, cores)

    def set_quota(self, node: str, cores: float | None) -> None:
        """Limit ``node`` to ``cores`` of this machine (None: no limit)."""
        quota_dir = self.quota_root / node
        quota = max(1000, int(cores * PERIOD_US)) if cores is not None else None
        try:
            if self.version == 2:
                (quota_dir / "cpu.max").write_text(f"{quota or 'max'} {PERIOD_US}")
            else:
                (quota_dir / "cpu.cfs_period_us").write_text(str(PERIOD_US))
                (quota_dir / "cpu.cfs_quota_us").write_text(str(quota or -1))
        except OSError as err:
            raise TestbedError(f"cannot set the CPU quota of {node} in {quota_dir}: "
                               f"{err.strerror}") from err

    def quota_cores(self, node: str) -> float | None:
        quota_dir = self.quota_root / node
        try:
            if self.version == 2:
                quota, period = (quota_dir / "cpu.max").read_text().split()
                return None if quota == "max" else int(quota) / int(period)
            quota_us = int((quota_dir / "cpu.cfs_quota_us").read_text())
            period_us = int((quota_dir / "cpu.cfs_period_us").read_text())
        except (OSError, ValueError):
            return None
        return None if quota_us < 0 else quota_us / period_us

    def usage_usec(self, node: str) -> int:
        """CPU time (microseconds) used by ``node``'s processes since its cgroup was made."""
        d = self.usage_root / node
        try:
            if self.version == 2:
                for line in (d / "cpu.stat").read_text().splitlines():
                    key, _, value = line.partition(" ")
                    if key == "usage_usec":
                        return int(value)
                return 0
            return int((d / "cpuacct.usage").read_text()) // 1000
        except (OSError, ValueError):
            return 0

    def nodes(self) -> list[str]:
        """Names of the node cgroups that exist now."""
        names: set[str] = set()
        for root in self.roots:
            if root.is_dir():
                names.update(p.name for p in root.iterdir() if p.is_dir())
        return sorted(names)

    def pids(self, node: str | None = None) -> set[int]:
        """Processes inside ``node``'s cgroups (every node's when None)."""
        found: set[int] = set()
        for name in [node] if node else self.nodes():
            for procs in self.procs_files(name):
                try:
                    found.update(int(p) for p in procs.read_text().split())
                except (OSError, ValueError):
                    continue
        return found

    def remove(self, grace: float = 2.0) -> list[str]:
        """Kill what is left inside, remove every node cgroup and the root; return what was."""
        removed = self.nodes()
        kill_pids(self.pids(), grace)
        for name in removed:
            for d in self.dirs(name):
                _rmdir(d)
        for root in self.roots:
            _rmdir(root)
        return removed


def kill_pids(pids: set[int], grace: float) -> None:
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 1.0)):
        alive = set()
        for pid in pids:
            try:
                os.kill(pid, sig)
                alive.add(pid)
            except ProcessLookupError:
                continue
        deadline = time.monotonic() + wait
        while alive and time.monotonic() < deadline:
            alive = {p for p in alive if Path(f"/proc/{p}").exists() and not _zombie(p)}
            time.sleep(0.05)
        pids = alive
        if not pids:
            return


def _zombie(pid: int) -> bool:
    try:  # reap our own children so they do not linger as zombies
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return True
    except ChildProcessError:
        pass
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True


def _rmdir(path: Path) -> None:
    for _ in range(20):
        try:
            path.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.05)
    raise TestbedError(f"cannot remove cgroup {path}: still busy")


def find_cgroups(prefix: str) -> Cgroups:
    """The cgroup backend this host offers, for the testbed whose names start with ``prefix``."""
    name = f"{prefix}testbed"
    mounts = _mounts()
    for point, fstype, _ in mounts:
        controllers = Path(point, "cgroup.controllers")
        if fstype == "cgroup2" and controllers.exists() and (
                "cpu" in controllers.read_text().split()):
            root = Path(point) / name
            return Cgroups(2, root, root, v2_mount=Path(point))
    cpu = next((p for p, t, opts in mounts if t == "cgroup" and "cpu" in opts), None)
    acct = next((p for p, t, opts in mounts if t == "cgroup" and "cpuacct" in opts), None)
    if cpu is None or acct is None:
        raise TestbedError("no cgroup hierarchy with the cpu controller (v2 cpu.max or v1 "
                           "cpu + cpuacct); mount cgroup2 with +cpu to give nodes CPU shares")
    v2 = next((Path(p) for p, t, _ in mounts if t == "cgroup2"), None)
    return Cgroups(1, Path(cpu) / name, Path(acct) / name,
                   scope_root=v2 / name if v2 is not None else None, v2_mount=v2)
