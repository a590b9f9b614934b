"""Whatever a file holds, loading ends in a map, a task or located problems, never a crash."""

from __future__ import annotations

import json
from typing import Any

import yaml
from freeoffload.topology import load_task_text, load_topology_text
from hypothesis import given, settings
from hypothesis import strategies as st
from topo_maps import PAPER, TASKS

from freeoffload.errors import TaskError, TopologyError

scalars = (st.none() | st.booleans() | st.integers(-5, 70000)
           | st.floats(allow_nan=True, allow_infinity=True)
           | st.sampled_from(["", "edge1", "cloud", "cpu", "io", "yes", "h:80", "-1", "x:y"]))
junk = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(st.sampled_from(["Name", "Role", "CPU", "a", "nodes"]),
                                      inner, max_size=3), max_leaves=8)


def _paths(data: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(data, dict):
        for key, value in data.items():
            out += _paths(value, (*prefix, key))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            out += _paths(value, (*prefix, index))
    return out


def _replace(data: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    copy = json.loads(json.dumps(data))
    target = copy
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return copy


PAPER_DATA = yaml.safe_load(PAPER.read_text())
AUDIO_DATA = yaml.safe_load((TASKS / "audio.yaml").read_text())


@settings(max_examples=150, deadline=None)
@given(st.data(), junk)
def test_a_damaged_map_is_reported_with_locations(data: st.DataObject, value: Any) -> None:
    path = data.draw(st.sampled_from(_paths(PAPER_DATA)))
    text = yaml.safe_dump(_replace(PAPER_DATA, path, value))
    try:
        load_topology_text(text, "damaged.yaml")
    except TopologyError as err:
        assert all(p.location.line >= 1 for p in err.problems), str(err)


@settings(max_examples=100, deadline=None)
@given(st.data(), junk)
def test_a_damaged_task_is_reported_with_locations(data: st.DataObject, value: Any) -> None:
    path = data.draw(st.sampled_from(_paths(AUDIO_DATA)))
    text = yaml.safe_dump(_replace(AUDIO_DATA, path, value))
    try:
        load_task_text(text, "damaged.yaml")
    except TaskError as err:
        assert all(p.location.line >= 1 for p in err.problems), str(err)


@settings(max_examples=100, deadline=None)
@given(junk)
def test_any_document_at_all(value: Any) -> None:
    text = yaml.safe_dump(value)
    for load, error in ((load_topology_text, TopologyError), (load_task_text, TaskError)):
        try:
            load(text, "any.yaml")
        except error as err:
            assert all(p.location.line >= 1 for p in err.problems), str(err)
