"""The selection policy over the candidates map, kernel path beside the user-space hook.

The paper's CR-map with every node's service on its own loopback listener; for each example
task a static client (kernel path only) and a dynamic one (hook only), both started with
``freeoffload run`` as a device would, reach the node ``topology.select_target`` chooses.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import need
from hooktools import NameServer
from test_kernel_path import _kernel_ready

from freeoffload.errors import HookError

ROOT = Path(__file__).resolve().parents[3]
DATA = Path(__file__).parent / "data"
pytestmark = [pytest.mark.root, pytest.mark.bpf]
TASKS = sorted((ROOT / "examples" / "tasks").glob("*.yaml"))


@pytest.fixture(scope="module")
def testbed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    need(shutil.which("clang") is not None and shutil.which("gcc") is not None, "clang, gcc")
    _kernel_ready()
    from freeoffload.firmware_hooks.store import PolicyStore
    from freeoffload.topology import load_topology_text
    from freeoffload.topology.candidates import candidate_items, candidate_rows

    out = tmp_path_factory.mktemp("select")
    text = (ROOT / "examples" / "topologies" / "paper.yaml").read_text()
    names = re.findall(r"- Name: (\S+)\n(?:\s+\S.*\n)*?\s+Address: (\S+)", text)
    servers = {}
    for name, address in names:
        servers[name] = NameServer(name, dual_stack=True)
        text = text.replace(f"Address: {address}", f"Address: 127.0.0.1:{servers[name].port}")
    crmap = load_topology_text(text, "paper-loopback.yaml")
    subprocess.run(["clang", "-O2", "-g", "-target", "bpf", "-I", str(ROOT / "offload_vm/include"),
                    "-c", str(ROOT / "examples/policies/select_target.c"), "-o",
                    str(out / "select.o")], check=True)
    for kind, flags in (("static", ["-static"]), ("dynamic", [])):
        subprocess.run(["gcc", "-O2", *flags, "-o", str(out / kind), str(DATA / "client.c")],
                       check=True)
    store = PolicyStore(out / "store")
    try:
        store.init()
        store.install("select_target", (out / "select.o").read_bytes(), version=1)
    except HookError as err:
        need(False, f"policy store: {err}")
    store.update_map_bulk("candidates", candidate_items(candidate_rows(crmap, "dev1")))
    yield {"crmap": crmap, "servers": servers, "out": out, "store": store.directory}
    for s in servers.values():
        s.close()


def _freeoffload_run(*args: str) -> str:
    proc = subprocess.run([sys.executable, "-m", "freeoffload.firmware_hooks", "run", *args],
                          capture_output=True, text=True, timeout=60, env=dict(os.environ))
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


@pytest.mark.parametrize("task", TASKS, ids=lambda p: p.stem)
def test_both_paths_choose_what_the_topology_chooses(task: Path,
                                                     testbed: dict[str, object]) -> None:
    from freeoffload.topology import CRMap, load_task, select_target

    crmap, servers, out = testbed["crmap"], testbed["servers"], testbed["out"]
    assert isinstance(crmap, CRMap) and isinstance(servers, dict) and isinstance(out, Path)
    expected = select_target(crmap, load_task(task), "dev1").node
    assert expected is not None
    asked = str(servers["edge1"].port)  # the device's program asks for its own edge
    common = ["--task", str(task), "--store", str(testbed["store"])]
    kernel = _freeoffload_run("--kernel", *common, "--", str(out / "static"), "127.0.0.1", asked)
    user = _freeoffload_run(*common, "--", str(out / "dynamic"), "127.0.0.1", asked)
    assert kernel == f"got={expected} peer=127.0.0.1:{asked}"
    assert user.split()[0] == f"got={expected}"
