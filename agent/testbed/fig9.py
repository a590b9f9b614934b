"""Scenario ``fig9``: completion time of N audio tasks (urgent and sensitive) from dev1.

For each N, dev1 fires N tasks at once (a burst, each a real ``audio`` task of ``UNITS`` units)
and records each task's completion time from the burst's start to its result, under three
strategies:

- ``local``: dev1 runs them itself (its own task service, inside its CPU share);
- ``greedy``: each task to a node drawn at random among those able to run it (capable, secure
  since the task is sensitive, enough free resources) in the live CR-map;
- ``freeoffload``: the client (unmodified) connects to its edge, edge1; under
  ``freeoffload run`` the selection policy pushed to dev1's device daemon (with the live
  CR-map's candidates) sends each connection where the algorithm says.

Output in OUT: ``fig9_tasks.csv`` (one row per task), ``fig9.csv`` (mean, p95, max per strategy
and N) and ``fig9.png`` (mean completion time against N).
"""

from __future__ import annotations

import random
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from freeoffload.errors import TestbedError

from .cgroups import Cgroups
from .client import TaskRecord
from .config import Plan
from .livemap import live_map, write_map
from .offload import CLIENT_CGROUP, EXAMPLES, Device
from .report import percentile, plot_lines, write_csv

__all__ = ["SIZES", "STRATEGIES", "Fig9Result", "capable_nodes", "run_fig9"]

SIZES = {"tiny": [4], "reduced": [10, 40], "full": [10, 50, 100, 150, 200]}
STRATEGIES = ("local", "greedy", "freeoffload")
TASK_FILE = EXAMPLES / "tasks" / "audio.yaml"
KIND = "audio"
UNITS = 2
SOURCE = "dev1"
EDGE = "edge1"  # the edge dev1's program is configured to use


@dataclass(frozen=True)
class Fig9Result:
    """Summary of one (strategy, N) run; times in ms."""

    strategy: str
    tasks: int
    mean_ms: float
    p95_ms: float
    max_ms: float
    served: dict[str, int]


def capable_nodes(crmap: Any, task_file: Path, source: str) -> list[str]:
    """Nodes of the map that can execute the task (the Greedy strategy's choices)."""
    from freeoffload.topology import load_task, path_latency
    from freeoffload.topology.select import why_not

    task = load_task(task_file)
    return sorted(name for name, node in crmap.nodes.items()
                  if why_not(node, task, path_latency(crmap, source, name)) is None)


def _client(plan: Plan, cgroups: Cgroups, targets: list[str], count: int) -> list[TaskRecord]:
    import json

    from . import procs

    argv = [sys.executable, "-m", "freeoffload.agent.testbed.client", "--kind", KIND,
                       "--units", str(UNITS), "--count", str(count)]
    for target in targets:
        argv += ["--target", target]
    result = procs.run(plan.node(SOURCE).netns, cgroups.procs_files(CLIENT_CGROUP), argv)
    records = [TaskRecord(**json.loads(line)) for line in result.stdout.splitlines()
               if line.startswith("{")]
    if len(records) != count:
        raise TestbedError(f"the client on {SOURCE} returned {len(records)} of {count} tasks: "
                           f"{result.stderr[-600:]}")
    return records


def _strategies(plan: Plan, cgroups: Cgroups, device: Device | None, state_dir: Path,
                rng: random.Random) -> dict[str, Callable[[int], list[TaskRecord]]]:
    def local(n: int) -> list[TaskRecord]:
        return _client(plan, cgroups, [plan.address(SOURCE)], n)

    def greedy(n: int) -> list[TaskRecord]:
        choices = capable_nodes(live_map(plan, cgroups, 0.3), TASK_FILE, SOURCE)
        if not choices:
            raise TestbedError("greedy: no node of the live CR-map can run the audio task")
        return _client(plan, cgroups, [plan.address(rng.choice(choices)) for _ in range(n)], n)

    def freeoffload(n: int) -> list[TaskRecord]:
        if device is None:
            raise TestbedError("freeoffload: the device side did not start")
        device.push(write_map(live_map(plan, cgroups, 0.3), state_dir / "live-map.yaml"))
        return device.run_client(TASK_FILE, plan.address(EDGE), KIND, UNITS, n)

    return {"local": local, "greedy": greedy, "freeoffload": freeoffload}


def _summarize(strategy: str, records: list[TaskRecord]) -> Fig9Result:
    failed = [r for r in records if not r.ok]
    if failed:
        raise TestbedError(f"{strategy}: {len(failed)} of {len(records)} tasks failed, "
                           f"first: {failed[0].error}")
    times = [r.completion_ms for r in records]
    served: dict[str, int] = {}
    for r in records:
        served[r.node] = served.get(r.node, 0) + 1
    return Fig9Result(strategy, len(records), round(statistics.fmean(times), 1),
                      round(percentile(times, 95), 1), round(max(times), 1), served)


def run_fig9(plan: Plan, cgroups: Cgroups, size: str, out: Path, state_dir: Path,
             strategies: tuple[str, ...] = STRATEGIES, seed: int = 9) -> list[Fig9Result]:
    """Run every strategy for every N of ``size``; write CSVs and the PNG into ``out``."""
    device = None
    if "freeoffload" in strategies:
        device = Device(plan, cgroups, SOURCE, state_dir / SOURCE)
        device.start()
    else:
        cgroups.create(CLIENT_CGROUP, 1.0)
    rng = random.Random(seed)  # noqa: S311 - the Greedy draw, not a secret
    run = _strategies(plan, cgroups, device, state_dir, rng)
    results: list[Fig9Result] = []
    rows: list[dict[str, Any]] = []
    for n in SIZES[size]:
        for strategy in strategies:
            time.sleep(1.0)  # let the previous burst's load drain from the nodes
            records = run[strategy](n)
            results.append(_summarize(strategy, records))
            rows += [{"strategy": strategy, "tasks": n, **asdict(r)} for r in records]
            print(f"fig9: {strategy:11} N={n:<4} mean {results[-1].mean_ms:8.1f} ms  "
                  f"p95 {results[-1].p95_ms:8.1f} ms  served {results[-1].served}", flush=True)
    write_csv(out / "fig9_tasks.csv", rows, ["strategy", "tasks", *TaskRecord.__annotations__])
    write_csv(out / "fig9.csv", [asdict(r) for r in results],
              ["strategy", "tasks", "mean_ms", "p95_ms", "max_ms", "served"])
    series = {s: ([float(r.tasks) for r in results if r.strategy == s],
                  [r.mean_ms for r in results if r.strategy == s]) for s in strategies}
    plot_lines(out / "fig9.png", series, "tasks from dev1 (audio: urgent, sensitive)",
               "mean completion time (ms)", "fig9: task completion time")
    return results
