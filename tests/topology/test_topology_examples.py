"""Every example CR-map and task loads, and every task gets a target from every device."""

from __future__ import annotations

from pathlib import Path

import pytest
from freeoffload.topology import load_task, load_topology, select_target
from topo_maps import ROOT

MAPS = sorted((ROOT / "examples" / "topologies").glob("*.yaml"))
TASKS = sorted((ROOT / "examples" / "tasks").glob("*.yaml"))


def test_there_are_examples() -> None:
    assert MAPS, "examples/topologies/ has no map"
    assert {p.stem for p in TASKS} >= {"audio", "video_transcoding", "file_processing",
                                       "web_request"}


@pytest.mark.parametrize("map_path", MAPS, ids=[p.stem for p in MAPS])
@pytest.mark.parametrize("task_path", TASKS, ids=[p.stem for p in TASKS])
def test_each_example_task_finds_a_target_from_each_device(map_path: Path,
                                                           task_path: Path) -> None:
    crmap = load_topology(map_path)
    task = load_task(task_path)
    devices = [n for n, node in crmap.nodes.items() if node.role == "device"]
    assert devices
    for device in devices:
        chosen = select_target(crmap, task, device)
        assert chosen.node is not None, f"{task_path.name} from {device}"
        assert crmap.nodes[chosen.node].role in ("edge", "cloud")


def test_the_paper_map_is_the_papers_testbed() -> None:
    crmap = load_topology(ROOT / "examples" / "topologies" / "paper.yaml")
    roles = {name: node.role for name, node in crmap.nodes.items()}
    assert roles == {"cloud": "cloud", "edge1": "edge", "edge2": "edge", "edge3": "edge",
                     "edge4": "edge", "dev1": "device", "dev2": "device"}
    assert {n for n, node in crmap.nodes.items() if node.security and node.role == "edge"} == \
        {"edge1", "edge3"}
    audio = load_task(ROOT / "examples" / "tasks" / "audio.yaml")
    assert (audio.type, audio.sensitive, audio.urgent) == ("cpu", True, True)
