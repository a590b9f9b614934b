"""The agent's HTTP API (aiohttp).

=======================  =====================================================================
``GET /healthz``         liveness and who this agent is (open)
``GET /metrics``         Prometheus text (open)
``GET /v1/topology``     this agent's CR-map as YAML (the file format)
``GET /v1/nodes/{name}`` one node's record, links and last report age (JSON)
``POST /v1/report``      a node report from a member (centers)
``POST /v1/summary``     a group summary from a center (the cloud)
``POST /v1/select``      an offload query: ``{"task": {...}, "from": NODE}``
``POST /v1/tasks/{type}`` run the atomic ``cpu`` or ``io`` task; answers its processing time
``GET /v1/pushes``       the trigger's last pushes to devices and the last refreshes, each
                         with its reason and time
``PUT /v1/group/policy`` a signed policy for every device of the group (``push_to_group``)
=======================  =====================================================================

Every error is JSON ``{"error": "..."}``; refused reports change nothing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import yaml
from aiohttp import web
from aiohttp.typedefs import Middleware

from freeoffload import __version__
from freeoffload.errors import FreeOffloadError

from ._wire import ReportError, map_document
from .auth import GROUP_KEY, PEER_NAMES_KEY, authenticator
from .log import event
from .service import Agent, parse_select
from .tasks import TASK_TYPES, run_task

__all__ = ["AGENT_KEY", "build_app"]

AGENT_KEY = web.AppKey("agent", Agent)
_ROUTES = frozenset({"/v1/topology", "/v1/report", "/v1/summary", "/v1/select", "/v1/pushes",
                     "/v1/group/policy"})
MAX_BODY = 4 * 2**20
log = logging.getLogger("freeoffload.agent.http")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _json(doc: Any, status: int = 200) -> web.Response:
    """A JSON answer written by orjson (``web.json_response`` costs ~3x on the hot paths)."""
    return web.Response(body=orjson.dumps(doc), status=status, content_type="application/json")


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def _guard(authenticate: Callable[[web.Request], web.Response | None]) -> Middleware:
    """Authentication, then the handler with its errors answered as JSON: one middleware, as
    each costs the hot paths a coroutine per request (and aiohttp another once any is set)."""

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        refused = authenticate(request)
        if refused is not None:
            return refused
        try:
            return await handler(request)
        except ReportError as err:
            return _error(err.status, err.message)
        except web.HTTPException as err:
            if err.status < 400:
                raise
            return _error(err.status, f"{request.method} {request.path}: {err.reason}")
        except FreeOffloadError as err:
            event(log, "request.failed", logging.ERROR, path=request.path, error=str(err))
            return _error(502, str(err))

    return guard


def _agent(request: web.Request) -> Agent:
    return request.app[AGENT_KEY]


async def healthz(request: web.Request) -> web.Response:
    agent = _agent(request)
    cfg = agent.cfg
    return web.json_response({"status": "ok", "node": cfg.node, "role": cfg.role,
                              "group": cfg.group, "version": __version__,
                              "center": agent.center, "nodes": len(agent.store.entries),
                              "uptime_s": round(time.time() - agent.started, 1)})


async def metrics(request: web.Request) -> web.Response:
    agent = _agent(request)
    agent.sweep()
    return web.Response(body=agent.metrics.render(),
                        content_type="text/plain", charset="utf-8")


async def topology(request: web.Request) -> web.Response:
    agent = _agent(request)
    agent.sweep()
    crmap = agent.store.crmap()
    doc = map_document(sorted(crmap.nodes.values(), key=lambda n: n.name),
                       sorted(crmap.edges, key=lambda e: e.pair))
    text = yaml.safe_dump(doc, sort_keys=False, default_flow_style=None, width=100)
    return web.Response(text=text, content_type="application/yaml")


async def node(request: web.Request) -> web.Response:
    agent = _agent(request)
    agent.sweep()
    name = request.match_info["name"]
    found = agent.store.describe(name)
    if found is None:
        known = ", ".join(sorted(agent.store.entries)[:20])
        return _error(404, f"unknown node {name!r}; known: {known or 'none yet'}")
    return web.json_response(found)


async def _body(request: web.Request) -> bytes:
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise ReportError(413, f"body of {request.content_length} bytes; at most {MAX_BODY}")
    return await request.read()


def _names(agent: Agent, request: web.Request) -> frozenset[str] | None:
    """What the sender's certificate names (with mTLS; None without: no lookup that fails)."""
    return request.get(PEER_NAMES_KEY) if agent.cfg.tls is not None else None


