"""examples/policies/select_target.c in the VM chooses exactly what topology.select_target does."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from freeoffload.offload_vm.policy import task_fields
from freeoffload.topology import (
    CPU,
    ComputingPower,
    CRMap,
    Demand,
    Edge,
    Node,
    Resource,
    Task,
    load_task,
    load_topology,
    select_target,
)
from freeoffload.topology.candidates import candidate_items, candidate_rows
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from freeoffload.errors import TaskError

from .conftest import need_vm
from .vmtools import ctx, example_vm, run

ROOT = Path(__file__).resolve().parents[3]
PAPER = ROOT / "examples" / "topologies" / "paper.yaml"
PASS, REWRITE = 0, 1


def _decide(policy: Any, crmap: CRMap, task: Task, from_node: str, dst: str) -> tuple[int, str]:
    for key, value in candidate_items(candidate_rows(crmap, from_node)):
        policy.maps["candidates"].update(key, value)
    return run(policy, ctx(dst, **task_fields(task)))


def test_paper_scenario_sensitive_task_from_dev1_goes_to_edge3(clang: str, vm: None) -> None:
    crmap = load_topology(PAPER)
    audio = load_task(ROOT / "examples" / "tasks" / "audio.yaml")
    assert select_target(crmap, audio, "dev1").node == "edge3"
    policy = example_vm("select_target")
    assert _decide(policy, crmap, audio, "dev1", "10.0.1.11:8080") == (REWRITE, "10.0.2.13:8080")


def test_connections_elsewhere_and_programs_without_task_pass(clang: str, vm: None) -> None:
    crmap = load_topology(PAPER)
    audio = load_task(ROOT / "examples" / "tasks" / "audio.yaml")
    policy = example_vm("select_target")
    assert _decide(policy, crmap, audio, "dev1", "127.0.0.53:53") == (PASS, "127.0.0.53:53")
    assert run(policy, ctx("10.0.1.11:8080")) == (PASS, "10.0.1.11:8080")  # no task
    empty = example_vm("select_target")
    assert run(empty, ctx("10.0.1.11:8080", **task_fields(audio))) == (PASS, "10.0.1.11:8080")


def test_unloaded_edge1_keeps_its_devices(clang: str, vm: None) -> None:
    crmap = load_topology(PAPER)
    edge1 = crmap.nodes["edge1"]
    crmap.put_node(replace(edge1, resource=replace(edge1.resource, cpu_percent=20)))
    audio = load_task(ROOT / "examples" / "tasks" / "audio.yaml")
    assert select_target(crmap, audio, "dev1").node == "edge1"
    policy = example_vm("select_target")
    assert _decide(policy, crmap, audio, "dev1", "10.0.1.11:8080") == (REWRITE, "10.0.1.11:8080")


# ---- differential test ------------------------------------------------------------------------
_percent = st.sampled_from([0, 5, 12.5, 25, 30, 50, 69.9, 70, 75, 90, 99, 100])
_ms = st.one_of(st.none(), st.sampled_from([2, 4.2, 9.8, 10, 12.5, 15, 30.1]))


@st.composite
def _node(draw: Any, i: int, groups: int) -> Node:
    role = "cloud" if i == 0 else draw(st.sampled_from(["edge", "edge", "edge", "cloud"]))
    return Node(
        name=f"n{draw(st.integers(0, 99)):02d}x{i}", role=role,
        group=f"g{draw(st.integers(0, groups))}" if role == "edge" else "cloud",
        address=f"10.{i // 200}.{i % 200}.{draw(st.integers(1, 250))}:{8000 + i}",
        computing_power=ComputingPower(CPU(draw(st.sampled_from([1, 2, 4, 8, 32])), 2000),
                                       draw(st.sampled_from([512, 2048, 8192])),
                                       draw(st.sampled_from([1, 16, 256]))),
        security=draw(st.booleans()),
        resource=Resource(cpu_percent=draw(_percent),
                          memory_used_mib=draw(st.sampled_from([0, 256, 1024, 4096, 9000])),
                          storage_used_gib=draw(st.sampled_from([0, 0.5, 8, 300]))),
        capability={k: v for k, v in (("cpu", draw(_ms)), ("io", draw(_ms))) if v is not None},
        online=draw(st.booleans()) or draw(st.booleans()),
    )


@st.composite
def _world(draw: Any) -> tuple[CRMap, Task, str, str]:
    count = draw(st.integers(1, 20))
    nodes = [draw(_node(i, draw(st.integers(0, 3)))) for i in range(count)]
    requester = Node(name="dev", role="device", group=draw(st.sampled_from(["g0", "g1", ""])),
                     computing_power=ComputingPower(CPU(1), 512, 1))
    names = [n.name for n in nodes]
    links = [Edge("dev", names[j], 100, draw(st.sampled_from([0.5, 1, 2, 2.5, 5, 40])))
             for j in sorted(set(draw(st.lists(st.integers(0, count - 1), min_size=1))))]
    links += [Edge(names[a], names[b], 100, draw(st.sampled_from([1, 2, 3, 10])))
              for a, b in draw(st.lists(st.tuples(st.integers(0, count - 1),
                                                  st.integers(0, count - 1)), max_size=12))
              if a != b]
    crmap = CRMap({n.name: n for n in [*nodes, requester]}, links)
    task = Task("t", draw(st.sampled_from(["cpu", "io"])), draw(st.booleans()),
                draw(st.booleans()),
                Demand(draw(st.integers(0, 4000)) / 1000, draw(st.integers(0, 4096)),
                       draw(st.integers(0, 20000))))
    return crmap, task, "dev", names[draw(st.integers(0, count - 1))]


@pytest.fixture(scope="module")
def select_policy() -> Any:
    need_vm()
    return example_vm("select_target")


@settings(max_examples=3000, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(world=_world())
def test_vm_choice_equals_topology_choice(clang: str, vm: None, select_policy: Any,
                                          world: tuple[CRMap, Task, str, str]) -> None:
    crmap, task, requester, original = world
    try:
        expected = select_target(crmap, task, requester)
    except TaskError:
        return  # no node has the Type at all: topology refuses the task, nothing to compare
    rows = {r.name: r for r in candidate_rows(crmap, requester)}
    dst = crmap.nodes[original].address
    got = _decide(select_policy, crmap, task, requester, dst)
    if original not in rows or expected.node is None:
        assert got == (PASS, dst)
    else:
        assert got == (REWRITE, rows[expected.node].address), expected
