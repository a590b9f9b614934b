"""Benchmark: fig9 on the testbed (task completion time of N audio tasks from dev1).

    sudo .venv/bin/python bench/testbed.py [--size full|reduced|tiny] [--out DIR]

With ``--relay`` it measures the delay stage instead: ping RTT against the file's latency (the
baseline), TCP throughput against the file's bandwidth, and fo-relay's CPU per MB moved.

Runs Local (dev1 itself, the baseline), Greedy (a random capable node) and FreeOffload (the
selection policy in dev1's hook) for every N of the size, and prints mean and p95 completion
time per strategy and N, the same over all tasks, and the ratios FreeOffload/Local and
FreeOffload/Greedy (below 1: FreeOffload is faster), with the machine and kernel. Brings the
testbed up (and down again) unless it is up already.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

from freeoffload.agent.testbed import bed, load_plan
from freeoffload.agent.testbed.cgroups import Cgroups, find_cgroups
from freeoffload.agent.testbed.config import Plan
from freeoffload.agent.testbed.fig9 import STRATEGIES, Fig9Result, run_fig9
from machine import describe


def _pooled(results: list[Fig9Result], strategy: str) -> tuple[float, float]:
    """Mean of the per-N means and of the per-N p95s (each N weighs the same)."""
    rows = [r for r in results if r.strategy == strategy]
    return (statistics.fmean(r.mean_ms for r in rows), statistics.fmean(r.p95_ms for r in rows))


def report(results: list[Fig9Result], seconds: float) -> str:
    lines = [f"machine: {describe()}", f"run: {seconds:.0f} s", "",
             f"{'strategy':12} {'N':>4} {'mean ms':>10} {'p95 ms':>10}  served"]
    for r in results:
        served = ", ".join(f"{k}:{v}" for k, v in sorted(r.served.items()))
        lines.append(f"{r.strategy:12} {r.tasks:>4} {r.mean_ms:>10.1f} {r.p95_ms:>10.1f}  {served}")
    lines += ["", f"{'strategy':12} {'mean ms':>10} {'p95 ms':>10}   (averaged over N)"]
    pooled = {s: _pooled(results, s) for s in STRATEGIES}
    for s, (mean, p95) in pooled.items():
        lines.append(f"{s:12} {mean:>10.1f} {p95:>10.1f}")
    fo, local, greedy = pooled["freeoffload"], pooled["local"], pooled["greedy"]
    lines += ["", f"FreeOffload/Local  (baseline Local):  mean {fo[0] / local[0]:.3f}  "
                  f"p95 {fo[1] / local[1]:.3f}",
              f"FreeOffload/Greedy (baseline Greedy): mean {fo[0] / greedy[0]:.3f}  "
              f"p95 {fo[1] / greedy[1]:.3f}"]
    largest = max(r.tasks for r in results)
    at = {r.strategy: r for r in results if r.tasks == largest}
    lines.append(f"at N={largest}: FreeOffload/Local mean "
                 f"{at['freeoffload'].mean_ms / at['local'].mean_ms:.3f}, FreeOffload/Greedy "
                 f"mean {at['freeoffload'].mean_ms / at['greedy'].mean_ms:.3f}")
    return "\n".join(lines)


_SINK = """
import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], 5202)); s.listen(1); print("listening", flush=True)
c, _ = s.accept(); n = 0; t0 = None
while (d := c.recv(1 << 16)):
    t0 = t0 or time.monotonic(); n += len(d)
print(n, time.monotonic() - t0)
"""
_SOURCE = """
import socket, sys, time
c = socket.create_connection((sys.argv[1], 5202)); buf = b"x" * 65536
end = time.monotonic() + float(sys.argv[2])
while time.monotonic() < end: c.sendall(buf)
c.close()
"""


def _ns(plan: Plan, node: str) -> list[str]:
    return ["nsenter", f"--net=/run/netns/{plan.node(node).netns}"]


def relay_report(plan: Plan, cgroups: Cgroups) -> str:
    """Ping RTT against the file's latency, and TCP throughput and fo-relay CPU per MB."""
    import re
    import subprocess

    lines = [f"{'pair':16} {'file RTT ms':>11} {'ping median ms':>15} {'ratio':>6}"]
    for src, dst in (("dev1", "edge1"), ("dev1", "edge3"), ("edge1", "cloud")):
        want = plan.delay_ms[(src, dst)] + plan.delay_ms[(dst, src)]
        ip = plan.node(dst).ip
        subprocess.run([*_ns(plan, src), "ping", "-c", "1", ip], capture_output=True)
        out = subprocess.run([*_ns(plan, src), "ping", "-c", "20", "-i", "0.05", ip],
                             capture_output=True, text=True).stdout
        got = statistics.median(float(x) for x in re.findall(r"time=([\d.]+)", out))
        lines.append(f"{src + '->' + dst:16} {want:>11.2f} {got:>15.2f} {got / want:>6.2f}")
    lines += ["", f"{'pair':16} {'file Mbit/s':>11} {'TCP Mbit/s':>11} {'relay CPU ms/MB':>16}"]
    for src, dst in (("dev1", "edge1"), ("edge1", "edge3")):
        ip = plan.node(dst).ip
        sink = subprocess.Popen([*_ns(plan, dst), sys.executable, "-c", _SINK, ip],
                                stdout=subprocess.PIPE, text=True)
        assert sink.stdout is not None
        sink.stdout.readline()
        before = cgroups.usage_usec("hub")
        subprocess.run([*_ns(plan, src), sys.executable, "-c", _SOURCE, ip, "3"], check=True)
        size, secs = (float(x) for x in sink.stdout.readline().split())
        sink.wait()
        relay_ms = (cgroups.usage_usec("hub") - before) / 1000
        mbit = plan.bandwidth_mbit[(src, dst)]
        lines.append(f"{src + '->' + dst:16} {mbit:>11.0f} {size * 8 / secs / 1e6:>11.1f} "
                     f"{relay_ms / (size / 1e6):>16.2f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=("tiny", "reduced", "full"), default="full")
    parser.add_argument("--out", default="out/bench", help="CSV and PNG (default: out/bench)")
    parser.add_argument("--relay", action="store_true",
                        help="instead: the delay stage's RTT, throughput and CPU cost")
    args = parser.parse_args(argv)
    plan = load_plan()
    made_here = not bed.status(plan.prefix).is_up
    if made_here:
        bed.up(plan)
    started = time.monotonic()
    try:
        if args.relay:
            print(f"machine: {describe()}\n")
            print(relay_report(plan, find_cgroups(plan.prefix)))
            return 0
        results = run_fig9(plan, find_cgroups(plan.prefix), args.size, Path(args.out),
                           bed.STATE_DIR)
    finally:
        if made_here:
            bed.down(plan.prefix)
    print()
    print(report(results, time.monotonic() - started))
    return 0


if __name__ == "__main__":
    sys.exit(main())
