"""This node's own CR-map record: static facts, current use, and the links it measured.

Static facts (cores, MHz, memory, storage) come from psutil unless the configuration's
``record`` gives them. Current CPU use comes from ``freeoffload.probes`` when it offers a node
collector, else from the node's cgroup v2 ``cpu.stat`` (``probes.cgroup`` in the config: the
node's share of its cores, as when several emulated nodes share a machine), else psutil.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any

import psutil
from freeoffload.topology import CPU, ComputingPower, Edge, Node, Resource

from freeoffload.errors import AgentConfigError, Location

from .config import AgentConfig
from .log import event

__all__ = ["CgroupCPU", "LocalNode"]

log = logging.getLogger("freeoffload.agent.node")


class CgroupCPU:
    """CPU use of one cgroup v2 as a percentage of ``cores`` cores, between two reads."""

    def __init__(self, path: str, cores: float) -> None:
        self.stat = Path(path) / "cpu.stat"
        self.cores = max(cores, 0.01)
        self._last = (time.monotonic(), self._usage())

    def _usage(self) -> float:
        try:
            for line in self.stat.read_text().splitlines():
                key, _, value = line.partition(" ")
                if key == "usage_usec":
                    return float(value)
        except OSError as err:
            raise AgentConfigError.at(Location("probes.cgroup"), "cgroup",
                                      f"cannot read {self.stat}: {err.strerror}",
                                      "give a cgroup v2 directory") from err
        return 0.0

    def percent(self) -> float:
        now, usage = time.monotonic(), self._usage()
        then, before = self._last
        self._last = (now, usage)
        wall = (now - then) * 1e6
        if wall <= 0:
            return 0.0
        return max(0.0, min(100.0, (usage - before) / wall / self.cores * 100.0))


def _number(record: dict[str, Any], *path: str) -> float | None:
    value: Any = record
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) \
        else None


class LocalNode:
    """Builds this node's record on each :meth:`sample`."""

    def __init__(self, cfg: AgentConfig) -> None:
        self.cfg = cfg
        rec = cfg.record
        cores = _number(rec, "ComputingPower", "CPU", "cores") or float(psutil.cpu_count() or 1)
        freq = psutil.cpu_freq()
        mhz = _number(rec, "ComputingPower", "CPU", "MHz") or (freq.max or freq.current
                                                                if freq else 0.0)
        memory = _number(rec, "ComputingPower", "Memory") or psutil.virtual_memory().total / 2**20
        disk = shutil.disk_usage("/")
        storage = _number(rec, "ComputingPower", "Storage") or disk.total / 2**30
        self.power = ComputingPower(CPU(cores, float(mhz)), float(memory), float(storage))
        self.role: Any = str(rec.get("Role", "cloud" if cfg.role == "cloud" else "edge"))
        self.security = bool(rec.get("Security", False))
        self.address = str(rec.get("Address", cfg.address))
        self.cgroup = CgroupCPU(cfg.probe_cgroup, cores) if cfg.probe_cgroup else None
        self.links: dict[tuple[str, str], Edge] = {}
        psutil.cpu_percent(None)  # prime the system-wide counter
        event(log, "node.sampler", node=cfg.node,
              cpu_source="cgroup" if self.cgroup else "psutil", cgroup=cfg.probe_cgroup)

    def cpu_percent(self) -> float:
        if self.cgroup is not None:
            return self.cgroup.percent()
        return float(psutil.cpu_percent(None))

    def sample(self) -> Node:
        memory_used = min(self.power.memory_mib,
                          (psutil.virtual_memory().total - psutil.virtual_memory().available)
                          / 2**20)
        storage_used = min(self.power.storage_gib, shutil.disk_usage("/").used / 2**30)
        resource = Resource(cpu_percent=round(self.cpu_percent(), 2),
                            memory_used_mib=round(memory_used, 1),
                            storage_used_gib=round(storage_used, 3),
                            running_tasks=len(psutil.pids()) if self.cgroup is None
                            else _cgroup_tasks(self.cfg.probe_cgroup))
        return Node(name=self.cfg.node, role=self.role, computing_power=self.power,
                    group=self.cfg.group, address=self.address, security=self.security,
                    resource=resource, capability={}, online=True, updated=time.time())


def _cgroup_tasks(path: str) -> int:
    try:
        return len((Path(path) / "cgroup.procs").read_text().split())
    except OSError:
        return 0


def have_cgroup2(path: str) -> bool:
    return os.path.exists(os.path.join(path, "cpu.stat"))
