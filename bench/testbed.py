"""Benchmark: fig9 on the testbed (task completion time of N audio tasks from dev1).

    sudo .venv/bin/python bench/testbed.py [--size full|reduced|tiny] [--out DIR]

Runs Local (dev1 itself, the baseline), Greedy (a random capable node) and FreeOffload (the
selection policy in dev1's hook) for every N of the size, and prints mean and p95 completion
time per strategy and N, the same over all tasks, and the ratios FreeOffload/Local and
FreeOffload/Greedy (below 1: FreeOffload is faster), with the machine and kernel. Brings the
testbed up (and down again) unless it is up already.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

from freeoffload.agent.testbed import bed, load_plan
from freeoffload.agent.testbed.cgroups import find_cgroups
from freeoffload.agent.testbed.fig9 import STRATEGIES, Fig9Result, run_fig9


def machine() -> str:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"{model or platform.processor()} x{os.cpu_count()}, {platform.system()} "
            f"{platform.release()}, Python {platform.python_version()}")


def _pooled(results: list[Fig9Result], strategy: str) -> tuple[float, float]:
    """Mean of the per-N means and of the per-N p95s (each N weighs the same)."""
    rows = [r for r in results if r.strategy == strategy]
    return (statistics.fmean(r.mean_ms for r in rows), statistics.fmean(r.p95_ms for r in rows))


def report(results: list[Fig9Result], seconds: float) -> str:
    lines = [f"machine: {machine()}", f"run: {seconds:.0f} s", "",
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=("tiny", "reduced", "full"), default="full")
    parser.add_argument("--out", default="out/bench", help="CSV and PNG (default: out/bench)")
    args = parser.parse_args(argv)
    plan = load_plan()
    made_here = not bed.status(plan.prefix).is_up
    if made_here:
        bed.up(plan)
    started = time.monotonic()
    try:
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
