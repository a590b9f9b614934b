"""Benchmark: a group center's report ingest rate, /v1/select latency, CPU and RSS at rest.

The center is a real ``python -m freeoffload.agent`` process pinned to one core; the reporters
are coroutines in this process (pinned to another core when there is one) sending real HTTP
reports for ``--members`` members over keep-alive connections. Queries are sent one at a time,
from requesters the center has answered before, twice: with the center pinned to CPU 0 (where
other work on a shared machine makes the tail), then free to run on any CPU, as a daemon is.
The baseline, measured in the same run the same way, is a bare aiohttp server process that
reads each body and answers a small JSON document: the ratio is what the agent costs over HTTP
itself. Targets: at least 5,000 reports/s on one core; select p99 at most 5 ms with 1,000
members.

    python bench/agent.py [--members 1000] [--seconds 5] [--selects 2000] [--rounds 1] [--tiny]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import aiohttp
import psutil
import yaml
from machine import describe

TOKEN = "bench-token"
HEADERS = {"Authorization": f"Bearer {TOKEN}", "X-FreeOffload-Group": "g"}
TASK = {"Name": "bench", "Type": "cpu", "Urgent": True, "Demand": {"CPU": 0.1, "Memory": 16}}

BARE_SERVER = """
import sys
from aiohttp import web
async def handle(request):
    await request.read()
    return web.json_response({"accepted": True})
async def ok(request):
    return web.json_response({"status": "ok"})
app = web.Application()
app.router.add_post("/v1/report", handle)
app.router.add_post("/v1/select", handle)
app.router.add_get("/healthz", ok)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port



def start_center(tmp: Path, port: int) -> subprocess.Popen[bytes]:
    cfg = {"node": "center", "role": "center", "group": "g", "listen": f"127.0.0.1:{port}",
           "token": TOKEN, "zeroconf": False, "report_interval": 2, "offline_after": 3600,
           "probes": {"mode": "procfs"}, "prober": {"interval": 1e6},
           "record": {"Role": "edge", "Security": True}}
    path = tmp / "center.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return subprocess.Popen([sys.executable, "-m", "freeoffload.agent", "--config", str(path),
                             "--log-level", "warning"], stderr=subprocess.DEVNULL)


