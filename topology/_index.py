"""Vectorised selection: per-map-version arrays and per-requester latencies, built once.

The latencies are :func:`.graph.latency_row`'s rows (one per requester, kept by the routing).

The values in the arrays are the very floats :mod:`.select`'s reference path computes through
``Node`` properties, so both paths compare the same numbers and agree exactly.

What does not depend on the requester is kept per task signature (Type, Sensitive, Demand): the
nodes that fit it (:class:`_Fit`), and their positions per requester group. A repeated query then
costs the pick among those positions (a few array operations) and no mask over every node.
Replacing a few records patches the fits node by node; many at once drop them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from .graph import latency_row
from .model import CRMap, Node, Selection, Task

__all__ = ["select", "task_types"]

_Floats = npt.NDArray[np.float64]
_Bools = npt.NDArray[np.bool_]
_Ints = npt.NDArray[np.intp]
_Signature = tuple[str, bool, float, float, float]  # Type, Sensitive, Demand CPU, Memory, Storage


@dataclass
class _Fit:
    """The nodes that could run one task signature, whoever asks (reachability aside)."""
    edges: _Bools
    clouds: _Bools
    groups: dict[int, tuple[_Ints, _Ints]] = field(default_factory=dict)  # code -> in, out
    cloud_positions: _Ints | None = None


@dataclass
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
    fits: dict[_Signature, _Fit] = field(default_factory=dict)
    reach: dict[str, bool] = field(default_factory=dict)  # requester -> reaches every node
    types: frozenset[str] | None = None


# Past this many (changed node, kept fit) pairs, dropping the fits and computing each again at
# its next query is cheaper than patching them one node at a time (~1 us a pair).
PATCH_FITS_LIMIT = 64
# A map sees few task signatures; past this many the oldest are forgotten.
MAX_FITS = 64


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
    for signature, fit in arrays.fits.items():
        fits = _fits_at(arrays, signature, at)
        fit.edges[at] = fits and arrays.is_edge[at]
        fit.clouds[at] = fits and arrays.is_cloud[at]
        fit.groups.clear()
        fit.cloud_positions = None


def _arrays(crmap: CRMap) -> _Arrays:
    found: _Arrays | None = crmap.cache("index")
    changed = crmap.take_changed()
    if found is None:
        return crmap.store("index", _build(crmap))  # type: ignore[no-any-return]
    if not changed:
        return found
    if len(changed) > REBUILD_SHARE * len(found.names):  # most nodes changed: build anew
        return crmap.store("index", _build(crmap))  # type: ignore[no-any-return]
    found.types = None
    if len(changed) * len(found.fits) > PATCH_FITS_LIMIT:
        found.fits.clear()
    for name in changed:
        _patch(found, crmap.nodes[name])
    return found


def task_types(crmap: CRMap) -> frozenset[str]:
    """Every task Type some node of the map has a Capability for (kept until a node changes)."""
    return _types(_arrays(crmap))


def _types(arrays: _Arrays) -> frozenset[str]:
    if arrays.types is None:
        arrays.types = frozenset(
            t for t, power in arrays.power.items() if np.isfinite(power).any())
    return arrays.types


def _fits_at(arrays: _Arrays, signature: _Signature, at: int) -> bool:
    """Whether node ``at`` fits ``signature``: :func:`_fit`'s test for one node."""
    task_type, sensitive, cpu, memory, storage = signature
    return bool(arrays.online[at] and math.isfinite(arrays.power[task_type][at])
                and arrays.free_cpu[at] >= cpu and arrays.free_memory[at] >= memory
                and arrays.free_storage[at] >= storage and (arrays.secure[at] or not sensitive))


def _fit(arrays: _Arrays, task: Task, power: _Floats) -> _Fit:
    demand = task.demand
    signature = (task.type, task.sensitive, demand.cpu_cores, demand.memory_mib,
                 demand.storage_mib)
    found = arrays.fits.get(signature)
    if found is None:
        fits = (arrays.online & np.isfinite(power)
                & (arrays.free_cpu >= demand.cpu_cores)
                & (arrays.free_memory >= demand.memory_mib)
                & (arrays.free_storage >= demand.storage_mib))
        if task.sensitive:
            fits &= arrays.secure
        if len(arrays.fits) >= MAX_FITS:
            del arrays.fits[next(iter(arrays.fits))]
        found = arrays.fits[signature] = _Fit(fits & arrays.is_edge, fits & arrays.is_cloud)
    return found


def _edges(arrays: _Arrays, fit: _Fit, code: int) -> tuple[_Ints, _Ints]:
    """Positions of the fitting edges in group ``code`` and in the other groups."""
    found = fit.groups.get(code)
    if found is None:
        own = arrays.group == code
        found = fit.groups[code] = (np.flatnonzero(fit.edges & own),
                                    np.flatnonzero(fit.edges & ~own))
    return found


def _reachable(found: _Ints, latency: _Floats, everywhere: bool) -> _Ints:
    return found if everywhere else found[np.isfinite(latency[found])]


def _best(candidates: _Ints, keys: list[_Floats]) -> int:
    """The candidate smallest by ``keys`` in order, then by name (= position)."""
    for key in keys:
        if candidates.size == 1:
            break
        values = key[candidates]
        candidates = candidates[values == values.min()]
    return int(candidates[0])


def select(crmap: CRMap, task: Task, from_node: str, rule: str) -> Selection | None:
    """The same answer as ``select._explained`` without the rejections; None when no node has a
    Capability for the task's Type (``select.check_task`` names that problem)."""
    arrays = _arrays(crmap)
    if task.type not in _types(arrays):
        return None
    power = arrays.power[task.type]
    latency = latency_row(crmap, from_node)
    everywhere = arrays.reach.get(from_node)
    if everywhere is None:
        everywhere = arrays.reach[from_node] = bool(np.isfinite(latency).all())
    fit = _fit(arrays, task, power)
    if rule != "sensitive":
        code = arrays.group_codes.get(crmap.nodes[from_node].group, -2)
        keys = ([arrays.neg_headroom, power, latency] if rule == "neither"
                else [latency, power])
        for level, found in zip(("group", "other-group"), _edges(arrays, fit, code),
                                strict=True):
            found = _reachable(found, latency, everywhere)
            if found.size:
                best = _best(found, keys)
                return Selection(arrays.names[best], rule, level, float(latency[best]))
    if fit.cloud_positions is None:
        fit.cloud_positions = np.flatnonzero(fit.clouds)
    found = _reachable(fit.cloud_positions, latency, everywhere)
    if found.size:
        best = _best(found, [latency, power])
        return Selection(arrays.names[best], rule, "cloud", float(latency[best]))
    return Selection(None, rule, "none")
