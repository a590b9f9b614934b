"""The public names other parts code against (INTERFACES.md) are there and typed."""

from __future__ import annotations

import inspect
from pathlib import Path

import freeoffload.topology as topology

AGREED = {
    "CRMap", "Node", "Edge", "Task", "Selection", "load_topology", "load_topology_text",
    "load_task", "load_task_text", "select_target", "dump_topology", "merge_report",
    "merge_map", "path_latency",
}


def test_every_agreed_name_is_exported() -> None:
    assert set(topology.__all__) >= AGREED
    for name in topology.__all__:
        assert getattr(topology, name) is not None, name


def test_signatures_match_the_agreement() -> None:
    assert list(inspect.signature(topology.select_target).parameters) == [
        "crmap", "task", "from_node", "explain"]
    assert list(inspect.signature(topology.merge_report).parameters)[:3] == [
        "group_map", "report", "now"]
    assert list(inspect.signature(topology.merge_map).parameters)[:3] == [
        "cloud_map", "group_map", "now"]
    assert list(inspect.signature(topology.load_topology_text).parameters) == ["text", "source"]


def test_the_package_is_marked_typed() -> None:
    assert (Path(topology.__file__).parent / "py.typed").exists()


def test_networkx_stays_inside() -> None:
    for name in topology.__all__:
        obj = getattr(topology, name)
        if callable(obj) and not inspect.isclass(obj):
            hints = str(inspect.signature(obj))
            assert "networkx" not in hints and "Graph" not in hints, name
