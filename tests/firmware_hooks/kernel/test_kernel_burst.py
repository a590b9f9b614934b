"""A burst through the selection policy: the kernel path counts what it placed as the hook does.

The paper's map with every node idle and each node's service on its own loopback listener; one
program connects 14 times to edge1 for an audio task (urgent, sensitive, 1 core). In the hook
(one process) and in the kernel path (the run's cgroup) the policy counts the Demand it placed
in its `local_placed` map, so both send the burst to edge1 x4 (its 4 cores), edge3 x8, then the
cloud: what topology.select_target answers on a map raised by each task's Demand.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import need
from hooktools import NameServer
from test_kernel_path import _kernel_ready
from test_kernel_select import _freeoffload_run

from freeoffload.errors import HookError

ROOT = Path(__file__).resolve().parents[3]
DATA = Path(__file__).parent / "data"
pytestmark = [pytest.mark.root, pytest.mark.bpf]
BURST = 14


def test_kernel_path_and_hook_place_a_burst_alike(tmp_path: Path) -> None:
    need(shutil.which("clang") is not None and shutil.which("gcc") is not None, "clang, gcc")
    _kernel_ready()
    from freeoffload.firmware_hooks.store import PolicyStore
    from freeoffload.topology import load_task, load_topology_text, select_target
    from freeoffload.topology.candidates import candidate_items, candidate_rows

    text = (ROOT / "examples" / "topologies" / "paper.yaml").read_text()
    servers = {}
    for name, address in re.findall(r"- Name: (\S+)\n(?:\s+\S.*\n)*?\s+Address: (\S+)", text):
        servers[name] = NameServer(name, dual_stack=True)
        text = text.replace(f"Address: {address}", f"Address: 127.0.0.1:{servers[name].port}")
    try:
        crmap = load_topology_text(text, "paper-loopback.yaml")
        for node in list(crmap.nodes.values()):
            crmap.put_node(replace(node, resource=replace(node.resource, cpu_percent=0.0)))
        task = ROOT / "examples" / "tasks" / "audio.yaml"
        audio = load_task(task)
        expected = []
        for _ in range(BURST):  # the reference: each choice raises that node's load
            name = select_target(crmap, audio, "dev1").node
            assert name is not None
            expected.append(name)
            node = crmap.nodes[name]
            res = node.resource
            crmap.put_node(replace(node, resource=replace(
                res, cpu_percent=res.cpu_percent + 100 * audio.demand.cpu_cores /
                node.computing_power.cpu.cores,
                memory_used_mib=res.memory_used_mib + audio.demand.memory_mib,
                storage_used_gib=res.storage_used_gib + audio.demand.storage_mib / 1024)))
        assert expected == ["edge1"] * 4 + ["edge3"] * 8 + ["cloud"] * 2
        obj = tmp_path / "select.o"
        subprocess.run(["clang", "-O2", "-g", "-target", "bpf", "-I",
                        str(ROOT / "offload_vm/include"), "-c",
                        str(ROOT / "examples/policies/select_target.c"), "-o", str(obj)],
                       check=True)
        for kind, flags in (("static", ["-static"]), ("dynamic", [])):
            subprocess.run(["gcc", "-O2", *flags, "-o", str(tmp_path / kind),
                            str(DATA / "burst.c")], check=True)
        store = PolicyStore(tmp_path / "store")
        try:
            store.init()
            store.install("select_target", obj.read_bytes(), version=1)
        except HookError as err:
            need(False, f"policy store: {err}")
        idle = load_topology_text(text, "paper-loopback.yaml")
        for node in list(idle.nodes.values()):
            idle.put_node(replace(node, resource=replace(node.resource, cpu_percent=0.0)))
        store.update_map_bulk("candidates", candidate_items(candidate_rows(idle, "dev1")))
        asked = ["127.0.0.1", str(servers["edge1"].port), str(BURST)]
        common = ["--task", str(task), "--store", str(store.directory)]
        kernel = _freeoffload_run("--kernel", *common, "--", str(tmp_path / "static"), *asked)
        user = _freeoffload_run(*common, "--", str(tmp_path / "dynamic"), *asked)
        assert kernel.split() == expected
        assert user.split() == expected
    finally:
        for s in servers.values():
            s.close()
