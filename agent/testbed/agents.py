"""The agents of the testbed: ``freeoffload agent`` on every edge and the cloud, as in the file.

Groups come from the CR-map's ``Group``; each group's center is named in the testbed file
(``centers``), else the group's strongest edge. Members report to their center, centers to the
cloud and to each other (peers); one token per testbed. Each agent runs in its node's namespace,
outside the node's CPU share (an operator's daemon, not the node's workload), with its probes
scoped to the node's cgroup (``probes: {cgroup: ...}``), so the CPU it reports is the node's.
The center of a device's edge gets a ``trigger`` that pushes the selection policy to that
device's ``freeoffload device`` when the edge passes the threshold.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from freeoffload.errors import TestbedError

from . import procs
from .cgroups import Cgroups, kill_pids
from .config import NodePlan, Plan
from .offload import Device, fo

__all__ = ["AGENT_PORT", "REFRESH", "Agents", "agent_configs", "start_all"]

AGENT_PORT = 7070
AGENT_CGROUP = "agents"
# the centers' trigger.refresh: a look at the live map every second, a push on a tenth of a
# node's cores, unchanged rows again every 15 s (fig9 waits for fresh rows on that basis)
REFRESH = {"interval": 1.0, "max_age": 15.0, "min_change": 0.1}


def _centers(plan: Plan, crmap: Any) -> dict[str, str]:
    centers: dict[str, str] = {}
    for group in sorted({n.group for n in plan.nodes if n.role == "edge"}):
        if group in plan.centers:
            centers[group] = plan.centers[group]
            continue
        edges = [crmap.nodes[n.name] for n in plan.nodes if n.group == group and n.role == "edge"]
        best = max(edges, key=lambda n: n.computing_power.cpu.cores * n.computing_power.cpu.mhz)
        centers[group] = best.name
    return centers


def _record(node: NodePlan, plan: Plan, crmap: Any) -> dict[str, Any]:
    power = crmap.nodes[node.name].computing_power
    return {"Role": node.role, "Security": node.security, "Address": plan.address(node.name),
            "ComputingPower": {"CPU": {"cores": power.cpu.cores, "MHz": power.cpu.mhz},
                               "Memory": power.memory_mib, "Storage": power.storage_gib}}


def agent_configs(plan: Plan, crmap: Any, cgroups: Cgroups, token: str,
                  trigger: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    """One agent configuration per edge and cloud node. Each center gets ``trigger`` with the
    devices (of ``trigger["devices"]``) attached to its group's nodes."""
    centers = _centers(plan, crmap)
    cloud = next(n for n in plan.nodes if n.role == "cloud")
    groups = sorted({n.group for n in plan.nodes if n.role in ("edge", "cloud")})
    out: dict[str, dict[str, Any]] = {}
    for node in plan.nodes:
        if node.role == "device":
            continue
        cfg: dict[str, Any] = {
            "node": node.name, "group": node.group, "listen": f"{node.ip}:{AGENT_PORT}",
            "token": token,
            "zeroconf": False, "report_interval": 1, "offline_after": 3,
            "record": _record(node, plan, crmap),
            "probes": {"mode": "procfs", "cgroup": cgroups.scope(node.name)},
            "prober": {"interval": 10},
        }
        if node.role == "cloud" or centers[node.group] == node.name:
            cfg["tokens"] = {g: token for g in groups if g != node.group}
        if node.role == "cloud":
            cfg["role"] = "cloud"
        elif centers[node.group] == node.name:
            cfg["role"] = "center"
            cfg["cloud"] = f"{cloud.ip}:{AGENT_PORT}"
            cfg["peers"] = [f"{plan.node(c).ip}:{AGENT_PORT}" for g, c in centers.items()
                            if g != node.group]
            mine = [d for d in (trigger or {}).get("devices", [])
                    if plan.node(d["attached"]).group == node.group]
            if trigger and mine:
                cfg["trigger"] = {**trigger, "devices": mine}
        else:
            cfg["role"] = "member"
            cfg["center"] = f"{plan.node(centers[node.group]).ip}:{AGENT_PORT}"
        out[node.name] = cfg
    return out


