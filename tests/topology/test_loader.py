"""Loading and validating CR-map and task files: every bad file states the error it must give."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from freeoffload.topology import (
    check_task,
    dump_topology,
    load_task,
    load_task_text,
    load_topology,
    load_topology_text,
)

from freeoffload.errors import ConfigError, TaskError, TopologyError

DATA = Path(__file__).parent / "data"
BAD = sorted((DATA / "bad").glob("*.yaml"))
EXPECT = re.compile(r"^# expect: (\d+):(\d+) (.*?): (.*)$")


def _expectation(path: Path) -> tuple[int, int, str, str]:
    found = EXPECT.match(path.read_text().splitlines()[0])
    assert found, f"{path.name} must start with '# expect: LINE:COL FIELD: MESSAGE'"
    return int(found[1]), int(found[2]), found[3], found[4]


def _load_bad(path: Path) -> None:
    if not path.name.startswith("task_"):
        load_topology(path)
        return
    task = load_task(path)
    header = path.read_text().splitlines()[1]
    assert header.startswith("# map: "), f"{path.name}: a valid task needs '# map: FILE'"
    check_task(load_topology(DATA / header.removeprefix("# map: ")), task)


@pytest.mark.parametrize("path", BAD, ids=[p.stem for p in BAD])
def test_bad_file_names_line_column_and_field(path: Path) -> None:
    line, col, field, message = _expectation(path)
    kind = TaskError if path.name.startswith("task_") else TopologyError
    with pytest.raises(kind) as info:
        _load_bad(path)
    problem = info.value.problems[0]
    assert (problem.location.line, problem.location.col) == (line, col), str(info.value)
    assert problem.field == field, str(info.value)
    assert message in f"{problem.message}; {problem.hint}", str(info.value)
    assert problem.location.file.endswith(path.name)
    # the printed form is the one the command line shows
    assert str(info.value).splitlines()[0].startswith(f"{problem.location.file}:{line}:{col}: ")


def test_every_problem_of_a_file_is_reported_in_file_order() -> None:
    text = """\
nodes:
  - Name: e1
    Role: edge
    Group: g1
    Address: 10.0.1.1:80
    ComputingPower: {CPU: {cores: 0}, Memory: -1, Storage: big}
    Security: perhaps
  - Name: e1
    Role: edge
edges:
  - {StartNode: e1, EndNode: nowhere, BandWidth: 0, Latency: 1}
"""
    with pytest.raises(TopologyError) as info:
        load_topology_text(text, "many.yaml")
    got = [(p.location.line, p.field) for p in info.value.problems]
    assert got == [
        (2, "nodes"),  # no cloud node (reported at the nodes list)
        (6, "nodes[e1].ComputingPower.CPU.cores"),
        (6, "nodes[e1].ComputingPower.Memory"),
        (6, "nodes[e1].ComputingPower.Storage"),
        (7, "nodes[e1].Security"),
        (8, "nodes[e1].ComputingPower"),  # the second e1 is also an incomplete edge
        (8, "nodes[e1].Address"),
        (8, "nodes[e1].Group"),
        (8, "nodes[1].Name"),
        (11, "edges[0].EndNode"),
        (11, "edges[0].BandWidth"),
    ]


def test_ok_files_load_with_their_values() -> None:
    crmap = load_topology(DATA / "ok" / "small.yaml")
    assert sorted(crmap.nodes) == ["cloud", "d1", "e1", "e2"]
    e2 = crmap.nodes["e2"]
    assert e2.computing_power.cpu.cores == 4
    assert e2.resource.cpu_percent == 50
    assert e2.free_cpu_cores == 2
    assert e2.free_memory_mib == 8192 - 1024
    assert e2.free_storage_mib == (128 - 10) * 1024
    assert (e2.host, e2.port) == ("fd00::2", 8080)
    assert e2.updated == 1700000000.25
    assert crmap.nodes["e1"].security is False  # Security defaults to no protection
    assert crmap.nodes["d1"].online is True
    assert len(crmap.edges) == 3
    task = load_task(DATA / "ok" / "task_minimal.yaml")
    assert (task.name, task.type, task.sensitive, task.urgent) == ("tiny", "io", False, False)


def test_dumped_map_loads_back_equal() -> None:
    crmap = load_topology(DATA / "ok" / "small.yaml")
    assert load_topology_text(dump_topology(crmap), "again.yaml") == crmap


def test_task_text_errors_name_the_source() -> None:
    with pytest.raises(TaskError) as info:
        load_task_text("Name: a\nType: cpu\nDemand: {CPU: x}\n", "inline")
    assert str(info.value) == "inline:3:15: Demand.CPU: expected a number, got 'x'"


def test_unreadable_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_topology(tmp_path / "absent.yaml")
    assert "cannot read file" in str(info.value)
