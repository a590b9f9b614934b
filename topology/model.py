"""The CR-map and task models.

Files use the paper's field names (``Name``, ``ComputingPower``, ``BandWidth``, ...); Python uses
snake_case with the unit in the name (``memory_mib``, ``latency_ms``). Nodes, edges and tasks are
frozen: change a map through :class:`CRMap`'s methods (``put_node``, ``put_edge``, ...), which keep
the cached routing graph and selection indexes in step. Code that replaces ``nodes`` or ``edges``
entries directly must call :meth:`CRMap.invalidate` afterwards.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from freeoffload.errors import Location

__all__ = [
    "CPU",
    "LEVELS",
    "MIN_HEADROOM",
    "ROLES",
    "RULES",
    "TASK_TYPES",
    "CRMap",
    "ComputingPower",
    "Demand",
    "Edge",
    "Node",
    "Rejection",
    "Resource",
    "Selection",
    "Service",
    "Task",
]

Role = Literal["cloud", "edge", "device"]
ROLES: Final = ("cloud", "edge", "device")
TASK_TYPES: Final = ("cpu", "io")
# Which rule of the selection algorithm answered (the steps 3-6).
RULES: Final = ("sensitive-urgent", "sensitive", "urgent", "neither")
# Where the answer came from: the requester's group, another group, or the cloud.
LEVELS: Final = ("group", "other-group", "cloud")
# Headroom below this counts as this much when scaling a node's power, so that a fully loaded
# node has a large but finite processing time.
MIN_HEADROOM: Final = 0.01


@dataclass(frozen=True, slots=True)
class CPU:
    """``CPU``: number of cores and their clock (``MHz``)."""

    cores: float
    mhz: float = 0.0


@dataclass(frozen=True, slots=True)
class ComputingPower:
    """``ComputingPower``: ``CPU``, ``Memory`` (MiB) and ``Storage`` (GiB)."""

    cpu: CPU
    memory_mib: float
    storage_gib: float


@dataclass(frozen=True, slots=True)
class Resource:
    """``Resource``: current use (cpu_percent, memory_used MiB, storage_used GiB, running_tasks)."""

    cpu_percent: float = 0.0
    memory_used_mib: float = 0.0
    storage_used_gib: float = 0.0
    running_tasks: int = 0


@dataclass(frozen=True, slots=True)
class Node:
    """One node of the CR-map.

    ``capability`` maps a task Type to the measured processing time (ms) of that type's atomic
    task on this node: lower is stronger. ``updated`` is the time (Unix seconds) of the report that
    produced this record, or None for a hand-written map.
    """

    name: str
    role: Role
    computing_power: ComputingPower
    group: str = ""
    address: str = ""
    security: bool = False
    resource: Resource = Resource()
    capability: Mapping[str, float] = field(default_factory=dict)
    online: bool = True
    updated: float | None = None

    @property
    def headroom(self) -> float:
        """Free share of the CPU, 0.0 (saturated) to 1.0 (idle)."""
        return min(1.0, max(0.0, 1.0 - self.resource.cpu_percent / 100.0))

    @property
    def free_cpu_cores(self) -> float:
        return self.computing_power.cpu.cores * self.headroom

    @property
    def free_memory_mib(self) -> float:
        return self.computing_power.memory_mib - self.resource.memory_used_mib

    @property
    def free_storage_mib(self) -> float:
        return (self.computing_power.storage_gib - self.resource.storage_used_gib) * 1024.0

    def effective_ms(self, task_type: str) -> float | None:
        """This node's power for ``task_type``: its Capability scaled by headroom (lower wins).

        None when the node has no Capability for that type.
        """
        measured = self.capability.get(task_type)
        if measured is None:
            return None
        return measured / max(self.headroom, MIN_HEADROOM)

    @property
    def host(self) -> str:
        """The host part of ``address`` (``host:port``; IPv6 hosts in brackets)."""
        host, _, _ = self.address.rpartition(":")
        return host.strip("[]")

    @property
    def port(self) -> int:
        _, _, port = self.address.rpartition(":")
        return int(port) if port.isdigit() else 0


@dataclass(frozen=True, slots=True)
class Edge:
    """A link between two nodes: ``BandWidth`` (Mbit/s) and ``Latency`` (ms). Undirected."""

    start_node: str
    end_node: str
    bandwidth_mbit: float
    latency_ms: float

    @property
    def pair(self) -> tuple[str, str]:
        """The two ends in sorted order: the link's identity."""
        a, b = self.start_node, self.end_node
        return (a, b) if a <= b else (b, a)


@dataclass(frozen=True, slots=True)
class Demand:
    """``Demand``: ``CPU`` cores, ``Memory`` MiB and ``Storage`` MiB the task needs."""

    cpu_cores: float = 0.0
    memory_mib: float = 0.0
    storage_mib: float = 0.0


