"""Vectorised selection: per-map-version arrays and per-requester latencies, built once.

The latencies are :func:`.graph.latency_row`'s rows (one per requester, kept by the routing).

The values in the arrays are the very floats :mod:`.select`'s reference path computes through
``Node`` properties, so both paths compare the same numbers and agree exactly. A query costs a
few array operations over the nodes and no rebuilding.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from .graph import latency_row
from .model import CRMap, Node, Selection, Task

__all__ = ["select", "task_types"]

_Floats = npt.NDArray[np.float64]
_Bools = npt.NDArray[np.bool_]
_Ints = npt.NDArray[np.intp]

@dataclass(frozen=True)
class _Arrays:
    names: list[str]          # sorted: position is also the name's rank
    position: dict[str, int]
    online: _Bools
    is_edge: _Bools
    is_cloud: _Bools
    secure: _Bools
    group: _Ints              # group code, -1 for none
    group_codes: dict[str, int]
    free_cpu: _Floats
    free_memory: _Floats
    free_storage: _Floats
    neg_headroom: _Floats
    power: dict[str, _Floats]  # task Type -> effective ms (inf when no Capability)


# Patching one node costs about 1.6 times its share of a full build (9 vs 5.5 us a node with
# 1000 nodes): past 60% of the nodes changed (a center's group after a burst of reports with no
# query between), building anew is cheaper.
REBUILD_SHARE = 0.6


def _build(crmap: CRMap) -> _Arrays:
    names = sorted(crmap.nodes)
    nodes = [crmap.nodes[n] for n in names]
    codes: dict[str, int] = {}
    for node in nodes:
        if node.group and node.group not in codes:
            codes[node.group] = len(codes)
    types = {t for node in nodes for t in node.capability}
    power = {}
    for task_type in types:
        values = [node.effective_ms(task_type) for node in nodes]
        power[task_type] = np.array([math.inf if v is None else v for v in values])

    def floats(values: list[float]) -> _Floats:
        return np.array(values, dtype=np.float64)

    return _Arrays(
        names=names,
        position={name: i for i, name in enumerate(names)},
        online=np.array([n.online for n in nodes], dtype=np.bool_),
        is_edge=np.array([n.role == "edge" for n in nodes], dtype=np.bool_),
        is_cloud=np.array([n.role == "cloud" for n in nodes], dtype=np.bool_),
        secure=np.array([n.security for n in nodes], dtype=np.bool_),
        group=np.array([codes.get(n.group, -1) for n in nodes], dtype=np.intp),
        group_codes=codes,
        free_cpu=floats([n.free_cpu_cores for n in nodes]),
        free_memory=floats([n.free_memory_mib for n in nodes]),
        free_storage=floats([n.free_storage_mib for n in nodes]),
        neg_headroom=floats([-n.headroom for n in nodes]),
        power=power,
    )


def _patch(arrays: _Arrays, node: Node) -> None:
    """Write one replaced node's values into the arrays (same floats as ``_build``)."""
    at = arrays.position[node.name]
    arrays.online[at] = node.online
    arrays.is_edge[at] = node.role == "edge"
    arrays.is_cloud[at] = node.role == "cloud"
    arrays.secure[at] = node.security
    if node.group and node.group not in arrays.group_codes:
        arrays.group_codes[node.group] = len(arrays.group_codes)
    arrays.group[at] = arrays.group_codes.get(node.group, -1)
    arrays.free_cpu[at] = node.free_cpu_cores
    arrays.free_memory[at] = node.free_memory_mib
    arrays.free_storage[at] = node.free_storage_mib
    arrays.neg_headroom[at] = -node.headroom
    for task_type in node.capability:
        if task_type not in arrays.power:
            arrays.power[task_type] = np.full(len(arrays.names), math.inf)
    for task_type, power in arrays.power.items():
        value = node.effective_ms(task_type)
        power[at] = math.inf if value is None else value


def _arrays(crmap: CRMap) -> _Arrays:
    found: _Arrays | None = crmap.cache("index")
    changed = crmap.take_changed()
    if found is None:
        return crmap.store("index", _build(crmap))  # type: ignore[no-any-return]
    if changed:
        crmap.store("index-types", None)
    if len(changed) > REBUILD_SHARE * len(found.names):  # most nodes changed: build anew
        return crmap.store("index", _build(crmap))  # type: ignore[no-any-return]
    for name in changed:
        _patch(found, crmap.nodes[name])
    return found


def task_types(crmap: CRMap) -> frozenset[str]:
    """Every task Type some node of the map has a Capability for (kept until a node changes)."""
    arrays = _arrays(crmap)
    found: frozenset[str] | None = crmap.cache("index-types")
    if found is None:
        found = crmap.store("index-types", frozenset(
            t for t, power in arrays.power.items() if np.isfinite(power).any()))
    return found


def _best(candidates: _Ints, keys: list[_Floats]) -> int:
    """The candidate smallest by ``keys`` in order, then by name (= position)."""
    for key in keys:
        if candidates.size == 1:
            break
        values = key[candidates]
        candidates = candidates[values == values.min()]
    return int(candidates[0])


def select(crmap: CRMap, task: Task, from_node: str, rule: str) -> Selection:
    """The same answer as ``select._explained`` without the rejections."""
    arrays = _arrays(crmap)
    latency = latency_row(crmap, from_node)
    power = arrays.power.get(task.type)
    if power is None:
        return Selection(None, rule, "none")
    demand = task.demand
    capable = (arrays.online & np.isfinite(latency) & np.isfinite(power)
               & (arrays.free_cpu >= demand.cpu_cores)
               & (arrays.free_memory >= demand.memory_mib)
               & (arrays.free_storage >= demand.storage_mib))
    if task.sensitive:
        capable &= arrays.secure
    if rule != "sensitive":
        edges = capable & arrays.is_edge
        code = arrays.group_codes.get(crmap.nodes[from_node].group, -2)
        own = arrays.group == code
        keys = ([arrays.neg_headroom, power, latency] if rule == "neither"
                else [latency, power])
        for level, mask in (("group", edges & own), ("other-group", edges & ~own)):
            found = np.flatnonzero(mask)
            if found.size:
                best = _best(found, keys)
                return Selection(arrays.names[best], rule, level, float(latency[best]))
    found = np.flatnonzero(capable & arrays.is_cloud)
    if found.size:
        best = _best(found, [latency, power])
        return Selection(arrays.names[best], rule, "cloud", float(latency[best]))
    return Selection(None, rule, "none")
