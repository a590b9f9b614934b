"""eBPF collectors (bcc) and the procfs fallback that measure a node.

:func:`open_collector` picks the backend once: the eBPF probes of ``probes/builtin`` (through
``_bcc``, the only module that imports bcc) when this machine allows them, else the
procfs/psutil collector, whose samples have the same shape and carry a one-line ``reason``.
Each collector's ``sample()`` returns a :class:`Sample` for the time since the previous call;
:func:`node_record` turns samples into the node's CR-map record (file field names).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Protocol

from freeoffload.errors import ProbeError

from ._features import ebpf_off_reason
from .record import RecordBuilder, node_record
from .sample import (
    CpuSample,
    DiskSample,
    InterfaceSample,
    MemorySample,
    PeerSample,
    Sample,
)
from .spec import KeyField, MetricSpec, ProbeSpec, builtin_names, load_probe

__all__ = [
    "MODES",
    "Collector",
    "CpuSample",
    "DiskSample",
    "InterfaceSample",
    "KeyField",
    "MemorySample",
    "MetricSpec",
    "PeerSample",
    "ProbeSpec",
    "RecordBuilder",
    "Sample",
    "builtin_names",
    "ebpf_off_reason",
    "load_probe",
    "node_record",
    "open_collector",
    "stream",
]

MODES = ("auto", "ebpf", "procfs")


class Collector(Protocol):
    """What both backends offer."""

    mode: str
    reason: str
    startup_seconds: float

    def sample(self) -> Sample: ...

    def close(self) -> None: ...


def open_collector(mode: str = "auto", scope: str | Path | None = None,
                   storage_path: str = "/", probes: Sequence[ProbeSpec] | None = None
                   ) -> Collector:
    """A started collector. ``mode``: ``auto`` (eBPF when possible, else procfs with the
    reason), ``ebpf`` (raise :class:`ProbeError` when it cannot run) or ``procfs``.
    ``probes``: the eBPF probes to load (default: every built-in one)."""
    from ._scope import resolve_scope

    if mode not in MODES:
        raise ProbeError(f"unknown probes mode {mode!r}; expected one of: {', '.join(MODES)}")
    resolved = resolve_scope(scope) if scope is not None else None
    reason = "procfs mode requested" if mode == "procfs" else ebpf_off_reason()
    if reason is None:
        from ._ebpf import EbpfCollector

        try:
            return EbpfCollector(resolved, probes, storage_path=storage_path)
        except ProbeError as err:
            if mode == "ebpf":
                raise
            reason = str(err).splitlines()[0]
    elif mode == "ebpf":
        raise ProbeError(f"eBPF is off: {reason}")
    from ._procfs import ProcfsCollector

    return ProcfsCollector(reason, resolved, storage_path=storage_path)


def stream(collector: Collector, interval: float = 1.0, count: int = 0) -> Iterator[Sample]:
    """Samples every ``interval`` seconds, ``count`` of them (0: until the caller stops).

    The collector only sleeps between samples: all the work is in each ``sample()``."""
    if interval <= 0:
        raise ProbeError(f"interval must be above 0 seconds, got {interval}")
    taken = 0
    deadline = time.monotonic()
    while count <= 0 or taken < count:
        deadline += interval
        time.sleep(max(0.0, deadline - time.monotonic()))
        yield collector.sample()
        taken += 1
