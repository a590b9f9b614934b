"""The offload target selection algorithm (the CR-map issue's steps 1-6).

1. Read the task's Sensitive, Urgent, Demand and Type.
2. A node can execute the task (is in S) when it is online, a cloud or edge node, reachable from
   the requester, has a Capability for the Type, its free CPU (cores x headroom), Memory and
   Storage cover Demand, and it has Security when the task is Sensitive. Its power for the Type is
   its Capability (ms of the atomic task) divided by its headroom: lower is stronger.
3. Sensitive and Urgent: the edge in S with the lowest path latency (ties: the stronger node).
4. Sensitive, not Urgent: the cloud.
5. Urgent, not Sensitive: the edge in S with the lowest path latency (ties: the stronger node).
6. Neither: the edge in S with the most headroom (ties: stronger, then lower latency).
Edges are searched in the requester's group first, then in the other groups; when neither has a
capable edge, the cloud (the capable cloud node with the lowest latency). Remaining ties go to the
smaller name, so the answer is deterministic.

:func:`select_target` answers from indexes cached per map version and requester; with
``explain=True`` it walks every candidate in Python (the reference definition) and lists why each
was not chosen. Both give the same answer; tests check it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import NoReturn

from freeoffload.errors import Location, TaskError

from .graph import distances_from
from .model import CRMap, Node, Rejection, Selection, Task

__all__ = ["check_task", "rule_for", "select_target", "why_not"]

_Key = Callable[[Node], tuple[float | str, ...]]


def rule_for(task: Task) -> str:
    """Which rule answers ``task``: one of ``model.RULES``."""
    if task.sensitive:
        return "sensitive-urgent" if task.urgent else "sensitive"
    return "urgent" if task.urgent else "neither"


def check_task(crmap: CRMap, task: Task) -> None:
    """Raise TaskError when no node of ``crmap`` has a Capability for the task's Type."""
    from ._index import task_types  # numpy, on first use

    have = task_types(crmap)
    if task.type not in have:
        _no_capability(crmap, task, have)


def _no_capability(crmap: CRMap, task: Task, have: Iterable[str]) -> NoReturn:
    where = task.type_location or Location("<task>")
    raise TaskError.at(where, "Type", f"no node of {crmap.source or 'the map'} has a "
                       f"Capability for Type '{task.type}'",
                       f"the map's nodes have: {', '.join(sorted(have)) or 'none'}")


def why_not(node: Node, task: Task, latency_ms: float) -> str | None:
    """Why ``node`` cannot execute ``task`` (None when it can)."""
    if node.role == "device":
        return "a device, not a target"
    if not node.online:
        return "offline"
    if math.isinf(latency_ms):
        return "no path from the requesting node"
    if node.effective_ms(task.type) is None:
        return f"no Capability for Type '{task.type}'"
    if task.sensitive and not node.security:
        return "no Security, and the task is Sensitive"
    demand = task.demand
    if node.free_cpu_cores < demand.cpu_cores:
        return (f"free CPU {node.free_cpu_cores:.2f} cores < Demand {demand.cpu_cores:g} "
                f"(at {node.resource.cpu_percent:g}% of {node.computing_power.cpu.cores:g})")
    if node.free_memory_mib < demand.memory_mib:
        return f"free Memory {node.free_memory_mib:g} MiB < Demand {demand.memory_mib:g} MiB"
    if node.free_storage_mib < demand.storage_mib:
        return f"free Storage {node.free_storage_mib:g} MiB < Demand {demand.storage_mib:g} MiB"
    return None


def _key(rule: str, task: Task, dist: dict[str, float], cloud: bool) -> _Key:
    def power(node: Node) -> float:
        found = node.effective_ms(task.type)
        return math.inf if found is None else found

    if rule == "neither" and not cloud:
        return lambda n: (-n.headroom, power(n), dist[n.name], n.name)
    return lambda n: (dist[n.name], power(n), n.name)


def _tiers(crmap: CRMap, requester: Node, rule: str) -> list[tuple[str, list[Node]]]:
    nodes = [crmap.nodes[name] for name in sorted(crmap.nodes)]
    clouds = [n for n in nodes if n.role == "cloud"]
    if rule == "sensitive":
        return [("cloud", clouds)]
    edges = [n for n in nodes if n.role == "edge"]
    group = requester.group
    own = [n for n in edges if group and n.group == group]
    others = [n for n in edges if not (group and n.group == group)]
    return [("group", own), ("other-group", others), ("cloud", clouds)]


def _losers(best: Node, capable: Iterable[Node], rule: str, level: str,
            dist: dict[str, float]) -> list[Rejection]:
    out = []
    for node in capable:
        if node is best:
            continue
        if rule == "neither" and level != "cloud":
            why = (f"headroom {node.headroom:.2f} vs {best.headroom:.2f} of {best.name}, "
                   f"or weaker at equal headroom")
        else:
            why = (f"path latency {dist[node.name]:g} ms vs {dist[best.name]:g} ms of "
                   f"{best.name}, or weaker at equal latency")
        out.append(Rejection(node.name, f"capable, but {why}"))
    return out


def _explained(crmap: CRMap, task: Task, from_node: str) -> Selection:
    """The reference definition: every candidate checked, every rejection listed."""
    rule = rule_for(task)
    dist = distances_from(crmap, from_node)
    requester = crmap.nodes[from_node]
    rejections: list[Rejection] = []
    if rule == "sensitive":
        rejections += [Rejection(n.name, "an edge: Sensitive tasks that are not Urgent go to "
                                 "the cloud") for n in crmap.nodes.values() if n.role == "edge"]
    chosen: Selection | None = None
    for level, nodes in _tiers(crmap, requester, rule):
        if chosen is not None:
            rejections += [Rejection(n.name, f"not searched: the {chosen.level} level answered")
                           for n in nodes]
            continue
        capable = []
        for node in nodes:
            reason = why_not(node, task, dist.get(node.name, math.inf))
            if reason is None:
                capable.append(node)
            else:
                rejections.append(Rejection(node.name, reason))
        if capable:
            best = min(capable, key=_key(rule, task, dist, level == "cloud"))
            rejections += _losers(best, capable, rule, level, dist)
            chosen = Selection(best.name, rule, level, dist[best.name])
    if chosen is None:
        return Selection(None, rule, "none", None, tuple(rejections))
    return Selection(chosen.node, rule, chosen.level, chosen.latency_ms, tuple(rejections))


def select_target(crmap: CRMap, task: Task, from_node: str,
                  explain: bool = False) -> Selection:
    """Choose the node ``task`` from ``from_node`` goes to.

    Raises TopologyError for an unknown ``from_node`` and TaskError when no node has a
    Capability for the task's Type. ``Selection.node`` is None when no node can run it.
    """
    if from_node not in crmap.nodes:
        distances_from(crmap, from_node)  # raises the TopologyError that names the node
    if explain:
        check_task(crmap, task)
        return _explained(crmap, task, from_node)
    found = (_fast or _load_fast())(crmap, task, from_node, rule_for(task))
    if found is None:
        from ._index import task_types

        _no_capability(crmap, task, task_types(crmap))
    return found


_Fast = Callable[[CRMap, Task, str, str], "Selection | None"]
_fast: _Fast | None = None


def _load_fast() -> _Fast:
    """The index's ``select``, imported once on first use (numpy)."""
    global _fast
    from ._index import select

    _fast = select
    return select
