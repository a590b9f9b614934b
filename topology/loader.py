"""Loading and validating CR-map and task files.

Every problem of a file is collected in one pass and raised together (``TopologyError`` for a
map, ``TaskError`` for a task), each as ``file:line:col: field: problem; hint``. Field paths name
nodes by their Name (``nodes[edge1].ComputingPower.Memory``) and edges by their position.
"""

from __future__ import annotations

import gc
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from freeoffload.errors import ConfigError, Location, TaskError, TopologyError
from freeoffload.yamlfile import LocList, LocMap, load_yaml, load_yaml_text, location_of

from ._check import Checker, describe
from ._fastread import NO_POWER, NODE_OPTIONAL, fast_edge, fast_node, is_host_port
from .model import (
    CPU,
    ROLES,
    TASK_TYPES,
    ComputingPower,
    CRMap,
    Demand,
    Edge,
    Node,
    Resource,
    Role,
    Service,
    Task,
)

__all__ = ["from_json", "kind_of", "load_task", "load_task_text", "load_topology",
           "load_topology_text", "parse_task", "parse_topology"]

PROTOCOLS = ("tcp", "udp")
_NOWHERE = Location("")


def _computing_power(check: Checker, data: LocMap, path: str) -> ComputingPower:
    check.keys(data, path, ("CPU", "Memory", "Storage"), ())
    cpu = CPU(0.0, 0.0)
    cpu_data = _sub(check, data, "CPU", path)
    if cpu_data is not None:
        check.keys(cpu_data, f"{path}.CPU", ("cores",), ("MHz",))
        cpu = CPU(check.number(cpu_data, "cores", f"{path}.CPU", positive=True),
                  check.number(cpu_data, "MHz", f"{path}.CPU"))
    return ComputingPower(cpu, check.number(data, "Memory", path),
                          check.number(data, "Storage", path))


def _resource(check: Checker, data: LocMap, path: str, power: ComputingPower) -> Resource:
    check.keys(data, path, (), ("cpu_percent", "memory_used", "storage_used", "running_tasks"))
    resource = Resource(
        cpu_percent=check.number(data, "cpu_percent", path, maximum=100.0),
        memory_used_mib=check.number(data, "memory_used", path),
        storage_used_gib=check.number(data, "storage_used", path),
        running_tasks=int(check.number(data, "running_tasks", path, integer=True)),
    )
    for key, used, total, unit, owner in (
        ("memory_used", resource.memory_used_mib, power.memory_mib, "MiB", "Memory"),
        ("storage_used", resource.storage_used_gib, power.storage_gib, "GiB", "Storage"),
    ):
        if used > total and key in data:
            check.add(data.value_loc(key), f"{path}.{key}",
                      f"{used:g} {unit} in use exceeds ComputingPower.{owner} {total:g} {unit}")
    return resource


