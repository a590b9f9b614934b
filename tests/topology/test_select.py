"""The selection algorithm, rule by rule, on the paper's testbed and on small hand-made maps."""

from __future__ import annotations

from dataclasses import replace

import pytest
from freeoffload.topology import CRMap, Task, load_task, path_latency, select_target
from topo_maps import TASKS, crmap, node, paper, task

from freeoffload.errors import TaskError, TopologyError

AUDIO = load_task(TASKS / "audio.yaml")        # cpu, Sensitive + Urgent, 1 core
VIDEO = load_task(TASKS / "video_transcoding.yaml")  # cpu, neither, 2 cores
WEB = load_task(TASKS / "web_request.yaml")     # io, Urgent, 0.25 core

# (case, map, task, requester, node, rule, level)
CASES: list[tuple[str, CRMap, Task, str, str | None, str, str]] = [
    ("sensitive+urgent: nearest secure edge of the group",
     paper(edge1=20), AUDIO, "dev1", "edge1", "sensitive-urgent", "group"),
    ("sensitive+urgent: the paper's scenario, edge1 overloaded -> edge3",
     paper(), AUDIO, "dev1", "edge3", "sensitive-urgent", "other-group"),
    ("sensitive+urgent: no secure edge can -> the cloud",
     paper(edge3=99), AUDIO, "dev1", "cloud", "sensitive-urgent", "cloud"),
    ("sensitive, not urgent: the cloud even with idle secure edges",
     paper(edge1=0, edge3=0), replace(AUDIO, urgent=False), "dev1", "cloud", "sensitive",
     "cloud"),
    ("urgent: the lowest-latency capable edge (edge1 still has 0.32 cores)",
     paper(), WEB, "dev1", "edge1", "urgent", "group"),
    ("urgent: edge1 too full for 1 core -> edge2 of the same group",
     paper(), replace(AUDIO, sensitive=False), "dev1", "edge2", "urgent", "group"),
    ("urgent: group full -> nearest edge of another group (edge3 8.5 ms < edge4 9.2 ms)",
     paper(edge1=99, edge2=99), replace(AUDIO, sensitive=False), "dev1", "edge3", "urgent",
     "other-group"),
    ("urgent: every edge full -> the cloud",
     paper(edge1=99, edge2=99, edge3=99, edge4=99), WEB, "dev1", "cloud", "urgent", "cloud"),
    ("neither: most headroom in the group (edge2 at 30% vs edge1 at 92%)",
     paper(), VIDEO, "dev1", "edge2", "neither", "group"),
    ("neither: most headroom wins over latency (edge2 at 5% vs edge1 at 10%)",
     paper(edge1=10, edge2=5), VIDEO, "dev1", "edge2", "neither", "group"),
    ("neither: from dev2 its own group answers",
     paper(), VIDEO, "dev2", "edge4", "neither", "group"),
    ("neither: nothing fits 16 cores but the cloud",
     paper(), replace(VIDEO, demand=replace(VIDEO.demand, cpu_cores=16)), "dev1", "cloud",
     "neither", "cloud"),
    ("nothing anywhere has 64 cores free",
     paper(), replace(VIDEO, demand=replace(VIDEO.demand, cpu_cores=64)), "dev1", None,
     "neither", "none"),
]


