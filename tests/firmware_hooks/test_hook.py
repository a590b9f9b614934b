"""The hook in a C client built with every linker setting a GOT hook must survive, in objects
loaded later with dlopen(), for each address family, and failing open on every fault."""

from __future__ import annotations

import re
import socket
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from freeoffload.firmware_hooks import PolicyStore
from hooktools import (
    ROOT,
    BannerServer,
    build_client,
    freeoffload_run,
    hook_lib,
    servers,
    store,
    test_policy,
)

__all__ = ["hook_lib", "servers", "store", "test_policy"]  # fixtures used below

LINKER_SETTINGS = {
    "default": [],
    "no-pie": ["-no-pie"],
    "pie": ["-pie", "-fPIE"],
    "relro": ["-Wl,-z,relro"],
    "relro-now": ["-Wl,-z,relro,-z,now"],
    "fno-plt": ["-fno-plt"],
    "lazy-norelro": ["-Wl,-z,lazy", "-Wl,-z,norelro"],
    "all": ["-pie", "-fPIE", "-fno-plt", "-Wl,-z,relro,-z,now"],
    "no-pie-fno-plt-now": ["-no-pie", "-fno-plt", "-Wl,-z,now"],
}


def _redirect(store: PolicyStore, policy: Callable[..., bytes], a: BannerServer,
              b: BannerServer) -> None:
    store.install("to_port", policy("to_port", FROM_PORT=a.port, TO_PORT=b.port), 1)


@pytest.mark.parametrize("setting", sorted(LINKER_SETTINGS))
def test_client_hooked_with_every_linker_setting(
    setting: str, tmp_path: Path, store: PolicyStore, servers: Callable[..., BannerServer],
    test_policy: Callable[..., bytes],
) -> None:
    a, b = servers(), servers()
    client = build_client(tmp_path / setting, LINKER_SETTINGS[setting])
    _redirect(store, test_policy, a, b)
    direct = freeoffload_run(store, [str(client), "127.0.0.1", str(a.port), "2"])
    assert direct.returncode == 0, direct.stderr
    assert direct.stdout.split("\n")[:2] == [f"port {b.port}"] * 2
    # the library dlopen()ed later, found by bare name in the client's RUNPATH
    late = freeoffload_run(store, [str(client), "127.0.0.1", str(a.port), "1", "1",
                                   "libfotest.so"])
    assert late.returncode == 0, late.stderr
    assert late.stdout == f"port {b.port}\n"
    assert a.accepted == 0


def test_without_policy_and_with_other_ports_calls_pass(
    tmp_path: Path, store: PolicyStore, servers: Callable[..., BannerServer],
    test_policy: Callable[..., bytes],
) -> None:
    a, b, c = servers(), servers(), servers()
    client = build_client(tmp_path)
    empty = freeoffload_run(store, [str(client), "127.0.0.1", str(a.port)])
    assert empty.stdout == f"port {a.port}\n"
    _redirect(store, test_policy, a, b)
    other = freeoffload_run(store, [str(client), "127.0.0.1", str(c.port)])
    assert other.stdout == f"port {c.port}\n"
    store.remove()
    removed = freeoffload_run(store, [str(client), "127.0.0.1", str(a.port)])
    assert removed.stdout == f"port {a.port}\n"


def test_ipv4_mapped_ipv6_destination_is_rewritten(
    tmp_path: Path, store: PolicyStore, servers: Callable[..., BannerServer],
    test_policy: Callable[..., bytes],
) -> None:
    a, b = servers(), servers()
    client = build_client(tmp_path)
    _redirect(store, test_policy, a, b)
    done = freeoffload_run(store, [str(client), "::ffff:127.0.0.1", str(a.port)])
    assert done.stdout == f"port {b.port}\n", done.stderr


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def test_ipv6_destination_is_rewritten(
    tmp_path: Path, store: PolicyStore, servers: Callable[..., BannerServer],
    test_policy: Callable[..., bytes],
) -> None:
    if not _ipv6_loopback():
        pytest.skip("this machine has no IPv6 loopback (::1)")
    a, b = servers(host="::1"), servers(host="::1")
    client = build_client(tmp_path)
    _redirect(store, test_policy, a, b)
    done = freeoffload_run(store, [str(client), "::1", str(a.port)])
    assert done.stdout == f"port {b.port}\n", done.stderr


