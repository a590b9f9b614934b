"""The procfs/psutil collector: the same samples as the eBPF one where /proc can tell.

Used when eBPF cannot run (not root, no bcc, no headers, a missing tracepoint); ``reason``
says why in one line. CPU comes from /proc/stat (or the scope's ``cpu.stat``), disks from
/proc/diskstats, interfaces from /proc/net/dev, peers from the kernel's sock_diag or
/proc/net/tcp (open connections only: no RTT, bytes or latency histograms without eBPF).
"""

from __future__ import annotations

import time
from typing import Any

import psutil

from . import _facts, _tcp
from ._scope import Scope, cpu_capacity, scope_tasks, scope_usage_seconds, scoped_memory
from .sample import CpuSample, DiskSample, InterfaceSample, Sample

__all__ = ["ProcfsCollector"]


class ProcfsCollector:
    """Collects samples from /proc through psutil."""

    mode = "procfs"

    def __init__(self, reason: str, scope: Scope | None = None,
                 storage_path: str = "/") -> None:
        self.reason = reason
        self.scope = scope
        self.storage_path = storage_path
        self.startup_seconds = 0.0
        self._capacity = cpu_capacity(scope)
        self._meminfo = _facts.MemInfo()
        self._last = self._read()
        self._when = time.monotonic()

    def close(self) -> None:
        self._meminfo.close()

    def __enter__(self) -> ProcfsCollector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _read(self) -> dict[str, Any]:
        return {
            "cpu": psutil.cpu_times(percpu=True),
            "scope": scope_usage_seconds(self.scope) if self.scope else None,
            "disk": psutil.disk_io_counters(perdisk=True, nowrap=True),
            "net": psutil.net_io_counters(pernic=True, nowrap=True),
        }

    def sample(self) -> Sample:
        now = self._read()
        when = time.monotonic()
        interval = max(when - self._when, 1e-9)
        last, self._last, self._when = self._last, now, when
        scope = self.scope
        return Sample(
            time=time.time(), interval=interval, mode=self.mode, reason=self.reason,
            scope=str(scope.path) if scope else None,
            cpu=self._cpu(last, now, interval), memory=scoped_memory(scope, self._meminfo.read()),
            disks=_disks(last["disk"], now["disk"]),
            interfaces=_interfaces(last["net"], now["net"]), peers=_tcp.peers(),
            tasks=scope_tasks(scope) if scope else _facts.task_count(),
            storage_used_bytes=_facts.storage_used(self.storage_path))

    def _cpu(self, last: dict[str, Any], now: dict[str, Any], interval: float) -> CpuSample:
        per_cpu = []
        busy_total = 0.0
        for before, after in zip(last["cpu"], now["cpu"], strict=False):
            idle = (after.idle + after.iowait) - (before.idle + before.iowait)
            total = sum(after) - sum(before)
            busy = max(0.0, total - idle)
            busy_total += busy
            per_cpu.append(100.0 * busy / total if total > 0 else 0.0)
        if self.scope is not None and now["scope"] is not None and last["scope"] is not None:
            busy_total = now["scope"] - last["scope"]
        percent = min(100.0, max(0.0, busy_total / interval / self._capacity * 100.0))
        return CpuSample(percent, per_cpu, self._capacity, None)


def _disks(last: dict[str, Any], now: dict[str, Any]) -> dict[str, DiskSample]:
    out = {}
    for name, after in now.items():
        before = last.get(name)
        if before is None:
            continue
        reads = after.read_count - before.read_count
        writes = after.write_count - before.write_count
        busy_ms = (after.read_time - before.read_time) + (after.write_time - before.write_time)
        count = reads + writes
        if count == 0:
            continue  # idle devices are left out, as in eBPF mode
        out[name] = DiskSample(name, after.read_bytes - before.read_bytes,
                               after.write_bytes - before.write_bytes, reads, writes,
                               busy_ms / 1000.0 / count if count else None, None)
    return out


def _interfaces(last: dict[str, Any], now: dict[str, Any]) -> dict[str, InterfaceSample]:
    out = {}
    for name, after in now.items():
        before = last.get(name)
        if before is None:
            continue
        if after.packets_sent == before.packets_sent and after.packets_recv == before.packets_recv:
            continue  # idle interfaces are left out, as in eBPF mode
        out[name] = InterfaceSample(name, after.bytes_sent - before.bytes_sent,
                                    after.bytes_recv - before.bytes_recv,
                                    after.packets_sent - before.packets_sent,
                                    after.packets_recv - before.packets_recv)
    return out
