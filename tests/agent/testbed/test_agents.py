"""``testbed up --agents``: devices' daemons and the agents, groups and centers as in the file."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from conftest import need
from freeoffload.agent.testbed import bed, load_plan
from freeoffload.agent.testbed.agents import Agents
from freeoffload.agent.testbed.cgroups import find_cgroups
from freeoffload.agent.testbed.net import list_namespaces

pytestmark = [pytest.mark.root, pytest.mark.netns, pytest.mark.slow]


def _fo(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "freeoffload", *args], capture_output=True,
                          text=True, timeout=300)


def test_up_with_agents_builds_the_cr_map_and_down_removes_it() -> None:
    need(os.geteuid() == 0, "needs root")
    plan = load_plan()
    bed.down(plan.prefix)
    try:
        result = _fo("testbed", "up", "--agents")
        assert result.returncode == 0, result.stderr[-2000:]
        assert "edge2 (center)" in result.stdout and "cloud (cloud)" in result.stdout
        cgroups = find_cgroups(plan.prefix)
        agents = Agents.load(plan, cgroups, bed.STATE_DIR / "agents")
        assert agents.configs["edge1"]["role"] == "member"
        assert agents.configs["edge1"]["probes"]["cgroup"] == cgroups.scope("edge1")
        # the cloud's map fills with every edge as members report to centers and centers to it
        wanted = {n.name for n in plan.nodes if n.role != "device"}
        deadline = time.monotonic() + 60
        seen: set[str] = set()
        while time.monotonic() < deadline and not wanted <= seen:
            text = agents.get("cloud", "/v1/topology") or ""
            seen = {n for n in wanted if f"Name: {n}" in str(text)}
            time.sleep(1)
        assert wanted <= seen, f"the cloud's map has only {sorted(seen)}"
        for name in ("dev1", "dev2"):  # freeoffload device answers on each device
            status = subprocess.run(
                ["nsenter", f"--net=/run/netns/{plan.node(name).netns}", "curl", "-sf",
                 f"http://{plan.node(name).ip}:7701/v1/status"], capture_output=True, text=True)
            assert status.returncode == 0 and f'"device": "{name}"' in status.stdout.replace(
                '":"', '": "')
    finally:
        down = _fo("testbed", "down")
    assert down.returncode == 0, down.stderr
    assert list_namespaces(plan.prefix) == []
    assert not [d for d in find_cgroups(plan.prefix).roots if d.exists()]
