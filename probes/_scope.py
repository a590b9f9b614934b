"""Limiting the collectors to one cgroup v2 (and its descendants).

The eBPF programs compare ``bpf_get_current_ancestor_cgroup_id(level)`` with the scope's id
(the directory's inode); CPU busy time is then a share of the scope's ``cpu.max`` (the nearest
limit up the tree), or of every core when no limit is set or the cpu controller is elsewhere.
"""

from __future__ import annotations

import os
from pathlib import Path

from freeoffload.errors import ProbeError

from ._bcc import Scope
from .sample import MemorySample

__all__ = ["Scope", "cgroup2_root", "cpu_capacity", "resolve_scope", "scope_memory",
           "scope_tasks", "scope_usage_seconds", "scoped_memory"]


def cgroup2_root() -> Path | None:
    """Where the cgroup v2 hierarchy is mounted (``/sys/fs/cgroup`` or the hybrid ``unified``)."""
    try:
        with open("/proc/self/mounts") as mounts:
            for line in mounts:
                parts = line.split()
                if len(parts) > 2 and parts[2] == "cgroup2":
                    return Path(parts[1])
    except OSError:
        pass
    return None


def resolve_scope(path: str | Path) -> Scope:
    """The scope for a cgroup given by its path under the cgroup v2 root, or absolute."""
    root = cgroup2_root()
    if root is None:
        raise ProbeError("no cgroup v2 hierarchy is mounted: cannot limit probes to a cgroup")
    given = Path(path)
    full = given if given.is_absolute() and given.is_relative_to(root) else \
        root / str(given).lstrip("/")
    if not (full / "cgroup.procs").is_file():
        raise ProbeError(f"scope {path}: no cgroup v2 directory at {full}")
    level = len(full.relative_to(root).parts)
    return Scope(full, os.stat(full).st_ino, level)


def _v1_root(controller: str) -> Path | None:
    """Where a cgroup v1 hierarchy with ``controller`` is mounted (hybrid hosts)."""
    try:
        with open("/proc/self/mounts") as mounts:
            for line in mounts:
                parts = line.split()
                if len(parts) > 3 and parts[2] == "cgroup" and controller in parts[3].split(","):
                    return Path(parts[1])
    except OSError:
        pass
    return None


def _v1_cpu_root() -> Path | None:
    return _v1_root("cpu")


def _read_int(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def scope_memory(scope: Scope) -> tuple[int | None, int] | None:
    """The scope's memory (limit or None, bytes in use): v2 memory.max / memory.current, or on
    hybrid hosts the v1 memory cgroup of the same path; None when neither is there."""
    used = _read_int(scope.path / "memory.current")
    if used is not None:
        return _read_int(scope.path / "memory.max"), used
    root, v1 = cgroup2_root(), _v1_root("memory")
    if root is None or v1 is None:
        return None
    mirror = v1 / scope.path.relative_to(root)
    used = _read_int(mirror / "memory.usage_in_bytes")
    if used is None or mirror == v1:
        return None
    limit = _read_int(mirror / "memory.limit_in_bytes")
    return (limit if limit is not None and limit < 1 << 60 else None), used


def _limit(directory: Path) -> float | None:
    """The cores a cgroup directory's own limit allows (v2 cpu.max or v1 CFS quota)."""
    try:
        quota, period = (directory / "cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError, ZeroDivisionError):
        pass
    try:
        quota_us = int((directory / "cpu.cfs_quota_us").read_text())
        period_us = int((directory / "cpu.cfs_period_us").read_text())
        return None if quota_us < 0 or period_us <= 0 else quota_us / period_us
    except (OSError, ValueError):
        return None


def cpu_capacity(scope: Scope | None) -> float:
    """How many cores 100% stands for: the nearest limit up from the scope (its cpu.max, or
    on hybrid hosts the CFS quota of the same path in the v1 cpu hierarchy), else all cores."""
    cores = float(os.cpu_count() or 1)
    root = cgroup2_root()
    if scope is None or root is None:
        return cores
    relative = scope.path.relative_to(root)
    trees = [root]
    v1 = _v1_cpu_root()
    if v1 is not None:
        trees.append(v1)
    for tree in trees:
        here = tree / relative
        while here != tree and here.is_relative_to(tree):
            limit = _limit(here)
            if limit is not None:
                return min(cores, limit)
            here = here.parent
    return cores


def scope_usage_seconds(scope: Scope) -> float | None:
    """CPU time used by the scope's tasks so far (cgroup v2 ``cpu.stat`` usage_usec)."""
    try:
        for line in (scope.path / "cpu.stat").read_text().splitlines():
            if line.startswith("usage_usec "):
                return int(line.split()[1]) / 1e6
    except OSError:
        return None
    return None


def scope_tasks(scope: Scope) -> int:
    """Processes in the scope and its descendants."""
    count = 0
    for dirpath, _dirs, _files in os.walk(scope.path):
        try:
            with open(os.path.join(dirpath, "cgroup.procs")) as procs:
                count += sum(1 for _ in procs)
        except OSError:
            continue
    return count


def scoped_memory(scope: Scope | None, node: MemorySample) -> MemorySample:
    """The node's memory figures, or the scope's where its cgroup accounts memory: total is
    its limit (at most the node's), used what it charges."""
    found = scope_memory(scope) if scope is not None else None
    if found is None:
        return node
    limit, used = found
    total = min(limit, node.total_bytes) if limit is not None else node.total_bytes
    return MemorySample(total, used, round(used / total * 100, 1) if total else 0.0)
