"""The trigger's hysteresis over CPU samples (the pushes themselves: test_netns.py)."""

from __future__ import annotations

from freeoffload.agent.trigger import CpuTrigger


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
