"""The running agent: HTTP server, report loop (members), group loop (centers, cloud), prober,
zeroconf, and a clean stop on SIGTERM/SIGINT.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import signal
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from freeoffload.errors import AgentError

from ._wire import report_body, summary_body
from .auth import server_ssl
from .config import AgentConfig
from .discovery import Discovery
from .log import event
from .node import LocalNode
from .prober import probe_group
from .server import build_app
from .service import Agent

__all__ = ["Daemon", "run_daemon"]

log = logging.getLogger("freeoffload.agent")
MAX_BACKOFF_S = 30.0


class Daemon:
    """An agent with everything it runs; ``await start()``, then ``await stop()``."""

    def __init__(self, cfg: AgentConfig, local: LocalNode | None = None) -> None:
        self.cfg = cfg
        self.agent = Agent(cfg)
        self.local = local or LocalNode(cfg)
        self.discovery = Discovery(cfg) if cfg.zeroconf else None
        self.center_name = ""
        self.local.names = self._peer_name
        self._hosts: dict[str, str] = {}  # host -> the first node there (see _peer_name)
        self._hosts_version = -1
        self._runner: web.AppRunner | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.stopping = asyncio.Event()

    async def start(self) -> None:
        if self.cfg.role != "member":  # centers answer queries: the selection index (numpy)
            import freeoffload.topology._index  # noqa: F401  now, not in the first query
        if self.cfg.trigger.devices and self.cfg.role != "member":
            from .trigger import Pusher, load_push_material

            Pusher(self.agent, load_push_material(self.cfg))
        self._runner = web.AppRunner(build_app(self.agent), access_log=None,
                                     handle_signals=False)
        await self._runner.setup()
        host, port = self.cfg.listen
        site = web.TCPSite(self._runner, host, port, ssl_context=server_ssl(self.cfg),
                           reuse_address=True)
        try:
            await site.start()
        except OSError as err:
            await self._runner.cleanup()
            raise AgentError(f"cannot listen on {host}:{port}: {err.strerror}") from err
        if self.discovery is not None:
            await self.discovery.start()
        if self.cfg.role == "member":
            self._spawn(self._report_loop)
        else:
            self._spawn(self._group_loop)
            self._spawn(self._prober_loop)
        event(log, "agent.started", node=self.cfg.node, role=self.cfg.role,
              group=self.cfg.group, listen=f"{host}:{port}", address=self.cfg.address,
              auth="mtls+token" if self.cfg.tls else "token" if self.cfg.token else "none")

    def _peer_name(self, address: str) -> str | None:
        """The node Name at IP ``address`` (for the links the probes measure)."""
        if self.center_name and self.agent.center.rpartition(":")[0].strip("[]") == address:
            return self.center_name
        store = self.agent.store
        if self._hosts_version != store.version:  # once per sample, not once per peer
            self._hosts = {}
            for name, entry in store.entries.items():
                if name != self.cfg.node:
                    self._hosts.setdefault(entry.node.host, name)
            self._hosts_version = store.version
        return self._hosts.get(address)

    def _spawn(self, loop: Callable[[], Awaitable[None]]) -> None:
        self._tasks.append(asyncio.create_task(self._guard(loop)))

    async def _guard(self, loop: Callable[[], Awaitable[None]]) -> None:
        while not self.stopping.is_set():
            try:
                await loop()
                return
            except asyncio.CancelledError:
                raise
            except Exception as err:  # a loop must not die silently; log, pause, go on
                event(log, "agent.loop_failed", logging.ERROR, loop=loop.__name__,
                      error=f"{type(err).__name__}: {err}")
                await self._sleep(self.cfg.report_interval)

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self.stopping.wait(), seconds)

    # -- members ----------------------------------------------------------------------------
    def _find_center(self) -> str:
        if self.cfg.center:
            return self.cfg.center
        return self.discovery.center_of(self.cfg.group) if self.discovery else ""

    async def _report_loop(self) -> None:
        failures, backoff = 0, self.cfg.report_interval
        while not self.stopping.is_set():
            center = self._find_center()
            self.agent.center = center
            ok = bool(center) and await self._report(center)
            self.agent.metrics.center_up.set(1 if ok else 0)
            if ok:
                if failures:
                    event(log, "center.reached", center=center, after_failures=failures)
                failures, backoff = 0, self.cfg.report_interval
            else:
                failures += 1
                if failures == 1:
                    event(log, "center.lost", logging.WARNING, center=center or "(none found)")
                backoff = min(backoff * 2, MAX_BACKOFF_S, 8 * self.cfg.report_interval)
            await self._sleep(self.cfg.report_interval if ok else backoff)

    async def _report(self, center: str) -> bool:
        node = self.local.sample()
        self.agent.store.put_local(node)  # a member keeps its own record whatever happens
        body = report_body(node, self.local.links.values(), self.cfg.address)
        try:
            status, answer = await self.agent.peer.call(
                "POST", center, "/v1/report", body, {"Content-Type": "application/json"})
        except AgentError as err:
            event(log, "report.failed", logging.DEBUG, center=center, error=str(err))
            return False
        if status != 200:
            event(log, "report.refused_by_center", logging.WARNING, center=center,
                  status=status, answer=answer[:300].decode(errors="replace"))
            return False
        with contextlib.suppress(ValueError, AttributeError):
            self.center_name = str(json.loads(answer).get("center", ""))
        return True

    # -- centers and the cloud ---------------------------------------------------------------
    async def _group_loop(self) -> None:
        while not self.stopping.is_set():
            own = self.local.sample()
            self.agent.store.put_local(own)
            for observe in self.agent.observers:
                observe(own)
            self.agent.sweep()
            if self.discovery is not None:
                self.agent.peers = set(self.cfg.peers) | self.discovery.centers()
                self.agent.cloud = self.cfg.cloud or self.discovery.cloud()
            if self.cfg.role == "center" and self.agent.cloud:
                await self._send_summary()
            await self._sleep(self.cfg.report_interval)

    async def _send_summary(self) -> None:
        crmap = self.agent.store.crmap(self.cfg.group)
        nodes = [n for n in crmap.nodes.values() if n.group == self.cfg.group]
        body = summary_body(self.cfg.group, self.cfg.node, nodes, crmap.edges,
                            self.cfg.address)
        try:
            status, answer = await self.agent.peer.call(
                "POST", self.agent.cloud, "/v1/summary", body,
                {"Content-Type": "application/json"})
        except AgentError as err:
            event(log, "summary.failed", logging.WARNING, cloud=self.agent.cloud, error=str(err))
            return
        if status != 200:
            event(log, "summary.refused_by_cloud", logging.WARNING, cloud=self.agent.cloud,
                  status=status, answer=answer[:300].decode(errors="replace"))
            return
        self.agent.learn_cloud(answer)

    async def _prober_loop(self) -> None:
        """A round every prober interval; between rounds, nodes that joined since (the first
        round at start finds none) are probed within a report interval."""
        probed: set[str] = set()
        last = -math.inf
        while not self.stopping.is_set():
            full = time.monotonic() - last >= self.cfg.prober_interval
            if full:
                last = time.monotonic()
            await probe_group(self.agent, probed=probed, only_new=not full)
            await self._sleep(min(self.cfg.report_interval, self.cfg.prober_interval))

    # -- stopping ---------------------------------------------------------------------------
    async def stop(self) -> None:
        self.stopping.set()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self.discovery is not None:
            await self.discovery.stop()
        await self.agent.peer.close()
        if self._runner is not None:
            await self._runner.cleanup()
        self.local.close()
        event(log, "agent.stopped", node=self.cfg.node)


async def _serve(cfg: AgentConfig) -> None:
    daemon = Daemon(cfg)
    await daemon.start()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, daemon.stopping.set)
    await daemon.stopping.wait()
    event(log, "agent.stopping", node=cfg.node, reason="signal")
    await daemon.stop()


def run_daemon(cfg: AgentConfig) -> int:
    """Run the agent until SIGTERM or SIGINT; the exit status."""
    asyncio.run(_serve(cfg))
    return 0
