"""Scenario ``fig7``: re-offloading when edge1 passes 70% CPU.

dev1 runs sensitive, urgent tasks (``examples/tasks/audio.yaml``) one after another with an
unmodified program, ``curl``, under ``freeoffload run``, always connecting to edge1's task
service. A load ramps up inside edge1's CPU share. The agents run as the file says (edge1 a
member of campus-a, whose center, edge2, has a trigger for dev1). When edge1 stays above 70%,
the center pushes the selection policy and new candidates to dev1's ``freeoffload device``; from
then on the hook sends dev1's connections to edge3 (secure, lightly loaded), never edge2 or
edge4 (not secure) nor the cloud. The center also keeps dev1's candidates current as the live
map changes (refresh pushes): "the push" is the first one after which dev1's rows say edge1
cannot take the task (left out by the trigger, or without a core free), whichever of the two
kinds it was; it must come once edge1 is past the threshold.

Output in OUT: ``fig7_cpu.csv`` (every node's CPU, % of its share, every 0.5 s),
``fig7_tasks.csv`` (which node served each task), ``fig7.png`` (CPU over time, the push
marked) and ``fig7.txt`` (the story). The scenario raises TestbedError unless that outcome is
exactly what happened.
"""

from __future__ import annotations

import re
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from freeoffload.errors import TestbedError

from . import load as load_module
from . import procs
from .agents import Agents
from .cgroups import Cgroups
from .config import Plan
from .offload import CLIENT_CGROUP, Device, fo
from .report import plot_cpu, write_csv

__all__ = ["SIZES", "Fig7", "run_fig7"]

SIZES = {"reduced": (15.0, 45.0), "full": (40.0, 80.0)}  # (ramp s, hold s)
SOURCE, EDGE, EXPECTED = "dev1", "edge1", "edge3"
THRESHOLD = 70.0
AFTER_PUSH = 4  # tasks to see after the push before stopping
STEADY_S = 20.0  # at most, after the agents converged, for dev1's rows to hold both secure edges


