"""The common case of loading a CR-map: a node or edge with nothing to report, read without
the checker.

A Checker call per field costs ~1 us of bookkeeping: a third of loading a 10,000-node map. These
readers apply exactly the rules of loader's _node/_edge and give up (None) at the first thing
they would have to report; the checker then reads that item again and says what is wrong.
"""

from __future__ import annotations

import math
from typing import Any

from freeoffload.yamlfile import LocMap

from .model import CPU, TASK_TYPES, ComputingPower, Edge, Node, Resource, Role

__all__ = ["NODE_OPTIONAL", "NO_POWER", "fast_edge", "fast_node", "is_host_port"]

NO_POWER = ComputingPower(CPU(0.0, 0.0), 0.0, 0.0)
NODE_OPTIONAL = ("Group", "Address", "ComputingPower", "Security", "Resource", "Capability",
                 "Online", "Updated")


def is_host_port(address: str) -> bool:
    host, sep, port = address.rpartition(":")
    return bool(sep and host and port.isdigit() and 0 < int(port) < 65536)


_NODE_KEYS = frozenset(("Name", "Role", *NODE_OPTIONAL))
_NODE_NEEDS = {"cloud": ("ComputingPower", "Address"), "edge": ("ComputingPower", "Address",
               "Group"), "device": ("Group",)}
_POWER_KEYS = frozenset(("CPU", "Memory", "Storage"))
_CPU_KEYS = frozenset(("cores", "MHz"))
_RESOURCE_KEYS = frozenset(("cpu_percent", "memory_used", "storage_used", "running_tasks"))
_EDGE_KEYS = frozenset(("StartNode", "EndNode", "BandWidth", "Latency"))


def _amount(value: Any) -> bool:
    """A finite number >= 0 that is not a bool: what Checker.number takes as it is."""
    kind = type(value)
    return (kind is float or kind is int) and 0 <= value < math.inf


def _text(value: Any) -> bool:
    return type(value) is str and bool(value.strip())


def _fast_power(data: Any) -> ComputingPower | None:
    if not isinstance(data, LocMap) or data.keys() != _POWER_KEYS:
        return None
    cpu, memory, storage = data["CPU"], data["Memory"], data["Storage"]
    if not isinstance(cpu, LocMap) or "cores" not in cpu or not cpu.keys() <= _CPU_KEYS:
        return None
    cores, mhz = cpu["cores"], cpu.get("MHz", 0.0)
    if not (_amount(cores) and cores > 0 and _amount(mhz) and _amount(memory)
            and _amount(storage)):
        return None
    return ComputingPower(CPU(float(cores), float(mhz)), float(memory), float(storage))


def _fast_resource(data: Any, power: ComputingPower) -> Resource | None:
    if not isinstance(data, LocMap) or not data.keys() <= _RESOURCE_KEYS:
        return None
    get = data.get
    cpu, memory, storage, tasks = (get("cpu_percent", 0.0), get("memory_used", 0.0),
                                   get("storage_used", 0.0), get("running_tasks", 0.0))
    if not (_amount(cpu) and cpu <= 100 and _amount(memory) and _amount(storage)
            and _amount(tasks) and tasks == int(tasks)):
        return None
    if float(memory) > power.memory_mib or float(storage) > power.storage_gib:
        return None
    return Resource(float(cpu), float(memory), float(storage), int(float(tasks)))


def _fast_capability(data: Any) -> dict[str, float] | None:
    if not isinstance(data, LocMap):
        return None
    out: dict[str, float] = {}
    for key, value in data.items():
        if key not in TASK_TYPES or not (_amount(value) and value > 0):
            return None
        out[key] = float(value)
    return out


def fast_node(data: LocMap) -> Node | None:
    """The node, when _node would report nothing about it; else None."""
    get = data.get
    name, role = get("Name"), get("Role")
    if not (type(name) is str and name.strip() and type(role) is str and role in _NODE_NEEDS
            and data.keys() <= _NODE_KEYS and all(k in data for k in _NODE_NEEDS[role])):
        return None
    power = _fast_power(get("ComputingPower")) if "ComputingPower" in data else NO_POWER
    if power is None:
        return None
    resource = _fast_resource(get("Resource"), power) if "Resource" in data else Resource()
    capability = _fast_capability(get("Capability")) if "Capability" in data else {}
    group, address = get("Group", ""), get("Address", "")
    security, online, updated = get("Security", False), get("Online", True), get("Updated", 0)
    if resource is None or capability is None or type(security) is not bool or \
            type(online) is not bool or not _amount(updated) or \
            ("Group" in data and not _text(group)) or \
            ("Address" in data and not (_text(address) and is_host_port(address))):
        return None
    role_value: Role = "cloud" if role == "cloud" else "edge" if role == "edge" else "device"
    return Node(name=name, role=role_value, computing_power=power, group=group,
                address=address, security=security, resource=resource, capability=capability,
                online=online, updated=float(updated) if "Updated" in data else None)


def fast_edge(data: LocMap, names: dict[str, LocMap]) -> Edge | None:
    """The edge, when _edge would report nothing about it; else None."""
    if data.keys() != _EDGE_KEYS:
        return None
    start, end, bandwidth, latency = (data["StartNode"], data["EndNode"], data["BandWidth"],
                                      data["Latency"])
    if start == end or type(start) is not str or start not in names or \
            type(end) is not str or end not in names:
        return None
    if not (_amount(bandwidth) and bandwidth > 0 and _amount(latency)):
        return None
    return Edge(start, end, float(bandwidth), float(latency))
