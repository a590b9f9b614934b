"""Path latency over the CR-map: shortest paths weighted by ``Latency``.

networkx is used here only; public signatures take and return plain data. Distances from a
source are computed once per map version and kept (up to :data:`MAX_SOURCES` sources).
"""

from __future__ import annotations

import math
from typing import Any, Final

import networkx as nx

from freeoffload.errors import Location, Problem, TopologyError

from .model import CRMap

__all__ = ["distances_from", "path_latency", "shortest_path"]

MAX_SOURCES: Final = 4096


def _graph(crmap: CRMap) -> Any:
    graph = crmap.cache("graph")
    if graph is None:
        graph = nx.Graph()
        graph.add_nodes_from(crmap.nodes)
        for edge in crmap.edges:
            graph.add_edge(edge.start_node, edge.end_node, latency=edge.latency_ms)
        crmap.store("graph", graph)
    return graph


def _unknown(crmap: CRMap, name: str, field: str) -> TopologyError:
    known = ", ".join(sorted(crmap.nodes)[:20])
    more = ", ..." if len(crmap.nodes) > 20 else ""
    return TopologyError([Problem(Location(crmap.source or "<map>"), field,
                                  f"unknown node '{name}'", f"expected one of: {known}{more}")])


def distances_from(crmap: CRMap, source: str) -> dict[str, float]:
    """Shortest-path latency (ms) from ``source`` to every node it reaches (cached)."""
    if source not in crmap.nodes:
        raise _unknown(crmap, source, "from")
    table: dict[str, dict[str, float]] | None = crmap.cache("distances")
    if table is None:
        table = crmap.store("distances", {})
    found = table.get(source)
    if found is None:
        if len(table) >= MAX_SOURCES:
            table.pop(next(iter(table)))
        found = dict(nx.single_source_dijkstra_path_length(_graph(crmap), source,
                                                          weight="latency"))
        table[source] = found
    return found


def path_latency(crmap: CRMap, a: str, b: str) -> float:
    """Latency (ms) of the shortest path from ``a`` to ``b``; ``math.inf`` when unreachable."""
    if b not in crmap.nodes:
        raise _unknown(crmap, b, "to")
    return distances_from(crmap, a).get(b, math.inf)


def shortest_path(crmap: CRMap, a: str, b: str) -> list[str]:
    """The nodes of the lowest-latency path from ``a`` to ``b`` (empty when unreachable)."""
    for name, field in ((a, "from"), (b, "to")):
        if name not in crmap.nodes:
            raise _unknown(crmap, name, field)
    try:
        path: list[str] = nx.dijkstra_path(_graph(crmap), a, b, weight="latency")
    except nx.NetworkXNoPath:
        return []
    return path