@dataclass
class Fig7:
    plan: Plan
    cgroups: Cgroups
    state_dir: Path
    ramp_s: float
    hold_s: float
    t0: float = 0.0
    t0_wall: float = 0.0
    cpu_rows: list[dict[str, float]] = field(default_factory=list)
    tasks: list[dict[str, Any]] = field(default_factory=list)
    push_at: float | None = None
    push_record: dict[str, Any] | None = None
    center_view: list[tuple[float, float]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def prepare(self) -> tuple[Device, Agents]:
        device = Device(self.plan, self.cgroups, SOURCE, self.state_dir / SOURCE, attached=EDGE)
        device.start(fresh=True)  # nothing pushed yet: dev1's tasks go where it connects
        from freeoffload.topology import load_topology

        if (self.state_dir / "agents" / "running").exists():  # `up --agents` started them
            return device, Agents.load(self.plan, self.cgroups, self.state_dir / "agents")
        agents = Agents(self.plan, self.cgroups, self.state_dir / "agents")
        try:
            agents.start(load_topology(self.plan.topology_path), [device], THRESHOLD)
        except BaseException:
            agents.stop()
            raise
        return device, agents

    def _sample(self, device: Device, agents: Agents) -> None:
        now = time.monotonic() - self.t0
        row: dict[str, float] = {"t": round(now, 2)}
        usage = {n.name: self.cgroups.usage_usec(n.name) for n in self.plan.nodes}
        time.sleep(0.5)
        wall = 0.5 + 1e-9
        for node in self.plan.nodes:
            used = (self.cgroups.usage_usec(node.name) - usage[node.name]) / 1e6
            row[node.name] = round(min(100.0, 100 * used / (wall * node.cpu)), 1)
        self.cpu_rows.append(row)
        if self.push_record is None and self._pushed(device):
            moved = _moving_push(agents.get(agents.center_of(EDGE), "/v1/pushes"),
                                 self.t0_wall)
            self.push_record = moved or {
                "action": "refresh", "reason": f"live candidates: {EDGE} has no core free",
                "targets": []}
        seen = agents.get(agents.center_of(EDGE), f"/v1/nodes/{EDGE}")
        cpu = _cpu_of(seen)
        if cpu is not None:
            self.center_view.append((now, cpu))

    def sampler(self, device: Device, agents: Agents) -> None:
        while not self.stop.is_set():
            self._sample(device, agents)

    def watcher(self, device: Device) -> None:
        """Notices the push within ~0.2 s (the moment marked in the outputs)."""
        while not self.stop.is_set() and not self._pushed(device):
            time.sleep(0.2)

    def _pushed(self, device: Device) -> bool:
        """Whether dev1's device has received the push: its candidates say EDGE cannot take a
        task of its Demand (offline in the rows, or too little CPU free)."""
        if self.push_at is None and not _edge_usable(self.plan, device):
            self.push_at = time.monotonic() - self.t0
        return self.push_at is not None

    def one_task(self, device: Device) -> None:
        pushed = self._pushed(device)
        url = f"http://{self.plan.address(EDGE)}/v1/task/audio?units=1"
        argv = fo("run", "--task", str(device.task_file), "--store", str(device.store), "--",
                  "curl", "-s", "-o", "/dev/null", "-D", "-", "-X", "POST", "--max-time", "30",
                  url)
        sent = time.monotonic() - self.t0
        result = procs.run(self.plan.node(SOURCE).netns, self.cgroups.procs_files(CLIENT_CGROUP),
                           argv, timeout=60)
        found = re.search(r"X-FreeOffload-Node: (\S+)", result.stdout)
        # a push that lands while the task starts may or may not apply to it: neither phase
        phase = "after" if pushed else ("transition" if self._pushed(device) else "before")
        self.tasks.append({"t": round(sent, 2), "served_by": found.group(1) if found else "",
                           "phase": phase,
                           "error": "" if found else (result.stderr or result.stdout)[-200:]})

    def run(self, device: Device, agents: Agents, timeout: float) -> None:
        # start from the steady state: dev1's center has pushed rows in which both secure
        # edges are online and idle (the other group's nodes and links come through the
        # cloud; the probers time a node as soon as it joins, so this takes a refresh or two)
        deadline = time.monotonic() + STEADY_S
        while not (_edge_usable(self.plan, device) and
                   _edge_usable(self.plan, device, EXPECTED, default=False)):
            if time.monotonic() > deadline:
                raise TestbedError(f"fig7: dev1's center did not push rows with {EDGE} and "
                                   f"{EXPECTED} online and idle within {STEADY_S:g} s of the "
                                   "agents' convergence; see logs/edge2.agent.log (refresh) "
                                   "and logs/cloud.agent.log (probe)")
            time.sleep(0.5)
        self.t0, self.t0_wall = time.monotonic(), time.time()
        node = self.plan.node(EDGE)
        # run by path without site-packages: its start-up must not load the node by itself
        load = procs.spawn(node.netns, self.cgroups.procs_files(EDGE),
                           [sys.executable, "-I", "-S", str(Path(load_module.__file__)),
                            "--cores", str(node.cpu), "--ramp", str(self.ramp_s),
                            "--hold", str(self.hold_s)],
                           self.state_dir / "logs" / "fig7.load.log")
        threads = [threading.Thread(target=self.sampler, args=(device, agents), daemon=True),
                   threading.Thread(target=self.watcher, args=(device,), daemon=True)]
        for thread in threads:
            thread.start()
        try:
            while time.monotonic() - self.t0 < timeout:
                self.one_task(device)
                after = [t for t in self.tasks if t["phase"] == "after"]
                if len(after) >= AFTER_PUSH:
                    break
                time.sleep(0.5)
        finally:
            self.stop.set()
            for thread in threads:
                thread.join(timeout=10)
            load.kill()
            load.wait()


def _edge_usable(plan: Plan, device: Device, node: str = EDGE, default: bool = True) -> bool:
    """Whether dev1's current candidates let ``node`` take one task of dev1's Demand (no rows
    yet, or no row for it: ``default``; for EDGE, dev1's programs connect to it unchanged)."""
    import struct

    from freeoffload.firmware_hooks.store import PolicyStore
    from freeoffload.topology import load_task

    from freeoffload.errors import HookError

    try:
        rows = PolicyStore(device.store).map_items("candidates")
    except (HookError, OSError):
        return default
    host, port = plan.address(node).rsplit(":", 1)
    want = bytes(int(x) for x in host.split("."))
    demand = round(load_task(device.task_file).demand.cpu_cores * 1000)
    for value in rows.values():
        flags, _family, ip4, row_port = struct.unpack_from("<II4sI", value)
        if flags & 0x1 and ip4 == want and row_port == int(port):
            free_cpu = struct.unpack_from("<I", value, 52)[0]
            return bool(flags & 0x2) and free_cpu >= demand
    return default


def _moving_push(answer: Any, since: float) -> dict[str, Any] | None:
    """The newest push to dev1 since the scenario started that took EDGE out of its targets:
    the trigger's fire, or a refresh of the live candidates that came first."""
    if not isinstance(answer, dict):
        return None
    records = [r for key in ("pushes", "refreshes") for r in answer.get(key) or ()
               if isinstance(r, dict)]
    moving = [r for r in records
              if r.get("result") == "ok" and r.get("device") == SOURCE and
              isinstance(r.get("at"), int | float) and r["at"] >= since and
              EDGE not in (r.get("targets") or ())]
    return max(moving, key=lambda r: float(r["at"])) if moving else None


def _cpu_of(record: Any) -> float | None:
    if not isinstance(record, dict):
        return None
    node = record.get("node", record)
    resource = node.get("Resource") if isinstance(node, dict) else None
    value = resource.get("cpu_percent") if isinstance(resource, dict) else None
    return float(value) if isinstance(value, int | float) else None


def _crossing(run: Fig7) -> float | None:
    """When EDGE's CPU was first at or above the threshold for two samples in a row."""
    for before, row in zip(run.cpu_rows, run.cpu_rows[1:], strict=False):
        if before.get(EDGE, 0.0) >= THRESHOLD and row.get(EDGE, 0.0) >= THRESHOLD:
            return before["t"]
    return None


def _story(run: Fig7) -> list[str]:
    before = [t["served_by"] for t in run.tasks if t["phase"] == "before"]
    after = [t["served_by"] for t in run.tasks if t["phase"] == "after"]
    lines = [f"fig7: dev1 ran {len(run.tasks)} sensitive+urgent tasks via curl under "
             f"freeoffload run, always connecting to {EDGE}"]
    crossing = _crossing(run)
    lines.append(f"  {EDGE} passed {THRESHOLD:g}% of its CPU share at t={crossing}s"
                 if crossing is not None else f"  {EDGE} never passed {THRESHOLD:g}% CPU")
    if run.push_at is not None:
        record = run.push_record or {}
        levels = record.get("levels") or {}
        targets = ", ".join(f"{n} ({levels[n]})" if n in levels else str(n)
                            for n in record.get("targets") or [])
        lines.append(f"  push to dev1 at t={run.push_at:.1f}s: {record.get('reason', '')} "
                     f"(targets {targets or '-'})")
    else:
        lines.append("  no push reached dev1")
    lines.append(f"  before the push: {', '.join(before) or '-'}")
    lines.append(f"  after the push:  {', '.join(after) or '-'}")
    return lines


def _check(run: Fig7) -> None:
    errors = [t["error"] for t in run.tasks if t["error"]]
    if errors:
        raise TestbedError(f"fig7: {len(errors)} tasks failed; first: {errors[0]}")
    crossing = _crossing(run)
    if crossing is None:
        raise TestbedError(f"fig7: {EDGE} never reached {THRESHOLD:g}% of its CPU share")
    if run.push_at is None:
        seen = max((c for _, c in run.center_view), default=None)
        raise TestbedError(
            f"fig7: {EDGE} ran at >= {THRESHOLD:g}% of its share from t={crossing}s but its "
            f"center never pushed to dev1; the center saw {EDGE} at most at {seen}% CPU "
            "(the agent's probes must report CPU as a share of the node's cgroup quota, and "
            "the center needs a trigger for dev1: see logs/edge*.agent.log)")
    # the agents sample over their own windows: allow them two report intervals of lead
    if run.push_at < crossing - 2.0:
        raise TestbedError(f"fig7: dev1 got a push at t={run.push_at:.1f}s, before {EDGE} "
                           f"passed {THRESHOLD:g}% (t={crossing}s)")
    if (run.push_record or {}).get("action", "fire") not in ("fire", "refresh"):
        raise TestbedError(f"fig7: the first push was not a re-offload: {run.push_record}")
    before = {t["served_by"] for t in run.tasks if t["phase"] == "before"}
    after = [t["served_by"] for t in run.tasks if t["phase"] == "after"]
    if before - {EDGE}:
        raise TestbedError(f"fig7: before the push tasks went to {sorted(before)}, not {EDGE}")
    if not after or set(after) != {EXPECTED}:
        targets = (run.push_record or {}).get("targets")
        raise TestbedError(
            f"fig7: after the push tasks went to {after}; expected {EXPECTED} only (edge2/edge4 "
            f"are not secure; the cloud is not the lowest-latency secure edge). The center's "
            f"push listed the targets {targets}"
            + (f": {EXPECTED} is missing from what edge1's center pushed (its view must "
               f"include other groups' nodes)" if targets is not None and EXPECTED not in targets
               else ""))


def run_fig7(plan: Plan, cgroups: Cgroups, size: str, out: Path, state_dir: Path) -> Fig7:
    ramp_s, hold_s = SIZES.get(size, SIZES["reduced"])
    run = Fig7(plan, cgroups, state_dir, ramp_s, hold_s)
    device, agents = run.prepare()
    try:
        run.run(device, agents, timeout=ramp_s + hold_s)
    finally:
        agents.stop()  # only those started here; `up --agents` ones stay until down
    names = [n.name for n in plan.nodes]
    write_csv(out / "fig7_cpu.csv", run.cpu_rows, ["t", *names])
    write_csv(out / "fig7_tasks.csv", run.tasks, ["t", "served_by", "phase", "error"])
    marks = {"push": run.push_at} if run.push_at is not None else {}
    plot_cpu(out / "fig7.png", [r["t"] for r in run.cpu_rows],
             {n: [r.get(n, 0.0) for r in run.cpu_rows] for n in names if not n.startswith("dev")},
             marks, THRESHOLD, "fig7: CPU per node (share of its quota); dev1's tasks re-offloaded",
             served=[(t["t"], t["served_by"]) for t in run.tasks])
    story = _story(run)
    (out / "fig7.txt").write_text("\n".join(story) + "\n")
    print("\n".join(story), flush=True)
    _check(run)
    return run

