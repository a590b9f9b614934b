"""zeroconf: centers and the cloud advertise ``_freeoffload._tcp``; everyone browses.

The TXT record carries ``group``, ``role``, ``version`` and ``node``. Members look for their
group's center; centers look for other groups' centers and for the cloud. What is found is kept
in :attr:`Discovery.found` (service name -> :class:`Found`) and updated as services come and go.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from dataclasses import dataclass
from typing import Any

from freeoffload import __version__

from .config import AgentConfig
from .log import event

__all__ = ["SERVICE_TYPE", "Discovery", "Found", "find_center"]

SERVICE_TYPE = "_freeoffload._tcp.local."
log = logging.getLogger("freeoffload.agent.discovery")


@dataclass(frozen=True)
class Found:
    node: str
    role: str
    group: str
    address: str  # host:port


def _txt(info: Any, key: str) -> str:
    value = (info.properties or {}).get(key.encode())
    return value.decode() if isinstance(value, bytes) else ""


class Discovery:
    """Advertise this agent (centers and the cloud) and browse for the others."""

    def __init__(self, cfg: AgentConfig) -> None:
        self.cfg = cfg
        self.found: dict[str, Found] = {}
        self._zc: Any = None
        self._browser: Any = None
        self._info: Any = None
        self._pending: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        from zeroconf import IPVersion
        from zeroconf.asyncio import AsyncServiceBrowser, AsyncZeroconf

        self._zc = AsyncZeroconf(ip_version=IPVersion.V4Only)
        if self.cfg.role in ("center", "cloud"):
            await self._advertise()
        self._browser = AsyncServiceBrowser(self._zc.zeroconf, SERVICE_TYPE,
                                            handlers=[self._on_change])

    async def _advertise(self) -> None:
        from zeroconf.asyncio import AsyncServiceInfo

        host, _, port = self.cfg.address.rpartition(":")
        try:
            packed = [ipaddress.ip_address(host).packed]
        except ValueError:
            packed = [socket.inet_aton(socket.gethostbyname(host))]
        self._info = AsyncServiceInfo(
            SERVICE_TYPE, f"{self.cfg.node}.{SERVICE_TYPE}", addresses=packed, port=int(port),
            properties={"group": self.cfg.group, "role": self.cfg.role, "version": __version__,
                        "node": self.cfg.node},
            server=f"{self.cfg.node}.local.")
        await self._zc.async_register_service(self._info, allow_name_change=True)
        event(log, "zeroconf.advertised", node=self.cfg.node, role=self.cfg.role,
              group=self.cfg.group, address=self.cfg.address)

    def _on_change(self, zeroconf: Any, service_type: str, name: str, state_change: Any) -> None:
        from zeroconf import ServiceStateChange

        if state_change is ServiceStateChange.Removed:
            gone = self.found.pop(name, None)
            if gone is not None:
                event(log, "zeroconf.removed", node=gone.node, role=gone.role, group=gone.group)
            return
        task = asyncio.ensure_future(self._resolve(service_type, name))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _resolve(self, service_type: str, name: str) -> None:
        from zeroconf.asyncio import AsyncServiceInfo

        info = AsyncServiceInfo(service_type, name)
        if not await info.async_request(self._zc.zeroconf, 3000):
            return
        addresses = info.parsed_addresses()
        if not addresses or not info.port:
            return
        found = Found(_txt(info, "node"), _txt(info, "role"), _txt(info, "group"),
                      f"{addresses[0]}:{info.port}")
        if found.address == self.cfg.address:
            return
        if self.found.get(name) != found:
            event(log, "zeroconf.found", node=found.node, role=found.role, group=found.group,
                  address=found.address)
        self.found[name] = found

    def center_of(self, group: str) -> str:
        """The address of ``group``'s center, or "" when none is advertised."""
        for found in sorted(self.found.values(), key=lambda f: f.node):
            if found.role == "center" and found.group == group:
                return found.address
        return ""

    def centers(self) -> set[str]:
        return {f.address for f in self.found.values()
                if f.role == "center" and f.group != self.cfg.group}

    def cloud(self) -> str:
        clouds = sorted(f.address for f in self.found.values() if f.role == "cloud")
        return clouds[0] if clouds else ""

    async def stop(self) -> None:
        if self._zc is None:
            return
        if self._browser is not None:
            await self._browser.async_cancel()
        if self._info is not None:
            await self._zc.async_unregister_service(self._info)
        await self._zc.async_close()
        self._zc = None


def find_center(group: str, timeout: float = 5.0) -> str:
    """The host:port of ``group``'s center as zeroconf finds it ("" after ``timeout``)."""
    import time

    from zeroconf import IPVersion, ServiceBrowser, ServiceInfo, ServiceStateChange, Zeroconf

    found: list[str] = []

    def on_change(zeroconf: Zeroconf, service_type: str, name: str,
                  state_change: ServiceStateChange) -> None:
        if state_change is ServiceStateChange.Removed:
            return
        info = ServiceInfo(service_type, name)
        if not info.request(zeroconf, 2000):
            return
        if _txt(info, "role") == "center" and _txt(info, "group") == group:
            addresses = info.parsed_addresses()
            if addresses and info.port:
                found.append(f"{addresses[0]}:{info.port}")

    zc = Zeroconf(ip_version=IPVersion.V4Only)
    try:
        browser = ServiceBrowser(zc, SERVICE_TYPE, handlers=[on_change])
        end = time.monotonic() + timeout
        while not found and time.monotonic() < end:
            time.sleep(0.1)
        browser.cancel()
    finally:
        zc.close()
    return found[0] if found else ""
