"""Path latency: the shortest path weighted by Latency, cached and kept current."""

from __future__ import annotations

import math

import pytest
from freeoffload.topology import Edge, path_latency, shortest_path
from topo_maps import crmap, node, paper

from freeoffload.errors import TopologyError


def test_path_latency_is_the_lowest_sum_not_the_fewest_hops() -> None:
    crm = paper()
    assert path_latency(crm, "dev1", "edge1") == 2.5
    # dev1-edge1-edge3-edge4 (9.2 ms) beats dev1-edge1-edge2-edge4 (10.6 ms)
    assert path_latency(crm, "dev1", "edge4") == pytest.approx(9.2)
    assert shortest_path(crm, "dev1", "edge4") == ["dev1", "edge1", "edge3", "edge4"]
    assert path_latency(crm, "edge2", "edge2") == 0
    assert path_latency(crm, "dev2", "dev1") == path_latency(crm, "dev1", "dev2")


def test_unreachable_is_infinite_and_unknown_is_an_error() -> None:
    crm = crmap([node("cloud", "cloud"), node("lone")], [])
    assert math.isinf(path_latency(crm, "cloud", "lone"))
    assert shortest_path(crm, "cloud", "lone") == []
    with pytest.raises(TopologyError) as info:
        path_latency(crm, "cloud", "ghost")
    assert info.value.problems[0].field == "to"


def test_cached_latencies_follow_changes_made_through_the_map() -> None:
    crm = paper()
    assert path_latency(crm, "dev1", "edge3") == 8.5
    crm.put_edge(Edge("edge3", "edge1", 500, 1.0))  # replaces the 6 ms link
    assert path_latency(crm, "dev1", "edge3") == 3.5
    assert len([e for e in crm.edges if e.pair == ("edge1", "edge3")]) == 1
    crm.edges.append(Edge("dev1", "edge3", 100, 0.5))  # direct edit: must invalidate
    crm.invalidate()
    assert path_latency(crm, "dev1", "edge3") == 0.5
