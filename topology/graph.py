"""Path latency over the CR-map: shortest paths weighted by ``Latency``.

Routing is computed once per map version (node set and links) into a :class:`_Routes`: the
nodes by index and their neighbours in link order. Latencies from a source are one float64 row
over those indexes, computed once and kept (up to :data:`MAX_SOURCES` rows, 8 bytes a node):

- when the links form a forest (a group's members hang off their center, the centers off the
  cloud) of small depth, every path is unique and a row is a few array additions, level by
  level from the roots, each node's latency being its predecessor's plus the link's: the very
  sum a Dijkstra search forms, so the floats are the same;
- otherwise a Dijkstra search over the plain neighbour lists, in the order networkx's
  ``single_source_dijkstra`` visits them (same heap keys, same tie-breaking counter), so
  distances and the path chosen among equal ones are networkx's.

Public signatures take and return plain data (a distance dict, a list of names).
"""

from __future__ import annotations

import heapq
import itertools
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from freeoffload.errors import Location, Problem, TopologyError

from .model import CRMap, Edge

__all__ = ["distances_from", "path_latency", "shortest_path"]

MAX_SOURCES: Final = 4096  # latency rows kept per map version
MAX_DICTS: Final = 64  # distance dicts kept per map version (rows are what queries read)
MAX_TREE_DEPTH: Final = 64  # deeper forests are searched with Dijkstra

if TYPE_CHECKING:  # numpy is imported on first use: a member agent never routes
    import numpy as np
    import numpy.typing as npt

    _Floats = npt.NDArray[np.float64]
    _Ints = npt.NDArray[np.intp]


@dataclass
class _Forest:
    """Each node's parent (-1 for a root), its link's latency, and the nodes by depth."""

    parent: list[int]
    depth: list[int]
    up: _Floats
    levels: list[tuple[_Ints, _Ints, _Floats]]  # depth 1, 2, ...: (nodes, parents, latencies)


@dataclass
class _Routes:
    names: list[str]  # sorted(crmap.nodes), then names that only links mention
    position: dict[str, int]
    neighbours: list[list[tuple[int, float]]]
    forest: _Forest | None
    forest_shaped: bool  # no cycle, not too deep (the forest is None for a bad latency)
    rows: dict[int, _Floats] = field(default_factory=dict)
    dicts: dict[int, dict[str, float]] = field(default_factory=dict)


def _routes(crmap: CRMap) -> _Routes:
    found: _Routes | None = crmap.cache("routes")
    if found is None:
        found = crmap.store("routes", _build(crmap))
    return found


def _build(crmap: CRMap) -> _Routes:
    names = sorted(crmap.nodes)
    position = {name: i for i, name in enumerate(names)}
    adjacency: list[dict[int, float]] = [{} for _ in names]
    for edge in crmap.edges:  # a later link between the same two nodes replaces the earlier
        ends = []
        for name in (edge.start_node, edge.end_node):
            at = position.get(name)
            if at is None:
                at = position[name] = len(names)
                names.append(name)
                adjacency.append({})
            ends.append(at)
        a, b = ends
        adjacency[a][b] = edge.latency_ms
        adjacency[b][a] = edge.latency_ms
    neighbours = [list(adj.items()) for adj in adjacency]
    return _Routes(names, position, neighbours, *_forest(adjacency))


def _adjacency(routes: _Routes, edges: list[Edge]) -> list[dict[int, float]]:
    adjacency: list[dict[int, float]] = [{} for _ in routes.names]
    position = routes.position
    for edge in edges:
        a, b = position[edge.start_node], position[edge.end_node]
        adjacency[a][b] = edge.latency_ms
        adjacency[b][a] = edge.latency_ms
    return adjacency


