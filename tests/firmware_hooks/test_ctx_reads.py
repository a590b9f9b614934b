"""Which context bytes a policy reads (fohook_reads.c): the hook asks the kernel for the
socket's type and protocol (a getsockopt() system call per connect) only for policies that
read them. Hand-written programs check the analysis never answers a byte too few; the
example policies and a real client under strace check what the hook does with it."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import need
from freeoffload.firmware_hooks import PolicyStore
from hooktools import (
    DATA,
    ROOT,
    BannerServer,
    build_client,
    compile_policy,
    hook_lib,
    servers,
    store,
    test_policy,
)

__all__ = ["hook_lib", "servers", "store", "test_policy"]  # fixtures used below

SOCK_BYTES = 0xFF << 4  # fo_connect_ctx.sock_type and .protocol
POLICIES = ROOT / "examples" / "policies"


@pytest.fixture(scope="module")
def ctx_reads(tmp_path_factory: pytest.TempPathFactory) -> Path:
    exe = tmp_path_factory.mktemp("ctx-reads") / "ctx_reads"
    src = ROOT / "firmware_hooks" / "src"
    vm = sorted((ROOT / "offload_vm" / "src").glob("*.c"))
    subprocess.run(["gcc", "-std=gnu11", "-D_GNU_SOURCE", "-O1", "-g", "-Wall", "-Wextra",
                    "-Werror", "-fsanitize=address,undefined", "-fno-sanitize-recover=all",
                    "-DFOVM_STATIC", f"-I{ROOT / 'firmware_hooks' / 'include'}", f"-I{src}",
                    f"-I{ROOT / 'offload_vm' / 'include'}", "-iquote",
                    str(ROOT / "offload_vm" / "src"), "-o", str(exe),
                    str(DATA / "ctx_reads_main.c"), str(src / "fohook_reads.c"), *map(str, vm)],
                   check=True)
    return exe


def test_hand_written_programs(ctx_reads: Path) -> None:
    done = subprocess.run([str(ctx_reads)], capture_output=True, text=True, timeout=60,
                          check=False)
    assert done.returncode == 0 and "FAIL" not in done.stdout, done.stdout + done.stderr
    assert done.stdout.count("ok ") == 23


@pytest.mark.parametrize(("source", "reads_sock"), [
    (POLICIES / "select_target.c", False), (POLICIES / "redirect.c", False),
    (POLICIES / "http.c", True), (POLICIES / "coap.c", True), (POLICIES / "mqtt.c", True),
    (POLICIES / "rtsp.c", True), (DATA / "echo_ctx.c", True), (DATA / "to_port.c", False),
])
def test_example_policies(ctx_reads: Path, tmp_path: Path, source: Path,
                          reads_sock: bool) -> None:
    obj = tmp_path / "policy.o"
    compile_policy(source, obj, {"FROM_PORT": 1, "TO_PORT": 2})
    mask = int(subprocess.run([str(ctx_reads), str(obj)], capture_output=True, text=True,
                              check=True).stdout, 16)
    assert bool(mask & SOCK_BYTES) == reads_sock, hex(mask)


def _getsockopt_calls(client: Path, store: PolicyStore, hook: Path, port: int) -> int:
    need(shutil.which("strace") is not None, "strace is installed by .ci/install-deps")
    log = store.directory.parent / "strace.log"
    env = {"LD_PRELOAD": str(hook), "FREEOFFLOAD_STORE": str(store.directory),
           "PATH": "/usr/bin:/bin"}
    done = subprocess.run(["strace", "-f", "-qq", "-e", "trace=getsockopt", "-o", str(log),
                           str(client), "127.0.0.1", str(port), "3"], env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return log.read_text().count("getsockopt(")


def test_the_kernel_is_asked_only_for_policies_that_read_the_socket_kind(
    tmp_path: Path, store: PolicyStore, servers: Callable[..., BannerServer],
    test_policy: Callable[..., bytes], hook_lib: Path,
) -> None:
    a = servers()
    client = build_client(tmp_path)
    store.install("to_port", test_policy("to_port", FROM_PORT=1, TO_PORT=2), 1)
    assert _getsockopt_calls(client, store, hook_lib, a.port) == 0
    store.install("echo_ctx", test_policy("echo_ctx"), 2)
    assert _getsockopt_calls(client, store, hook_lib, a.port) == 3