@pytest.mark.parametrize("mode,problem", [(1, "faulted"), (2, "returned 7"),
                                          (3, "cannot use")])
def test_broken_policy_fails_open(
    mode: int, problem: str, tmp_path: Path, store: PolicyStore,
    servers: Callable[..., BannerServer], test_policy: Callable[..., bytes],
) -> None:
    a = servers()
    client = build_client(tmp_path)
    store.install("faulty", test_policy("faulty", MODE=mode), 1)
    done = freeoffload_run(store, [str(client), "127.0.0.1", str(a.port), "3"], debug=True)
    assert done.returncode == 0
    assert done.stdout == f"port {a.port}\n" * 3
    lines = [line for line in done.stderr.splitlines() if "freeoffload-hook" in line]
    assert len(lines) == 3 and all(problem in line for line in lines), done.stderr


def test_corrupt_store_fails_open_with_one_line(
    tmp_path: Path, store: PolicyStore, servers: Callable[..., BannerServer],
    test_policy: Callable[..., bytes],
) -> None:
    a, b = servers(), servers()
    client = build_client(tmp_path)
    _redirect(store, test_policy, a, b)
    installed = store.current()
    assert installed is not None
    (installed.path / "policy.o").write_bytes(b"\x7fELF garbage")
    done = freeoffload_run(store, [str(client), "127.0.0.1", str(a.port), "2"], debug=True)
    assert done.stdout == f"port {a.port}\n" * 2
    problems = [line for line in done.stderr.splitlines() if "freeoffload-hook" in line]
    assert len(problems) == 1 and "generation" in problems[0], done.stderr
    quiet = freeoffload_run(store, [str(client), "127.0.0.1", str(a.port)])
    assert quiet.stdout == f"port {a.port}\n" and quiet.stderr == ""


def test_policy_sees_the_call_and_the_task(
    tmp_path: Path, store: PolicyStore, servers: Callable[..., BannerServer],
    test_policy: Callable[..., bytes],
) -> None:
    a = servers()
    client = build_client(tmp_path)
    store.install("echo_ctx", test_policy("echo_ctx"), 1)
    task = ROOT / "examples" / "tasks" / "audio.yaml"  # cpu, sensitive, urgent, 1 CPU
    done = freeoffload_run(store, [str(client), "127.0.0.1", str(a.port)], task=task, debug=True)
    assert done.stdout == f"port {a.port}\n"
    seen = dict(re.findall(r"(\w+)=(\w+)", done.stderr))
    ip4 = int.from_bytes(socket.inet_aton("127.0.0.1"), "little")
    assert seen["family"] == "2" and seen["type"] == "1" and seen["protocol"] == "6"
    assert int(seen["ip4"], 16) == ip4 and seen["port"] == str(a.port)
    assert seen["task"] == "1" and seen["task_flags"] == "3" and seen["cpu"] == "1000"
    assert seen["memory"] == "256" and seen["storage"] == "64" and int(seen["pid"]) > 1


def test_every_thread_first_call_sees_the_policy(
    tmp_path: Path, store: PolicyStore, servers: Callable[..., BannerServer],
    test_policy: Callable[..., bytes],
) -> None:
    # 32 threads make their first connect() at once: the threads that do not load the new
    # generation themselves must wait for it, not run without it.
    a, b = servers(), servers()
    client = build_client(tmp_path)
    _redirect(store, test_policy, a, b)
    done = freeoffload_run(store, [str(client), "127.0.0.1", str(a.port), "1", "32"])
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"port {b.port}\n" * 32


def test_missing_store_is_one_debug_line(
    tmp_path: Path, hook_lib: Path, servers: Callable[..., BannerServer],
) -> None:
    a = servers()
    client = build_client(tmp_path)
    env = {"LD_PRELOAD": str(hook_lib), "FREEOFFLOAD_STORE": str(tmp_path / "absent"),
           "FREEOFFLOAD_HOOK_DEBUG": "1", "PATH": "/usr/bin:/bin"}
    done = subprocess.run([str(client), "127.0.0.1", str(a.port), "3"], env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0 and done.stdout == f"port {a.port}\n" * 3
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and "no policy store" in lines[0] and "absent" in lines[0]
