"""Benchmark: a group center's report ingest rate, /v1/select latency, CPU and RSS at rest.

The center is a real ``python -m freeoffload.agent`` process pinned to one core; the reporters
are coroutines in this process (pinned to another core when there is one) sending real HTTP
reports for ``--members`` members over keep-alive connections. The baseline, measured in the
same run the same way, is a bare aiohttp server process that reads each body and answers a small
JSON document: the ratio is what the agent costs over HTTP itself. Targets: at least 5,000
reports/s on one core; select p99 at most 5 ms with 1,000 members.

    python bench/agent.py [--members 1000] [--seconds 5] [--selects 2000] [--rounds 1] [--tiny]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
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


def pin(proc: subprocess.Popen[bytes]) -> None:
    if (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(proc.pid, {0})
        os.sched_setaffinity(0, set(range(1, os.cpu_count() or 2)))


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


async def ingest(url: str, members: int, seconds: float, concurrency: int = 32) -> int:
    """Reports sent and accepted in ``seconds`` by ``concurrency`` keep-alive reporters."""
    bodies = [report(i, time.time()) for i in range(members)]
    done = 0
    end = time.monotonic() + seconds

    async def worker(k: int, s: aiohttp.ClientSession) -> None:
        nonlocal done
        i = k
        while time.monotonic() < end:
            async with s.post(f"{url}/v1/report", data=bodies[i % members]) as r:
                await r.read()
                if r.status != 200:
                    raise SystemExit(f"report refused: {r.status}")
            done += 1
            i += concurrency

    conn = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(headers=HEADERS, connector=conn) as s:
        await asyncio.gather(*(worker(k, s) for k in range(concurrency)))
    return done


async def selects(url: str, requesters: list[int]) -> list[float]:
    """Latencies (s) of sequential queries, one from each of ``requesters`` in turn."""
    out = []
    async with aiohttp.ClientSession(headers=HEADERS) as s:
        for who in requesters:
            body = json.dumps({"task": TASK, "from": f"m{who}"}).encode()
            started = time.perf_counter()
            async with s.post(f"{url}/v1/select", data=body) as r:
                answer = await r.json()
            out.append(time.perf_counter() - started)
            if r.status != 200:
                raise SystemExit(f"select failed: {answer}")
    return out


def _p99(values: list[float]) -> float:
    return values[min(len(values) - 1, int(len(values) * 0.99))]


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
    cpu0, t0 = sum(p.cpu_times()[:2]), time.monotonic()
    sent = asyncio.run(ingest(url, args.members, args.seconds))
    wall, cpu = time.monotonic() - t0, sum(p.cpu_times()[:2]) - cpu0
    rng = random.Random(1)
    cold_from = rng.sample(range(args.members), min(args.members, args.selects))
    cold = sorted(asyncio.run(selects(url, cold_from)))  # each requester's first query
    cpu1 = sum(p.cpu_times()[:2])
    lat = sorted(asyncio.run(selects(url, [rng.choice(cold_from)
                                           for _ in range(args.selects)])))
    select_cpu = (sum(p.cpu_times()[:2]) - cpu1) / len(lat)
    rest_cpu, rss = at_rest(proc, args.rest)
    return {"rate": sent / wall, "per_cpu_s": sent / max(cpu, 1e-9), "server_cpu": cpu / wall,
            "p50": 1000 * statistics.median(lat), "p99": 1000 * _p99(lat),
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
            ("select p50 (ms), requester seen before", "p50", ""),
            ("select p99 (ms), requester seen before", "p99", "<= 5"),
            ("server CPU per select (ms), seen before", "select_cpu", ""),
            ("select p50 (ms), first query of each", "cold_p50", ""),
            ("select p99 (ms), first query of each", "cold_p99", ""),
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
