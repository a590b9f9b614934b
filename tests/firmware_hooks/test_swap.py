"""32 threads connecting while the installed policy is swapped 1,000 times: every connection
succeeds and reaches one of the two policies' destinations, never the original."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from freeoffload.firmware_hooks import PolicyStore
from hooktools import BannerServer, build_client, hook_lib, servers, store, test_policy

__all__ = ["hook_lib", "servers", "store", "test_policy"]  # fixtures used below


@pytest.mark.slow
def test_32_threads_while_policies_swap_1000_times(
    tmp_path: Path, store: PolicyStore, servers: Callable[..., BannerServer],
    test_policy: Callable[..., bytes],
) -> None:
    a, b, c = servers(), servers(), servers()
    to_b = test_policy("to_port", FROM_PORT=a.port, TO_PORT=b.port)
    to_c = test_policy("to_port", FROM_PORT=a.port, TO_PORT=c.port)
    store.install("to_port", to_b, 0)
    client = build_client(tmp_path)
    out = tmp_path / "connections.txt"
    cmd = [sys.executable, "-m", "freeoffload.firmware_hooks", "run", "--store",
           str(store.directory), "--", str(client), "127.0.0.1", str(a.port), "0", "32"]
    with out.open("w") as sink, subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=sink,
                                                 stderr=subprocess.PIPE, text=True) as proc:
        assert proc.stdin is not None and proc.stderr is not None
        try:
            for i in range(1000):
                store.install("to_port", to_c if i % 2 == 0 else to_b, i + 1)
        finally:
            proc.stdin.close()
            proc.wait(timeout=120)
        errors = proc.stderr.read()
    lines = out.read_text().splitlines()
    assert proc.returncode == 0, errors
    assert "FAILED" not in lines
    assert set(lines) == {f"port {b.port}", f"port {c.port}"}
    assert a.accepted == 0
    assert len(lines) >= 1000, f"only {len(lines)} connections overlapped the swaps"
    print(f"{len(lines)} connections during 1000 swaps")
