"""Merging what nodes measure into group maps, and group maps into the cloud map.

A member sends a :class:`NodeReport` (its node record and the links it measured) every
``interval`` seconds to its group's center, which merges it with :func:`merge_report`; the cloud
merges each group's map with :func:`merge_map`. Newer records win (by ``Node.updated``, the time
the report was measured; a hand-written record without one is older than any report). A node
whose latest record is more than ``missed`` intervals old is marked offline.

Links go into a map only when both ends are in it; the other end's own report brings the link
when that node arrives.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Final

from .model import CRMap, Edge, Node

__all__ = ["DEFAULT_INTERVAL_S", "DEFAULT_MISSED", "NodeReport", "expire", "merge_map",
           "merge_report"]

DEFAULT_INTERVAL_S: Final = 2.0
DEFAULT_MISSED: Final = 3


@dataclass(frozen=True, slots=True)
class NodeReport:
    """One node's record and its measured links, measured at ``time`` (Unix seconds)."""

    node: Node
    time: float
    links: tuple[Edge, ...] = ()


def _newer(incoming: Node, current: Node | None) -> bool:
    if current is None:
        return True
    if incoming.updated is None:
        return False
    return current.updated is None or incoming.updated > current.updated


def _put_edges(crmap: CRMap, edges: Iterable[Edge]) -> int:
    """Add or replace links (by their pair) whose two ends are in the map; no invalidation."""
    index = {edge.pair: i for i, edge in enumerate(crmap.edges)}
    count = 0
    for edge in edges:
        if edge.start_node not in crmap.nodes or edge.end_node not in crmap.nodes:
            continue
        at = index.get(edge.pair)
        if at is None:
            index[edge.pair] = len(crmap.edges)
            crmap.edges.append(edge)
        elif crmap.edges[at] != edge:
            crmap.edges[at] = edge
        else:
            continue
        count += 1
    return count


def expire(crmap: CRMap, now: float, *, interval: float = DEFAULT_INTERVAL_S,
           missed: int = DEFAULT_MISSED) -> list[str]:
    """Mark offline every node whose record is more than ``missed`` intervals old.

    Returns the names newly marked offline. Records without a time never expire.
    """
    limit = now - missed * interval
    gone = [name for name, node in crmap.nodes.items()
            if node.online and node.updated is not None and node.updated < limit]
    for name in gone:
        crmap.put_node(replace(crmap.nodes[name], online=False))
    return sorted(gone)


def merge_report(group_map: CRMap, report: NodeReport, now: float, *,
                 interval: float = DEFAULT_INTERVAL_S, missed: int = DEFAULT_MISSED) -> bool:
    """Merge one node's report into its group map; then expire silent nodes.

    Returns False (and changes nothing but expiry) when the map already holds a record of that
    node at least as new as the report.
    """
    node = replace(report.node, updated=report.time, online=True)
    applied = _newer(node, group_map.nodes.get(node.name))
    if applied:
        group_map.put_node(node)
        own = [e for e in report.links if node.name in (e.start_node, e.end_node)]
        if _put_edges(group_map, own):
            group_map.invalidate()
    expire(group_map, now, interval=interval, missed=missed)
    return applied


def merge_map(cloud_map: CRMap, group_map: CRMap, now: float, *,
              interval: float = DEFAULT_INTERVAL_S, missed: int = DEFAULT_MISSED) -> list[str]:
    """Merge a group's map into the cloud map; newer node records win; then expire.

    Links are taken from the group map when one of their ends won. Returns the names of the
    nodes whose record came from ``group_map``.
    """
    won = [name for name, node in group_map.nodes.items()
           if _newer(node, cloud_map.nodes.get(name))]
    for name in won:
        cloud_map.put_node(group_map.nodes[name])
    chosen = set(won)
    if _put_edges(cloud_map, (e for e in group_map.edges
                              if e.start_node in chosen or e.end_node in chosen)):
        cloud_map.invalidate()
    expire(cloud_map, now, interval=interval, missed=missed)
    return sorted(won)
