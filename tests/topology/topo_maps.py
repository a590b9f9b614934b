"""Builders for CR-maps in tests (plain Python, no files)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from freeoffload.topology import (
    CPU,
    ComputingPower,
    CRMap,
    Demand,
    Edge,
    Node,
    Resource,
    Task,
    load_topology,
)

ROOT = Path(__file__).resolve().parents[2]
PAPER = ROOT / "examples" / "topologies" / "paper.yaml"
TASKS = ROOT / "examples" / "tasks"


def node(name: str, role: str = "edge", group: str = "g1", *, cores: float = 4,
         cpu_percent: float = 0, memory: float = 8192, storage: float = 128,
         secure: bool = False, cpu_ms: float | None = 10, io_ms: float | None = 20,
         online: bool = True) -> Node:
    capability = {k: v for k, v in (("cpu", cpu_ms), ("io", io_ms)) if v is not None}
    return Node(name=name, role=role, group=group,  # type: ignore[arg-type]
                address=f"10.0.0.{len(name)}:8080",
                computing_power=ComputingPower(CPU(cores, 2000), memory, storage),
                security=secure, resource=Resource(cpu_percent=cpu_percent),
                capability=capability, online=online)


def crmap(nodes: list[Node], links: list[tuple[str, str, float]]) -> CRMap:
    return CRMap({n.name: n for n in nodes}, [Edge(a, b, 100, lat) for a, b, lat in links])


def task(type_: str = "cpu", *, sensitive: bool = False, urgent: bool = False,
         cpu: float = 1, memory: float = 256, storage: float = 64) -> Task:
    return Task("t", type_, sensitive, urgent, Demand(cpu, memory, storage))


def paper(**cpu_percent: float) -> CRMap:
    """The example testbed, with some nodes' CPU load changed (``edge1=20``)."""
    loaded = load_topology(PAPER)
    for name, percent in cpu_percent.items():
        old = loaded.nodes[name]
        loaded.put_node(replace(old, resource=replace(old.resource, cpu_percent=percent)))
    return loaded
