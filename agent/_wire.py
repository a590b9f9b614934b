"""What agents send each other: node reports and group summaries, with the CR-map's field names.

A report (``POST /v1/report``) is JSON (or YAML) ``{"Node": {...}, "Links": [...], "Agent":
HOST:PORT}``: one node record exactly as in a CR-map file, the links it measured (one end is the
reporter) and where its agent serves the atomic tasks. A summary (``POST /v1/summary``,
center -> cloud) is ``{"Group": NAME, "Center": NODE, "Agent": HOST:PORT, "nodes": [...],
"edges": [...]}``. Node records are validated by ``freeoffload.topology``'s own loader, so a
report accepts exactly what a CR-map file does; errors name the body's line and column.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import re
from collections.abc import Iterable
from typing import Any

from freeoffload.topology import CRMap, Edge, Node

from freeoffload.errors import ConfigError, Location, Problem, TopologyError
from freeoffload.yamlfile import LocList, LocMap, load_yaml_text

from ._schema import Checker

__all__ = ["ReportError", "edge_record", "map_document", "node_record", "parse_map_text",
           "parse_report",
           "parse_summary", "report_body", "report_body_of", "summary_body"]


class ReportError(Exception):
    """A refused report or summary: HTTP ``status`` and one clear ``message``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _parse_topology(data: Any, source: str) -> Any:
    from freeoffload.topology.loader import parse_topology

    return parse_topology(data, source)


def _loc_map(items: dict[str, Any], loc: Location) -> LocMap:
    out = LocMap(items)
    out.loc, out.key_locs, out.value_locs = loc, {}, {}
    return out


def _loc_list(items: list[Any], loc: Location) -> LocList:
    out = LocList(items)
    out.loc, out.item_locs = loc, [getattr(i, "loc", loc) for i in items]
    return out


def _load(body: bytes, source: str) -> LocMap:
    if not body.strip():
        raise ReportError(400, f"{source}: empty body; expected a JSON object")
    try:
        data = load_yaml_text(body, source)
    except ConfigError as err:
        raise ReportError(400, str(err)) from err
    if not isinstance(data, LocMap):
        raise ReportError(400, f"{source}: expected a JSON object, got {type(data).__name__}")
    return data


def _nodes(items: Any, source: str, loc: Location, single: bool = False) -> dict[str, Node]:
    """Validate node records with the CR-map loader (a report need not hold a cloud node);
    ``single``: the one record of a report, named ``Node`` in errors."""
    if not isinstance(items, LocList):
        raise ReportError(400, f"{loc}: nodes: expected a list of node records")
    wrapper = _loc_map({"nodes": _loc_list([*items, _stub_cloud()], items.loc)}, loc)
    wrapper.value_locs["nodes"] = items.loc
    try:
        crmap = _parse_topology(wrapper, source)
    except TopologyError as err:
        problems = err.problems
        if single:
            problems = tuple(dataclasses.replace(p, field=_NODES_PATH.sub("Node", p.field))
                             for p in problems)
        raise ReportError(400, "\n".join(str(p) for p in problems)) from err
    crmap.nodes.pop(_STUB_NAME, None)
    return dict(crmap.nodes)


_STUB_NAME = "~agent-stub-cloud"
_NODES_PATH = re.compile(r"^nodes\[[^\]]*\]")


@functools.cache
def _stub_cloud() -> LocMap:
    """A cloud node that makes a lone record a valid map for the loader; removed afterwards."""
    stub: LocMap = load_yaml_text(json.dumps({
        "Name": _STUB_NAME, "Role": "cloud", "Address": "127.0.0.1:1",
        "ComputingPower": {"CPU": {"cores": 1}, "Memory": 1, "Storage": 1}}), "<stub>")
    return stub


def _located(value: Any, loc: Location) -> Any:
    """Plain JSON data as LocMap/LocList that all stand at ``loc`` (the fast path)."""
    if isinstance(value, dict):
        out = LocMap((k, _located(v, loc)) for k, v in value.items())
        out.loc, out.key_locs, out.value_locs = loc, {}, {}
        return out
    if isinstance(value, list):
        items = LocList(_located(v, loc) for v in value)
        items.loc, items.item_locs = loc, []
        return items
    return value


