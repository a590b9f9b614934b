"""A burst through examples/policies/select_target.c: the policy counts the demand it placed.

k consecutive calls of the policy (one process, one candidates map) choose what
``topology.select_target`` chooses when it is applied k times to a map in which each chosen
node's load is raised by the task's Demand (its CPU by Demand / cores, its Memory and Storage
used by Demand); where ``select_target`` has no node left, the policy's documented extension,
``candidates.overflow_target``, on that same raised map. Fresh rows (a new stamp) start again
from nothing placed.
"""

from __future__ import annotations

import itertools
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from freeoffload.offload_vm.policy import task_fields
from freeoffload.topology import CRMap, Demand, Task, load_task, load_topology, select_target
from freeoffload.topology.candidates import candidate_items, candidate_rows, overflow_target
from freeoffload.topology.graph import distances_from
from freeoffload.topology.select import rule_for
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from freeoffload.errors import TaskError

from .conftest import need_vm
from .test_select_target import world
from .vmtools import ctx, example_vm, run

ROOT = Path(__file__).resolve().parents[3]
PAPER = ROOT / "examples" / "topologies" / "paper.yaml"
PASS, REWRITE = 0, 1


def raise_load(crmap: CRMap, name: str, demand: Demand) -> None:
    """``name``'s load raised by one task's Demand, in the map's own units."""
    node = crmap.nodes[name]
    res, cores = node.resource, node.computing_power.cpu.cores
    crmap.put_node(replace(node, resource=replace(
        res, cpu_percent=res.cpu_percent + (100 * demand.cpu_cores / cores if cores else 0.0),
        memory_used_mib=res.memory_used_mib + demand.memory_mib,
        storage_used_gib=res.storage_used_gib + demand.storage_mib / 1024)))


def expected_choice(crmap: CRMap, task: Task, requester: str) -> str | None:
    return select_target(crmap, task, requester).node or overflow_target(crmap, task, requester)


def _near(values: list[float], rel: float) -> bool:
    """Two values that differ, but by less than ``rel`` of their size: float noise on the
    Python side can order them either way, the policy's integers may tie them."""
    for a, b in itertools.combinations(values, 2):
        if a != b and abs(a - b) <= rel * max(abs(a), abs(b), 1e-3):
            return True
    return False


def well_conditioned(crmap: CRMap, task: Task, requester: str) -> bool:
    """No boundary or near tie among the quantities the two sides compare (free CPU against
    Demand, headroom, power, committed CPU): the policy compares integers (thousandths, 2^-20),
    Python compares floats; away from such knife edges both must order alike."""
    dist = distances_from(crmap, requester)
    nodes = [n for n in crmap.nodes.values() if n.role in ("edge", "cloud") and n.name in dist
             and n.online and n.effective_ms(task.type) is not None]
    d = task.demand.cpu_cores
    if any(0 < abs(n.free_cpu_cores - d) < 1e-6 for n in nodes):
        return False
    power = [n.effective_ms(task.type) or 0.0 for n in nodes]
    committed = [n.resource.cpu_percent / 100 + d / n.computing_power.cpu.cores for n in nodes]
    return not (_near([n.headroom for n in nodes], 1e-5) or _near(power, 1e-3)
                or _near(committed, 1e-5))


def _load_rows(policy: Any, crmap: CRMap, requester: str) -> dict[str, Any]:
    rows = candidate_rows(crmap, requester)
    table = policy.maps["candidates"]
    for key, value in candidate_items(rows):
        table.update(key, value)
    return {r.name: r for r in rows}


@pytest.fixture(scope="module")
def burst_policy() -> Any:
    need_vm()
    return example_vm("select_target")


def _mislead(policy: Any, placed: bool) -> None:
    """Sets select_target's hint (local_placed key 64, its CPU count: whether CPU may be
    placed on a current row) to the wrong answer for the next call, which must then cost the
    other scan, never a different choice."""
    key = (64).to_bytes(4, sys.byteorder)
    value = bytes(4) + (0 if placed else 1).to_bytes(4, sys.byteorder) + bytes(8)
    policy.maps["local_placed"].update(key, value)


