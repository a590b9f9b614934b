"""``testbed down`` removes everything, also after ``up`` crashed and with no state file."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import need
from freeoffload.agent.testbed import bed, procs
from freeoffload.agent.testbed.cgroups import find_cgroups
from freeoffload.agent.testbed.net import list_namespaces
from pyroute2 import netns

pytestmark = [pytest.mark.root, pytest.mark.netns]


def _alive(pid: int) -> bool:
    stat = Path(f"/proc/{pid}/stat")
    try:
        return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def test_down_finds_leftovers_by_prefix_without_state() -> None:
    need(os.geteuid() == 0, "needs root")
    prefix = "fotbx-"
    bed.down(prefix)
    cgroups = find_cgroups(prefix)
    netns.create(f"{prefix}edge1")
    netns.create(f"{prefix}edge2")
    cgroups.create("edge1", 0.1)
    log = Path("/tmp") / f"fotbx-{os.getpid()}.log"
    try:
        in_both = procs.spawn(f"{prefix}edge1", cgroups.procs_files("edge1"),
                              ["sleep", "300"], log)
        in_ns_only = subprocess.Popen(["nsenter", f"--net=/run/netns/{prefix}edge2",
                                       "sleep", "300"], start_new_session=True)
        time.sleep(0.3)
        assert _alive(in_both.pid) and _alive(in_ns_only.pid)
        removed = bed.down(prefix)
        assert sorted(removed.namespaces) == [f"{prefix}edge1", f"{prefix}edge2"]
        assert removed.cgroups == ["edge1"]
        for proc in (in_both, in_ns_only):
            proc.wait(timeout=5)
            assert not _alive(proc.pid)
        assert list_namespaces(prefix) == []
        assert not [d for d in cgroups.roots if d.exists()]
    finally:
        bed.down(prefix)
        log.unlink(missing_ok=True)


@pytest.mark.slow
def test_down_cleans_up_after_up_is_killed_half_way() -> None:
    need(os.geteuid() == 0, "needs root")
    bed.down()
    code = "from freeoffload.agent.testbed import up, load_plan; up(load_plan())"
    crashing = subprocess.Popen([sys.executable, "-c", code], start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        # kill it once the services are being started: namespaces, relay, some services exist
        while time.monotonic() < deadline:
            state = bed.read_state() or {}
            if len(state.get("processes", [])) >= 3:
                break
            time.sleep(0.05)
        else:
            pytest.fail("up never got as far as starting processes")
        os.kill(crashing.pid, signal.SIGKILL)
        crashing.wait()
        pids = [p["pid"] for p in (bed.read_state() or {}).get("processes", [])]
        assert list_namespaces(bed.DEFAULT_PREFIX), "the crash should leave namespaces behind"
        result = subprocess.run([sys.executable, "-m", "freeoffload", "testbed",
                                 "down"], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        assert "namespaces" in result.stdout
        assert list_namespaces(bed.DEFAULT_PREFIX) == []
        cgroups = find_cgroups(bed.DEFAULT_PREFIX)
        assert not [d for d in cgroups.roots if d.exists()]
        assert not [p for p in pids if _alive(p)]
        assert not bed.STATE_DIR.exists()
    finally:
        crashing.kill()
        bed.down()
