"""The eBPF collector: loads the built-in probes through bcc and turns their maps into samples.

Each :meth:`EbpfCollector.sample` reads every metric map once (one batch lookup each), takes
the difference with the previous read and assembles a :class:`~.sample.Sample`; nothing runs
between calls but the kernel programs.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from . import _bcc, _facts
from ._decode import Decoder, Label, Snapshot, Value, delta
from ._scope import Scope, cpu_capacity, scope_tasks, scoped_memory
from .sample import (
    CpuSample,
    DiskSample,
    InterfaceSample,
    PeerSample,
    Sample,
    histogram_mean,
)
from .spec import ProbeSpec, builtin_names, load_probe

__all__ = ["EbpfCollector"]

_OPS = {"read": ("read_bytes", "reads"), "write": ("write_bytes", "writes")}


class EbpfCollector:
    """Collects samples from the kernel probes; ``close()`` detaches them."""

    mode = "ebpf"
    reason = ""

    def __init__(self, scope: Scope | None = None, specs: Sequence[ProbeSpec] | None = None,
                 storage_path: str = "/") -> None:
        self.scope = scope
        self.storage_path = storage_path
        self.probes: list[_bcc.LoadedProbe] = []
        self._decoders: list[tuple[_bcc.MapReader, Decoder]] = []
        self._scales: dict[str, float] = {}
        started = time.monotonic()
        try:
            for spec in specs if specs is not None else [load_probe(n) for n in builtin_names()]:
                probe = _bcc.load(spec, scope)
                self.probes.append(probe)
                for metric in spec.metrics:
                    self._decoders.append((probe.readers[metric.name], Decoder(metric)))
                    self._scales[metric.name] = metric.scale
        except BaseException:
            self.close()
            raise
        _bcc.release_compiler_memory()
        self.startup_seconds = time.monotonic() - started
        self._capacity = cpu_capacity(scope)
        self._ncpu = _facts.node_cpus()
        self._meminfo = _facts.MemInfo()
        self._last = self._read()
        self._when = time.monotonic()

    def close(self) -> None:
        for probe in self.probes:
            probe.close()
        self.probes = []
        meminfo = getattr(self, "_meminfo", None)
        if meminfo is not None:
            meminfo.close()

    def __enter__(self) -> EbpfCollector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def syscalls(self) -> int:
        """Map-read syscalls made so far (a batch read is one, unless a map needed several)."""
        return sum(reader.syscalls for reader, _ in self._decoders)

    def _read(self) -> dict[str, Snapshot]:
        out = {}
        for reader, decoder in self._decoders:
            keys, values = reader.read()
            out[reader.name] = decoder.decode(keys, values)
        _add_running(out, time.clock_gettime_ns(time.CLOCK_MONOTONIC))
        return out

    def sample(self) -> Sample:
        """What happened since the previous sample (or since the probes were attached)."""
        now = self._read()
        when = time.monotonic()
        interval = max(when - self._when, 1e-9)
        changes = {name: delta(self._last.get(name, {}), snap) for name, snap in now.items()}
        self._last, self._when = now, when
        scope = self.scope
        return Sample(
            time=time.time(), interval=interval, mode=self.mode, reason=self.reason,
            scope=str(scope.path) if scope else None,
            cpu=self._cpu(changes, interval), memory=scoped_memory(scope, self._meminfo.read()),
            disks=_disks(changes), interfaces=_interfaces(changes),
            peers=_peers(changes, self._scales),
            tasks=scope_tasks(scope) if scope else _facts.task_count(),
            storage_used_bytes=_facts.storage_used(self.storage_path))

    def _cpu(self, changes: dict[str, Snapshot], interval: float) -> CpuSample:
        busy = changes.get("cpu_busy_seconds_total", {})
        scale = self._scales.get("cpu_busy_seconds_total", 1e-9)
        ncpu = self._ncpu
        per_cpu = [0.0] * ncpu
        for (cpu, *_), ns in busy.items():
            if isinstance(cpu, int) and cpu < ncpu and isinstance(ns, int):
                per_cpu[cpu] = min(100.0, ns * scale / interval * 100.0)
        total = sum(ns for ns in busy.values() if isinstance(ns, int)) * scale
        percent = min(100.0, total / interval / self._capacity * 100.0)
        runq = _histogram(changes.get("cpu_runq_latency_seconds", {}))
        return CpuSample(percent, per_cpu, self._capacity, runq)


def _add_running(snaps: dict[str, Snapshot], now_ns: int) -> None:
    """Count the runs in progress: busy time is closed at each switch, so a task that has run
    since the last switch adds ``now - since`` (bpf_ktime_get_ns is CLOCK_MONOTONIC)."""
    busy = snaps.get("cpu_busy_seconds_total")
    states = snaps.get("cpu_running_since_seconds")
    if busy is None or states is None:
        return
    for labels, state in states.items():
        if isinstance(state, tuple) and state[1] and 0 < state[0] <= now_ns:
            closed = busy.get(labels, 0)
            busy[labels] = (closed if isinstance(closed, int) else 0) + now_ns - state[0]


def _histogram(snap: Snapshot) -> dict[float, int]:
    out: dict[float, int] = {}
    for labels, count in snap.items():
        upper = labels[-1]
        if isinstance(upper, float) and isinstance(count, int):
            out[upper] = out.get(upper, 0) + count
    return dict(sorted(out.items()))


def _int(value: Value | None) -> int:
    return value if isinstance(value, int) else 0


def _disks(changes: dict[str, Snapshot]) -> dict[str, DiskSample]:
    out: dict[str, DiskSample] = {}
    requests = changes.get("disk_requests_total", {})
    moved = changes.get("disk_bytes_total", {})
    for labels in set(requests) | set(moved):
        dev, op = str(labels[0]), str(labels[1])
        disk = out.setdefault(dev, DiskSample(dev, 0, 0, 0, 0, None, {}))
        if op in _OPS:
            bytes_attr, count_attr = _OPS[op]
            setattr(disk, bytes_attr, getattr(disk, bytes_attr) + _int(moved.get(labels)))
            setattr(disk, count_attr, getattr(disk, count_attr) + _int(requests.get(labels)))
    for labels, count in changes.get("disk_latency_seconds", {}).items():
        dev, upper = str(labels[0]), labels[-1]
        disk = out.setdefault(dev, DiskSample(dev, 0, 0, 0, 0, None, {}))
        if disk.latency is not None and isinstance(upper, float):
            disk.latency[upper] = disk.latency.get(upper, 0) + _int(count)
    for disk in out.values():
        disk.latency = dict(sorted((disk.latency or {}).items()))
        disk.latency_seconds = histogram_mean(disk.latency)
    return out


def _interfaces(changes: dict[str, Snapshot]) -> dict[str, InterfaceSample]:
    out: dict[str, InterfaceSample] = {}
    for metric, unit in (("net_dev_bytes_total", "bytes"), ("net_dev_packets_total", "packets")):
        for (name, direction, *_), amount in changes.get(metric, {}).items():
            iface = out.setdefault(str(name), InterfaceSample(str(name), 0, 0, 0, 0))
            attr = f"{direction}_{unit}"
            if hasattr(iface, attr):
                setattr(iface, attr, getattr(iface, attr) + _int(amount))
    return out


def _mean(value: Value | None, scale: float) -> float | None:
    if isinstance(value, tuple) and value[1] > 0:
        return value[0] / value[1] * scale
    return None


def _peers(changes: dict[str, Snapshot], scales: dict[str, float]) -> dict[str, PeerSample]:
    out: dict[str, PeerSample] = {}

    def peer(addr: Label) -> PeerSample:
        return out.setdefault(str(addr), PeerSample(str(addr), 0, 0, None, None, 0, 0))

    for (addr, direction, *_), amount in changes.get("tcp_peer_bytes_total", {}).items():
        p = peer(addr)
        if direction == "sent":
            p.sent_bytes = (p.sent_bytes or 0) + _int(amount)
        else:
            p.received_bytes = (p.received_bytes or 0) + _int(amount)
    for (addr, *_), value in changes.get("tcp_peer_rtt_seconds", {}).items():
        peer(addr).rtt_seconds = _mean(value, scales.get("tcp_peer_rtt_seconds", 1e-6))
    for (addr, *_), value in changes.get("tcp_peer_connect_seconds", {}).items():
        p = peer(addr)
        p.connect_seconds = _mean(value, scales.get("tcp_peer_connect_seconds", 1e-9))
        p.connects = value[1] if isinstance(value, tuple) else 0
    for (addr, *_), count in changes.get("tcp_peer_retransmits_total", {}).items():
        peer(addr).retransmits = _int(count)
    return out
