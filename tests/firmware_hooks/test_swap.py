"""32 threads connecting while the installed policy is swapped 1,000 times: every connection
succeeds and reaches one of the two policies' destinations, never the original."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from freeoffload.firmware_hooks import PolicyStore
from freeoffload.firmware_hooks._build import HOOK_LIBRARY, build_libraries
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


@pytest.mark.slow
def test_swaps_under_address_sanitizer(
    tmp_path: Path, store: PolicyStore, servers: Callable[..., BannerServer],
    test_policy: Callable[..., bytes],
) -> None:
    # the hook and the VM built with ASan/UBSan: a policy freed while a call still ran it,
    # or any other memory error in the reload path, aborts the client with a report
    asan = subprocess.run(["gcc", "-print-file-name=libasan.so"], capture_output=True,
                          text=True, check=True).stdout.strip()
    build_libraries(tmp_path / "asan", names=[HOOK_LIBRARY],
                    extra_cflags=["-fsanitize=address,undefined", "-fno-sanitize-recover=all",
                                  "-fno-omit-frame-pointer",
                                  "-Wl,--unresolved-symbols=ignore-all"])
    a, b, c = servers(), servers(), servers()
    to_b = test_policy("to_port", FROM_PORT=a.port, TO_PORT=b.port)
    to_c = test_policy("to_port", FROM_PORT=a.port, TO_PORT=c.port)
    store.install("to_port", to_b, 0)
    client = build_client(tmp_path / "client")
    env = dict(os.environ, LD_PRELOAD=f"{asan} {tmp_path / 'asan' / HOOK_LIBRARY}",
               FREEOFFLOAD_STORE=str(store.directory), ASAN_OPTIONS="detect_leaks=0")
    out = tmp_path / "connections.txt"
    with out.open("w") as sink, subprocess.Popen(
        [str(client), "127.0.0.1", str(a.port), "0", "16"], stdin=subprocess.PIPE,
        stdout=sink, stderr=subprocess.PIPE, text=True, env=env,
    ) as proc:
        assert proc.stdin is not None and proc.stderr is not None
        try:
            for i in range(200):
                store.install("to_port", to_c if i % 2 == 0 else to_b, i + 1)
        finally:
            proc.stdin.close()
            proc.wait(timeout=120)
        errors = proc.stderr.read()
    lines = out.read_text().splitlines()
    assert proc.returncode == 0 and "Sanitizer" not in errors, errors[-4000:]
    assert set(lines) == {f"port {b.port}", f"port {c.port}"} and len(lines) >= 200