def _fast_load(body: bytes, source: str) -> LocMap | None:
    """JSON parsed without positions; None when it is not a JSON object."""
    try:
        data = json.loads(body)
    except ValueError:
        return None
    return _located(data, Location(source)) if isinstance(data, dict) else None


def _edges(items: Any, loc: Location, source: str, problems: list[Problem]) -> list[Edge]:
    if not isinstance(items, LocList):
        problems.append(Problem(loc, "Links", f"expected a list of links, got {items!r}"))
        return []
    out = []
    for index, item in enumerate(items):
        if not isinstance(item, LocMap):
            problems.append(Problem(items.item_loc(index), f"Links[{index}]",
                                    f"expected a mapping, got {item!r}"))
            continue
        chk = Checker(item, source, f"Links[{index}].")
        start = chk.string("StartNode", "", required=True)
        end = chk.string("EndNode", "", required=True)
        bandwidth, latency = _link_numbers(chk)
        if start and start == end:
            chk.problem("EndNode", f"a link from {start!r} to itself")
        problems.extend(chk.finish())
        if start and end and start != end:
            out.append(Edge(start, end, bandwidth, latency))
    return out


def _link_numbers(chk: Checker) -> tuple[float, float]:
    """A link's BandWidth (above 0) and Latency (0 or more), both required: a CR-map's edge
    needs them so (``topology.loader``), and the map an agent serves must load."""
    for key in ("BandWidth", "Latency"):
        if chk.data.get(key) is None:
            chk.problem(key, "missing", "a link gives BandWidth (Mbit/s, above 0) and "
                                        "Latency (ms)")
    before = len(chk.problems)
    bandwidth = chk.number("BandWidth", 0.0, low=0)
    if bandwidth == 0 and len(chk.problems) == before and "BandWidth" in chk.data:
        chk.problem("BandWidth", "must be above 0, got 0", "a link carries some bandwidth")
    return bandwidth, chk.number("Latency", 0.0, low=0)


def parse_report(body: bytes, source: str) -> tuple[Node, list[Edge]]:
    """Validate a report completely; raises ReportError (400) naming every problem.

    Valid JSON takes a fast path without positions; anything refused is parsed again with
    positions so the error names the body's line and column.
    """
    fast = _fast_load(body, source)
    if fast is not None:
        try:
            return _parse_report(fast, source)
        except ReportError:
            pass
    return _parse_report(_load(body, source), source)


def _parse_report(data: LocMap, source: str) -> tuple[Node, list[Edge]]:
    unknown = sorted(set(map(str, data)) - {"Node", "Links", "Agent"})
    if unknown or "Node" not in data:
        what = f"unknown field {unknown[0]!r}" if unknown else "missing field 'Node'"
        raise ReportError(400, f"{data.loc}: {what}; a report has 'Node', 'Links' and "
                               "'Agent'")
    agent_problems = Checker(data, source)
    agent_problems.address("Agent")
    node_data = data["Node"]
    if not isinstance(node_data, LocMap):
        raise ReportError(400, f"{data.value_loc('Node')}: Node: expected a node record")
    nodes = _nodes(_loc_list([node_data], data.value_loc("Node")), source, data.loc,
                   single=True)
    if len(nodes) != 1:
        raise ReportError(400, f"{data.value_loc('Node')}: Node: {_STUB_NAME!r} is reserved")
    node = next(iter(nodes.values()))
    problems: list[Problem] = agent_problems.problems
    links = _edges(data.get("Links", _loc_list([], data.loc)), data.value_loc("Links"),
                   source, problems)
    for edge in links:
        if node.name not in edge.pair:
            problems.append(Problem(data.value_loc("Links"), "Links",
                                    f"link {edge.start_node}-{edge.end_node} does not touch "
                                    f"the reporting node {node.name!r}"))
    if problems:
        raise ReportError(400, "\n".join(str(p) for p in problems))
    return node, links


