"""Which context bytes a policy reads (fohook_reads.c): the hook asks the kernel for the
socket's type and protocol (a getsockopt() system call per connect) only for policies that
read them. Hand-written programs check the analysis never answers a byte too few; the
example policies and a real client under strace check what the hook does with it."""

from __future__ import annotations

import random
import shutil
import socket
import struct
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
    fo_addr,
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
    assert done.stdout.count("ok ") == 28


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


def _select_rows() -> list[tuple[bytes, bytes]]:
    from freeoffload.topology.candidates import Candidate, candidate_items

    rng = random.Random(5)
    return candidate_items([
        Candidate(name=f"n{i}", flags=rng.choice([0x3, 0x7, 0xB, 0x7]), family=2,
                  ip=socket.inet_aton(f"127.0.0.{1 + i % 3}"), port=7000 + i % 4,
                  role=1 + (i % 5 == 0), level=i % 3, latency_us=rng.randrange(1000),
                  headroom_milli=rng.randrange(1000), capable=rng.randrange(8),
                  free_cpu_milli=rng.randrange(3000), free_memory_mib=rng.randrange(512),
                  free_storage_mib=rng.randrange(512), latency_rank=i, headroom_rank=15 - i,
                  name_rank=i) for i in range(16)])


def _random_ctx(rng: random.Random) -> bytearray:
    ctx = bytearray(rng.randbytes(64))
    struct.pack_into("=III", ctx, 0, rng.choice([2, 2, 2, 10]), rng.choice([1, 2]),
                     rng.choice([0, 6, 17]))  # family, type, protocol
    struct.pack_into("=4s", ctx, 16, socket.inet_aton(f"127.0.0.{rng.randrange(1, 4)}"))
    struct.pack_into("=I", ctx, 20, rng.choice([80, 1883, 5683, 554, *range(7000, 7004)] * 2))
    struct.pack_into("=IIIIII", ctx, 40, rng.randrange(2), rng.randrange(4), rng.randrange(4),
                     rng.randrange(2000), rng.randrange(300), rng.randrange(300))
    return ctx


@pytest.mark.parametrize("name", ["select_target", "redirect", "http", "mqtt", "coap"])
def test_bytes_outside_the_mask_never_change_a_decision(
        ctx_reads: Path, tmp_path: Path, name: str) -> None:
    # Two VMs run the same sequence of contexts, one with every byte outside the mask
    # scrambled: return codes and every byte a policy wrote must agree.
    from freeoffload.offload_vm import VM

    obj = tmp_path / "policy.o"
    elf = compile_policy(POLICIES / f"{name}.c", obj)
    mask = int(subprocess.run([str(ctx_reads), str(obj)], capture_output=True, text=True,
                              check=True).stdout, 16)
    rows = {"select_target": ("candidates", _select_rows()),
            "redirect": ("redirects", [(fo_addr("127.0.0.1", 7000), fo_addr("127.0.0.2", 9))]),
            "http": ("target", [(bytes(4), fo_addr("127.0.0.3", 8080))])}.get(name)
    vms = []
    for _ in range(2):
        vm = VM()
        vm.load_elf(elf)
        for key, value in rows[1] if rows else ():
            vm.maps[rows[0]].update(key, value)
        vms.append(vm)
    rng = random.Random(name)
    for _ in range(1000):
        a = _random_ctx(rng)
        b = bytearray(x if mask >> i & 1 else rng.randrange(256) for i, x in enumerate(a))
        a_in, b_in = bytes(a), bytes(b)
        assert vms[0].run(a) == vms[1].run(b)
        for i in range(64):
            if mask >> i & 1 or a[i] != a_in[i] or b[i] != b_in[i]:
                assert a[i] == b[i], (i, a_in.hex(), b_in.hex())


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
