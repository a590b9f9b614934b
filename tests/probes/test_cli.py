"""The probes commands as a user runs them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

PROBES = [sys.executable, "-m", "freeoffload.probes"]


def test_list_names_every_probe_its_tracepoints_and_metrics() -> None:
    out = subprocess.run([*PROBES, "list"], capture_output=True, text=True, check=True)
    for name in ("cpu:", "disk:", "net:", "tcp:"):
        assert any(line.startswith(name) for line in out.stdout.splitlines())
    assert "tracepoint sched:sched_switch" in out.stdout
    assert "disk_latency_seconds histogram [seconds] {dev}" in out.stdout


def test_watch_refuses_a_zero_interval() -> None:
    out = subprocess.run([*PROBES, "watch", "--interval", "0", "--count", "1"],
                         capture_output=True, text=True)
    assert out.returncode == 2
    assert out.stderr.strip() == "--interval: interval: must be above 0 seconds"


@pytest.mark.root
@pytest.mark.bpf
def test_check_loads_and_attaches_everything(bpf: None) -> None:
    out = subprocess.run([*PROBES, "check"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    lines = out.stdout.splitlines()
    for name in ("cpu", "disk", "net", "tcp"):
        assert any(line.startswith(f"{name}: ok, compiled in") and "(batch)" in line
                   for line in lines), out.stdout
    assert lines[-1] == "mode: ebpf"


@pytest.mark.root
@pytest.mark.bpf
def test_check_with_a_scope_and_a_scope_that_does_not_exist(bpf: None, cgroup: Path) -> None:
    out = subprocess.run([*PROBES, "check", "--scope", str(cgroup)], capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.splitlines()[-1] == "mode: ebpf"
    out = subprocess.run([*PROBES, "check", "--scope", "/no-such-cgroup"], capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 1
    assert out.stderr.strip().startswith("freeoffload: scope /no-such-cgroup: no cgroup v2 "
                                         "directory at ")


@pytest.mark.root
@pytest.mark.bpf
def test_watch_prints_a_table_and_a_record(bpf: None) -> None:
    out = subprocess.run([*PROBES, "watch", "--count", "1", "--interval", "0.3"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("mode ebpf  interval")
    assert "cpu " in out.stdout and "disk" in out.stdout and "peer" in out.stdout
    out = subprocess.run([*PROBES, "watch", "--count", "1", "--interval", "0.3", "--format",
                          "record", "--name", "edge9"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    record = yaml.safe_load(out.stdout)
    node = record["nodes"][0]
    assert node["Name"] == "edge9"
    assert set(node["ComputingPower"]) == {"CPU", "Memory", "Storage"}
    assert set(node["Resource"]) == {"cpu_percent", "memory_used", "storage_used",
                                     "running_tasks"}