def parse_summary(body: bytes, source: str) -> tuple[str, str, list[Node], list[Edge]]:
    """Validate a group summary; raises ReportError (400) naming every problem."""
    data = _load(body, source)
    chk = Checker(data, source)
    group = chk.string("Group", "", required=True)
    center = chk.string("Center", "", required=True)
    chk.address("Agent")
    items = data.get("nodes", _loc_list([], data.loc))
    chk._seen.update({"nodes", "edges"})
    problems = chk.finish()
    if not isinstance(items, LocList):
        problems.append(Problem(data.value_loc("nodes"), "nodes", "expected a list of nodes"))
    edges = _edges(data.get("edges", _loc_list([], data.loc)), data.value_loc("edges"),
                   source, problems)
    if problems:
        raise ReportError(400, "\n".join(str(p) for p in problems))
    nodes = _nodes(items, source, data.loc) if items else {}
    return group, center, list(nodes.values()), edges


def parse_map_text(text: str, source: str) -> CRMap:
    """An agent's ``/v1/topology`` YAML as a CRMap. A group's map need not hold a cloud node
    (a center that has not heard from the cloud), unlike a CR-map file."""
    from freeoffload.topology.loader import parse_topology

    data = load_yaml_text(text, source, TopologyError)
    nodes = data.get("nodes") if isinstance(data, LocMap) else None
    if not isinstance(nodes, LocList) or any(
            isinstance(n, dict) and n.get("Role") == "cloud" for n in nodes):
        return parse_topology(data, source)
    data["nodes"] = _loc_list([*nodes, _stub_cloud()], nodes.loc)
    crmap = parse_topology(data, source)
    crmap.remove_node(_STUB_NAME)
    return crmap


def node_record(node: Node) -> dict[str, Any]:
    """A node as a CR-map file writes it (the paper's field names)."""
    power = node.computing_power
    record: dict[str, Any] = {"Name": node.name, "Role": node.role}
    if node.group:
        record["Group"] = node.group
    if node.address:
        record["Address"] = node.address
    if node.role != "device" or power.cpu.cores:
        cpu: dict[str, float] = {"cores": power.cpu.cores}
        if power.cpu.mhz:
            cpu["MHz"] = power.cpu.mhz
        record["ComputingPower"] = {"CPU": cpu, "Memory": power.memory_mib,
                                    "Storage": power.storage_gib}
    record["Security"] = node.security
    res = node.resource
    record["Resource"] = {"cpu_percent": round(res.cpu_percent, 2),
                          "memory_used": round(res.memory_used_mib, 1),
                          "storage_used": round(res.storage_used_gib, 3),
                          "running_tasks": res.running_tasks}
    if node.capability:
        record["Capability"] = {k: round(v, 3) for k, v in sorted(node.capability.items())}
    record["Online"] = node.online
    if node.updated is not None:
        record["Updated"] = round(node.updated, 3)
    return record


def edge_record(edge: Edge) -> dict[str, Any]:
    return {"StartNode": edge.start_node, "EndNode": edge.end_node,
            "BandWidth": round(edge.bandwidth_mbit, 3), "Latency": round(edge.latency_ms, 3)}


def report_body(node: Node, links: Iterable[Edge], agent: str = "") -> bytes:
    """A report; ``agent`` is the reporting agent's host:port (where its atomic tasks are
    served, when the node's ``Address`` names another service)."""
    doc: dict[str, Any] = {"Node": node_record(node), "Links": [edge_record(e) for e in links]}
    if agent:
        doc["Agent"] = agent
    return json.dumps(doc).encode()


def report_body_of(record: dict[str, Any], links: list[dict[str, Any]]) -> bytes:
    return json.dumps({"Node": record, "Links": links}).encode()


def map_document(nodes: Iterable[Node], edges: Iterable[Edge]) -> dict[str, Any]:
    return {"nodes": [node_record(n) for n in nodes], "edges": [edge_record(e) for e in edges]}


def summary_body(group: str, center: str, nodes: Iterable[Node], edges: Iterable[Edge],
                 agent: str = "") -> bytes:
    doc = {"Group": group, "Center": center, **map_document(nodes, edges)}
    if agent:
        doc["Agent"] = agent
    return json.dumps(doc).encode()
