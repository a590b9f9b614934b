"""Property tests of the selection over random maps and tasks (hypothesis)."""

from __future__ import annotations

import math
import random

from freeoffload.topology import (
    CRMap,
    Edge,
    Node,
    Selection,
    Task,
    distances_from,
    select_target,
    why_not,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from topo_strategies import crmaps, nodes, tasks

from freeoffload.errors import TaskError


def _capable(crm: CRMap, job: Task, source: str) -> list[Node]:
    dist = distances_from(crm, source)
    return [n for n in crm.nodes.values() if why_not(n, job, dist.get(n.name, math.inf)) is None]


def _choose(crm: CRMap, job: Task, data: st.DataObject) -> tuple[str, Selection] | None:
    if not any(job.type in n.capability for n in crm.nodes.values()):
        return None
    source = data.draw(st.sampled_from(sorted(crm.nodes)))
    return source, select_target(crm, job, source)


@settings(max_examples=150, deadline=None)
@given(crmaps(), tasks, st.data())
def test_the_fast_answer_equals_the_explained_reference(crm: CRMap, job: Task,
                                                        data: st.DataObject) -> None:
    found = _choose(crm, job, data)
    if found is None:
        return
    source, fast = found
    ref = select_target(crm, job, source, explain=True)
    assert (fast.node, fast.rule, fast.level, fast.latency_ms) == (
        ref.node, ref.rule, ref.level, ref.latency_ms)
    # --explain accounts for every other candidate exactly once
    rejected = [r.node for r in ref.rejections]
    assert len(rejected) == len(set(rejected))
    assert set(rejected) == {n for n, node in crm.nodes.items()
                             if node.role != "device"} - {ref.node}


@settings(max_examples=150, deadline=None)
@given(crmaps(), tasks, st.data())
def test_the_chosen_node_obeys_every_rule(crm: CRMap, job: Task, data: st.DataObject) -> None:
    found = _choose(crm, job, data)
    if found is None:
        return
    source, chosen = found
    capable = _capable(crm, job, source)
    dist = distances_from(crm, source)
    if chosen.node is None:
        wanted = ("cloud",) if job.sensitive and not job.urgent else ("cloud", "edge")
        assert not [n for n in capable if n.role in wanted]
        return
    node = crm.nodes[chosen.node]
    assert node in capable  # capable, hence secure when the task is sensitive
    assert node.security or not job.sensitive
    if job.sensitive and not job.urgent:
        assert node.role == "cloud"
        return
    group = crm.nodes[source].group
    own = [n for n in capable if n.role == "edge" and n.group == group]
    edges = [n for n in capable if n.role == "edge"]
    level_pool = {"group": own, "other-group": [n for n in edges if n not in own],
                  "cloud": [n for n in capable if n.role == "cloud"]}[chosen.level]
    assert node in level_pool
    if chosen.level == "other-group":
        assert not own
    if chosen.level == "cloud":
        assert not edges
    if job.urgent or chosen.level == "cloud":
        assert dist[node.name] == min(dist[n.name] for n in level_pool)
    else:
        assert node.headroom == max(n.headroom for n in level_pool)


@settings(max_examples=60, deadline=None)
@given(crmaps(), tasks, st.data(), st.randoms(use_true_random=False))
def test_the_answer_does_not_depend_on_file_order(crm: CRMap, job: Task, data: st.DataObject,
                                                  rnd: random.Random) -> None:
    found = _choose(crm, job, data)
    if found is None:
        return
    source, chosen = found
    names = list(crm.nodes)
    rnd.shuffle(names)
    edges = [Edge(e.end_node, e.start_node, e.bandwidth_mbit, e.latency_ms)
             if rnd.random() < 0.5 else e for e in crm.edges]
    rnd.shuffle(edges)
    shuffled = CRMap({n: crm.nodes[n] for n in names}, edges)
    again = select_target(shuffled, job, source)
    assert (again.node, again.level, again.latency_ms) == (
        chosen.node, chosen.level, chosen.latency_ms)


def _answer(crm: CRMap, job: Task, source: str, explain: bool = False) -> tuple[object, ...]:
    try:
        got = select_target(crm, job, source, explain)
    except TaskError:
        return ("TaskError",)
    return (got.node, got.rule, got.level, got.latency_ms)


@settings(max_examples=80, deadline=None)
@given(crmaps(), tasks, st.data())
def test_replacing_records_in_place_answers_like_a_fresh_map(crm: CRMap, job: Task,
                                                            data: st.DataObject) -> None:
    names = sorted(crm.nodes)
    source = data.draw(st.sampled_from(names))
    _answer(crm, job, source)  # build the caches, then change records under them
    for _ in range(data.draw(st.integers(1, 4))):
        name = data.draw(st.sampled_from(names))
        role = data.draw(st.sampled_from(("edge", "cloud", "device")))
        crm.put_node(data.draw(nodes(name, role)))
        fresh = CRMap(dict(crm.nodes), list(crm.edges))
        assert _answer(crm, job, source) == _answer(fresh, job, source)


@settings(max_examples=80, deadline=None)
@given(crmaps(), st.lists(tasks, min_size=1, max_size=6), st.data(),
       st.sampled_from((0, 10**6)))
def test_answers_kept_per_task_follow_replaced_records(crm: CRMap, jobs: list[Task],
                                                       data: st.DataObject, limit: int) -> None:
    """The index keeps the fitting nodes per task signature and patches them node by node
    (a limit of 0 drops them instead): every answer stays the reference's."""
    from freeoffload.topology import _index

    names = sorted(crm.nodes)
    sources = data.draw(st.lists(st.sampled_from(names), min_size=1, max_size=3))
    kept, _index.PATCH_FITS_LIMIT = _index.PATCH_FITS_LIMIT, limit
    try:
        for _ in range(3):
            for job in jobs:
                for source in sources:
                    assert _answer(crm, job, source) == _answer(crm, job, source, explain=True)
            for _ in range(data.draw(st.integers(1, 3))):
                name = data.draw(st.sampled_from(names))
                role = data.draw(st.sampled_from(("edge", "cloud", "device")))
                crm.put_node(data.draw(nodes(name, role)))
    finally:
        _index.PATCH_FITS_LIMIT = kept

