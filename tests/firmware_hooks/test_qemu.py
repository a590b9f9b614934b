"""Raspberry Pi builds: the hook (with the VM core) and the C client cross-built for aarch64
and armhf, run under qemu-user against a store written here, with the policy rewriting, and
a policy counting in a process-local map from two threads."""

from __future__ import annotations

import collections
import shutil
import struct
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import need
from freeoffload.firmware_hooks import PolicyStore
from freeoffload.firmware_hooks._build import HOOK_LIBRARY, build_libraries
from hooktools import BannerServer, build_client, hook_lib, servers, store, test_policy

__all__ = ["hook_lib", "servers", "store", "test_policy"]  # fixtures used below

TARGETS = {
    "aarch64": ("aarch64-linux-gnu-gcc", "qemu-aarch64", "/usr/aarch64-linux-gnu"),
    "armhf": ("arm-linux-gnueabihf-gcc", "qemu-arm", "/usr/arm-linux-gnueabihf"),
}


@pytest.mark.qemu
@pytest.mark.parametrize("target", sorted(TARGETS))
def test_cross_built_hook_rewrites_under_qemu(
    target: str, tmp_path: Path, store: PolicyStore, servers: Callable[..., BannerServer],
    test_policy: Callable[..., bytes],
) -> None:
    cc, qemu, sysroot = TARGETS[target]
    need(shutil.which(cc) is not None and shutil.which(qemu) is not None,
         f"{cc} and {qemu} are installed by .ci/install-deps")
    build_libraries(tmp_path / "lib", cc=[cc], names=[HOOK_LIBRARY])
    hook = tmp_path / "lib" / HOOK_LIBRARY
    client = build_client(tmp_path / "client", ["-Wl,-z,relro,-z,now", "-fno-plt"], cc=cc)
    a, b = servers(), servers()

    def run(*args: str, port: int = a.port) -> subprocess.CompletedProcess[str]:
        cmd = [qemu, "-L", sysroot, "-E", f"LD_PRELOAD={hook}", "-E",
               f"FREEOFFLOAD_STORE={store.directory}", "-E", "FREEOFFLOAD_HOOK_DEBUG=1",
               str(client), "127.0.0.1", str(port), *args]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)

    plain = run()
    assert plain.returncode == 0 and plain.stdout == f"port {a.port}\n", plain.stderr
    store.install("to_port", test_policy("to_port", FROM_PORT=a.port, TO_PORT=b.port), 1)
    moved = run("2", "2", "libfotest.so")  # two threads, through a dlopen()ed library
    assert moved.returncode == 0, moved.stderr
    assert moved.stdout == f"port {b.port}\n" * 4, moved.stderr
    assert "freeoffload-hook" not in moved.stderr
    # data/local_count.c: connect n (from 0) of this process goes to ports[n % 3]
    entry, c = servers(), servers()
    store.install("local_count", test_policy("local_count", FROM_PORT=entry.port), 2)
    store.update_map_bulk("ports", [(struct.pack("=I", i), struct.pack("=I", s.port))
                                    for i, s in enumerate((a, b, c))])
    counted = run("6", "2", port=entry.port)  # two threads, 12 connects: 4 to each
    assert counted.returncode == 0, counted.stderr
    assert collections.Counter(counted.stdout.split("\n")[:-1]) == {
        f"port {s.port}": 4 for s in (a, b, c)}, counted.stderr
