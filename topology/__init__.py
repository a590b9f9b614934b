"""The computing-resource topology graph (CR-map) and the offload target selection.

Load and validate CR-map and task files (every problem as ``file:line:col: field: problem;
hint``), merge node reports into group maps and group maps into the cloud map, compute path
latencies, and choose the node a task goes to (:func:`select_target`).

Files use the paper's field names; the models here are frozen dataclasses with snake_case fields.
A :class:`CRMap` caches its routing graph and selection indexes per version: change it through
its methods (``put_node``, ``put_edge``, ``remove_node``) or call ``invalidate()``.
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
