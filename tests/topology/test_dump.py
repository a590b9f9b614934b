"""Writing maps back out: what is written loads back equal, in YAML and in JSON form."""

from __future__ import annotations

from dataclasses import replace

from freeoffload.topology import (
    CRMap,
    Task,
    dump_task,
    dump_topology,
    dump_topology_json,
    load_task_text,
    load_topology_text,
)
from hypothesis import given, settings
from topo_strategies import crmaps, tasks


@settings(max_examples=60, deadline=None)
@given(crmaps())
def test_a_dumped_map_loads_back_equal(crm: CRMap) -> None:
    assert load_topology_text(dump_topology(crm), "m.yaml") == crm
    assert load_topology_text(dump_topology_json(crm), "m.json") == crm


@settings(max_examples=60, deadline=None)
@given(tasks)
def test_a_dumped_task_loads_back_equal(job: Task) -> None:
    assert load_task_text(dump_task(job), "t.yaml") == replace(job, name=job.name)


def test_an_invalid_json_map_is_reported_with_line_and_column() -> None:
    text = ('{\n  "nodes": [\n    {"Name": "c", "Role": "cloud", "Address": "h:1",\n'
            '     "ComputingPower": {"CPU": {"cores": 2}, "Memory": 1, "Storage": 1},\n'
            '     "Online": "yes"}\n  ]\n}\n')
    try:
        load_topology_text(text, "bad.json")
    except Exception as err:
        assert str(err) == ("bad.json:5:16: nodes[c].Online: expected a boolean, got 'yes'; "
                            "use true or false")
    else:
        raise AssertionError("an invalid JSON map loaded")


def test_a_json_map_with_a_repeated_key_is_refused_like_yaml() -> None:
    text = '{"nodes": [], "nodes": []}'
    try:
        load_topology_text(text, "dup.json")
    except Exception as err:
        assert "nodes: duplicate key; first given at line 1" in str(err)
    else:
        raise AssertionError("a repeated key was accepted")
