"""From the center to a running program: a policy and its rows pushed to `freeoffload device`
change the next connection of a program already running under `freeoffload run`, by the
user-space hook and by the kernel path alike."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _daemon import DATA, Daemon, write_config
from conftest import need
from hooktools import NameServer
from test_device_daemon import _package, _update, material  # noqa: F401 (fixture)

pytestmark = [pytest.mark.root, pytest.mark.bpf]


@pytest.fixture
def listeners() -> Iterator[tuple[int, int]]:
    a, b = NameServer("A"), NameServer("B")
    yield a.port, b.port
    a.close()
    b.close()


@pytest.mark.parametrize("kernel", [False, True], ids=["hook", "kernel"])
def test_a_push_redirects_the_next_connection_of_a_running_program(
        kernel: bool, tmp_path: Path, material: dict[str, Any],  # noqa: F811
        listeners: tuple[int, int]) -> None:
    need(os.geteuid() == 0, "needs root")
    if kernel:
        from freeoffload.firmware_hooks.kernel import kernel_support

        reason = kernel_support()
        need(reason is None, f"kernel path: {reason}")
    a, b = listeners
    daemon = Daemon(write_config(tmp_path, material["pub"])).start()
    args = ["--kernel"] if kernel else []
    prog = subprocess.Popen(
        [sys.executable, "-m", "freeoffload.firmware_hooks", "run", *args, "--store",
         str(tmp_path / "store"), "--", "/usr/bin/python3", str(DATA / "two_connects.py"),
         str(a)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert prog.stdin is not None and prog.stdout is not None
        assert prog.stdout.readline().strip() == "A"  # nothing installed yet
        assert daemon.put("/v1/policy", _package(material, 1))[0] == 200
        code, answer = daemon.put("/v1/maps/redirects", _update(
            material, 1, [(f"127.0.0.1:{a}", f"127.0.0.1:{b}")]))
        assert code == 200, answer
        time.sleep(1.0)  # the kernel path copies rows on its next poll (every 50 ms)
        prog.stdin.write("go\n")
        prog.stdin.flush()
        assert prog.stdout.readline().strip() == "B"
        assert prog.wait(timeout=30) == 0
    finally:
        if prog.poll() is None:
            prog.kill()
            prog.wait()
        daemon.stop()