@pytest.mark.parametrize(("crm", "job", "source", "want", "rule", "level"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_rule_table(crm: CRMap, job: Task, source: str, want: str | None, rule: str,
                    level: str) -> None:
    fast = select_target(crm, job, source)
    explained = select_target(crm, job, source, explain=True)
    assert (fast.node, fast.rule, fast.level) == (want, rule, level)
    assert (explained.node, explained.rule, explained.level, explained.latency_ms) == (
        fast.node, fast.rule, fast.level, fast.latency_ms)
    if want is not None:
        assert fast.latency_ms == path_latency(crm, source, want)


def test_paper_scenario_sensitive_task_from_edge1s_device_goes_to_edge3_only() -> None:
    # edge1 overloaded; make edge2, edge4 and the cloud as tempting as possible otherwise
    crm = paper(edge1=97, edge2=0, edge4=0, cloud=0)
    for job in (AUDIO, replace(AUDIO, demand=replace(AUDIO.demand, cpu_cores=0.5))):
        chosen = select_target(crm, job, "dev1", explain=True)
        assert chosen.node == "edge3"
        why = {r.node: r.reason for r in chosen.rejections}
        assert why["edge1"].startswith("free CPU")
        assert "no Security" in why["edge2"]
        assert "no Security" in why["edge4"]
        assert why["cloud"] == "not searched: the other-group level answered"
        assert "dev1" not in why  # devices are never candidates


def test_equal_latency_goes_to_the_stronger_node_then_the_smaller_name() -> None:
    nodes = [node("cloud", "cloud", "c"), node("d", "device"),
             node("b", cpu_ms=20), node("a", cpu_ms=10), node("c", cpu_ms=10)]
    links = [("d", "a", 1), ("d", "b", 1), ("d", "c", 1), ("a", "cloud", 30)]
    chosen = select_target(crmap(nodes, links), task(urgent=True), "d", explain=True)
    assert chosen.node == "a"
    assert {r.node for r in chosen.rejections} == {"b", "c", "cloud"}


def test_power_scales_with_headroom() -> None:
    # same Capability, same latency: the less loaded one is stronger
    nodes = [node("cloud", "cloud", "c"), node("d", "device"), node("a", cpu_percent=50),
             node("b", cpu_percent=10)]
    links = [("d", "a", 1), ("d", "b", 1), ("a", "cloud", 30)]
    assert select_target(crmap(nodes, links), task(urgent=True), "d").node == "b"


@pytest.mark.parametrize(("change", "reason"), [
    ({"online": False}, "offline"),
    ({"cpu_ms": None}, "no Capability for Type 'cpu'"),
    ({"memory": 100}, "free Memory 100 MiB < Demand 256 MiB"),
    ({"storage": 0.01}, "free Storage 10.24 MiB < Demand 64 MiB"),
    ({"cpu_percent": 90}, "free CPU 0.40 cores < Demand 1"),
])
def test_a_node_that_cannot_run_the_task_is_skipped_with_its_reason(
        change: dict[str, object], reason: str) -> None:
    nodes = [node("cloud", "cloud", "c"), node("d", "device"), node("near", **change),  # type: ignore[arg-type]
             node("far")]
    links = [("d", "near", 1), ("d", "far", 5), ("far", "cloud", 30)]
    chosen = select_target(crmap(nodes, links), task(urgent=True), "d", explain=True)
    assert chosen.node == "far"
    assert {r.node: r.reason for r in chosen.rejections}["near"].startswith(reason)


def test_unreachable_edges_are_not_candidates() -> None:
    nodes = [node("cloud", "cloud", "c"), node("d", "device"), node("island", cpu_ms=1)]
    chosen = select_target(crmap(nodes, [("d", "cloud", 30)]), task(), "d", explain=True)
    assert (chosen.node, chosen.level) == ("cloud", "cloud")
    assert {r.node: r.reason for r in chosen.rejections}["island"] == \
        "no path from the requesting node"


def test_an_edge_asking_for_itself_gets_itself_when_urgent() -> None:
    crm = paper()
    assert select_target(crm, WEB, "edge3").node == "edge3"
    assert select_target(crm, WEB, "edge3").latency_ms == 0


def test_unknown_requester_and_unsupported_type_are_user_errors() -> None:
    with pytest.raises(TopologyError) as info:
        select_target(paper(), AUDIO, "dev9")
    assert "unknown node 'dev9'" in str(info.value)
    only_cpu = crmap([node("cloud", "cloud", "c", io_ms=None)], [])
    with pytest.raises(TaskError) as err:
        select_target(only_cpu, WEB, "cloud")
    assert err.value.problems[0].field == "Type"
    assert err.value.problems[0].location.line == 3  # the Type line of web_request.yaml


def test_answers_follow_changes_made_through_the_map() -> None:
    crm = paper(edge1=20)
    assert select_target(crm, AUDIO, "dev1").node == "edge1"
    old = crm.nodes["edge1"]
    crm.put_node(replace(old, online=False))
    assert select_target(crm, AUDIO, "dev1").node == "edge3"
    crm.put_node(old)
    assert select_target(crm, AUDIO, "dev1").node == "edge1"
    crm.remove_node("edge1")  # dev1 loses its only link to the others
    assert select_target(crm, AUDIO, "dev1").node is None
