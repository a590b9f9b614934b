"""Writing CR-maps and tasks back out with the paper's field names (YAML or JSON).

``load_topology_text(dump_topology(m), ...)`` gives back a map equal to ``m``.
"""

from __future__ import annotations

import json
from typing import Any

import yaml

from .model import CRMap, Edge, Node, Task

__all__ = ["dump_task", "dump_topology", "dump_topology_json", "node_to_dict", "task_to_dict",
           "topology_to_dict"]

try:
    _Dumper: type = yaml.CSafeDumper
except AttributeError:  # PyYAML without libyaml
    _Dumper = yaml.SafeDumper


def _num(value: float) -> float | int:
    """Whole numbers print without ``.0``; they load back as equal floats."""
    return int(value) if float(value).is_integer() else value


def node_to_dict(node: Node) -> dict[str, Any]:
    power, used = node.computing_power, node.resource
    out: dict[str, Any] = {"Name": node.name, "Role": node.role}
    if node.group:
        out["Group"] = node.group
    if node.address:
        out["Address"] = node.address
    if power.cpu.cores > 0:  # a device may leave ComputingPower out
        out["ComputingPower"] = {
            "CPU": {"cores": _num(power.cpu.cores), "MHz": _num(power.cpu.mhz)},
            "Memory": _num(power.memory_mib),
            "Storage": _num(power.storage_gib),
        }
    out["Security"] = node.security
    out["Resource"] = {
        "cpu_percent": _num(used.cpu_percent),
        "memory_used": _num(used.memory_used_mib),
        "storage_used": _num(used.storage_used_gib),
        "running_tasks": used.running_tasks,
    }
    out["Capability"] = {k: _num(v) for k, v in sorted(node.capability.items())}
    out["Online"] = node.online
    if node.updated is not None:
        out["Updated"] = node.updated
    return out


def _edge_to_dict(edge: Edge) -> dict[str, Any]:
    return {"StartNode": edge.start_node, "EndNode": edge.end_node,
            "BandWidth": _num(edge.bandwidth_mbit), "Latency": _num(edge.latency_ms)}


def topology_to_dict(crmap: CRMap) -> dict[str, Any]:
    """The map as plain data with the file's field names, nodes in map order."""
    return {"nodes": [node_to_dict(n) for n in crmap.nodes.values()],
            "edges": [_edge_to_dict(e) for e in crmap.edges]}


def dump_topology(crmap: CRMap) -> str:
    """The map as a YAML CR-map file."""
    text: str = yaml.dump(topology_to_dict(crmap), Dumper=_Dumper, sort_keys=False,
                          default_flow_style=None, width=100)
    return text


def dump_topology_json(crmap: CRMap) -> str:
    return json.dumps(topology_to_dict(crmap), indent=2)


def task_to_dict(task: Task) -> dict[str, Any]:
    out: dict[str, Any] = {
        "Name": task.name, "Type": task.type, "Sensitive": task.sensitive,
        "Urgent": task.urgent,
        "Demand": {"CPU": _num(task.demand.cpu_cores), "Memory": _num(task.demand.memory_mib),
                   "Storage": _num(task.demand.storage_mib)},
    }
    if task.service is not None:
        out["Service"] = {"port": task.service.port, "protocol": task.service.protocol}
    return out


def dump_task(task: Task) -> str:
    text: str = yaml.dump(task_to_dict(task), Dumper=_Dumper, sort_keys=False)
    return text
