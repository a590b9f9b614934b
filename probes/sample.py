"""What a collector reports each interval: the same shape in eBPF and procfs mode.

Amounts (bytes, packets, requests) are what happened during the interval (``interval``
seconds); figures a mode cannot measure are ``None`` (procfs mode has no per-peer RTT or bytes
and no latency histograms). ``mode`` is ``"ebpf"`` or ``"procfs"`` and ``reason`` says, in one
line, why eBPF is off.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["CpuSample", "DiskSample", "InterfaceSample", "MemorySample", "PeerSample",
           "Sample", "histogram_mean"]


def histogram_mean(hist: dict[float, int] | None) -> float | None:
    """Mean of a log2 histogram given as {upper bound: count}, taking each bucket's middle."""
    if not hist:
        return None
    total = sum(hist.values())
    if total == 0:
        return None
    return sum(upper * 0.75 * count for upper, count in hist.items()) / total


@dataclass
class CpuSample:
    """Busy share of the scope's capacity, per CPU, and the run-queue latency histogram."""

    percent: float                       # of the capacity (all cores, or the cgroup's cpu.max)
    per_cpu: list[float]                 # each CPU's busy %, in CPU order
    capacity_cores: float                # what 100% means, in cores
    runq_latency: dict[float, int] | None = None   # upper bound (s) -> count this interval


@dataclass
class MemorySample:
    total_bytes: int
    used_bytes: int
    percent: float


@dataclass
class DiskSample:
    name: str
    read_bytes: int
    write_bytes: int
    reads: int
    writes: int
    latency_seconds: float | None        # mean time from issue to completion
    latency: dict[float, int] | None = None


@dataclass
class InterfaceSample:
    name: str
    tx_bytes: int
    rx_bytes: int
    tx_packets: int
    rx_packets: int


@dataclass
class PeerSample:
    """One remote address the node talks TCP with."""

    address: str
    sent_bytes: int | None = None
    received_bytes: int | None = None
    rtt_seconds: float | None = None     # mean smoothed RTT over the interval's ACKs
    connect_seconds: float | None = None  # mean connect latency of this interval's connects
    connects: int = 0
    retransmits: int | None = None
    connections: int | None = None       # open connections (procfs mode)


@dataclass
class Sample:
    time: float
    interval: float
    mode: str
    reason: str
    scope: str | None
    cpu: CpuSample
    memory: MemorySample
    disks: dict[str, DiskSample] = field(default_factory=dict)
    interfaces: dict[str, InterfaceSample] = field(default_factory=dict)
    peers: dict[str, PeerSample] = field(default_factory=dict)
    tasks: int = 0
    storage_used_bytes: int = 0

    def to_dict(self) -> dict[str, Any]:
        """Plain data (dicts, lists, numbers, strings) for JSON or YAML."""
        data = asdict(self)
        for hist_owner in [data["cpu"], *data["disks"].values()]:
            for key in ("runq_latency", "latency"):
                if hist_owner.get(key) is not None:
                    hist_owner[key] = {f"{k:g}": v for k, v in hist_owner[key].items()}
        return data