def set_links(crmap: CRMap, edges: list[Edge]) -> None:
    """Give ``crmap`` these links. When they join the same node pairs in the same order as its
    links did (only latencies or bandwidths moved, as between a group's reports), the cached
    routing is re-weighed in place and every other derivation (the selection index) is kept;
    otherwise everything derived is dropped (:meth:`CRMap.invalidate`)."""
    same = len(edges) == len(crmap.edges) and all(
        a.pair == b.pair for a, b in zip(edges, crmap.edges, strict=True))
    routes: _Routes | None = crmap.cache("routes") if same else None
    crmap.edges = edges
    if not same:
        crmap.invalidate()
        return
    if routes is None:
        return  # nothing routed yet; what else is cached does not depend on links
    adjacency = _adjacency(routes, edges)
    forest = routes.forest
    if routes.forest_shaped and forest is None:  # its latencies were unusable, so the
        crmap.store("routes", _build(crmap))     # structure was not kept: route afresh
        return
    routes.neighbours = [list(adj.items()) for adj in adjacency]
    routes.forest = None if forest is None else _weigh(forest, adjacency)  # None: the search
    routes.rows.clear()
    routes.dicts.clear()
    index = crmap.cache("index")
    if index is not None:  # which requesters reach every node: a latency may have become inf
        index.reach.clear()


def _forest(adjacency: list[dict[int, float]]) -> tuple[_Forest | None, bool]:
    """(the breadth-first forest of the links, whether they are forest-shaped): the forest
    when they have no cycle, depth at most :data:`MAX_TREE_DEPTH` and finite non-negative
    latencies; else None."""
    import numpy as np

    count = len(adjacency)
    parent = [-1] * count
    depth = [-1] * count
    by_depth: list[list[int]] = []
    for root in range(count):
        if depth[root] >= 0:
            continue
        depth[root] = 0
        queue = [root]
        for v in queue:
            for u in adjacency[v]:
                if u == v or u == parent[v]:
                    continue
                if depth[u] >= 0:
                    return None, False  # a cycle
                parent[u], depth[u] = v, depth[v] + 1
                if depth[u] > MAX_TREE_DEPTH:
                    return None, False
                while len(by_depth) < depth[u]:
                    by_depth.append([])
                by_depth[depth[u] - 1].append(u)
                queue.append(u)
    levels = [(np.array(nodes, dtype=np.intp),
               np.array([parent[u] for u in nodes], dtype=np.intp), np.zeros(len(nodes)))
              for nodes in by_depth]
    return _weigh(_Forest(parent, depth, np.zeros(count), levels), adjacency), True


def _weigh(forest: _Forest, adjacency: list[dict[int, float]]) -> _Forest | None:
    """``forest`` with its links' latencies taken from ``adjacency`` (None when one is not a
    finite non-negative number: a sum cannot stand for it)."""
    import numpy as np

    up = [0.0] * len(forest.parent)
    for u, p in enumerate(forest.parent):
        if p >= 0:
            latency = adjacency[u][p]
            if not 0.0 <= latency < math.inf:
                return None
            up[u] = latency
    ups = np.array(up, dtype=np.float64)
    levels = [(nodes, parents, ups[nodes]) for nodes, parents, _ in forest.levels]
    return _Forest(forest.parent, forest.depth, ups, levels)


def _forest_row(forest: _Forest, count: int, source: int) -> _Floats:
    """Latencies from ``source`` in a forest: up its root path, then down every level."""
    import numpy as np

    row = np.full(count, math.inf)
    row[source] = 0.0
    chain: dict[int, tuple[int, float]] = {}  # depth -> (ancestor of source, its latency)
    at, total = source, 0.0
    chain[forest.depth[at]] = (at, total)
    while forest.parent[at] >= 0:
        total = total + float(forest.up[at])
        at = forest.parent[at]
        row[at] = total
        chain[forest.depth[at]] = (at, total)
    for depth, (nodes, parents, latencies) in enumerate(forest.levels, start=1):
        row[nodes] = row[parents] + latencies
        kept = chain.get(depth)
        if kept is not None:  # the source's own ancestors are reached from below, not above
            row[kept[0]] = kept[1]
    return row


