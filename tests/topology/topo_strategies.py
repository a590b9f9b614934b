"""Hypothesis strategies for random CR-maps and tasks."""

from __future__ import annotations

from freeoffload.topology import (
    CPU,
    ComputingPower,
    CRMap,
    Demand,
    Edge,
    Node,
    Resource,
    Task,
)
from hypothesis import strategies as st

GROUPS = ("g1", "g2", "g3")


@st.composite
def nodes(draw: st.DrawFn, name: str, role: str) -> Node:
    capability = draw(st.dictionaries(st.sampled_from(("cpu", "io")),
                                      st.sampled_from((5.0, 10.0, 12.5, 30.0)), max_size=2))
    return Node(
        name=name, role=role,  # type: ignore[arg-type]
        group=draw(st.sampled_from(GROUPS)), address="10.0.0.1:80",
        computing_power=ComputingPower(CPU(draw(st.sampled_from((1.0, 2.0, 4.0, 8.0)))),
                                       draw(st.sampled_from((512.0, 4096.0))), 16.0),
        security=draw(st.booleans()),
        resource=Resource(cpu_percent=draw(st.sampled_from((0.0, 10.0, 50.0, 75.0, 99.0))),
                          memory_used_mib=draw(st.sampled_from((0.0, 256.0)))),
        capability=capability, online=draw(st.booleans() | st.just(True)),
    )


@st.composite
def crmaps(draw: st.DrawFn) -> CRMap:
    more = draw(st.lists(st.sampled_from(("edge", "edge", "device", "cloud")),
                         min_size=1, max_size=11))
    roles = ["cloud", *more]
    found = [draw(nodes(f"n{i}", role)) for i, role in enumerate(roles)]
    names = [n.name for n in found]
    latencies = st.sampled_from((0.5, 1.0, 2.0, 5.0, 40.0))
    edges: dict[tuple[str, str], Edge] = {}
    for i in range(1, len(names)):  # a random tree, some links dropped, some added
        if draw(st.integers(0, 9)) == 0:
            continue
        a, b = names[draw(st.integers(0, i - 1))], names[i]
        edges[(a, b)] = Edge(a, b, 100.0, draw(latencies))
    for _ in range(draw(st.integers(0, 4))):
        a, b = sorted(draw(st.sampled_from(names)) for _ in range(2))
        if a != b and (a, b) not in edges and (b, a) not in edges:
            edges[(a, b)] = Edge(a, b, 100.0, draw(latencies))
    return CRMap({n.name: n for n in found}, list(edges.values()))


tasks = st.builds(Task, st.just("t"), st.sampled_from(("cpu", "io")), st.booleans(),
                  st.booleans(),
                  st.builds(Demand, st.sampled_from((0.0, 0.5, 1.0, 3.0)),
                            st.sampled_from((0.0, 256.0, 2048.0)), st.just(0.0)))
