"""The fast path of report ingest: a member's reports differ from the last one in a few fields.

A report's static part (Name, Role, Group, Address, ComputingPower, Security) rarely changes.
Once a report has passed the full validation (``freeoffload.topology``'s loader), its static
part is remembered as the exact JSON bytes orjson writes for it; a later report whose static
part serialises to the very same bytes (so ``true`` is not ``1`` and ``1`` is not ``1.0``) only
needs its changing fields checked: ``Resource``, ``Capability``, ``Online``, ``Updated`` and the
links. These checks accept a subset of what the full path accepts; anything else (or anything
odd) takes the full path, which also names the body's line and column in its errors.

The checks read the decoded JSON in place and build nothing but the resulting records.
"""

from __future__ import annotations

import math
import sys
from typing import Any

import orjson
from freeoffload.topology import TASK_TYPES, Edge, Node, Resource

__all__ = ["DeltaCache"]

_DOC = frozenset({"Node", "Links", "Agent"})
_RESOURCE = frozenset({"cpu_percent", "memory_used", "storage_used", "running_tasks"})
_LINK = frozenset({"StartNode", "EndNode", "BandWidth", "Latency"})
_TYPES = frozenset(TASK_TYPES)
_INF = math.inf
_NUMBERS = frozenset({int, float})  # JSON numbers (bool is neither)
MAX_ENTRIES = 200_000
_EMPTY: dict[str, Any] = {}
_NO_LINKS: list[Any] = []


def _num(value: Any, maximum: float = _INF) -> bool:
    kind = type(value)
    return (kind is float or kind is int) and 0 <= value <= maximum and value < _INF


class _Known:
    """What the last fully validated report of one node said that reports repeat."""

    __slots__ = ("agent", "capability", "capability_json", "memory", "node", "static",
                 "storage")

    def __init__(self, static: bytes, node: Node, agent: str) -> None:
        self.static = static
        self.node = node
        self.agent = agent
        power = node.computing_power  # the bounds of Resource's fields (finite, as _num's)
        self.memory = min(power.memory_mib, sys.float_info.max)
        self.storage = min(power.storage_gib, sys.float_info.max)
        # the last Capability checked (as received, and as read): shared while it repeats
        self.capability_json = b""
        self.capability: dict[str, float] = {}


class DeltaCache:
    """Node name -> the static part of its last fully validated report (see the module)."""

    def __init__(self) -> None:
        self.known: dict[str, _Known] = {}

    def remember(self, body: bytes, node: Node) -> None:
        """After the full path accepted ``body``: remember its static part."""
        try:
            doc = orjson.loads(body)
            record, agent = doc["Node"], str(doc.get("Agent", ""))
            for key in ("Resource", "Capability", "Online", "Updated"):
                record.pop(key, None)
            static = orjson.dumps(record)
        except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
            return  # YAML bodies always take the full path
        if len(self.known) >= MAX_ENTRIES:
            self.known.clear()
        self.known[node.name] = _Known(static, node, agent)

    def agent(self, name: str) -> str:
        """The agent address the node's last accepted report gave ("" if none)."""
        known = self.known.get(name)
        return known.agent if known else ""

    def parse(self, body: bytes) -> tuple[Node, list[Edge]] | None:
        """The report when it passes the fast checks, else None (take the full path).

        Written flat (the checks inline, no helper calls): this runs once per report, and in a
        busy server each call and each object it builds costs several times what it does in a
        loop on its own.
        """
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError:
            return None
        if type(doc) is not dict or not doc.keys() <= _DOC:
            return None
        record = doc.get("Node")
        if type(record) is not dict:
            return None
        name = record.get("Name")
        known = self.known.get(name) if type(name) is str else None
        if known is None or doc.get("Agent", "") != known.agent:
            return None
        # the record is ours (just decoded): take the changing fields out, compare the rest
        resource = record.pop("Resource", _EMPTY)
        capability = record.pop("Capability", _EMPTY)
        online = record.pop("Online", True)
        updated = record.pop("Updated", None)
        if orjson.dumps(record) != known.static or type(online) is not bool:
            return None
        if updated is not None:
            if type(updated) not in _NUMBERS or not 0 <= updated < _INF:
                return None
            updated = float(updated)
        if type(resource) is not dict or not resource.keys() <= _RESOURCE:
            return None
        cpu, mem = resource.get("cpu_percent", 0.0), resource.get("memory_used", 0.0)
        disk, tasks = resource.get("storage_used", 0.0), resource.get("running_tasks", 0)
        if type(cpu) not in _NUMBERS or type(mem) not in _NUMBERS \
                or type(disk) not in _NUMBERS or type(tasks) is not int \
                or not (0 <= cpu <= 100.0 and 0 <= mem <= known.memory
                        and 0 <= disk <= known.storage and tasks >= 0):
            return None
        capability_json = orjson.dumps(capability)
        if capability_json != known.capability_json:
            if not _capability(capability):
                return None
            known.capability = {k: float(v) for k, v in capability.items()}
            known.capability_json = capability_json
        base = known.node
        links = _links(doc.get("Links", _NO_LINKS), base.name)
        if links is None:
            return None
        node = Node(base.name, base.role, base.computing_power, base.group, base.address,
                    base.security, Resource(float(cpu), float(mem), float(disk), tasks),
                    known.capability, online, updated)
        return node, links


def _capability(data: Any) -> bool:
    if type(data) is not dict or not data.keys() <= _TYPES:
        return False
    return all(_num(value) and value > 0 for value in data.values())


def _links(items: Any, name: str) -> list[Edge] | None:
    if type(items) is not list:
        return None
    out = []
    for item in items:
        if type(item) is not dict or item.keys() != _LINK:
            return None
        start, end = item["StartNode"], item["EndNode"]
        bandwidth, latency = item["BandWidth"], item["Latency"]
        if type(start) is not str or type(end) is not str or not start or not end \
                or start == end or (start != name and end != name) \
                or type(bandwidth) not in _NUMBERS or type(latency) not in _NUMBERS \
                or not (0 < bandwidth < _INF and 0 <= latency < _INF):
            return None
        out.append(Edge(start, end, float(bandwidth), float(latency)))
    return out
