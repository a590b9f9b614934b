"""The testbed file and the plan derived from the paper's CR-map."""

from __future__ import annotations

from pathlib import Path

import pytest
from freeoffload.agent.testbed import DEFAULT_CONFIG, load_plan

from freeoffload.errors import ConfigError

BAD = Path(__file__).parent / "data" / "bad"


def test_the_example_builds_every_node_of_the_paper() -> None:
    plan = load_plan(DEFAULT_CONFIG)
    names = {n.name for n in plan.nodes}
    assert names == {"cloud", "edge1", "edge2", "edge3", "edge4", "dev1", "dev2"}
    assert all(n.netns == f"fotb-{n.name}" for n in plan.nodes)
    assert len({n.ip for n in plan.nodes}) == len(plan.nodes)
    assert all(n.ip.startswith("10.250.7.") for n in plan.nodes)


def test_round_trip_is_the_path_latency() -> None:
    plan = load_plan(DEFAULT_CONFIG)
    # dev1 - edge1 is one link of 2.5 ms; dev1 - edge3 goes through edge1 (2.5 + 6.0)
    assert plan.delay_ms[("dev1", "edge1")] * 2 == pytest.approx(2.5)
    assert plan.delay_ms[("dev1", "edge3")] + plan.delay_ms[("edge3", "dev1")] == (
        pytest.approx(8.5))
    assert plan.bandwidth_mbit[("dev1", "edge3")] == 150  # the Wi-Fi link is the bottleneck
    assert plan.bandwidth_mbit[("edge1", "cloud")] == 200


def test_cpu_shares_follow_computing_power() -> None:
    plan = load_plan(DEFAULT_CONFIG)
    cpu = {n.name: n.cpu for n in plan.nodes}
    assert cpu["cloud"] == max(cpu.values())
    assert cpu["edge3"] > cpu["edge1"] > cpu["edge2"] > cpu["edge4"] > cpu["dev1"] > 0


@pytest.mark.parametrize("path", sorted(BAD.glob("*.yaml")), ids=lambda p: p.name)
def test_bad_files_name_line_and_field(path: Path) -> None:
    expected = path.read_text().splitlines()[0].removeprefix("# error: ")
    with pytest.raises(ConfigError) as info:
        load_plan(path)
    assert expected in str(info.value).replace(str(path.parent) + "/", "")


def test_cli_help_lists_the_actions() -> None:
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "freeoffload", "testbed", "--help"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    for action in ("up", "down", "status", "run"):
        assert action in result.stdout
    run = subprocess.run([sys.executable, "-m", "freeoffload", "testbed", "run", "fig8"],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and "invalid choice: 'fig8'" in run.stderr
