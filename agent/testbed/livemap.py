"""The testbed's CR-map as it stands now: the file's nodes at their testbed addresses, with the
CPU use each node's cgroup really shows.

``cpu_percent`` of a node is its cgroup's CPU time over a short interval divided by its quota
(what an agent scoped to that cgroup sees), so a node running at its quota reads 100%.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

from .cgroups import Cgroups
from .config import Plan

__all__ = ["cpu_percent", "live_map", "write_map"]


def cpu_percent(plan: Plan, cgroups: Cgroups, interval: float = 0.5) -> dict[str, float]:
    """Each node's CPU use over ``interval`` seconds, in percent of its quota."""
    before = {n.name: cgroups.usage_usec(n.name) for n in plan.nodes}
    start = time.monotonic()
    time.sleep(interval)
    wall = time.monotonic() - start
    out = {}
    for node in plan.nodes:
        used = (cgroups.usage_usec(node.name) - before[node.name]) / 1e6
        out[node.name] = min(100.0, 100.0 * used / (wall * node.cpu))
    return out


def live_map(plan: Plan, cgroups: Cgroups | None = None, interval: float = 0.5) -> Any:
    """The CR-map of ``plan``'s file with testbed addresses and (given cgroups) measured CPU."""
    from freeoffload.topology import Resource, load_topology

    crmap = load_topology(plan.topology_path)
    load = cpu_percent(plan, cgroups, interval) if cgroups is not None else {}
    for name, node in list(crmap.nodes.items()):
        address = plan.address(name) if node.role != "device" else ""
        resource = Resource(cpu_percent=round(load.get(name, 0.0), 1),
                            memory_used_mib=0.0, storage_used_gib=0.0, running_tasks=0)
        crmap.put_node(dataclasses.replace(node, address=address, resource=resource))
    return crmap


def write_map(crmap: Any, path: Path) -> Path:
    from freeoffload.topology import dump_topology

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dump_topology(crmap))
    return path
