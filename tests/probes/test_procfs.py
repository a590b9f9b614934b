"""procfs mode: what a user without root gets, with the reason in the output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import need
from freeoffload.probes import open_collector

from .conftest import join_cgroup


def test_procfs_mode_has_the_sample_shape_and_says_why() -> None:
    collector = open_collector("procfs")
    try:
        time.sleep(0.2)
        sample = collector.sample()
    finally:
        collector.close()
    assert sample.mode == "procfs" and sample.reason == "procfs mode requested"
    assert len(sample.cpu.per_cpu) == os.cpu_count()
    assert 0.0 <= sample.cpu.percent <= 100.0
    assert sample.memory.total_bytes > sample.memory.used_bytes > 0
    assert sample.tasks > 1 and sample.storage_used_bytes > 0
    data = sample.to_dict()
    assert set(data) >= {"mode", "reason", "cpu", "memory", "disks", "interfaces", "peers"}


@pytest.mark.root
def test_a_user_without_root_gets_procfs_mode_with_the_reason(root: None) -> None:
    need(os.access("/usr/bin/setpriv", os.X_OK), "needs setpriv (util-linux)")
    out = subprocess.run(
        ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", sys.executable,
         "-m", "freeoffload.probes", "watch", "--count", "2", "--interval", "0.2",
         "--format", "json"],
        capture_output=True, text=True, timeout=120, cwd="/")
    assert out.returncode == 0, out.stderr
    samples = [json.loads(line) for line in out.stdout.splitlines()]
    assert len(samples) == 2
    for sample in samples:
        assert sample["mode"] == "procfs"
        assert sample["reason"] == "not root: eBPF needs root or CAP_BPF+CAP_PERFMON"
        assert sample["cpu"]["per_cpu"] and sample["memory"]["total_bytes"] > 0


@pytest.mark.root
def test_a_user_without_root_is_refused_ebpf_mode_with_the_reason(root: None) -> None:
    out = subprocess.run(
        ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", sys.executable,
         "-m", "freeoffload.probes", "watch", "--count", "1", "--mode", "ebpf"],
        capture_output=True, text=True, timeout=120, cwd="/")
    assert out.returncode == 1
    assert out.stderr.strip() == ("freeoffload: eBPF is off: not root: eBPF needs root or "
                                  "CAP_BPF+CAP_PERFMON")


@pytest.mark.root
def test_a_user_without_root_can_list_the_probes(root: None) -> None:
    out = subprocess.run(
        ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", sys.executable,
         "-m", "freeoffload.probes", "list"], capture_output=True, text=True, timeout=120,
        cwd="/")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("cpu: busy time per CPU")
    assert "tcp_peer_rtt_seconds gauge [seconds] {addr}" in out.stdout


HOLD = "import sys, time\nb = bytearray(64 << 20)\nfor i in range(0, len(b), 4096): b[i] = 1\n" \
       "print('ready', flush=True)\ntime.sleep(30)\n"


@pytest.mark.root
def test_a_scope_with_a_memory_limit_reports_its_own_memory(
        root: None, memory_cgroup: tuple[Path, list[Path]]) -> None:
    from freeoffload.probes import RecordBuilder

    cgroup, joined = memory_cgroup
    holder = subprocess.Popen([sys.executable, "-c", HOLD], stdout=subprocess.PIPE, text=True,
                              preexec_fn=lambda: join_cgroup(*joined))
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        collector = open_collector("procfs", scope=cgroup)
        try:
            sample = collector.sample()
        finally:
            collector.close()
    finally:
        holder.kill()
        holder.wait()
    assert sample.memory.total_bytes == 256 << 20
    assert 64 << 20 <= sample.memory.used_bytes < 160 << 20
    builder = RecordBuilder("edge1")
    builder.add(sample)
    node = builder.node()
    assert node["ComputingPower"]["Memory"] == 256.0
    assert 64 <= node["Resource"]["memory_used"] < 160
