"""The agent's state and decisions, independent of how it is served.

:class:`Agent` owns the :class:`~.state.Store`, the metrics, the peer client and the answer to
an offload query: in this agent's own view first (its group on a center, everything on the
cloud), then other groups' centers, then the cloud.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from freeoffload.topology import CRMap, Node, Selection, Task, select_target

from freeoffload.errors import AgentError, ConfigError, FreeOffloadError, Location

from ._wire import ReportError, _located
from .auth import auth_headers, client_ssl
from .config import AgentConfig
from .log import event
from .metrics import Metrics
from .peers import Peer
from .state import Store

__all__ = ["Agent", "Answer", "parse_select"]

log = logging.getLogger("freeoffload.agent")
SCOPES = ("any", "group")


@dataclass(frozen=True)
class Answer:
    """A selection plus where it came from: the JSON of ``POST /v1/select``."""

    node: str | None
    address: str
    rule: str
    level: str
    latency_ms: float | None
    answered_by: str
    rejections: tuple[dict[str, str], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"node": self.node, "address": self.address, "rule": self.rule,
                "level": self.level, "latency_ms": self.latency_ms,
                "answered_by": self.answered_by, "rejections": list(self.rejections)}


def parse_select(body: bytes) -> tuple[Task, str, str, bool]:
    """(task, from node, scope, explain) from a query body; ReportError (400) if invalid.

    Devices ask with a few task files over and over: a task already validated (the same JSON,
    as orjson writes it back) is taken from a small cache instead of being read again.
    """
    try:
        doc, cacheable = orjson.loads(body), True
    except orjson.JSONDecodeError:  # json's message, and what json alone accepts (NaN)
        try:
            doc, cacheable = json.loads(body), False
        except ValueError as err:
            raise ReportError(400, f"POST /v1/select: body is not JSON: {err}") from err
    if not isinstance(doc, dict) or not isinstance(doc.get("task"), dict):
        raise ReportError(400, "POST /v1/select: expected {\"task\": {...task file fields...}, "
                               "\"from\": NODE}")
    if not doc.keys() <= _SELECT_FIELDS:
        unknown = sorted(set(doc) - _SELECT_FIELDS)
        raise ReportError(400, f"POST /v1/select: unknown field {unknown[0]!r}; expected task, "
                               "from, scope, explain")
    scope = doc.get("scope", "any")
    if scope not in SCOPES:
        raise ReportError(400, f"POST /v1/select: scope: unknown {scope!r}; expected any, group")
    key = orjson.dumps(doc["task"]) if cacheable else b""
    task = _TASKS.get(key) if key else None
    if task is None:
        task = _parse_task(doc["task"])
        if key:
            if len(_TASKS) >= MAX_TASKS:
                _TASKS.clear()
            _TASKS[key] = task
    return task, str(doc.get("from") or ""), scope, bool(doc.get("explain", False))


MAX_TASKS = 256
_SELECT_FIELDS = frozenset({"task", "from", "scope", "explain"})
_TASKS: dict[bytes, Task] = {}  # validated task JSON -> Task (Tasks are immutable)


def _parse_task(data: dict[str, Any]) -> Task:
    from freeoffload.topology.loader import parse_task

    try:
        return parse_task(_located(data, Location("POST /v1/select task")),
                          "POST /v1/select task")
    except ConfigError as err:
        raise ReportError(400, str(err)) from err


def _task_doc(task: Task) -> dict[str, Any]:
    doc: dict[str, Any] = {"Name": task.name, "Type": task.type, "Sensitive": task.sensitive,
                           "Urgent": task.urgent,
                           "Demand": {"CPU": task.demand.cpu_cores,
                                      "Memory": task.demand.memory_mib,
                                      "Storage": task.demand.storage_mib}}
    if task.service is not None:
        doc["Service"] = {"port": task.service.port, "protocol": task.service.protocol}
    return doc


class Agent:
    """One agent's view and decisions. ``center``/``peers`` change as discovery finds them."""

    def __init__(self, cfg: AgentConfig) -> None:
        self.cfg = cfg
        self.store = Store(offline_after_s=cfg.offline_after * cfg.report_interval,
                           snapshot_age=min(0.25, cfg.report_interval / 4))
        self.metrics = Metrics()
        self._accepted = self.metrics.reports.labels("report", "accepted")  # bound once: hot
        self._stale = self.metrics.reports.labels("report", "stale")
        self._selects: dict[str, Any] = {}  # answer level -> its bound counter
        self.peer = Peer(auth_headers(cfg), client_ssl(cfg))
        self.center = cfg.center if cfg.role == "member" else cfg.address
        self.peers: set[str] = set(cfg.peers)
        self.cloud = cfg.cloud
        self.started = time.time()
        self.observers: list[Callable[[Node], None]] = []  # called with each accepted record
        self.pushes: list[dict[str, Any]] = []  # the trigger's pushes, newest last
        # the centers' refresh pushes (live candidates), newest last
        self.refreshes: collections.deque[dict[str, Any]] = collections.deque(maxlen=500)
        self.others: CRMap | None = None  # other groups, as last learned (see wider_map)
        self.others_from = ""

    # -- other groups -----------------------------------------------------------------------
    async def wider_map(self) -> CRMap:
        """This agent's own view plus what it can learn of the other groups.

        A center's store holds its group (and the cloud's record); the other groups' nodes and
        links come from the cloud's ``/v1/topology`` (the whole map), else from every peer
        center's. Our own records and links win over theirs. When nobody answers, the other
        groups as last learned are used (and the failure logged); the cloud's view is already
        whole.
        """
        own = self.store.crmap(None if self.cfg.role == "cloud" else self.cfg.group)
        if self.cfg.role == "cloud":
            return own
        others = await self._learn_others()
        if others is None:
            return own
        nodes = dict(own.nodes)
        for name, node in others.nodes.items():
            if name not in nodes and node.group != self.cfg.group and node.role != "device":
                nodes[name] = node
        pairs = {e.pair for e in own.edges}
        edges = [*own.edges, *(e for e in others.edges if e.pair not in pairs
                               and e.start_node in nodes and e.end_node in nodes)]
        return CRMap(nodes, edges, "<agent+others>")

    async def _learn_others(self) -> CRMap | None:
        from ._wire import parse_map_text

        sources = [self.cloud] if self.cloud else []
        sources += sorted(self.peers - {self.cfg.address, self.cloud})
        maps: list[tuple[str, CRMap]] = []
        for address in sources:
            try:
                status, body = await self.peer.call("GET", address, "/v1/topology")
                if status != 200:
                    raise AgentError(f"GET {address}/v1/topology: {status}: "
                                     f"{body[:200].decode(errors='replace')}")
                found = await asyncio.to_thread(parse_map_text, body.decode(),
                                                f"{address}/v1/topology")
            except (FreeOffloadError, UnicodeDecodeError) as err:
                event(log, "others.fetch_failed", logging.WARNING, peer=address,
                      error=str(err).splitlines()[0])
                continue
            maps.append((address, found))
            if address == self.cloud:
                break  # the cloud holds every group
        if not maps:
            if self.others is not None:
                event(log, "others.stale", logging.WARNING, source=self.others_from)
            return self.others
        nodes: dict[str, Node] = {}
        edges: dict[tuple[str, str], Any] = {}
        for _, found in maps:
            for name, node in found.nodes.items():
                old = nodes.get(name)
                if old is None or (node.updated or 0.0) > (old.updated or 0.0):
                    nodes[name] = node
            for edge in found.edges:
                edges.setdefault(edge.pair, edge)
        self.others = CRMap(nodes, list(edges.values()), "<others>")
        self.others_from = ", ".join(a for a, _ in maps)
        return self.others

    # -- queries ----------------------------------------------------------------------------
    def select_local(self, crmap: CRMap, task: Task, requester: str, explain: bool) -> Answer:
        if requester not in crmap.nodes:
            requester = self.cfg.node
        try:
            sel = select_target(crmap, task, requester, explain=explain)
        except ConfigError:  # no node here has a Capability for this Type, or no requester
            sel = Selection(None, "", "none")
        node = crmap.nodes.get(sel.node) if sel.node else None
        rejections = tuple({"node": r.node, "reason": r.reason} for r in sel.rejections) \
            if sel.rejections else ()
        return Answer(sel.node, node.address if node else "", sel.rule, sel.level,
                      sel.latency_ms, self.cfg.node, rejections)

    async def select(self, task: Task, requester: str, scope: str = "any",
                     explain: bool = False) -> Answer:
        """Answer a query: this agent's view, then other groups' centers, then the cloud.

        A member passes the query to its center, which sees the whole group.
        """
        if self.cfg.role == "member" and self.center:
            got = await self._query(self.center, task, requester or self.cfg.node, scope)
            if got is not None:  # else the center is unreachable: answer from our own view
                return self._count(self._answer(got, "", self.center))
        crmap = self.store.snapshot()
        local = self.select_local(crmap, task, requester, explain)
        if self.cfg.role == "cloud" or (local.node is not None and local.level == "group"):
            return self._count(local)
        if scope == "group":  # another center asks about this group only
            return self._count(Answer(None, "", local.rule, "none", None, self.cfg.node))
        found = await self._ask_peers(task)
        if found is None and self.cloud:
            found = await self._ask(self.cloud, task, requester, "any", "cloud")
        return self._count(found or local)

    def _count(self, answer: Answer) -> Answer:
        level = answer.level if answer.node else "none"
        counter = self._selects.get(level)
        if counter is None:  # each level's child bound once: labels() costs a lock and a tuple
            counter = self._selects[level] = self.metrics.selects.labels(level)
        counter.inc()
        return answer

    async def _ask_peers(self, task: Task) -> Answer | None:
        peers = sorted(self.peers - {self.cfg.address})
        answers = await asyncio.gather(*(self._ask(p, task, "", "group", "other-group")
                                         for p in peers))
        found = [a for a in answers if a is not None and a.node is not None]
        if not found:
            return None
        return min(found, key=lambda a: (a.latency_ms if a.latency_ms is not None
                                         else float("inf"), a.node or ""))

    async def _query(self, address: str, task: Task, requester: str,
                     scope: str) -> dict[str, Any] | None:
        """Another agent's answer (JSON), or None when it cannot be had."""
        doc = {"task": _task_doc(task), "from": requester, "scope": scope}
        try:
            got = await self.peer.json("POST", address, "/v1/select", doc)
        except AgentError as err:
            event(log, "select.peer_failed", logging.WARNING, peer=address, error=str(err))
            return None
        return got if isinstance(got, dict) else None

    async def _ask(self, address: str, task: Task, requester: str, scope: str,
                   level: str) -> Answer | None:
        got = await self._query(address, task, requester, scope)
        if got is None or not got.get("node"):
            return None
        return self._answer(got, level, address)

    @staticmethod
    def _answer(got: dict[str, Any], level: str, address: str) -> Answer:
        """An Answer from a peer's JSON; ``level`` is where it sits for the asker."""
        if not got.get("node"):
            return Answer(None, "", str(got.get("rule", "")), "none", None,
                          str(got.get("answered_by", address)))
        answered_level = str(got.get("level", level))
        if level == "cloud" and answered_level == "group":
            answered_level = "cloud"  # the cloud found it: not an answer of the asking group
        return Answer(str(got["node"]), str(got.get("address", "")), str(got.get("rule", "")),
                      level if level == "other-group" else answered_level,
                      got.get("latency_ms"), str(got.get("answered_by", address)))

    # -- ingest -----------------------------------------------------------------------------
    def ingest_report(self, body: bytes, group: str | None, peer: str | None,
                      names: frozenset[str] | None = None) -> dict[str, Any]:
        """Merge a member's report; ``group`` is the sender's authenticated group, ``names``
        what its TLS certificate names (None without mTLS). Refusals are counted and logged."""
        try:
            node, newer = self.store.apply_report(body, "POST /v1/report", group, names=names)
        except ReportError as err:
            self.metrics.reports.labels("report", "refused").inc()
            event(log, "report.refused", logging.WARNING, peer=peer, status=err.status,
                  reason=err.message.splitlines()[0])
            raise
        (self._accepted if newer else self._stale).inc()
        if newer:
            for observe in self.observers:
                observe(node)
        return {"accepted": True, "node": node.name, "newer": newer,
                "center": self.cfg.node, "interval": self.cfg.report_interval}

    def ingest_summary(self, body: bytes, group: str | None, peer: str | None,
                       names: frozenset[str] | None = None) -> dict[str, Any]:
        try:
            changed = self.store.apply_summary(body, "POST /v1/summary", group, names)
        except ReportError as err:
            self.metrics.reports.labels("summary", "refused").inc()
            event(log, "summary.refused", logging.WARNING, peer=peer, status=err.status,
                  reason=err.message.splitlines()[0])
            raise
        self.metrics.reports.labels("summary", "accepted").inc()
        return {"accepted": True, "changed": changed, "cloud": self.store.describe(self.cfg.node)}

    def learn_cloud(self, answer: bytes) -> None:
        """Keep the cloud's own record and its links, from its answer to our summary."""
        from ._wire import report_body_of

        try:
            doc = json.loads(answer).get("cloud")
            if not isinstance(doc, dict):
                return
            body = report_body_of(doc["node"], doc.get("links", []))
            self.store.apply_report(body, "cloud's answer", None, via="cloud")
        except (ValueError, KeyError, AttributeError, ReportError) as err:
            event(log, "cloud.record_ignored", logging.WARNING, error=str(err))

    def sweep(self) -> None:
        result = self.store.sweep()
        for name in result.offline:
            event(log, "node.offline", logging.WARNING, node=name,
                  after_s=self.store.offline_after_s)
        self.metrics.nodes.labels("online").set(result.online)
        self.metrics.nodes.labels("offline").set(len(self.store.entries) - result.online)
