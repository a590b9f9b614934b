"""The computing-resource topology graph (CR-map) and the offload target selection.

- Files: :func:`load_topology` / :func:`load_task` (and ``*_text``) validate and report every
  problem as ``file:line:col: field: problem; hint`` (``TopologyError`` / ``TaskError``);
  :func:`dump_topology` / :func:`dump_topology_json` write maps back with the paper's field names.
  A map written as JSON (valid YAML too) loads through the json module, much faster for large maps.
- Models: frozen dataclasses with snake_case fields (:class:`Node`, :class:`Edge`,
  :class:`Task`, ...); a :class:`CRMap` caches its routing graph and selection indexes per
  version: change it through its methods (``put_node``, ``put_edge``, ``remove_node``) or call
  ``invalidate()`` after editing ``nodes``/``edges`` directly.
- Routing: :func:`path_latency` / :func:`distances_from` / :func:`shortest_path` (lowest total
  ``Latency``; networkx stays inside).
- Selection: :func:`select_target` (rules and levels in :mod:`.select`), :func:`why_not`.
- Merging: :func:`merge_report` (node report -> group map), :func:`merge_map` (group map -> cloud
  map), :func:`expire`; newer records win, silent nodes go offline.
"""

from .dump import dump_task, dump_topology, dump_topology_json, task_to_dict, topology_to_dict
from .graph import distances_from, path_latency, shortest_path
from .loader import load_task, load_task_text, load_topology, load_topology_text
from .merge import NodeReport, expire, merge_map, merge_report
from .model import (
    CPU,
    LEVELS,
    ROLES,
    RULES,
    TASK_TYPES,
    ComputingPower,
    CRMap,
    Demand,
    Edge,
    Node,
    Rejection,
    Resource,
    Selection,
    Service,
    Task,
)
from .select import check_task, rule_for, select_target, why_not

__all__ = [
    "CPU",
    "LEVELS",
    "ROLES",
    "RULES",
    "TASK_TYPES",
    "CRMap",
    "ComputingPower",
    "Demand",
    "Edge",
    "Node",
    "NodeReport",
    "Rejection",
    "Resource",
    "Selection",
    "Service",
    "Task",
    "check_task",
    "distances_from",
    "dump_task",
    "dump_topology",
    "dump_topology_json",
    "expire",
    "load_task",
    "load_task_text",
    "load_topology",
    "load_topology_text",
    "merge_map",
    "merge_report",
    "path_latency",
    "rule_for",
    "select_target",
    "shortest_path",
    "task_to_dict",
    "topology_to_dict",
    "why_not",
]
