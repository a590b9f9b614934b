"""Talking to other agents over HTTP: reports, summaries, queries, and the public helpers.

:func:`fetch_topology` (for ``freeoffload topology show --from URL``) and
:func:`push_to_group` (for ``freeoffload policy push --group NAME``) are the entry points other
parts' command lines use. A peer's token comes from the argument, else ``FREEOFFLOAD_TOKEN``.
"""

from __future__ import annotations

import asyncio
import json
import os
import ssl
from typing import Any

import aiohttp

from freeoffload.errors import AgentError

from .auth import GROUP_HEADER

__all__ = ["Peer", "fetch_topology", "fetch_topology_text", "push_to_group"]

TIMEOUT = aiohttp.ClientTimeout(total=5.0, connect=2.0)


def _base(url: str) -> str:
    url = url.rstrip("/")
    return url if url.startswith(("http://", "https://")) else f"http://{url}"


class Peer:
    """An authenticated HTTP client to other agents (one connection pool)."""

    def __init__(self, headers: dict[str, str], ssl_context: ssl.SSLContext | None = None,
                 timeout: aiohttp.ClientTimeout = TIMEOUT) -> None:
        self.headers = headers
        self.ssl = ssl_context
        self.scheme = "https" if ssl_context else "http"
        self.timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    def url(self, address: str, path: str) -> str:
        if address.startswith(("http://", "https://")):
            return address.rstrip("/") + path
        return f"{self.scheme}://{address}{path}"

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(ssl=self.ssl if self.ssl else False, limit=64)
            self._session = aiohttp.ClientSession(headers=self.headers, timeout=self.timeout,
                                                  connector=connector)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def call(self, method: str, address: str, path: str, body: bytes | None = None,
                   headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        """(status, body); raises AgentError when the peer cannot be reached."""
        url = self.url(address, path)
        try:
            async with self.session.request(method, url, data=body, headers=headers) as resp:
                return resp.status, await resp.read()
        except (TimeoutError, aiohttp.ClientError, OSError) as err:
            raise AgentError(f"{method} {url}: {type(err).__name__}: {err}") from err

    async def json(self, method: str, address: str, path: str, doc: Any = None,
                   headers: dict[str, str] | None = None) -> Any:
        """Send ``doc`` as JSON and return the decoded answer; AgentError on any failure."""
        body = None if doc is None else json.dumps(doc).encode()
        status, data = await self.call(method, address, path, body,
                                       {"Content-Type": "application/json", **(headers or {})})
        try:
            answer = json.loads(data) if data else {}
        except ValueError:
            answer = {"error": data[:200].decode(errors="replace")}
        if status >= 400:
            message = answer.get("error") if isinstance(answer, dict) else answer
            raise AgentError(f"{method} {self.url(address, path)}: {status}: {message}")
        return answer


def _token_headers(token: str | None, group: str | None) -> dict[str, str]:
    token = token if token is not None else os.environ.get("FREEOFFLOAD_TOKEN", "")
    group = group or os.environ.get("FREEOFFLOAD_GROUP", "")
    headers = {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if group:
        headers[GROUP_HEADER] = group
    return headers


def fetch_topology_text(url: str, token: str | None = None, group: str | None = None) -> str:
    """The CR-map YAML an agent serves at ``URL/v1/topology`` (AgentError on failure)."""

    async def fetch() -> str:
        peer = Peer(_token_headers(token, group))
        try:
            status, body = await peer.call("GET", _base(url), "/v1/topology")
        finally:
            await peer.close()
        if status != 200:
            raise AgentError(f"GET {_base(url)}/v1/topology: {status}: "
                             f"{body[:300].decode(errors='replace')}")
        return body.decode()

    return asyncio.run(fetch())


def fetch_topology(url: str, token: str | None = None, group: str | None = None) -> Any:
    """The live CR-map of the agent at ``url`` (``http://HOST:PORT``) as a topology.CRMap.

    ``token``/``group`` authenticate (default: ``FREEOFFLOAD_TOKEN``/``FREEOFFLOAD_GROUP``).
    """
    from ._wire import parse_map_text

    return parse_map_text(fetch_topology_text(url, token, group), f"{_base(url)}/v1/topology")


def push_to_group(group: str, policy: bytes, center: str | None = None,
                  token: str | None = None, timeout: float = 5.0) -> list[dict[str, Any]]:
    """Install a signed policy (``.fop`` bytes) on every device of ``group``.

    The group's center (``center`` as ``http://HOST:PORT``, else found with zeroconf within
    ``timeout`` seconds) forwards it to each of its devices (``PUT /v1/policy``), which verify
    the signature themselves; one result per device: ``{"device", "status", "answer"}``.
    ``token`` is the group's (default ``FREEOFFLOAD_TOKEN``). Raises AgentError when no center
    is found, or it refuses or cannot be reached.
    """
    if not center:
        from .discovery import find_center

        center = find_center(group, timeout)
        if not center:
            raise AgentError(f"no center of group {group!r} found with zeroconf in "
                             f"{timeout:g}s; give its URL")

    async def push(url: str) -> list[dict[str, Any]]:
        peer = Peer(_token_headers(token, group), timeout=aiohttp.ClientTimeout(total=60))
        try:
            status, body = await peer.call("PUT", url, "/v1/group/policy", policy,
                                           {"Content-Type": "application/octet-stream"})
        finally:
            await peer.close()
        answer: dict[str, Any] = json.loads(body) if body.startswith(b"{") else {
            "error": body.decode(errors="replace")}
        if status >= 400:
            raise AgentError(f"push to group {group!r} via {url}: {status}: "
                             f"{answer.get('error')}")
        results: list[dict[str, Any]] = answer.get("devices", [])
        return results

    return asyncio.run(push(_base(center)))
