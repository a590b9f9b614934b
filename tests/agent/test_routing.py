"""The routing the agent answers queries with (``topology.graph``, without networkx) gives
networkx's answers exactly: the same distance floats, the same path among equal ones, on forests
(the fast level-by-level rows) and on graphs with cycles (the Dijkstra search)."""

from __future__ import annotations

import math

import networkx as nx
import pytest
from freeoffload.topology import CPU, ComputingPower, CRMap, Edge, Node, graph
from freeoffload.topology.graph import distances_from, latency_row, set_links, shortest_path
from hypothesis import given, settings
from hypothesis import strategies as st

LATENCIES = st.one_of(st.sampled_from([0.0, 0.1, 0.2, 0.3, 1.0, 2.5]),
                      st.floats(min_value=0, max_value=50, allow_nan=False))


def _node(name: str) -> Node:
    return Node(name=name, role="edge", computing_power=ComputingPower(CPU(1), 1, 1))


def _map(count: int, links: list[tuple[int, int, float]]) -> CRMap:
    names = [f"n{i}" for i in range(count)]
    return CRMap({n: _node(n) for n in names},
                 [Edge(names[a], names[b], 100.0, lat) for a, b, lat in links])


def _reference(crmap: CRMap) -> nx.Graph:
    graph = nx.Graph()
    graph.add_nodes_from(crmap.nodes)
    for edge in crmap.edges:
        graph.add_edge(edge.start_node, edge.end_node, latency=edge.latency_ms)
    return graph


def _check(crmap: CRMap) -> None:
    graph = _reference(crmap)
    names = sorted(crmap.nodes)
    for source in names:
        want = nx.single_source_dijkstra_path_length(graph, source, weight="latency")
        got = distances_from(crmap, source)
        assert got == want and all(type(got[k]) is type(v) for k, v in want.items())
        row = latency_row(crmap, source)
        assert row.tolist() == [float(want.get(n, math.inf)) for n in names]
        for target in names:
            try:
                path = nx.dijkstra_path(graph, source, target, weight="latency")
            except nx.NetworkXNoPath:
                path = []
            assert shortest_path(crmap, source, target) == path, (source, target)


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_forests_give_networkx_answers(data: st.DataObject) -> None:
    count = data.draw(st.integers(1, 14))
    links = []
    for child in range(1, count):  # each node hangs off an earlier one, or starts a tree
        if data.draw(st.booleans()) or child < 3:
            links.append((data.draw(st.integers(0, child - 1)), child, data.draw(LATENCIES)))
    order = data.draw(st.permutations(links))
    flips = [(b, a, lat) if data.draw(st.booleans()) else (a, b, lat) for a, b, lat in order]
    _check(_map(count, flips))


@settings(max_examples=60, deadline=None)
@given(st.integers(2, 10).flatmap(lambda n: st.tuples(
    st.just(n), st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1), LATENCIES),
                         max_size=25))))
def test_graphs_with_cycles_and_repeated_links_give_networkx_answers(
        drawn: tuple[int, list[tuple[int, int, float]]]) -> None:
    count, links = drawn
    _check(_map(count, [(a, b, lat) for a, b, lat in links if a != b]))


def test_a_group_star_and_its_equal_paths() -> None:
    # the shape of a group: members off their center; two equal routes in a ring
    star = _map(6, [(0, i, 0.1 * i) for i in range(1, 6)])
    _check(star)
    assert graph._routes(star).forest is not None  # the level-by-level rows answered
    assert distances_from(star, "n3")["n5"] == 0.1 * 3 + 0.1 * 5
    ring = _map(4, [(0, 1, 1.0), (1, 2, 1.0), (2, 3, 1.0), (3, 0, 1.0)])
    _check(ring)
    assert graph._routes(ring).forest is None  # the search answered
    assert shortest_path(ring, "n0", "n2") == ["n0", "n1", "n2"]


def test_links_that_name_unknown_nodes_and_changes_through_the_map() -> None:
    crmap = _map(3, [(0, 1, 2.0)])
    crmap.edges.append(Edge("n2", "ghost", 1.0, 4.0))
    crmap.edges.append(Edge("ghost", "n1", 1.0, 1.0))
    crmap.invalidate()
    _check(crmap)
    assert distances_from(crmap, "n0")["ghost"] == 3.0  # as networkx: a node a link names
    crmap.put_edge(Edge("n0", "n2", 1.0, 0.5))
    assert distances_from(crmap, "n0")["n2"] == 0.5
    _check(crmap)