@dataclass(frozen=True, slots=True)
class Service:
    """``Service``: the port and protocol the task's program connects to."""

    port: int
    protocol: str = "tcp"


@dataclass(frozen=True, slots=True)
class Task:
    """A task file: which atomic task models it (``type``), its flags and demand."""

    name: str
    type: str
    sensitive: bool = False
    urgent: bool = False
    demand: Demand = Demand()
    service: Service | None = None
    # Where ``Type`` stands in its file, for errors that need a map to be found.
    type_location: Location | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Rejection:
    """A candidate that was not chosen, and why."""

    node: str
    reason: str


@dataclass(frozen=True, slots=True)
class Selection:
    """The answer of :func:`select_target`.

    ``node`` is None when no node can run the task. ``rule`` is one of :data:`RULES`, ``level``
    one of :data:`LEVELS` (or ``"none"``), ``latency_ms`` the path latency from the requester.
    ``rejections`` is filled only when asked to explain.
    """

    node: str | None
    rule: str
    level: str
    latency_ms: float | None = None
    rejections: tuple[Rejection, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "node": self.node,
            "rule": self.rule,
            "level": self.level,
            "latency_ms": self.latency_ms,
            "rejections": [{"node": r.node, "reason": r.reason} for r in self.rejections],
        }


@dataclass(eq=False)
class CRMap:
    """The computing-resource topology graph: nodes by name and undirected edges.

    Derived data (the routing graph, shortest-path latencies, selection indexes) is cached; the
    methods keep it current (a replaced record is patched in, other changes drop it) and
    :meth:`invalidate` drops it after direct edits of ``nodes`` or ``edges``.
    """

    nodes: dict[str, Node] = field(default_factory=dict)
    edges: list[Edge] = field(default_factory=list)
    source: str = ""
    _version: int = field(default=0, init=False, repr=False)
    _caches: dict[str, Any] = field(default_factory=dict, init=False, repr=False)
    # Nodes whose record was replaced through put_node since the caches were built: routing
    # (which depends only on the node set and the links) stays; the selection index patches them.
    _changed: set[str] = field(default_factory=set, init=False, repr=False)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CRMap):
            return NotImplemented
        return self.nodes == other.nodes and sorted(
            self.edges, key=lambda e: e.pair) == sorted(other.edges, key=lambda e: e.pair)

    __hash__ = None  # type: ignore[assignment]

    @property
    def version(self) -> int:
        """Changes when the node set or the links change (or on :meth:`invalidate`); replacing a
        known node's record with :meth:`put_node` keeps it."""
        return self._version

    def invalidate(self) -> None:
        """Forget every cached derivation; call after editing ``nodes`` or ``edges`` directly."""
        self._version += 1
        self._caches.clear()
        self._changed.clear()

    def cache(self, key: str) -> Any:
        """A derived value cached for the current contents, or None (for this package)."""
        stamp = (self._version, len(self.nodes), len(self.edges))
        if self._caches.get("__stamp__") != stamp:
            self._caches.clear()
            self._changed.clear()
            self._caches["__stamp__"] = stamp
        return self._caches.get(key)

    def store(self, key: str, value: Any) -> Any:
        self.cache(key)  # refresh the stamp first
        self._caches[key] = value
        return value

    def put_node(self, node: Node) -> None:
        """Add or replace a node.

        Replacing a known node's record keeps the cached routing (links did not change) and
        lets the selection index update that one node; adding a node rebuilds everything.
        """
        known = node.name in self.nodes
        self.nodes[node.name] = node
        if known:
            self._changed.add(node.name)
        else:
            self.invalidate()

    def take_changed(self) -> set[str]:
        """The nodes replaced since the last call (for this package's caches)."""
        changed, self._changed = self._changed, set()
        return changed

    def remove_node(self, name: str) -> None:
        """Remove a node and every edge touching it."""
        self.nodes.pop(name, None)
        self.edges = [e for e in self.edges if name not in (e.start_node, e.end_node)]
        self.invalidate()

    def put_edge(self, edge: Edge) -> None:
        """Add a link, or replace the link between the same two nodes."""
        pair = edge.pair
        self.edges = [e for e in self.edges if e.pair != pair]
        self.edges.append(edge)
        self.invalidate()

    def edge_between(self, a: str, b: str) -> Edge | None:
        pair = (a, b) if a <= b else (b, a)
        for edge in self.edges:
            if edge.pair == pair:
                return edge
        return None

    def clouds(self) -> list[Node]:
        return [n for n in self.nodes.values() if n.role == "cloud"]

    def groups(self) -> dict[str, list[str]]:
        """Group name -> member names (sorted), for nodes that have a group."""
        out: dict[str, list[str]] = {}
        for node in self.nodes.values():
            if node.group:
                out.setdefault(node.group, []).append(node.name)
        return {g: sorted(names) for g, names in sorted(out.items())}
