"""Memory, cores, clock, storage and process counts from psutil (both modes use these)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import psutil

from .sample import MemorySample

__all__ = ["Facts", "MemInfo", "memory", "node_facts", "storage_used", "task_count"]


@dataclass(frozen=True)
class Facts:
    """What the node has (static): cores, MHz, memory and storage totals."""

    cores: int
    mhz: float
    memory_bytes: int
    storage_bytes: int
    storage_path: str


def _mhz() -> float:
    try:
        freq = psutil.cpu_freq()
    except (OSError, NotImplementedError):
        freq = None
    if freq is not None and (freq.max or freq.current):
        return float(freq.max or freq.current)
    try:  # virtual machines often have no cpufreq: the clock /proc/cpuinfo reports
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith(("cpu mhz", "bogomips")):
                return float(line.split(":", 1)[1])
    except (OSError, ValueError):
        pass
    return 0.0


def node_facts(storage_path: str = "/") -> Facts:
    return Facts(psutil.cpu_count(logical=True) or os.cpu_count() or 1, _mhz(),
                 int(psutil.virtual_memory().total),
                 int(psutil.disk_usage(storage_path).total), storage_path)


class MemInfo:
    """/proc/meminfo kept open: each read is one pread(2), not an open/read/close."""

    def __init__(self) -> None:
        self._fd: int | None = None

    def read(self) -> MemorySample:
        try:
            if self._fd is None:
                self._fd = os.open("/proc/meminfo", os.O_RDONLY | os.O_CLOEXEC)
            text = os.pread(self._fd, 16384, 0)
        except OSError:
            return memory()
        fields = {}
        for line in text.split(b"\n"):
            name, _, rest = line.partition(b":")
            if name in (b"MemTotal", b"MemAvailable"):
                fields[name] = int(rest.split()[0]) * 1024
        total = fields.get(b"MemTotal", 0)
        available = fields.get(b"MemAvailable")
        if not total or available is None:
            return memory()
        used = total - available
        return MemorySample(total, used, round(used / total * 100, 1))

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def memory() -> MemorySample:
    vm = psutil.virtual_memory()
    return MemorySample(int(vm.total), int(vm.total - vm.available), float(vm.percent))


def storage_used(path: str = "/") -> int:
    return int(psutil.disk_usage(path).used)


def task_count() -> int:
    return len(psutil.pids())


def node_cpus() -> int:
    """Logical CPUs online (the length of per-CPU figures)."""
    return psutil.cpu_count(logical=True) or os.cpu_count() or 1
