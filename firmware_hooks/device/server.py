"""The device daemon's HTTP API (aiohttp).

``PUT /v1/policy`` (body: a signed ``.fop``), ``PUT /v1/maps/{map}`` (body: a signed map
update), ``GET /v1/status``. Answers are JSON; a refusal is 4xx ``{"error": "..."}`` with one
clear reason: 400 unreadable, 403 not signed by a trusted key, 409 a replay or older version
(or no policy yet), 413 too large, 422 the program or its maps do not pass. Pushes are
applied one at a time.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import traceback
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from freeoffload.errors import ConfigError, FreeOffloadError

from .config import DeviceConfig
from .core import Device, RefusedError

__all__ = ["make_app", "serve"]

_HARD_CAP = 64 << 20
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_DEVICE: web.AppKey[Device] = web.AppKey("device", Device)
_LOCK: web.AppKey[asyncio.Lock] = web.AppKey("lock", asyncio.Lock)


def _error(status: int, reason: str) -> web.Response:
    return web.json_response({"error": reason}, status=status)


async def _apply(request: web.Request, what: str,
                 action: Callable[[bytes], dict[str, Any]]) -> web.Response:
    device = request.app[_DEVICE]
    limit = device.config.max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        err = RefusedError(413, f"the body is {request.content_length} bytes; this device "
                           f"takes at most {limit} (max_body_bytes)")
        device.refuse(what, err)
        return _error(err.status, err.reason)
    try:
        body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        body = b"x" * (limit + 1)
    if len(body) > limit:
        err = RefusedError(413, f"the body is larger than {limit} bytes (max_body_bytes)")
        device.refuse(what, err)
        return _error(err.status, err.reason)
    if not body:
        err = RefusedError(400, "the body is empty: send the signed file's bytes")
        device.refuse(what, err)
        return _error(err.status, err.reason)
    async with request.app[_LOCK]:
        try:
            answer = await asyncio.to_thread(action, body)
        except RefusedError as err:
            device.refuse(what, err)
            return _error(err.status, err.reason)
        except FreeOffloadError as err:  # the store or the disk failed: not the sender's fault
            print(f"freeoffload device: {what} failed: {err}", file=sys.stderr, flush=True)
            return _error(500, f"the device could not apply it: {err}")
        except Exception as err:  # a bug: say so in JSON, keep serving, keep the traceback
            traceback.print_exc()
            return _error(500, f"the device failed on this {what}: {type(err).__name__}: {err}")
    return web.json_response(answer)


async def _put_policy(request: web.Request) -> web.Response:
    return await _apply(request, "policy", request.app[_DEVICE].install_policy)


async def _put_map(request: web.Request) -> web.Response:
    name = request.match_info["map"]
    device = request.app[_DEVICE]
    return await _apply(request, f"map {name}", lambda body: device.update_map(name, body))


async def _status(request: web.Request) -> web.Response:
    async with request.app[_LOCK]:  # not halfway through a push or a reload
        try:
            answer = await asyncio.to_thread(request.app[_DEVICE].status)
        except FreeOffloadError as err:
            return _error(500, f"the device cannot read its store: {err}")
    return web.json_response(answer)


_API = "PUT /v1/policy, PUT /v1/maps/{map} or GET /v1/status"


async def _not_in_api(request: web.Request) -> web.Response:
    known = request.path in ("/v1/policy", "/v1/status") or request.path.startswith("/v1/maps/")
    if known:
        return _error(405, f"{request.method} {request.path} is not allowed; use {_API}")
    return _error(404, f"{request.path} is not part of the device API; use {_API}")


@web.middleware
async def _json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Whatever goes wrong, the answer is JSON (and the traceback goes to stderr)."""
    try:
        return await handler(request)
    except web.HTTPException:
        raise
    except Exception as err:
        traceback.print_exc()
        return _error(500, f"the device failed: {type(err).__name__}: {err}")


def make_app(device: Device) -> web.Application:
    # aiohttp's own cap; the configured limit (which a reload may change) is checked above
    app = web.Application(client_max_size=max(_HARD_CAP, device.config.max_body_bytes),
                          middlewares=[_json_errors])
    app[_DEVICE] = device
    app[_LOCK] = asyncio.Lock()
    app.router.add_put("/v1/policy", _put_policy)
    app.router.add_put("/v1/maps/{map}", _put_map)
    app.router.add_get("/v1/status", _status)
    app.router.add_route("*", "/{tail:.*}", _not_in_api)
    return app


async def _reload(app: web.Application, path: Path) -> None:
    """SIGHUP: read the configuration again; trusted keys, name and limit take effect."""
    from .config import load_config

    async with app[_LOCK]:
        try:
            config = await asyncio.to_thread(load_config, path)
        except ConfigError as err:
            print(f"freeoffload device: reload refused, the running configuration stays:\n{err}",
                  file=sys.stderr, flush=True)
            return
        message = await asyncio.to_thread(app[_DEVICE].reload, config)
        print(f"freeoffload device: reloaded {path}: {message}", file=sys.stderr, flush=True)


async def _serve(config: DeviceConfig, on_ready: Callable[[str], Awaitable[None] | None],
                 path: Path | None = None) -> None:
    device = await asyncio.to_thread(Device, config)
    print(f"freeoffload device: {device.restored}", file=sys.stderr, flush=True)
    app = make_app(device)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, config.host, config.port)
    await site.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    tasks: set[asyncio.Task[None]] = set()
    if path is not None:
        def hangup() -> None:
            task = loop.create_task(_reload(app, path))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        loop.add_signal_handler(signal.SIGHUP, hangup)
    bound = runner.addresses
    host, port = (bound[0][0], bound[0][1]) if bound else (config.host, config.port)
    shown = f"[{host}]" if ":" in str(host) else str(host)
    result = on_ready(f"http://{shown}:{port}")
    if result is not None:
        await result
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def serve(config: DeviceConfig, path: Path | None = None) -> int:
    """Runs the daemon until SIGINT/SIGTERM; prints ``listening on URL`` once it accepts.
    With the configuration's ``path``, SIGHUP reloads it (trusted keys, name, limit)."""
    def ready(url: str) -> None:
        print(f"freeoffload device: listening on {url}", flush=True)

    try:
        asyncio.run(_serve(config, ready, path))
    except OSError as err:
        raise FreeOffloadError(f"device: cannot listen on {config.host}:{config.port}: "
                               f"{err.strerror}") from err
    return 0
