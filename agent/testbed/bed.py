"""``up``, ``down`` and ``status`` of the testbed.

``up`` records what it is about to make in a state file (``/run/freeoffload-testbed/state.json``)
before making it, so ``down`` can remove everything even after ``up`` crashed half-way; ``down``
also finds leftovers by prefix (namespaces ``PREFIX*``, the cgroup ``PREFIX+"testbed"``, and every
process living in either), so it works with no state file at all.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from freeoffload.errors import TestbedError

from . import net, procs
from .cgroups import Cgroups, find_cgroups, kill_pids
from .config import Plan

__all__ = ["STATE_DIR", "Status", "down", "read_state", "status", "up"]

STATE_DIR = Path(os.environ.get("FREEOFFLOAD_TESTBED_STATE", "/run/freeoffload-testbed"))
DEFAULT_PREFIX = "fotb-"
HUB_CGROUP = "hub"


def _state_file() -> Path:
    return STATE_DIR / "state.json"


def read_state() -> dict[str, Any] | None:
    try:
        data = json.loads(_state_file().read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as err:
        raise TestbedError(f"{_state_file()}: unreadable state ({err}); "
                           "`freeoffload testbed down --prefix PREFIX` removes by name") from err
    return data if isinstance(data, dict) else None


def _write_state(state: dict[str, Any]) -> None:
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    tmp = _state_file().with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=1, sort_keys=True))
    tmp.replace(_state_file())


def _wait_for_line(log: Path, text: str, proc: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if log.exists() and text in log.read_text(errors="replace"):
            return
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    tail = log.read_text(errors="replace")[-800:] if log.exists() else ""
    raise TestbedError(f"{log.name}: did not report '{text}' within {timeout:.0f}s:\n{tail}")


def _start_relay(plan: Plan, cgroups: Cgroups, state: dict[str, Any]) -> None:
    binary = procs.build_relay()
    argv = [str(binary)]
    for node in plan.nodes:
        a, b, _ = net.hub_ports(plan, node)
        argv += ["-p", f"{a},{b},{node.mac}"]
    for src in plan.nodes:
        for dst in plan.nodes:
            delay = plan.delay_ms.get((src.name, dst.name))
            if delay:
                argv += ["-d", f"{src.index},{dst.index},{int(delay * 1000)}"]
    log = STATE_DIR / "logs" / "relay.log"
    proc = procs.spawn(plan.hub, cgroups.procs_files(HUB_CGROUP), argv, log)
    state["processes"].append({"name": "relay", "node": HUB_CGROUP, "pid": proc.pid})
    _write_state(state)
    _wait_for_line(log, "ports ready", proc, 10.0)


def _start_services(plan: Plan, cgroups: Cgroups, state: dict[str, Any]) -> None:
    started = []
    for node in plan.nodes:
        log = STATE_DIR / "logs" / f"{node.name}.service.log"
        workdir = STATE_DIR / "work" / node.name
        argv = [sys.executable, "-m", "freeoffload.agent.testbed.service", "--node", node.name,
                "--listen", f"{node.ip}:{plan.service_port}", "--workdir", str(workdir)]
        proc = procs.spawn(node.netns, cgroups.procs_files(node.name), argv, log)
        state["processes"].append({"name": "service", "node": node.name, "pid": proc.pid})
        started.append((log, proc))
    _write_state(state)
    for log, proc in started:
        _wait_for_line(log, "serving", proc, 30.0)


def up(plan: Plan, services: bool = True) -> dict[str, Any]:
    """Build the testbed of ``plan``; on any failure remove what was made and raise."""
    if os.geteuid() != 0:
        raise TestbedError("`testbed up` needs root (namespaces, cgroups, qdiscs)")
    if read_state() is not None or net.list_namespaces(plan.prefix):
        raise TestbedError("a testbed is up already (or left over); run `freeoffload testbed "
                           "down` first")
    cgroups = find_cgroups(plan.prefix)
    state: dict[str, Any] = {
        "prefix": plan.prefix, "config": str(plan.config_path),
        "topology": str(plan.topology_path), "started": time.time(), "complete": False,
        "netem": False, "cgroup_version": cgroups.version, "processes": [],
        "nodes": {n.name: {"netns": n.netns, "ip": n.ip, "cpu": n.cpu, "role": n.role}
                  for n in plan.nodes},
        "service_port": plan.service_port,
    }
    _write_state(state)
    try:
        cgroups.create(HUB_CGROUP, float(os.cpu_count() or 1), weight=16 * 1024)
        for node in plan.nodes:  # quotas come last: the services start at full speed
            cgroups.create(node.name, None)
        state["netem"] = net.has_netem()
        net.build_network(plan, netem=state["netem"])
        if not state["netem"]:
            _start_relay(plan, cgroups, state)
        if services:
            _start_services(plan, cgroups, state)
        for node in plan.nodes:
            cgroups.set_quota(node.name, node.cpu)
    except BaseException:
        down(plan.prefix)
        raise
    state["complete"] = True
    _write_state(state)
    return state


@dataclass
class Removed:
    """What ``down`` removed."""

    processes: list[int] = field(default_factory=list)
    namespaces: list[str] = field(default_factory=list)
    cgroups: list[str] = field(default_factory=list)
    state: bool = False


def down(prefix: str | None = None) -> Removed:
    """Remove every namespace, cgroup and process of the testbed, and its state."""
    state = read_state() if _state_file().exists() else None
    prefix = prefix or (state or {}).get("prefix") or DEFAULT_PREFIX
    removed = Removed()
    pids = {int(p["pid"]) for p in (state or {}).get("processes", [])}
    namespaces = net.list_namespaces(prefix)
    try:
        cgroups: Cgroups | None = find_cgroups(prefix)
    except TestbedError:
        cgroups = None
    pids |= procs.netns_pids(namespaces)
    if cgroups is not None:
        pids |= cgroups.pids()
    pids.discard(os.getpid())
    alive = {p for p in pids if Path(f"/proc/{p}").exists()}
    kill_pids(alive, grace=3.0)
    removed.processes = sorted(alive)
    removed.namespaces = net.remove_namespaces(prefix)
    if cgroups is not None:
        removed.cgroups = cgroups.remove()
    if STATE_DIR.exists() and (state is None or state.get("prefix") == prefix):
        shutil.rmtree(STATE_DIR, ignore_errors=True)
        removed.state = True
    return removed


@dataclass
class Status:
    """What is up now."""

    prefix: str
    state: dict[str, Any] | None
    namespaces: list[str]
    cgroups: dict[str, dict[str, Any]]
    processes: list[dict[str, Any]]

    @property
    def is_up(self) -> bool:
        return bool(self.state and self.state.get("complete") and self.namespaces)


def status(prefix: str | None = None) -> Status:
    state = read_state()
    prefix = prefix or (state or {}).get("prefix") or DEFAULT_PREFIX
    groups: dict[str, dict[str, Any]] = {}
    try:
        cgroups = find_cgroups(prefix)
        for name in cgroups.nodes():
            groups[name] = {"cpu_quota": cgroups.quota_cores(name),
                            "cpu_used_seconds": cgroups.usage_usec(name) / 1e6,
                            "pids": sorted(cgroups.pids(name))}
    except TestbedError:
        pass
    processes = []
    for proc in (state or {}).get("processes", []):
        alive = Path(f"/proc/{proc['pid']}").exists()
        processes.append({**proc, "alive": alive})
    return Status(prefix, state, net.list_namespaces(prefix), groups, processes)
