"""Scenario ``fig9``: completion time of N audio tasks (urgent and sensitive) from dev1.

For each N, dev1 fires N tasks at once (a burst, each a real ``audio`` task of ``UNITS`` units)
and records each task's completion time from the burst's start to its result, under three
strategies:

- ``local``: dev1 runs them itself (its own task service, inside its CPU share);
- ``greedy``: each task to a node drawn at random among those able to run it (capable, secure
  since the task is sensitive, enough free resources) in the live CR-map: the one the agents
  hold (the cloud's ``/v1/topology``), the data FreeOffload's pushes come from;
- ``freeoffload``: the client (unmodified) connects to its edge, edge1; under
  ``freeoffload run`` the selection policy sends each connection where the algorithm says,
  from the candidates dev1's center (edge2) keeps current on dev1's device daemon. Nothing is
  pushed by this script: the agents run as the testbed file says (those of ``up --agents``,
  else started here), and each burst waits for the center's first push computed after the
  previous burst's load drained (the policy's count of what it placed restarts with it).

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

from .agents import REFRESH, Agents
from .cgroups import Cgroups
from .client import TaskRecord
from .config import Plan
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
DRAIN_S = 1.0  # after a burst, before the next: the nodes' load drains
FRESH_S = 1.5  # the rows a burst starts from were computed this long after the drain at least
WAIT_S = 2 * REFRESH["max_age"] + 10  # at most, for those rows (unchanged ones come again)


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


def live_view(agents: Agents) -> Any:
    """The agents' CR-map (the cloud's, which holds every group) seen from dev1 (linked to its
    edge as its center sees it)."""
    from freeoffload.agent.config import DeviceConfig
    from freeoffload.agent.trigger import device_view
    from freeoffload.topology import load_topology_text

    cloud = next(n for n, c in agents.configs.items() if c["role"] == "cloud")
    text = agents.get(cloud, "/v1/topology")
    if not isinstance(text, str):
        raise TestbedError(f"the cloud's agent did not answer GET /v1/topology: {text!r}")
    crmap = load_topology_text(text, f"{cloud}/v1/topology")
    return device_view(crmap, DeviceConfig(SOURCE, "", EDGE), agents.plan.node(SOURCE).group)


def _live_choices(agents: Agents, timeout: float = WAIT_S) -> list[str]:
    """Greedy's choices in the agents' live map; waits until the probers have measured them."""
    deadline = time.monotonic() + timeout
    while True:
        choices = capable_nodes(live_view(agents), TASK_FILE, SOURCE)
        if choices or time.monotonic() > deadline:
            return choices
        time.sleep(1.0)


def _map_version(device: Device) -> int:
    maps = (device.status() or {}).get("maps") or {}
    entry = maps.get("candidates") if isinstance(maps, dict) else None
    return int(entry.get("version", 0)) if isinstance(entry, dict) else 0


def _fresh_rows(device: Device, since_ms: int, timeout: float = WAIT_S) -> int:
    """Waits until dev1 holds candidates its center computed after ``since_ms`` (the map
    version is the push's time in ms); returns that version."""
    deadline = time.monotonic() + timeout
    while (version := _map_version(device)) < since_ms:
        if time.monotonic() > deadline:
            raise TestbedError(f"freeoffload: no candidates pushed to {SOURCE} by its center "
                               f"within {timeout:.0f} s (last version {version}); see "
                               "logs/edge2.agent.log")
        time.sleep(0.2)
    return version


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


def _strategies(plan: Plan, cgroups: Cgroups, device: Device | None, agents: Agents | None,
                rng: random.Random) -> dict[str, Callable[[int], list[TaskRecord]]]:
    def local(n: int) -> list[TaskRecord]:
        return _client(plan, cgroups, [plan.address(SOURCE)], n)

    def greedy(n: int) -> list[TaskRecord]:
        if agents is None:
            raise TestbedError("greedy: the agents did not start")
        time.sleep(FRESH_S)  # the agents' view has seen the drain
        choices = _live_choices(agents)
        if not choices:
            raise TestbedError("greedy: no node of the agents' live map can run the audio task")
        return _client(plan, cgroups, [plan.address(rng.choice(choices)) for _ in range(n)], n)

    def freeoffload(n: int) -> list[TaskRecord]:
        if device is None:
            raise TestbedError("freeoffload: the device side did not start")
        _fresh_rows(device, int((time.time() + FRESH_S) * 1000))
        return device.run_client(TASK_FILE, plan.address(EDGE), KIND, UNITS, n)

    return {"local": local, "greedy": greedy, "freeoffload": freeoffload}


def _agents(plan: Plan, cgroups: Cgroups, state_dir: Path) -> tuple[Device, Agents, bool]:
    """dev1's device and the agents: those of ``up --agents``, else started here (and True)."""
    from freeoffload.topology import load_topology

    device = Device(plan, cgroups, SOURCE, state_dir / SOURCE, attached=EDGE)
    if (state_dir / "agents" / "running").exists():
        device.start()
        return device, Agents.load(plan, cgroups, state_dir / "agents"), False
    device.start(fresh=True)
    agents = Agents(plan, cgroups, state_dir / "agents")
    try:
        agents.start(load_topology(plan.topology_path), [device])
    except BaseException:
        agents.stop()
        raise
    return device, agents, True


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
    device = agents = None
    started = False
    cgroups.create(CLIENT_CGROUP, 1.0)
    if "freeoffload" in strategies or "greedy" in strategies:
        device, agents, started = _agents(plan, cgroups, state_dir)
    rng = random.Random(seed)  # noqa: S311 - the Greedy draw, not a secret
    run = _strategies(plan, cgroups, device, agents, rng)
    results: list[Fig9Result] = []
    rows: list[dict[str, Any]] = []
    try:
        if agents is not None and not _live_choices(agents):
            raise TestbedError("fig9: the agents never measured a node able to run the task")
        for n in SIZES[size]:
            for strategy in strategies:
                time.sleep(DRAIN_S)  # let the previous burst's load drain from the nodes
                records = run[strategy](n)
                results.append(_summarize(strategy, records))
                rows += [{"strategy": strategy, "tasks": n, **asdict(r)} for r in records]
                print(f"fig9: {strategy:11} N={n:<4} mean {results[-1].mean_ms:8.1f} ms  "
                      f"p95 {results[-1].p95_ms:8.1f} ms  served {results[-1].served}",
                      flush=True)
    finally:
        if started and agents is not None:
            agents.stop()  # only those started here; `up --agents` ones stay until down
    write_csv(out / "fig9_tasks.csv", rows, ["strategy", "tasks", *TaskRecord.__annotations__])
    write_csv(out / "fig9.csv", [asdict(r) for r in results],
              ["strategy", "tasks", "mean_ms", "p95_ms", "max_ms", "served"])
    series = {s: ([float(r.tasks) for r in results if r.strategy == s],
                  [r.mean_ms for r in results if r.strategy == s]) for s in strategies}
    plot_lines(out / "fig9.png", series, "tasks from dev1 (audio: urgent, sensitive)",
               "mean completion time (ms)", "fig9: task completion time")
    return results