def test_a_deep_chain_is_searched_and_still_agrees() -> None:
    chain = _map(120, [(i, i + 1, 0.1) for i in range(119)])  # deeper than the fast rows take
    graph = _reference(chain)
    for source in ("n0", "n60", "n119"):
        assert distances_from(chain, source) == nx.single_source_dijkstra_path_length(
            graph, source, weight="latency")
    assert shortest_path(chain, "n0", "n3") == ["n0", "n1", "n2", "n3"]


@pytest.mark.parametrize("latency", [math.inf, math.nan])
def test_latencies_a_sum_cannot_stand_for_take_the_search(latency: float) -> None:
    crmap = _map(3, [(0, 1, latency), (1, 2, 1.0)])
    graph = _reference(crmap)
    for source in crmap.nodes:
        got = distances_from(crmap, source)
        want = nx.single_source_dijkstra_path_length(graph, source, weight="latency")
        assert got.keys() == want.keys()
        assert all(math.isnan(v) if math.isnan(want[k]) else v == want[k]
                   for k, v in got.items())


def _moved(crmap: CRMap, latencies: list[float]) -> list[Edge]:
    return [Edge(e.start_node, e.end_node, e.bandwidth_mbit, lat)
            for e, lat in zip(crmap.edges, latencies, strict=True)]


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_moved_latencies_reweigh_the_routing_and_keep_the_index(data: st.DataObject) -> None:
    from freeoffload.topology import Demand, Task, select_target

    count = data.draw(st.integers(2, 10))
    links = [(data.draw(st.integers(0, child - 1)), child, data.draw(LATENCIES))
             for child in range(1, count)]
    links += data.draw(st.lists(st.tuples(st.integers(0, count - 1), st.integers(0, count - 1),
                                          LATENCIES), max_size=3))
    crmap = _map(count, [(a, b, lat) for a, b, lat in links if a != b])
    for name, node in crmap.nodes.items():
        crmap.nodes[name] = Node(name=name, role="edge", computing_power=node.computing_power,
                                 capability={"cpu": 1.0})
    crmap.invalidate()
    task = Task("t", "cpu", urgent=True, demand=Demand())
    select_target(crmap, task, "n0")
    _check(crmap)
    index = crmap.cache("index")
    for _ in range(2):
        more = [data.draw(st.one_of(LATENCIES, st.just(math.inf))) for _ in crmap.edges]
        set_links(crmap, _moved(crmap, more))
        assert crmap.cache("index") is index  # the selection index outlived the re-weighing
        if all(not math.isinf(x) for x in more):
            _check(crmap)
        fresh = CRMap(dict(crmap.nodes), list(crmap.edges))
        for source in crmap.nodes:
            assert distances_from(crmap, source) == distances_from(fresh, source)
            assert select_target(crmap, task, source) == select_target(fresh, task, source)


def test_a_link_whose_latency_becomes_infinite_unreaches_its_node_for_the_index() -> None:
    """Same links, one latency now inf: the index must not keep "n0 reaches every node"."""
    from freeoffload.topology import Demand, Task, select_target

    crmap = _map(2, [(0, 1, 1.0)])
    crmap.nodes["n1"] = Node(name="n1", role="edge", computing_power=ComputingPower(CPU(1), 1, 1),
                             capability={"cpu": 1.0})
    crmap.invalidate()
    task = Task("t", "cpu", urgent=True, demand=Demand())
    assert select_target(crmap, task, "n0").node == "n1"
    set_links(crmap, _moved(crmap, [math.inf]))
    fast, explained = select_target(crmap, task, "n0"), select_target(crmap, task, "n0", True)
    assert (fast.node, fast.level) == (explained.node, explained.level) == (None, "none")


def test_new_links_drop_what_was_derived() -> None:
    crmap = _map(3, [(0, 1, 1.0)])
    assert "n2" not in distances_from(crmap, "n0")
    version = crmap.version
    set_links(crmap, [*crmap.edges, Edge("n1", "n2", 1.0, 2.0)])
    assert crmap.version != version and distances_from(crmap, "n0")["n2"] == 3.0
