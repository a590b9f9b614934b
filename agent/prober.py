"""The prober: a center times every online member's atomic tasks (the cloud: every center's).

A round every ``prober.interval`` seconds; in between, a node that joined is probed within a
report interval (see :func:`probe_group`).

For each node and task Type it sends ``POST /v1/tasks/{type}``; the node's own processing time
becomes its ``Capability`` for that Type, and the rest of the round trip (the link delay) the
``Latency`` of the link between the center and the node. The center times itself in-process.
"""

from __future__ import annotations

import asyncio
import logging
import time

from freeoffload.topology import Edge, Node

from freeoffload.errors import AgentError

from .auth import auth_headers
from .log import event
from .service import Agent
from .tasks import TASK_TYPES, run_task

__all__ = ["probe_group", "probe_node"]

log = logging.getLogger("freeoffload.agent.prober")
DEFAULT_BANDWIDTH_MBIT = 1000.0


async def probe_node(agent: Agent, name: str, address: str, group: str) -> dict[str, float]:
    """Time ``name``'s atomic tasks over HTTP; {"cpu": ms, "io": ms, "link": ms}.

    The cloud calls into a group with that group's token (it holds every group's).
    """
    out: dict[str, float] = {}
    links = []
    headers = auth_headers(agent.cfg, group) if group in agent.cfg.tokens else None
    for kind in TASK_TYPES:
        started = time.perf_counter()
        answer = await agent.peer.json("POST", address, f"/v1/tasks/{kind}", {}, headers)
        total_ms = (time.perf_counter() - started) * 1000.0
        processing = float(answer.get("processing_ms", 0.0))
        out[kind] = processing
        links.append(max(total_ms - processing, 0.0))
        agent.metrics.probe_seconds.labels(name, kind, "processing").set(processing / 1000)
        agent.metrics.probe_seconds.labels(name, kind, "link").set(links[-1] / 1000)
    out["link"] = min(links)
    return out


def _targets(agent: Agent) -> list[Node]:
    """The nodes this agent probes: its group's online edges and clouds (the cloud: the
    centers it knows)."""
    cfg = agent.cfg
    centers = set(agent.store.centers.values())
    targets = []
    for name, entry in list(agent.store.entries.items()):
        node = entry.node
        ours = node.group == cfg.group if cfg.role != "cloud" else name in centers
        if name != cfg.node and ours and node.online and node.address \
                and node.role in ("edge", "cloud"):
            targets.append(node)
    return targets


async def probe_group(agent: Agent, parallel: int = 16, probed: set[str] | None = None,
                      only_new: bool = False) -> int:
    """Probe this agent itself and every online node of its group (the cloud: every center),
    ``parallel`` at a time; how many answered.

    ``probed`` holds the names a full round probed (replaced by this round's); with
    ``only_new``, only the nodes not in it are probed (then added), and not this agent: a
    node that joined since the last round gets its Capability and link at once, not a whole
    prober interval later (until then no path leads to it, nor to a group behind it).
    """
    cfg = agent.cfg
    targets = _targets(agent)
    if only_new:
        targets = [n for n in targets if probed is None or n.name not in probed]
    else:
        for kind in TASK_TYPES:
            agent.store.record_probe(cfg.node, kind, await run_task(kind, cfg.task_kib), None)
        if probed is not None:
            probed.clear()
    if probed is not None:
        probed.update(n.name for n in targets)
    gate = asyncio.Semaphore(parallel)

    async def one(node: Node) -> bool:
        async with gate:
            try:
                found = await probe_node(agent, node.name,
                                         agent.store.agent_address(node.name), node.group)
            except AgentError as err:
                event(log, "probe.failed", logging.WARNING, node=node.name, error=str(err))
                return False
        old = agent.store.links.get(Edge(cfg.node, node.name, 0, 0).pair)
        bandwidth = old.bandwidth_mbit if old else DEFAULT_BANDWIDTH_MBIT
        for kind in TASK_TYPES:
            link = Edge(cfg.node, node.name, bandwidth, round(found["link"], 3)) \
                if kind == TASK_TYPES[-1] else None
            agent.store.record_probe(node.name, kind, round(found[kind], 3), link)
        return True

    answered = await asyncio.gather(*(one(n) for n in targets))
    return (0 if only_new else 1) + sum(answered)