def start_bare(port: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", BARE_SERVER, str(port)])


def pin(proc: subprocess.Popen[bytes], alone: bool = True) -> None:
    """The server on CPU 0 and this process on the others; ``alone=False``: both on any CPU."""
    every = set(range(os.cpu_count() or 1))
    if len(every) > 1:
        os.sched_setaffinity(proc.pid, {0} if alone else every)
        os.sched_setaffinity(0, every - {0} if alone else every)


def report(i: int, stamp: float) -> bytes:
    rng = random.Random(i)
    node = {"Name": f"m{i}", "Role": "edge", "Group": "g",
            "Address": f"10.{i // 250 % 250}.{i % 250}.1:7070",
            "ComputingPower": {"CPU": {"cores": 4, "MHz": 2000}, "Memory": 8192, "Storage": 64},
            "Security": rng.random() < 0.3,
            "Resource": {"cpu_percent": round(rng.uniform(0, 90), 1), "memory_used": 1024,
                         "storage_used": 8, "running_tasks": 10},
            "Capability": {"cpu": round(rng.uniform(5, 50), 2),
                           "io": round(rng.uniform(5, 50), 2)},
            "Online": True, "Updated": stamp}
    links = [{"StartNode": f"m{i}", "EndNode": "center", "BandWidth": 1000,
              "Latency": round(rng.uniform(0.2, 20), 3)}]
    return json.dumps({"Node": node, "Links": links}).encode()


async def wait_up(url: str) -> None:
    async with aiohttp.ClientSession() as s:
        for _ in range(300):
            try:
                async with s.get(f"{url}/healthz") as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise SystemExit(f"{url} did not come up")


class _Conn(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection with one request in flight: the answer's status line
    and Content-Length are all it reads. A client this small costs a fraction of what the
    server it measures does (aiohttp's own client costs about as much per request as its
    server, which would cap the rate at what the bench process can send)."""

    def __init__(self, on_answer: Callable[[int, bytes], None]) -> None:
        self.on_answer = on_answer
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.start = 0  # where the answer's body starts in buf
        self.need = -1  # bytes of the answer being read; -1 until its head is complete
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed:  # the server went away: answered as status 0, not waited for
            self.on_answer(0, f"connection lost ({exc or 'closed by the server'})".encode())

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def send(self, request: bytes) -> None:
        assert self.transport is not None
        self.transport.write(request)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if self.need < 0:
            head = self.buf.find(b"\r\n\r\n")
            if head < 0:
                return
            found = _LENGTH.search(self.buf, 0, head)
            if found is None:
                raise SystemExit(f"answer without Content-Length: {bytes(self.buf[:head])!r}")
            self.start = head + 4
            self.need = self.start + int(found.group(1))
        if len(self.buf) >= self.need:
            status, body = int(self.buf[9:12]), bytes(self.buf[self.start:self.need])
            del self.buf[:self.need]
            self.need = -1
            self.on_answer(status, body)


_LENGTH = re.compile(rb"(?i)\r\ncontent-length:[ \t]*(\d+)")


def _request(url: str, path: str, body: bytes) -> bytes:
    host = url.split("//", 1)[1]
    head = "".join(f"{k}: {v}\r\n" for k, v in HEADERS.items())
    return (f"POST {path} HTTP/1.1\r\nHost: {host}\r\n{head}Content-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


async def _connect(url: str, on_answer: Callable[[int, bytes], None]) -> _Conn:
    host, port = url.split("//", 1)[1].rsplit(":", 1)
    _, conn = await asyncio.get_running_loop().create_connection(
        lambda: _Conn(on_answer), host, int(port))
    return conn


async def ingest(url: str, members: int, seconds: float, concurrency: int = 32) -> int:
    """Reports sent and accepted in ``seconds`` by ``concurrency`` keep-alive reporters, each
    sending its next report as soon as the last is answered."""
    requests = [_request(url, "/v1/report", report(i, time.time())) for i in range(members)]
    loop = asyncio.get_running_loop()
    end = time.monotonic() + seconds
    done = 0

    async def reporter(k: int) -> None:
        finished: asyncio.Future[None] = loop.create_future()
        sent = k

        def on_answer(status: int, body: bytes) -> None:
            nonlocal done, sent
            if status != 200:
                if not finished.done():
                    finished.set_exception(SystemExit(f"report refused: {status} {body[:300]!r}"))
                return
            done += 1
            if time.monotonic() >= end:
                finished.set_result(None)
                return
            sent += concurrency
            conn.send(requests[sent % members])

        conn = await _connect(url, on_answer)
        conn.send(requests[sent % members])
        try:
            await finished
        finally:
            conn.close()

    await asyncio.gather(*(reporter(k) for k in range(concurrency)))
    return done


async def selects(url: str, requesters: list[int]) -> list[float]:
    """Latencies (s) of sequential queries, one from each of ``requesters`` in turn."""
    loop = asyncio.get_running_loop()
    answer: asyncio.Future[tuple[int, bytes]] = loop.create_future()

    def on_answer(status: int, body: bytes) -> None:
        if not answer.done():
            answer.set_result((status, body))

    conn = await _connect(url, on_answer)
    out = []
    try:
        for who in requesters:
            request = _request(url, "/v1/select",
                               json.dumps({"task": TASK, "from": f"m{who}"}).encode())
            answer = loop.create_future()
            started = time.perf_counter()
            conn.send(request)
            status, body = await answer
            out.append(time.perf_counter() - started)
            if status != 200:
                raise SystemExit(f"select failed: {status} {body[:300]!r}")
    finally:
        conn.close()
    return out


def _p99(values: list[float]) -> float:
    return values[min(len(values) - 1, int(len(values) * 0.99))]


def settle(p: psutil.Process, at_least: float = 2.5, idle: float = 0.05) -> None:
    """Wait one report interval of the center (its group loop, and the prober's look at the
    members that joined, run once), then until it spends under ``idle`` of a core for half a
    second (at most 30 s): work set off by the fill is not counted as ingest."""
    time.sleep(at_least)
    for _ in range(60):
        before = sum(p.cpu_times()[:2])
        time.sleep(0.5)
        if sum(p.cpu_times()[:2]) - before < idle * 0.5:
            return


def at_rest(proc: subprocess.Popen[bytes], seconds: float) -> tuple[float, float]:
    """(CPU % of one core, RSS MiB) of an idle process over ``seconds``."""
    p = psutil.Process(proc.pid)
    before = sum(p.cpu_times()[:2])
    time.sleep(seconds)
    return 100 * (sum(p.cpu_times()[:2]) - before) / seconds, p.memory_info().rss / 2**20


def measure(url: str, proc: subprocess.Popen[bytes], args: argparse.Namespace,
            fill: bool) -> dict[str, float]:
    asyncio.run(wait_up(url))
    pin(proc)
    if fill:  # every member reports once: the center holds the whole group
        asyncio.run(_fill(url, args.members))
    p = psutil.Process(proc.pid)
    settle(p)
    cpu0, t0 = sum(p.cpu_times()[:2]), time.monotonic()
    sent = asyncio.run(ingest(url, args.members, args.seconds))
    wall, cpu = time.monotonic() - t0, sum(p.cpu_times()[:2]) - cpu0
    rng = random.Random(1)
    cold_from = rng.sample(range(args.members), min(args.members, args.selects))
    cold = sorted(asyncio.run(selects(url, cold_from)))  # each requester's first query
    cpu1 = sum(p.cpu_times()[:2])
    pinned = sorted(asyncio.run(selects(url, [rng.choice(cold_from)
                                              for _ in range(args.selects)])))
    select_cpu = (sum(p.cpu_times()[:2]) - cpu1) / len(pinned)
    pin(proc, alone=False)  # a daemon is not pinned: the same queries, the server on any CPU
    lat = sorted(asyncio.run(selects(url, [rng.choice(cold_from)
                                           for _ in range(args.selects)])))
    pin(proc)
    rest_cpu, rss = at_rest(proc, args.rest)
    return {"rate": sent / wall, "per_cpu_s": sent / max(cpu, 1e-9), "server_cpu": cpu / wall,
            "p50": 1000 * statistics.median(lat), "p99": 1000 * _p99(lat),
            "p99_pinned": 1000 * _p99(pinned),
            "cold_p50": 1000 * statistics.median(cold), "cold_p99": 1000 * _p99(cold),
            "select_cpu": 1000 * select_cpu, "rest_cpu": rest_cpu, "rss": rss}


async def _fill(url: str, members: int) -> None:
    async with aiohttp.ClientSession(headers=HEADERS) as s:
        for i in range(members):
            async with s.post(f"{url}/v1/report", data=report(i, time.time())) as r:
                if r.status != 200:
                    raise SystemExit(f"report refused: {await r.text()}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def run(args: argparse.Namespace) -> dict[str, dict[str, float]]:
    """Each figure's median over ``--rounds`` rounds, the two servers taking turns (a shared
    machine's load moves between one measurement and the next)."""
    rounds: dict[str, list[dict[str, float]]] = {"bare aiohttp": [], "agent": []}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.rounds):
            for name, starter, fill in (("bare aiohttp", lambda p: start_bare(p), False),
                                        ("agent", lambda p: start_center(Path(tmp), p), True)):
                port = free_port()
                proc = starter(port)
                try:
                    rounds[name].append(measure(f"http://127.0.0.1:{port}", proc, args, fill))
                finally:
                    stop(proc)
    return {name: {key: statistics.median(r[key] for r in found) for key in found[0]}
            for name, found in rounds.items()}


def table(results: dict[str, dict[str, float]], args: argparse.Namespace) -> str:
    base, agent = results["bare aiohttp"], results["agent"]
    rows = [("reports/s (wall, server on 1 core)", "rate", ">= 5000"),
            ("reports per server CPU-second", "per_cpu_s", ">= 5000"),
            ("server CPU during ingest (cores)", "server_cpu", ""),
            ("select p50 (ms), seen before, any CPU", "p50", ""),
            ("select p99 (ms), seen before, any CPU", "p99", "<= 5"),
            ("select p99 (ms), seen before, CPU 0", "p99_pinned", "<= 5"),
            ("server CPU per select (ms), seen before", "select_cpu", ""),
            ("select p50 (ms), first query, CPU 0", "cold_p50", ""),
            ("select p99 (ms), first query, CPU 0", "cold_p99", ""),
            ("CPU at rest (% of a core)", "rest_cpu", ""),
            ("RSS at rest (MiB)", "rss", "")]
    lines = [f"machine: {describe()}",
             f"members: {args.members}, ingest {args.seconds:g} s, {args.selects} selects, "
             f"rest {args.rest:g} s, median of {args.rounds} round(s)",
             "",
             f"| {'figure':40} | {'baseline: bare aiohttp':>22} | {'agent':>10} | "
             f"{'ratio':>7} | {'target':>8} |",
             f"|{'-' * 42}|{'-' * 24}:|{'-' * 11}:|{'-' * 8}:|{'-' * 9}:|"]
    for label, key, target in rows:
        ratio = agent[key] / base[key] if base[key] else float("nan")
        lines.append(f"| {label:40} | {base[key]:22.2f} | {agent[key]:10.2f} | "
                     f"{ratio:7.2f} | {target:>8} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--selects", type=int, default=2000)
    parser.add_argument("--rest", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=1,
                        help="measure each server this many times, in turns; print medians")
    parser.add_argument("--tiny", action="store_true", help="a smoke run of a few seconds")
    args = parser.parse_args(argv)
    if args.tiny:
        args.members, args.seconds, args.selects, args.rest = 20, 0.5, 20, 0.5
    print(table(run(args), args))
    print("load average after the run: " + ", ".join(f"{x:.1f}" for x in os.getloadavg()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