def _capability(check: Checker, data: LocMap, path: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for key in data:
        if key not in TASK_TYPES:
            check.add(data.key_loc(key), f"{path}.{key}", f"unknown task Type '{key}'",
                      f"expected one of: {', '.join(TASK_TYPES)}")
            continue
        out[key] = check.number(data, key, path, positive=True)
    return out


def _address(check: Checker, data: LocMap, path: str) -> str:
    address = check.string(data, "Address", path)
    if not address:
        return ""
    if not is_host_port(address):
        check.add(data.value_loc("Address"), f"{path}.Address",
                  f"expected host:port, got {describe(address)}",
                  "e.g. 10.0.0.11:8080 or [fd00::1]:8080, port 1-65535")
        return ""
    return address


def _sub(check: Checker, data: LocMap, key: str, path: str) -> LocMap | None:
    value = data.get(key)
    if value is None and key not in data:
        return None
    if isinstance(value, LocMap):
        return value
    return check.mapping(value, data.value_loc(key), f"{path}.{key}" if path else key)


def _node(check: Checker, data: LocMap, index: int) -> Node | None:
    name = check.string(data, "Name", f"nodes[{index}]")
    path = f"nodes[{name or index}]"
    check.keys(data, path, ("Name", "Role"), NODE_OPTIONAL)
    role = check.string(data, "Role", path, choices=ROLES, what="Role")
    served = role in ("cloud", "edge")
    for key in (("ComputingPower", "Address") if served else ()) + \
            (("Group",) if role in ("edge", "device") else ()):
        if key not in data:
            article = "an" if role == "edge" else "a"
            check.add(data.loc, f"{path}.{key}", f"missing required field for {article} {role}",
                      f"add '{key}:' to this node")
    power_data = _sub(check, data, "ComputingPower", path)
    power = _computing_power(check, power_data, f"{path}.ComputingPower") \
        if power_data is not None else NO_POWER
    resource_data = _sub(check, data, "Resource", path)
    resource = _resource(check, resource_data, f"{path}.Resource", power) \
        if resource_data is not None else Resource()
    capability_data = _sub(check, data, "Capability", path)
    capability = _capability(check, capability_data, f"{path}.Capability") \
        if capability_data is not None else {}
    updated = check.number(data, "Updated", path, -1.0)
    if not name or not role:
        return None
    role_value: Role = "cloud" if role == "cloud" else "edge" if role == "edge" else "device"
    return Node(
        name=name, role=role_value, computing_power=power,
        group=check.string(data, "Group", path), address=_address(check, data, path),
        security=check.boolean(data, "Security", path), resource=resource,
        capability=capability, online=check.boolean(data, "Online", path, True),
        updated=None if updated < 0 else updated,
    )


def _edge(check: Checker, data: LocMap, index: int, names: dict[str, LocMap]) -> Edge | None:
    path = f"edges[{index}]"
    check.keys(data, path, ("StartNode", "EndNode", "BandWidth", "Latency"), ())
    ends = []
    for key in ("StartNode", "EndNode"):
        end = check.string(data, key, path)
        if end and end not in names:
            known = sorted(names)
            check.add(data.value_loc(key), f"{path}.{key}", f"unknown node '{end}'",
                      f"expected a node Name: {', '.join(known[:10])}"
                      f"{', ...' if len(known) > 10 else ''}")
            end = ""
        ends.append(end)
    if ends[0] and ends[0] == ends[1]:
        check.add(data.value_loc("EndNode"), f"{path}.EndNode",
                  f"a link from '{ends[0]}' to itself", "an edge joins two different nodes")
        return None
    bandwidth = check.number(data, "BandWidth", path, positive=True)
    latency = check.number(data, "Latency", path)
    if not all(ends) or any(k not in data for k in ("BandWidth", "Latency")):
        return None
    return Edge(ends[0], ends[1], bandwidth, latency)


def _nodes(check: Checker, items: Any, loc: Location
           ) -> tuple[dict[str, Node], dict[str, LocMap]]:
    """The valid nodes, and every named node's mapping (valid or not, for edge checks).

    Locations are looked up only for a problem: the C loader unpacks a mapping's on first use.
    """
    seq = check.sequence(items, loc, "nodes")
    nodes: dict[str, Node] = {}
    names: dict[str, LocMap] = {}
    for index, item in enumerate(seq or ()):
        data = item if isinstance(item, LocMap) else \
            check.mapping(item, seq.item_loc(index) if seq else loc, f"nodes[{index}]")
        if data is None:
            continue
        node = fast_node(data) or _node(check, data, index)
        name = data.get("Name")
        if not isinstance(name, str) or not name.strip():
            continue
        if name in names:
            first = names[name].value_loc("Name").line
            check.add(data.value_loc("Name"), f"nodes[{index}].Name",
                      f"duplicate node Name '{name}'",
                      f"first given at line {first}; names must be unique")
            continue
        names[name] = data
        if node is not None:
            nodes[name] = node
    return nodes, names


def _edges(check: Checker, items: Any, loc: Location, names: dict[str, LocMap]) -> list[Edge]:
    seq = check.sequence(items, loc, "edges")
    out: list[Edge] = []
    seen: dict[tuple[str, str], int] = {}
    for index, item in enumerate(seq or ()):
        data = item if isinstance(item, LocMap) else \
            check.mapping(item, seq.item_loc(index) if seq else loc, f"edges[{index}]")
        edge = (fast_edge(data, names) or _edge(check, data, index, names)) \
            if data is not None else None
        if edge is None or data is None:
            continue
        if edge.pair in seen:
            check.add(data.loc, f"edges[{index}]",
                      f"duplicate link between '{edge.pair[0]}' and '{edge.pair[1]}'",
                      f"edges[{seen[edge.pair]}] already joins them (links are undirected)")
            continue
        seen[edge.pair] = index
        out.append(edge)
    return out


def parse_topology(data: Any, source: str) -> CRMap:
    """Validate parsed YAML (from ``load_yaml``) as a CR-map; raise TopologyError with all."""
    check = Checker(source)
    top = check.mapping(data, location_of(data, Location(source, 1, 1)), "(file)")
    if top is None:
        raise TopologyError(check.problems)
    check.keys(top, "", ("nodes",), ("edges",))
    found, names = _nodes(check, top["nodes"], top.value_loc("nodes")) if "nodes" in top \
        else ({}, {})
    edges = _edges(check, top["edges"], top.value_loc("edges"), names) if "edges" in top \
        else []
    if "nodes" in top and not any(node.role == "cloud" for node in found.values()):
        check.add(top.value_loc("nodes"), "nodes", "no cloud node",
                  "add a node with 'Role: cloud': it answers what no group can")
    if check.problems:
        raise TopologyError(check.sorted_problems())
    return CRMap(found, edges, source)


class _Duplicate(Exception):
    """A JSON object repeats a key: the located YAML parse reports where."""


class _JSONMap(LocMap):
    """A mapping read from JSON: it knows no locations (a problem triggers a located parse)."""

    loc = _NOWHERE
    key_locs: dict[Any, Location] = {}
    value_locs: dict[Any, Location] = {}


def _json_object(pairs: list[tuple[str, Any]]) -> LocMap:
    found = _JSONMap(pairs)
    if len(found) != len(pairs):
        raise _Duplicate
    return found


def from_json(text: str | bytes) -> Any | None:
    """Parse JSON-form YAML (machine-written maps) quickly, without locations; else None."""
    head = text[:64].lstrip()
    if head[:1] not in ("{", b"{"):
        return None
    try:
        data = json.loads(text, object_pairs_hook=_json_object)
    except (ValueError, _Duplicate):
        return None
    if isinstance(data, LocMap):
        for key, value in data.items():
            if isinstance(value, list):
                data[key] = located = LocList(value)
                located.loc, located.item_locs = _NOWHERE, []
    return data


@contextmanager
def _no_cycle_collection() -> Iterator[None]:
    """Loading a map makes ~10 objects a node, none in a reference cycle; the collections they
    set off walk the whole heap for nothing (~0.1 s of a 10,000-node load in a busy process).
    Left as it was when the caller had switched collection off itself."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def load_topology_text(text: str | bytes, source: str) -> CRMap:
    """Load and validate a CR-map from YAML text; ``source`` names it in errors.

    A map written as JSON (which is YAML too, and what machines exchange) is read with the
    json module first; only when it has a problem is it parsed again for line and column.
    """
    with _no_cycle_collection():
        fast = from_json(text)
        if fast is not None:
            try:
                return parse_topology(fast, source)
            except TopologyError:
                pass  # parse again with locations, to say where
        return parse_topology(load_yaml_text(text, source, TopologyError), source)


def load_topology(path: str | Path) -> CRMap:
    """Load and validate a CR-map file (see :func:`load_topology_text`)."""
    try:
        text = Path(path).read_bytes()
    except OSError:
        return parse_topology(load_yaml(path, TopologyError), str(path))  # reports why
    return load_topology_text(text, str(path))


def _demand(check: Checker, data: LocMap) -> Demand:
    check.keys(data, "Demand", (), ("CPU", "Memory", "Storage"))
    return Demand(check.number(data, "CPU", "Demand"), check.number(data, "Memory", "Demand"),
                  check.number(data, "Storage", "Demand"))


def _service(check: Checker, data: LocMap) -> Service | None:
    check.keys(data, "Service", ("port",), ("protocol",))
    port = int(check.number(data, "port", "Service", integer=True, positive=True,
                            maximum=65535))
    protocol = check.string(data, "protocol", "Service", "tcp", choices=PROTOCOLS)
    return Service(port, protocol) if port else None


def parse_task(data: Any, source: str) -> Task:
    """Validate parsed YAML as a task; raise TaskError with every problem."""
    check = Checker(source)
    top = check.mapping(data, location_of(data, Location(source, 1, 1)), "(file)")
    if top is None:
        raise TaskError(check.problems)
    check.keys(top, "", ("Name", "Type", "Demand"), ("Sensitive", "Urgent", "Service"))
    name = check.string(top, "Name", "")
    task_type = check.string(top, "Type", "", choices=TASK_TYPES, what="task Type")
    demand_data = _sub(check, top, "Demand", "")
    demand = _demand(check, demand_data) if demand_data is not None else Demand()
    service_data = _sub(check, top, "Service", "")
    service = _service(check, service_data) if service_data is not None else None
    task = Task(name, task_type, check.boolean(top, "Sensitive", ""),
                check.boolean(top, "Urgent", ""), demand, service,
                type_location=top.value_loc("Type") if "Type" in top else top.loc)
    if check.problems:
        raise TaskError(check.sorted_problems())
    return task


def load_task_text(text: str | bytes, source: str) -> Task:
    """Load and validate a task from YAML text; ``source`` names it in errors."""
    return parse_task(load_yaml_text(text, source, TaskError), source)


def load_task(path: str | Path) -> Task:
    """Load and validate a task file."""
    return parse_task(load_yaml(path, TaskError), str(path))


def kind_of(data: Any) -> type[ConfigError]:
    """TopologyError for data that looks like a CR-map, TaskError for anything else."""
    return TopologyError if isinstance(data, dict) and ("nodes" in data or "edges" in data) \
        else TaskError