@dataclass
class Agents:
    """The running agents of a testbed."""

    plan: Plan
    cgroups: Cgroups
    root: Path
    token: str = field(default_factory=lambda: secrets.token_hex(16))
    configs: dict[str, dict[str, Any]] = field(default_factory=dict)
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @classmethod
    def load(cls, plan: Plan, cgroups: Cgroups, root: Path) -> Agents:
        """The agents ``up --agents`` started (read back from their configuration files)."""
        configs = {p.stem: json.loads(p.read_text()) for p in sorted(root.glob("*.yaml"))}
        if not configs:
            raise TestbedError(f"no agent configurations in {root}")
        token = str(next(iter(configs.values()))["token"])
        return cls(plan, cgroups, root, token=token, configs=configs)

    def start(self, crmap: Any, devices: list[Device], threshold: float = 70.0,
              samples: int = 2) -> None:
        trigger = None
        if devices:
            trigger = {"threshold": threshold, "hysteresis": 10, "samples": samples,
                       "refresh": REFRESH,
                       "policy": str(devices[0].policy), "key": str(devices[0].key),
                       "devices": [{"name": d.name, "url": d.url, "attached": d.attached}
                                   for d in devices]}
            from freeoffload.agent.config import TriggerConfig

            if "task" in TriggerConfig.__dataclass_fields__:  # the task the targets are for
                trigger["task"] = str(devices[0].task_file)
        self.configs = agent_configs(self.plan, crmap, self.cgroups, self.token, trigger)
        self.cgroups.create(AGENT_CGROUP, 1.0)
        self.root.mkdir(parents=True, exist_ok=True)
        for name, cfg in self.configs.items():
            path = self.root / f"{name}.yaml"
            path.write_text(json.dumps(cfg, indent=1))
            self.procs[name] = procs.spawn(
                self.plan.node(name).netns, self.cgroups.procs_files(AGENT_CGROUP),
                fo("agent", "--config", str(path)),
                self.root.parent / "logs" / f"{name}.agent.log")
        for name in self.configs:
            self.wait_healthy(name)
        self.wait_converged()

    def _names_in_map(self, name: str) -> set[str]:
        text = self.get(name, "/v1/topology")
        try:
            data = yaml.safe_load(text) if isinstance(text, str) else text
        except yaml.YAMLError:
            return set()
        if not isinstance(data, dict):
            return set()
        return {str(n.get("Name")) for n in data.get("nodes") or [] if isinstance(n, dict)}

    def wait_converged(self, timeout: float = 90.0) -> None:
        """Until the cloud's map holds every edge and the cloud, and each center's holds the
        cloud: an experiment starts from a system in its steady state, not mid-discovery."""
        servers = {n.name for n in self.plan.nodes if n.role != "device"}
        clouds = [n for n, c in self.configs.items() if c["role"] == "cloud"]
        centers = [n for n, c in self.configs.items() if c["role"] == "center"]
        deadline = time.monotonic() + timeout
        missing: dict[str, set[str]] = {}
        while time.monotonic() < deadline:
            missing = {n: servers - self._names_in_map(n) for n in clouds}
            missing.update({n: set(clouds) - self._names_in_map(n) for n in centers})
            missing = {n: m for n, m in missing.items() if m}
            if not missing:
                return
            time.sleep(0.5)
        raise TestbedError("the agents did not converge in "
                           f"{timeout:.0f} s: missing from their maps: "
                           + "; ".join(f"{n}: {', '.join(sorted(m))}"
                                       for n, m in sorted(missing.items())))

    def stop(self) -> None:
        """Stop every agent started here."""
        kill_pids({p.pid for p in self.procs.values()}, grace=3.0)
        self.procs.clear()

    def get(self, name: str, path: str, timeout: float = 3.0) -> Any:
        """``GET path`` on ``name``'s agent, from inside the testbed (JSON or text)."""
        node = self.plan.node(name)
        cfg = self.configs[name]
        result = subprocess.run(
            ["nsenter", f"--net=/run/netns/{node.netns}", "curl", "-sf", "--max-time",
             str(timeout), "-H", f"Authorization: Bearer {self.token}",
             "-H", f"X-FreeOffload-Group: {cfg['group']}",
             f"http://{node.ip}:{AGENT_PORT}{path}"], capture_output=True, text=True)
        if result.returncode != 0:
            return None
        try:
            return json.loads(result.stdout)
        except ValueError:
            return result.stdout

    def wait_healthy(self, name: str, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        proc = self.procs.get(name)
        while time.monotonic() < deadline and (proc is None or proc.poll() is None):
            if self.get(name, "/healthz") is not None:
                return
            time.sleep(0.5)
        log = self.root.parent / "logs" / f"{name}.agent.log"
        tail = log.read_text(errors="replace")[-800:] if log.exists() else ""
        raise TestbedError(f"the agent of {name} (freeoffload agent) did not come up:\n{tail}")

    def center_of(self, node: str) -> str:
        group = self.plan.node(node).group
        for name, cfg in self.configs.items():
            if cfg["group"] == group and cfg["role"] in ("center", "cloud"):
                return name
        raise TestbedError(f"no center for group {group}")



def _attached(crmap: Any, device: str) -> str:
    """The edge a device reaches first (its lowest-latency link to an edge)."""
    links = [(e.latency_ms, e.end_node if e.start_node == device else e.start_node)
             for e in crmap.edges if device in (e.start_node, e.end_node)]
    edges = sorted((ms, n) for ms, n in links if crmap.nodes[n].role == "edge")
    if not edges:
        raise TestbedError(f"device {device} has no link to an edge in the CR-map")
    return str(edges[0][1])


def start_all(plan: Plan, cgroups: Cgroups, state_dir: Path) -> Agents:
    """``freeoffload device`` on every device and an agent on every edge and the cloud, with
    each center's trigger pushing to the devices attached to its group (``up --agents``)."""
    from freeoffload.topology import load_topology

    crmap = load_topology(plan.topology_path)
    devices = [Device(plan, cgroups, n.name, state_dir / n.name, attached=_attached(crmap, n.name))
               for n in plan.nodes if n.role == "device"]
    for device in devices:
        device.start()
    agents = Agents(plan, cgroups, state_dir / "agents")
    agents.start(crmap, devices)
    (agents.root / "running").write_text("started by `testbed up --agents`\n")
    return agents
