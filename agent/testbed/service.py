"""The task service every testbed node runs inside its namespace and cgroup.

``python -m freeoffload.agent.testbed.service --node NAME --listen IP:PORT --workdir DIR``

HTTP API (every response carries ``X-FreeOffload-Node``, the node that served it):

- ``POST /v1/task/{kind}?units=N``: run one task (``transcode``, ``audio``, ``file``); JSON
  ``{node, kind, units, processing_ms, bytes_out, digest}``.
- ``GET /v1/task/web?units=N``: a web request: the page itself (``units`` x 64 KiB).
- ``POST /v1/tasks/{cpu|io}``: the agents' atomic tasks (the prober measures each node's
  Capability with them, inside the node's CPU share): JSON ``{node, type, processing_ms}``.
- ``GET /v1/stats``: tasks served per kind; ``GET /healthz``: ``ok``.
Errors are JSON ``{"error": "..."}`` with 4xx.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from freeoffload.errors import TestbedError

from .tasks import run_task, web_page

__all__ = ["ATOMIC", "TaskServer", "main", "serve"]


class TaskServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256

    def __init__(self, address: tuple[str, int], node: str, workdir: Path) -> None:
        super().__init__(address, _Handler)
        self.node = node
        self.workdir = workdir
        self.served: dict[str, int] = {}
        self.lock = threading.Lock()

    def count(self, kind: str) -> None:
        with self.lock:
            self.served[kind] = self.served.get(kind, 0) + 1


class _Handler(BaseHTTPRequestHandler):
    server: TaskServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        return  # one line per task would drown the log

    def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-FreeOffload-Node", self.server.node)
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, data: dict[str, Any]) -> None:
        self._send(status, json.dumps(data).encode())

    def _units(self) -> int:
        query = parse_qs(urlsplit(self.path).query)
        text = query.get("units", ["1"])[0]
        if not text.isdigit():
            raise TestbedError(f"units: expected a whole number, got '{text}'")
        return int(text)

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        if path == "/healthz":
            self._send(200, b"ok\n", "text/plain")
        elif path == "/v1/stats":
            with self.server.lock:
                served = dict(self.server.served)
            self._json(200, {"node": self.server.node, "served": served})
        elif path == "/v1/task/web":
            try:
                page = web_page(self._units())
            except TestbedError as err:
                self._json(400, {"error": str(err)})
                return
            self.server.count("web")
            self._send(200, page, "text/html")
        else:
            self._json(404, {"error": f"no such resource: {path}"})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        path = urlsplit(self.path).path
        if path.startswith("/v1/tasks/"):
            self._atomic(path.removeprefix("/v1/tasks/"))
            return
        if not path.startswith("/v1/task/"):
            self._json(404, {"error": f"no such resource: {path}"})
            return
        kind = path.removeprefix("/v1/task/")
        try:
            outcome = run_task(kind, self._units(), self.server.workdir)
        except TestbedError as err:
            self._json(400, {"error": str(err)})
            return
        self.server.count(kind)
        self._json(200, {"node": self.server.node, "kind": kind, "units": outcome.units,
                         "processing_ms": round(outcome.processing_ms, 3),
                         "bytes_out": outcome.bytes_out, "digest": outcome.digest})


    def _atomic(self, task_type: str) -> None:
        kind, units = ATOMIC.get(task_type, ("", 0))
        if not kind:
            self._json(404, {"error": f"unknown task Type '{task_type}'; expected one of: "
                                      f"{', '.join(ATOMIC)}"})
            return
        outcome = run_task(kind, units, self.server.workdir)
        self.server.count(f"atomic-{task_type}")
        self._json(200, {"node": self.server.node, "type": task_type,
                         "processing_ms": round(outcome.processing_ms, 3)})


# The agents' atomic task of each Type: a 64 KiB frame to encode; 1 MiB written and read.
ATOMIC = {"cpu": ("transcode", 1), "io": ("file", 1)}


def serve(node: str, host: str, port: int, workdir: Path) -> TaskServer:
    """A bound task server (call ``serve_forever`` on it)."""
    workdir.mkdir(parents=True, exist_ok=True)
    return TaskServer((host, port), node, workdir)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="freeoffload-testbed-service")
    parser.add_argument("--node", required=True)
    parser.add_argument("--listen", required=True, help="IP:PORT")
    parser.add_argument("--workdir", required=True)
    args = parser.parse_args(argv)
    host, _, port = args.listen.rpartition(":")
    server = serve(args.node, host, int(port), Path(args.workdir))
    print(f"{args.node}: serving tasks on http://{args.listen}", flush=True)
    try:
        server.serve_forever(poll_interval=0.5)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
