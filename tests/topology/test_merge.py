"""Merging node reports into group maps and group maps into the cloud map."""

from __future__ import annotations

import random
from dataclasses import replace

from freeoffload.topology import CRMap, Edge, NodeReport, merge_map, merge_report, select_target
from hypothesis import given, settings
from hypothesis import strategies as st
from topo_maps import crmap, node, task


def _group() -> CRMap:
    return crmap([node("cloud", "cloud", "c"), node("d", "device")], [("d", "cloud", 30)])


def test_a_report_adds_the_node_and_its_links() -> None:
    group = _group()
    report = NodeReport(node("e1"), time=100.0, links=(Edge("e1", "d", 100, 1.5),))
    assert merge_report(group, report, now=100.0)
    assert group.nodes["e1"].updated == 100.0
    assert group.edge_between("d", "e1") == Edge("e1", "d", 100, 1.5)
    # the merged node is immediately a target
    assert select_target(group, task(urgent=True), "d").node == "e1"


def test_newer_reports_win_and_older_ones_change_nothing() -> None:
    group = _group()
    merge_report(group, NodeReport(node("e1", cpu_percent=10), 100.0,
                                   (Edge("e1", "d", 100, 1.5),)), now=100.0)
    merge_report(group, NodeReport(node("e1", cpu_percent=80), 102.0,
                                   (Edge("d", "e1", 100, 3.0),)), now=102.0)
    assert group.nodes["e1"].resource.cpu_percent == 80
    assert len(group.edges) == 2  # the d-e1 link was replaced, not doubled
    assert group.edge_between("d", "e1") == Edge("d", "e1", 100, 3.0)
    stale = NodeReport(node("e1", cpu_percent=5), 101.0, (Edge("e1", "d", 100, 9.0),))
    assert not merge_report(group, stale, now=102.5)
    assert group.nodes["e1"].resource.cpu_percent == 80
    assert group.edge_between("d", "e1") == Edge("d", "e1", 100, 3.0)


def test_links_to_nodes_not_yet_known_wait_for_that_node() -> None:
    group = _group()
    merge_report(group, NodeReport(node("e1"), 100.0, (Edge("e1", "e2", 1000, 0.4),)), 100.0)
    assert group.edge_between("e1", "e2") is None
    merge_report(group, NodeReport(node("e2"), 100.5, (Edge("e2", "e1", 1000, 0.5),)), 100.5)
    assert group.edge_between("e1", "e2") == Edge("e2", "e1", 1000, 0.5)


def test_a_node_missing_n_reports_goes_offline_and_comes_back() -> None:
    group = _group()
    merge_report(group, NodeReport(node("e1"), 100.0, (Edge("e1", "d", 100, 1),)), 100.0,
                 interval=2.0, missed=3)
    merge_report(group, NodeReport(node("e2"), 105.0, (Edge("e2", "d", 100, 5),)), 105.0,
                 interval=2.0, missed=3)
    assert group.nodes["e1"].online  # 5 s silent: 2.5 intervals
    merge_report(group, NodeReport(node("e2"), 106.5, (Edge("e2", "d", 100, 5),)), 106.5,
                 interval=2.0, missed=3)
    assert not group.nodes["e1"].online  # 6.5 s: more than 3 intervals
    assert group.nodes["e2"].online
    assert group.nodes["cloud"].online  # hand-written records never expire
    assert select_target(group, task(urgent=True), "d").node == "e2"
    merge_report(group, NodeReport(node("e1"), 107.0), 107.0, interval=2.0, missed=3)
    assert group.nodes["e1"].online
    assert select_target(group, task(urgent=True), "d").node == "e1"


def test_group_maps_merge_into_the_cloud_map_newer_record_wins() -> None:
    cloud = crmap([node("cloud", "cloud", "c")], [])
    group_a = crmap([node("cloud", "cloud", "c")], [])
    merge_report(group_a, NodeReport(node("e1", group="a"), 100.0,
                                     (Edge("e1", "cloud", 100, 30),)), 100.0)
    group_b = crmap([node("cloud", "cloud", "c")], [])
    merge_report(group_b, NodeReport(node("e2", group="b"), 101.0,
                                     (Edge("e2", "cloud", 100, 35),)), 101.0)
    # an older view of e1 that group b also heard about
    merge_report(group_b, NodeReport(node("e1", group="a", cpu_percent=70), 90.0), 101.0)
    assert merge_map(cloud, group_a, now=101.0) == ["e1"]
    assert merge_map(cloud, group_b, now=101.0) == ["e2"]  # e1's record there is older
    assert cloud.nodes["e1"].resource.cpu_percent == 0
    assert {e.pair for e in cloud.edges} == {("cloud", "e1"), ("cloud", "e2")}
    newer = replace(group_b.nodes["e2"], updated=150.0, online=True)
    group_b.put_node(newer)
    assert merge_map(cloud, group_b, now=151.0, interval=10.0, missed=3) == ["e2"]
    assert not cloud.nodes["e1"].online  # 51 s since its record, over 3 x 10 s


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(("e1", "e2", "e3")), st.integers(0, 20),
                          st.sampled_from((0.0, 30.0, 90.0))), min_size=1, max_size=12),
       st.randoms(use_true_random=False))
def test_reports_arriving_in_any_order_leave_the_newest_record(
        reports: list[tuple[str, int, float]], rnd: random.Random) -> None:
    def merged(order: list[tuple[str, int, float]]) -> CRMap:
        group = _group()
        for name, when, load in order:
            merge_report(group, NodeReport(node(name, cpu_percent=load), float(when),
                                           (Edge(name, "d", 100, 1 + when),)), now=20.0,
                         interval=100.0)
        return group

    shuffled = list(reports)
    rnd.shuffle(shuffled)
    first, second = merged(reports), merged(shuffled)
    for name in {r[0] for r in reports}:
        newest = max(when for n, when, _ in reports if n == name)
        assert first.nodes[name].updated == second.nodes[name].updated == newest
        loads = {load for n, when, load in reports if n == name and when == newest}
        if len(loads) == 1:  # equal times: the first to arrive stays, so only then compare
            assert first.nodes[name] == second.nodes[name]
            assert first.edge_between(name, "d") == second.edge_between(name, "d")
