"""The node's CR-map record, built from samples, as plain data with the file's field names.

Units are the CR-map file's: ``Memory`` and ``memory_used`` in MiB, ``Storage`` and
``storage_used`` in GiB, ``BandWidth`` in Mbit/s, ``Latency`` in ms. The record carries what the
probes measure (``Name``, ``ComputingPower``, ``Resource``) and one edge per TCP peer with a
latency (smoothed RTT, else connect latency) and a bandwidth (the highest throughput seen over
the window, bytes both ways over the interval). Role, Group and Address are the agent's.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ._facts import Facts, node_facts
from .sample import Sample

__all__ = ["RecordBuilder", "node_record"]

_MIB = 1024.0 ** 2
_GIB = 1024.0 ** 3


@dataclass
class _Link:
    latency_ms: float | None = None
    throughput: deque[float] = field(default_factory=lambda: deque(maxlen=30))


class RecordBuilder:
    """Folds samples into the node's record; ``names`` maps peer addresses to node Names
    (peers not in it keep their address as EndNode unless ``only_named``)."""

    def __init__(self, name: str, facts: Facts | None = None,
                 names: Mapping[str, str] | Callable[[str], str | None] | None = None,
                 window: int = 30, only_named: bool = False) -> None:
        self.name = name
        self.facts = facts or node_facts()
        self._names = names
        self._window = window
        self._only_named = only_named
        self._links: dict[str, _Link] = {}
        self._last: Sample | None = None

    def add(self, sample: Sample) -> None:
        self._last = sample
        for addr, peer in sample.peers.items():
            link = self._links.setdefault(addr, _Link(throughput=deque(maxlen=self._window)))
            moved = (peer.sent_bytes or 0) + (peer.received_bytes or 0)
            link.throughput.append(moved * 8 / sample.interval / 1e6)
            if peer.rtt_seconds is not None:
                link.latency_ms = peer.rtt_seconds * 1e3
            elif peer.connect_seconds is not None and link.latency_ms is None:
                link.latency_ms = peer.connect_seconds * 1e3

    def _end(self, addr: str) -> str | None:
        if self._names is None:
            found = None
        elif callable(self._names):
            found = self._names(addr)
        else:
            found = self._names.get(addr)
        if found is None and self._only_named:
            return None
        return found or addr

    def node(self) -> dict[str, Any]:
        """``Name``, ``ComputingPower`` and ``Resource`` (after at least one sample)."""
        facts = self.facts
        sample = self._last
        cores, memory = float(facts.cores), facts.memory_bytes
        if sample is not None and sample.scope is not None:
            cores, memory = sample.cpu.capacity_cores, sample.memory.total_bytes
        out: dict[str, Any] = {
            "Name": self.name,
            "ComputingPower": {
                "CPU": {"cores": round(cores, 3), "MHz": round(facts.mhz, 1)},
                "Memory": round(memory / _MIB, 1),
                "Storage": round(facts.storage_bytes / _GIB, 2),
            },
        }
        if sample is not None:
            out["Resource"] = {
                "cpu_percent": round(sample.cpu.percent, 2),
                "memory_used": round(sample.memory.used_bytes / _MIB, 1),
                "storage_used": round(sample.storage_used_bytes / _GIB, 2),
                "running_tasks": sample.tasks,
            }
        return out

    def edges(self) -> list[dict[str, Any]]:
        """One edge per peer with both a latency and some traffic in the window."""
        out = []
        for addr, link in sorted(self._links.items()):
            bandwidth = max(link.throughput, default=0.0)
            end = self._end(addr)
            if end is None or end == self.name or link.latency_ms is None or bandwidth <= 0:
                continue
            out.append({"StartNode": self.name, "EndNode": end,
                        "BandWidth": round(bandwidth, 3), "Latency": round(link.latency_ms, 3)})
        return out

    def record(self) -> dict[str, Any]:
        """``{"node": {...}, "edges": [...]}``."""
        return {"node": self.node(), "edges": self.edges()}


def node_record(samples: Sample | list[Sample], name: str, facts: Facts | None = None,
                names: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The record of one sample or a run of samples (the last sample's Resource)."""
    builder = RecordBuilder(name, facts, names)
    for sample in samples if isinstance(samples, list) else [samples]:
        builder.add(sample)
    return builder.record()
