"""What an agent knows: node records and links merged from reports, with liveness.

A center holds its group's members; the cloud holds every group (merged from group summaries).
Reports are validated completely before anything changes (:class:`ReportError` otherwise); newer
reports win (a node's ``Updated`` time); a node not heard from for ``offline_after`` report
intervals is marked offline but its record is kept. Selections read one live :class:`CRMap`:
a known node's new record replaces it in place (``CRMap.put_node`` keeps the routing and
patches the selection index), while link changes are applied at most every ``snapshot_age``
seconds, and only when a latency moved by more than :data:`LINK_SLACK` (10%, at least 0.1 ms),
so that measurement noise does not make every query recompute shortest paths.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from freeoffload.topology import CRMap, Edge, Node
from freeoffload.topology.graph import set_links

from ._delta import DeltaCache
from ._wire import ReportError, parse_report, parse_summary

__all__ = ["LINK_SLACK", "ReportError", "Store", "Sweep"]

LINK_SLACK = (0.10, 0.1)  # relative, absolute (ms): smaller latency changes are not applied


def _impostor(what: str, name: str, names: frozenset[str]) -> ReportError:
    held = ", ".join(repr(n) for n in sorted(names)) or "no name"
    return ReportError(403, f"{what} {name!r} sent with a certificate for {held}; a peer "
                            "speaks only for the node its certificate names (CN or DNS SAN)")


def _moved(old: Edge | None, new: Edge) -> bool:
    if old is None:
        return True
    slack = max(LINK_SLACK[0] * old.latency_ms, LINK_SLACK[1])
    return abs(new.latency_ms - old.latency_ms) > slack or \
        abs(new.bandwidth_mbit - old.bandwidth_mbit) > LINK_SLACK[0] * old.bandwidth_mbit


@dataclass
class _Entry:
    node: Node
    seen: float  # monotonic time of the last report (or summary) that carried it
    via: str  # "report" (from the node itself) or the group whose summary carried it


@dataclass(frozen=True)
class Sweep:
    offline: list[str]
    online: int


class Store:
    """Node records and links of one agent's view, keyed by name and by node pair."""

    def __init__(self, offline_after_s: float, snapshot_age: float = 0.25,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.offline_after_s = offline_after_s
        self.snapshot_age = snapshot_age
        self.clock = clock
        self.entries: dict[str, _Entry] = {}
        self.links: dict[tuple[str, str], Edge] = {}
        self.measured: dict[str, dict[str, float]] = {}  # prober: name -> Type -> ms
        self.delta = DeltaCache()
        self.agents: dict[str, str] = {}  # center name -> its agent address (summaries)
        self.centers: dict[str, str] = {}  # group -> its center's node name (the cloud's view)
        self.version = 0
        self.live = CRMap(source="<agent>")
        self._links_dirty = False
        self._links_time = -math.inf

    # -- ingest -----------------------------------------------------------------------------
    def apply_report(self, body: bytes, source: str, group: str | None,
                     via: str = "report", names: frozenset[str] | None = None
                     ) -> tuple[Node, bool]:
        """Merge one node report; (the node, whether it was newer than what we had).

        ``group`` is the authenticated sender's group: a report for a node of another group is
        refused; ``names`` (with mTLS) what the sender's certificate names: a report for any
        other node is refused. Raises ReportError (nothing changed) for anything invalid.
        """
        fast = self.delta.parse(body)
        if fast is not None:
            node, links = fast
        else:
            node, links = parse_report(body, source)
            self.delta.remember(body, node)
        if group is not None and node.group and node.group != group:
            raise ReportError(403, f"report for node {node.name!r} of group {node.group!r} "
                                   f"sent with the token of group {group!r}")
        if names is not None and node.name not in names:
            raise _impostor("report for node", node.name, names)
        return node, self._merge(node, links, via)

    def apply_summary(self, body: bytes, source: str, group: str | None,
                      names: frozenset[str] | None = None) -> int:
        """Merge a group summary (a center's map); returns how many nodes were newer.
        ``group``/``names``: the sender's, as for :meth:`apply_report` (names the center)."""
        summary_group, center, nodes, links = parse_summary(body, source)
        if names is not None and center not in names:
            raise _impostor("summary from center", center, names)
        if group is not None and summary_group != group:
            raise ReportError(403, f"summary of group {summary_group!r} sent with the token "
                                   f"of group {group!r}")
        agent = json.loads(body).get("Agent", "") if body.lstrip().startswith(b"{") else ""
        if agent:
            self.agents[center] = str(agent)
        self.centers[summary_group] = center
        changed = 0
        for node in nodes:
            mine = [e for e in links if node.name in e.pair]
            changed += self._merge(node, mine, summary_group)
        return changed

    def _merge(self, node: Node, links: Iterable[Edge], via: str) -> bool:
        """O(1) in the size of the view: the entry is updated in place, the live map's record
        replaced (its indexes patch that one node when next read), links only noted."""
        now = self.clock()
        old = self.entries.get(node.name)
        if old is not None and old.node.updated is not None and node.updated is not None \
                and node.updated < old.node.updated:
            return False  # an older report arriving late: newer wins
        if via != "report" and old is not None and old.via == "report":
            via = "report"  # our own member: a summary does not take it over
        if via == "report" and not node.online:
            node = dataclasses.replace(node, online=True)
        measured = self.measured.get(node.name)
        if measured:
            node = dataclasses.replace(node, capability={**node.capability, **measured})
        if old is None:
            self.entries[node.name] = _Entry(node, now, via)
        else:
            old.node, old.seen, old.via = node, now, via
        self.live.put_node(node)
        for edge in links:
            self._put_link(edge)
        self.version += 1
        return True

    def _put_link(self, edge: Edge) -> None:
        a, b = edge.start_node, edge.end_node
        pair = (a, b) if a <= b else (b, a)
        if _moved(self.links.get(pair), edge):
            self.links[pair] = edge
            self._links_dirty = True

    def record_probe(self, name: str, task_type: str, processing_ms: float,
                     link: Edge | None) -> None:
        """The prober's measurement: ``name``'s Capability for ``task_type`` and its link."""
        self.measured.setdefault(name, {})[task_type] = processing_ms
        entry = self.entries.get(name)
        if entry is not None:
            entry.node = dataclasses.replace(
                entry.node, capability={**entry.node.capability, task_type: processing_ms})
            self.live.put_node(entry.node)
        if link is not None:
            self._put_link(link)
        self.version += 1

    # -- liveness ---------------------------------------------------------------------------
    def sweep(self) -> Sweep:
        """Mark offline every node silent for ``offline_after_s``; list the newly offline."""
        now = self.clock()
        newly = []
        for name, entry in self.entries.items():
            if entry.node.online and now - entry.seen > self.offline_after_s:
                entry.node = dataclasses.replace(entry.node, online=False)
                self.live.put_node(entry.node)
                newly.append(name)
        if newly:
            self.version += 1
        online = sum(1 for e in self.entries.values() if e.node.online)
        return Sweep(newly, online)

    def put_local(self, node: Node, links: Iterable[Edge] = ()) -> None:
        """Record this agent's own node (it is always fresh)."""
        self._merge(dataclasses.replace(node, online=True), links, "report")

    # -- views ------------------------------------------------------------------------------
    def agent_address(self, name: str) -> str:
        """Where ``name``'s agent (and its atomic tasks) answers: what its reports said, else
        its Address."""
        found = self.delta.agent(name) or self.agents.get(name, "")
        if found:
            return found
        entry = self.entries.get(name)
        return entry.node.address if entry else ""

    def node(self, name: str) -> Node | None:
        entry = self.entries.get(name)
        return entry.node if entry else None

    def age(self, name: str) -> float | None:
        entry = self.entries.get(name)
        return None if entry is None else self.clock() - entry.seen

    def crmap(self, group: str | None = None) -> CRMap:
        """A fresh CR-map of every node (or one group's, plus the clouds) and their links."""
        nodes = {name: e.node for name, e in self.entries.items()
                 if group is None or e.node.group == group or e.node.role == "cloud"}
        edges = [e for e in self.links.values()
                 if e.start_node in nodes and e.end_node in nodes]
        return CRMap(nodes, edges, "<agent>")

    def snapshot(self) -> CRMap:
        """The live view for selection; pending link changes are applied here, at most every
        ``snapshot_age`` seconds (that re-routes, so it is batched). Moved latencies on the
        same links re-weigh the routing and keep the selection index (``set_links``)."""
        now = self.clock()
        if self._links_dirty and now - self._links_time >= self.snapshot_age:
            nodes = self.live.nodes
            set_links(self.live, [e for e in self.links.values()
                                  if e.start_node in nodes and e.end_node in nodes])
            self._links_dirty = False
            self._links_time = now
        return self.live

    def groups(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for name, entry in sorted(self.entries.items()):
            out.setdefault(entry.node.group, []).append(name)
        return out

    def describe(self, name: str) -> dict[str, Any] | None:
        """The JSON answer of ``GET /v1/nodes/{name}``."""
        from ._wire import node_record

        entry = self.entries.get(name)
        if entry is None:
            return None
        record = node_record(entry.node)
        links = [edge_record(e) for e in self.links.values() if name in e.pair]
        return {"node": record, "links": links, "last_report_age_s": round(
            self.clock() - entry.seen, 3), "via": entry.via}


def edge_record(edge: Edge) -> dict[str, Any]:
    return {"StartNode": edge.start_node, "EndNode": edge.end_node,
            "BandWidth": edge.bandwidth_mbit, "Latency": edge.latency_ms}
