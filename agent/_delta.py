"""The fast path of report ingest: a member's reports differ from the last one in a few fields.

A report's static part (Name, Role, Group, Address, ComputingPower, Security) rarely changes.
Once a report has passed the full validation (``freeoffload.topology``'s loader), its static
part is remembered; a later report with the very same static part only needs its changing
fields checked: ``Resource``, ``Capability``, ``Online``, ``Updated`` and the links. These checks
accept a subset of what the full path accepts; anything else (or anything odd) takes the full
path, which also names the body's line and column in its errors.
"""

from __future__ import annotations

import json
import math
from typing import Any

from freeoffload.topology import TASK_TYPES, Edge, Node, Resource

__all__ = ["DeltaCache"]

_DYNAMIC = ("Resource", "Capability", "Online", "Updated")
_RESOURCE = ("cpu_percent", "memory_used", "storage_used", "running_tasks")
_LINK = ("StartNode", "EndNode", "BandWidth", "Latency")
MAX_ENTRIES = 200_000
_MISSING = object()


def _num(value: Any, maximum: float = math.inf) -> bool:
    kind = type(value)
    return (kind is float or kind is int) and 0 <= value <= maximum and value < math.inf


class DeltaCache:
    """Node -> (static part as text, the node from the last fully validated report)."""

    def __init__(self) -> None:
        self.known: dict[str, tuple[dict[str, Any], Node, str]] = {}  # static, node, agent

    @staticmethod
    def _static(record: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in record.items() if k not in _DYNAMIC}

    @staticmethod
    def _same_static(record: dict[str, Any], static: dict[str, Any]) -> bool:
        if len(record) - sum(1 for k in _DYNAMIC if k in record) != len(static):
            return False
        return all(record.get(k, _MISSING) == v for k, v in static.items())

    def remember(self, body: bytes, node: Node) -> None:
        """After the full path accepted ``body``: remember its static part."""
        try:
            doc = json.loads(body)
            record, agent = doc["Node"], str(doc.get("Agent", ""))
        except (ValueError, KeyError, TypeError, AttributeError):
            return  # YAML bodies always take the full path
        if len(self.known) >= MAX_ENTRIES:
            self.known.clear()
        self.known[node.name] = (self._static(record), node, agent)

    def agent(self, name: str) -> str:
        """The agent address the node's last accepted report gave ("" if none)."""
        known = self.known.get(name)
        return known[2] if known else ""

    def parse(self, body: bytes) -> tuple[Node, list[Edge]] | None:
        """The report when it passes the fast checks, else None (take the full path)."""
        try:
            doc = json.loads(body)
        except ValueError:
            return None
        if type(doc) is not dict or not doc.keys() <= {"Node", "Links", "Agent"}:
            return None
        record = doc.get("Node")
        if type(record) is not dict or type(record.get("Name")) is not str:
            return None
        known = self.known.get(record["Name"])
        if known is None or not self._same_static(record, known[0]) \
                or doc.get("Agent", "") != known[2]:
            return None
        base = known[1]
        resource = self._resource(record.get("Resource", {}), base)
        capability = self._capability(record.get("Capability", {}))
        online, updated = record.get("Online", True), record.get("Updated")
        if resource is None or capability is None or type(online) is not bool or \
                not (updated is None or _num(updated)):
            return None
        links = self._links(doc.get("Links", []), base.name)
        if links is None:
            return None
        node = Node(name=base.name, role=base.role, computing_power=base.computing_power,
                    group=base.group, address=base.address, security=base.security,
                    resource=resource, capability=capability, online=online,
                    updated=None if updated is None else float(updated))
        return node, links

    @staticmethod
    def _resource(data: Any, base: Node) -> Resource | None:
        if type(data) is not dict or not data.keys() <= set(_RESOURCE):
            return None
        power = base.computing_power
        cpu, mem = data.get("cpu_percent", 0.0), data.get("memory_used", 0.0)
        disk, tasks = data.get("storage_used", 0.0), data.get("running_tasks", 0)
        if not (_num(cpu, 100.0) and _num(mem, power.memory_mib)
                and _num(disk, power.storage_gib) and _num(tasks) and tasks == int(tasks)):
            return None
        return Resource(float(cpu), float(mem), float(disk), int(tasks))

    @staticmethod
    def _capability(data: Any) -> dict[str, float] | None:
        if type(data) is not dict:
            return None
        for key, value in data.items():
            if key not in TASK_TYPES or not _num(value) or value <= 0:
                return None
        return {k: float(v) for k, v in data.items()}

    @staticmethod
    def _links(items: Any, name: str) -> list[Edge] | None:
        if type(items) is not list:
            return None
        out = []
        for item in items:
            if type(item) is not dict or item.keys() != set(_LINK):
                return None
            start, end = item["StartNode"], item["EndNode"]
            if type(start) is not str or type(end) is not str or not start or not end \
                    or start == end or name not in (start, end) \
                    or not _num(item["BandWidth"]) or not _num(item["Latency"]):
                return None
            out.append(Edge(start, end, float(item["BandWidth"]), float(item["Latency"])))
        return out