def _dijkstra(routes: _Routes, source: int, target: int = -1) -> tuple[dict[int, float],
                                                                      dict[int, int]]:
    """networkx's ``_dijkstra_multisource`` for one source, over neighbour lists:
    (distances in the order settled, the predecessor of each reached node)."""
    neighbours = routes.neighbours
    dist: dict[int, float] = {}
    seen: dict[int, float] = {source: 0}
    pred: dict[int, int] = {}
    counter = itertools.count()
    fringe: list[tuple[float, int, int]] = [(0, next(counter), source)]
    while fringe:
        dist_v, _, v = heapq.heappop(fringe)
        if v in dist:
            continue
        dist[v] = dist_v
        if v == target:
            break
        for u, cost in neighbours[v]:
            vu_dist = dist_v + cost
            if u in dist:
                continue
            if u not in seen or vu_dist < seen[u]:
                seen[u] = vu_dist
                heapq.heappush(fringe, (vu_dist, next(counter), u))
                pred[u] = v
    return dist, pred


def _unknown(crmap: CRMap, name: str, field: str) -> TopologyError:
    known = ", ".join(sorted(crmap.nodes)[:20])
    more = ", ..." if len(crmap.nodes) > 20 else ""
    return TopologyError([Problem(Location(crmap.source or "<map>"), field,
                                  f"unknown node '{name}'", f"expected one of: {known}{more}")])


def _row(routes: _Routes, source: str) -> _Floats:
    import numpy as np

    at = routes.position[source]
    row = routes.rows.get(at)
    if row is None:
        if len(routes.rows) >= MAX_SOURCES:
            routes.rows.pop(next(iter(routes.rows)))
        if routes.forest is not None:
            row = _forest_row(routes.forest, len(routes.names), at)
        else:
            dist, _ = _dijkstra(routes, at)
            row = np.full(len(routes.names), math.inf)
            row[list(dist)] = list(dist.values())
            _keep_dict(routes, at, {routes.names[i]: d for i, d in dist.items()})
        routes.rows[at] = row
    return row


def _keep_dict(routes: _Routes, at: int, found: dict[str, float]) -> dict[str, float]:
    if len(routes.dicts) >= MAX_DICTS:
        routes.dicts.pop(next(iter(routes.dicts)))
    routes.dicts[at] = found
    return found


def latency_row(crmap: CRMap, source: str) -> _Floats:
    """Path latency (ms) from ``source`` to each of ``sorted(crmap.nodes)``, ``inf`` where
    unreachable (for the selection index; cached, do not modify)."""
    if source not in crmap.nodes:
        raise _unknown(crmap, source, "from")
    return _row(_routes(crmap), source)[:len(crmap.nodes)]


def distances_from(crmap: CRMap, source: str) -> dict[str, float]:
    """Shortest-path latency (ms) from ``source`` to every node it reaches (cached)."""
    import numpy as np

    if source not in crmap.nodes:
        raise _unknown(crmap, source, "from")
    routes = _routes(crmap)
    at = routes.position[source]
    found = routes.dicts.get(at)
    if found is None:
        row = _row(routes, source)
        found = routes.dicts.get(at)  # a Dijkstra search leaves its dict
        if found is None:
            reached = np.flatnonzero(np.isfinite(row)).tolist()
            values = row[reached].tolist()
            found = {routes.names[i]: d for i, d in zip(reached, values, strict=True)}
            found[source] = 0  # as networkx has it: the int the search starts from
            found = _keep_dict(routes, at, found)
    return found


def path_latency(crmap: CRMap, a: str, b: str) -> float:
    """Latency (ms) of the shortest path from ``a`` to ``b``; ``math.inf`` when unreachable."""
    if b not in crmap.nodes:
        raise _unknown(crmap, b, "to")
    return distances_from(crmap, a).get(b, math.inf)


def shortest_path(crmap: CRMap, a: str, b: str) -> list[str]:
    """The nodes of the lowest-latency path from ``a`` to ``b`` (empty when unreachable)."""
    for name, field_name in ((a, "from"), (b, "to")):
        if name not in crmap.nodes:
            raise _unknown(crmap, name, field_name)
    if a == b:
        return [a]
    routes = _routes(crmap)
    source, target = routes.position[a], routes.position[b]
    dist, pred = _dijkstra(routes, source, target)
    if target not in dist:
        return []
    path = [target]
    while path[-1] != source:
        path.append(pred[path[-1]])
    return [routes.names[i] for i in reversed(path)]