async def report(request: web.Request) -> web.Response:
    agent = _agent(request)
    if agent.cfg.role == "member":
        raise ReportError(409, f"{agent.cfg.node} is a member; report to its center "
                               f"{agent.center or '(not found yet)'}")
    answer = agent.ingest_report(await _body(request), request.get(GROUP_KEY), request.remote,
                                 _names(agent, request))
    return _json(answer)


async def summary(request: web.Request) -> web.Response:
    agent = _agent(request)
    if agent.cfg.role != "cloud":
        raise ReportError(409, f"{agent.cfg.node} is a {agent.cfg.role}; group summaries go "
                               "to the cloud")
    answer = agent.ingest_summary(await _body(request), request.get(GROUP_KEY), request.remote,
                                  _names(agent, request))
    return web.json_response(answer)


async def select(request: web.Request) -> web.Response:
    agent = _agent(request)
    started = time.perf_counter()
    task, requester, scope, explain = parse_select(await _body(request))
    answer = await agent.select(task, requester, scope, explain)
    agent.metrics.select_seconds.observe(time.perf_counter() - started)
    return _json(answer.to_dict())


async def pushes(request: web.Request) -> web.Response:
    agent = _agent(request)
    refreshes = list(agent.refreshes)[-100:]
    return web.json_response({"pushes": agent.pushes[-100:], "refreshes": refreshes})


async def group_policy(request: web.Request) -> web.Response:
    """Forward a signed policy to every device of this group (each device verifies it)."""
    agent = _agent(request)
    devices = agent.cfg.trigger.devices
    if not devices:
        raise ReportError(409, f"{agent.cfg.node} has no devices (trigger.devices in its "
                               "configuration)")
    body = await _body(request)
    results = []
    for device in devices:
        try:
            status, answer = await agent.peer.call(
                "PUT", device.url, "/v1/policy", body,
                {"Content-Type": "application/octet-stream"})
            text = answer[:500].decode(errors="replace")
        except FreeOffloadError as err:
            status, text = 502, str(err)
        results.append({"device": device.name, "status": status, "answer": text})
        event(log, "push", logging.INFO if status < 400 else logging.ERROR,
              device=device.name, action="policy", reason="policy push --group",
              result="ok" if status < 400 else "failed", status=status)
    return web.json_response({"group": agent.cfg.group, "devices": results})


async def atomic_task(request: web.Request) -> web.Response:
    agent = _agent(request)
    kind = request.match_info["type"]
    if kind not in TASK_TYPES:
        return _error(404, f"unknown task Type {kind!r}; expected one of: "
                           + ", ".join(TASK_TYPES))
    processing_ms = await run_task(kind, agent.cfg.task_kib)
    return web.json_response({"node": agent.cfg.node, "type": kind,
                              "processing_ms": processing_ms})


def build_app(agent: Agent) -> web.Application:
    """The aiohttp application of ``agent`` (auth first, then JSON errors)."""
    refused = agent.metrics.refused

    def count(path: str) -> None:
        refused.labels(path if path in _ROUTES else "other").inc()

    app = web.Application(middlewares=[_guard(authenticator(agent.cfg, count))],
                          client_max_size=MAX_BODY)
    app[AGENT_KEY] = agent
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/v1/topology", topology)
    app.router.add_get("/v1/nodes/{name}", node)
    app.router.add_post("/v1/report", report)
    app.router.add_post("/v1/summary", summary)
    app.router.add_post("/v1/select", select)
    app.router.add_post("/v1/tasks/{type}", atomic_task)
    app.router.add_get("/v1/pushes", pushes)
    app.router.add_put("/v1/group/policy", group_policy)
    return app
