"""The agent's Prometheus metrics (one registry per agent, so several can share a process)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

__all__ = ["Metrics"]

_LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.reports = Counter("freeoffload_agent_reports_total",
                               "Node reports and group summaries received, by result",
                               ["kind", "result"], registry=r)
        self.refused = Counter("freeoffload_agent_requests_refused_total",
                               "Requests refused for authentication", ["path"], registry=r)
        self.selects = Counter("freeoffload_agent_selects_total",
                               "Offload queries answered, by level", ["level"], registry=r)
        self.select_seconds = Histogram("freeoffload_agent_select_seconds",
                                        "Time to answer POST /v1/select",
                                        buckets=_LATENCY_BUCKETS, registry=r)
        self.nodes = Gauge("freeoffload_agent_nodes", "Nodes known, by state", ["state"],
                           registry=r)
        self.pushes = Counter("freeoffload_agent_pushes_total",
                              "Policy and map pushes to devices, by kind and result",
                              ["kind", "result"], registry=r)
        self.probe_seconds = Gauge("freeoffload_agent_probe_delay_seconds",
                                   "Last atomic-task probe: processing and link delay",
                                   ["node", "type", "part"], registry=r)
        self.center_up = Gauge("freeoffload_agent_center_reachable",
                               "1 when this member's last report reached its center",
                               registry=r)

    def render(self) -> bytes:
        return generate_latest(self.registry)
