"""The trigger's hysteresis over CPU samples and what counts as a material change of the
candidates (the pushes themselves: test_netns.py, test_trigger_groups.py)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from freeoffload.agent.trigger import CpuTrigger

PAPER = Path(__file__).resolve().parents[2] / "examples" / "topologies" / "paper.yaml"


def test_fires_after_n_samples_at_or_above_threshold_and_restores_below_hysteresis() -> None:
    trig = CpuTrigger(threshold=70, hysteresis=10, samples=3)
    seen = [trig.observe("edge1", cpu) for cpu in (
        69, 70, 95, 40, 70, 71, 70,   # a dip resets the count; the 3rd sample in a row fires
        90, 65, 61, 69, 60.5, 62,     # between 60 and 70: stays fired (hysteresis)
        59, 10, 61, 59, 59, 58)]      # 3 in a row below 60 restore
    assert [(i, a) for i, a in enumerate(seen) if a] == [(6, "fire"), (18, "restore")]


def test_nodes_are_judged_separately() -> None:
    trig = CpuTrigger(threshold=50, hysteresis=20, samples=2)
    assert trig.observe("a", 80) is None
    assert trig.observe("b", 80) is None
    assert trig.observe("a", 80) == "fire"
    assert trig.observe("b", 10) is None
    assert trig.observe("a", 80) is None  # already fired: no second push



def test_material_change_ignores_noise_and_names_what_moved() -> None:
    from freeoffload.agent.trigger import material_change
    from freeoffload.topology import load_topology
    from freeoffload.topology.candidates import candidate_rows

    crmap = load_topology(PAPER)
    before = candidate_rows(crmap, "dev1")
    assert material_change(before, candidate_rows(crmap, "dev1")) is None  # a new stamp only

    def with_cpu(name: str, percent: float) -> list[Any]:
        node = crmap.nodes[name]
        crmap.put_node(replace(node, resource=replace(node.resource, cpu_percent=percent)))
        rows = candidate_rows(crmap, "dev1")
        crmap.put_node(node)
        return rows

    assert material_change(before, with_cpu("edge3", 27)) is None  # 0.16 of its 8 cores
    # trigger.refresh.min_change: a finer share counts that move, a coarser one ignores more
    assert material_change(before, with_cpu("edge3", 27), 0.01) == \
        "edge3: free CPU 6 -> 5.84 cores"
    assert material_change(before, with_cpu("edge3", 60), 0.5) is None
    why = material_change(before, with_cpu("edge3", 60))  # 2.8 cores fewer free
    assert why == "edge3: free CPU 6 -> 3.2 cores", why
    edge2 = crmap.nodes["edge2"]
    crmap.put_node(replace(edge2, online=False))
    assert material_change(before, candidate_rows(crmap, "dev1")) == "edge2: flags changed"
    crmap.put_node(edge2)
    assert material_change(before, before[:-1]) == "candidates now cloud, edge1, edge2, edge3"
