"""This node's own CR-map record, from ``freeoffload.probes``, and the links it measured.

The collector is opened once (``probes.mode``: eBPF when this machine allows it, else procfs,
with the reason logged; ``probes.cgroup`` limits it to one cgroup v2, as when several emulated
nodes share a machine). Each :meth:`LocalNode.sample` folds one probe sample into the record;
the configuration's ``record`` overrides what the probes say (``Role``, ``Security``,
``Address``, ``ComputingPower``). Links name their peers through ``names`` (peer address ->
node Name); peers the agent does not know are left out.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from freeoffload.topology import CPU, ComputingPower, Edge, Node, Resource

from freeoffload.errors import AgentConfigError, Location, ProbeError

from .config import AgentConfig
from .log import event

__all__ = ["LocalNode"]

log = logging.getLogger("freeoffload.agent.node")


def _number(record: dict[str, Any], *path: str) -> float | None:
    value: Any = record
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) \
        else None


class LocalNode:
    """Builds this node's record on each :meth:`sample`; :meth:`close` detaches the probes."""

    def __init__(self, cfg: AgentConfig) -> None:
        from freeoffload.probes import RecordBuilder, open_collector

        self.cfg = cfg
        self.names: Callable[[str], str | None] = lambda address: None
        try:
            self.collector: Any = open_collector(cfg.probe_mode, cfg.probe_cgroup or None)
        except ProbeError as err:
            raise AgentConfigError.at(Location(cfg.source), "probes", str(err),
                                      "use probes: {mode: auto} to fall back to procfs") from err
        self.builder = RecordBuilder(cfg.node, names=lambda a: self.names(a), only_named=True)
        rec = cfg.record
        self.role: Any = str(rec.get("Role", "cloud" if cfg.role == "cloud" else "edge"))
        self.security = bool(rec.get("Security", False))
        self.address = str(rec.get("Address", cfg.address))
        self.links: dict[tuple[str, str], Edge] = {}
        event(log, "probes.attached", node=cfg.node, mode=self.collector.mode,
              reason=self.collector.reason, cgroup=cfg.probe_cgroup or None,
              startup_s=round(self.collector.startup_seconds, 3))

    def cpu_percent(self, measured: float) -> float:
        """The CPU figure reported (the probes' measurement; a seam for tests)."""
        return measured

    def _power(self, measured: dict[str, Any]) -> ComputingPower:
        rec, cpu = self.cfg.record, measured["ComputingPower"]["CPU"]
        return ComputingPower(
            CPU(_number(rec, "ComputingPower", "CPU", "cores") or float(cpu["cores"]),
                _number(rec, "ComputingPower", "CPU", "MHz") or float(cpu.get("MHz", 0.0))),
            _number(rec, "ComputingPower", "Memory") or float(measured["ComputingPower"]
                                                              ["Memory"]),
            _number(rec, "ComputingPower", "Storage") or float(measured["ComputingPower"]
                                                               ["Storage"]))

    def sample(self) -> Node:
        """One probe sample folded into this node's record (links in :attr:`links`)."""
        self.builder.add(self.collector.sample())
        measured = self.builder.node()
        power = self._power(measured)
        res = measured.get("Resource", {})
        resource = Resource(
            cpu_percent=round(min(100.0, max(0.0, self.cpu_percent(res.get("cpu_percent",
                                                                              0.0)))), 2),
            memory_used_mib=min(power.memory_mib, float(res.get("memory_used", 0.0))),
            storage_used_gib=min(power.storage_gib, float(res.get("storage_used", 0.0))),
            running_tasks=int(res.get("running_tasks", 0)))
        self.links = {}
        for edge in self.builder.edges():
            link = Edge(self.cfg.node, edge["EndNode"], max(edge["BandWidth"], 0.001),
                        edge["Latency"])
            self.links[link.pair] = link
        return Node(name=self.cfg.node, role=self.role, computing_power=power,
                    group=self.cfg.group, address=self.address, security=self.security,
                    resource=resource, capability={}, online=True, updated=time.time())

    def close(self) -> None:
        """Detach the probes."""
        self.collector.close()
        event(log, "probes.detached", node=self.cfg.node)