@settings(max_examples=2000, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                 HealthCheck.filter_too_much])
@given(seed=st.integers(0, 2**32 - 1), k=st.integers(2, 12))
def test_k_calls_equal_select_target_on_a_map_raised_by_each_choice(
        clang: str, vm: None, burst_policy: Any, seed: int, k: int) -> None:
    crmap, task, requester, original = world(seed)
    try:
        select_target(crmap, task, requester)
    except TaskError:
        return  # no node has the Type: topology refuses the task
    rows = _load_rows(burst_policy, crmap, requester)  # fresh stamp: nothing placed yet
    assume(original in rows)
    dst = crmap.nodes[original].address
    context = ctx(dst, **task_fields(task))
    for step in range(k):
        assume(well_conditioned(crmap, task, requester))
        node = expected_choice(crmap, task, requester)
        if step % 2 == 0:  # every other call with the policy's hint wrong
            _mislead(burst_policy, placed=step > 0 and task_fields(task)["demand_cpu_milli"] > 0)
        got = run(burst_policy, context)
        if node is None:
            assert got == (PASS, dst), (seed, step)
            return
        assert got == (REWRITE, rows[node].address), (seed, step, node, rule_for(task))
        raise_load(crmap, node, task.demand)


def test_the_bursts_leave_the_first_choice_and_reach_the_fallback() -> None:
    """The burst worlds are worth testing: choices move on, and the fallback answers."""
    moved = overflowed = 0
    for seed in range(300):
        crmap, task, requester, _ = world(seed)
        try:
            first = select_target(crmap, task, requester).node
        except TaskError:
            continue
        for _ in range(8):
            node = expected_choice(crmap, task, requester)
            if node is None:
                break
            if select_target(crmap, task, requester).node is None:
                overflowed += 1
            moved += node != first
            raise_load(crmap, node, task.demand)
    assert moved > 50 and overflowed > 50, (moved, overflowed)


def test_paper_burst_fills_edge1_then_edge3_then_the_cloud_then_spreads(clang: str,
                                                                         vm: None) -> None:
    """The fig9 burst on the paper's map with every node idle: 4 audio tasks (1 core each)
    fill edge1 (4 cores), 8 fill edge3 (the other group's secure edge), 32 the cloud; then the
    least committed for its size takes each next one, the cloud most often."""
    crmap = load_topology(PAPER)
    for node in list(crmap.nodes.values()):
        crmap.put_node(replace(node, resource=replace(node.resource, cpu_percent=0.0)))
    audio = load_task(ROOT / "examples" / "tasks" / "audio.yaml")
    policy = example_vm("select_target")
    rows = _load_rows(policy, crmap, "dev1")
    by_address = {r.address: r.name for r in rows.values()}
    context = ctx(rows["edge1"].address, **task_fields(audio))
    chosen = [by_address[run(policy, context)[1]] for _ in range(88)]
    assert chosen[:4] == ["edge1"] * 4
    assert chosen[4:12] == ["edge3"] * 8
    assert chosen[12:44] == ["cloud"] * 32
    rest = {n: chosen[44:].count(n) for n in ("edge1", "edge3", "cloud")}
    assert rest == {"edge1": 4, "edge3": 8, "cloud": 32}  # in proportion to cores, once more
    # fresh rows (new stamp) start afresh: the next task goes to edge1 again
    _load_rows(policy, crmap, "dev1")
    assert by_address[run(policy, context)[1]] == "edge1"


def test_memory_is_never_over_committed(clang: str, vm: None) -> None:
    """CPU is time-shared and may be over-committed; memory is not: a node whose free Memory is
    used up by placed tasks takes no more, even as the fallback."""
    crmap = load_topology(PAPER)
    for node in list(crmap.nodes.values()):
        crmap.put_node(replace(node, resource=replace(node.resource, cpu_percent=0.0,
                                                      memory_used_mib=0.0)))
    big = Task("big", "cpu", True, True, Demand(1.0, 3000, 0))  # edge1: 8192 MiB, 2 fit
    policy = example_vm("select_target")
    rows = _load_rows(policy, crmap, "dev1")
    by_address = {r.address: r.name for r in rows.values()}
    context = ctx(rows["edge1"].address, **task_fields(big))
    chosen = [by_address[run(policy, context)[1]] for _ in range(50)]
    # edge1 8192 MiB: 2 fit; edge3 16384: 5; the cloud 131072: 43
    assert {n: chosen.count(n) for n in set(chosen)} == {"edge1": 2, "edge3": 5, "cloud": 43}
    assert run(policy, context) == (PASS, rows["edge1"].address)  # nothing fits: unchanged

