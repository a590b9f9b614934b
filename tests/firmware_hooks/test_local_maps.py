"""Process-local policy maps (``local_*``): no store file, each hooked process counts on its
own from zero, atomic adds across its threads, fresh for a new generation and in a forked
child. The policy is data/local_count.c: its n-th connect (from 0) to FROM_PORT goes to the
port in row n % 3 of the store's ``ports`` map."""

from __future__ import annotations

import collections
import struct
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from freeoffload.firmware_hooks import PolicyStore
from hooktools import (
    BannerServer,
    build_client,
    freeoffload_run,
    hook_lib,
    servers,
    store,
    test_policy,
)

from freeoffload.errors import HookError

__all__ = ["hook_lib", "servers", "store", "test_policy"]  # fixtures used below

# Connects to each "HOST PORT" line of stdin and prints the greeting; "fork" forks a child
# that connects once to the last destination (printing "child: GREETING") and exits.
SCRIPT = """
import os, socket, sys
last = None
def ask(host, port):
    with socket.create_connection((host, port), timeout=10) as s:
        return s.recv(100).decode().strip()
for line in sys.stdin:
    if line.strip() == "fork":
        pid = os.fork()
        if pid == 0:
            print("child:", ask(*last), flush=True)
            os._exit(0)
        os.waitpid(pid, 0)
        continue
    host, port = line.split()
    last = (host, int(port))
    print(ask(*last), flush=True)
"""


def _install(store: PolicyStore, policy: Callable[..., bytes], entry: BannerServer,
             targets: list[BannerServer], version: int = 1) -> None:
    store.install("local_count", policy("local_count", FROM_PORT=entry.port), version)
    store.update_map_bulk("ports", [(struct.pack("=I", i), struct.pack("=I", t.port))
                                    for i, t in enumerate(targets)])


def test_store_keeps_no_file_and_refuses_rows_of_a_local_map(
    store: PolicyStore, servers: Callable[..., BannerServer], test_policy: Callable[..., bytes],
) -> None:
    entry, a, b, c = servers(), servers(), servers(), servers()
    _install(store, test_policy, entry, [a, b, c])
    current = store.current()
    assert current is not None
    assert sorted(p.name for p in (current.path / "maps").iterdir()) == ["ports"]
    assert [m.name for m in current.maps] == ["ports"]
    assert [(m.name, m.type, m.key_size, m.value_size, m.max_entries)
            for m in current.local_maps] == [("local_connects", 2, 4, 8, 1)]
    for attempt in (lambda: store.update_map("local_connects", bytes(4), bytes(8)),
                    lambda: store.map_items("local_connects"),
                    lambda: store.delete_map_key("local_connects", bytes(4))):
        with pytest.raises(HookError, match=r"local_connects.*process-local"):
            attempt()
    # a new version keeps the store's rows and still has no file for the local map
    _install(store, test_policy, entry, [a, b, c], version=2)
    again = store.current()
    assert again is not None and again.generation == current.generation + 1
    assert sorted(p.name for p in (again.path / "maps").iterdir()) == ["ports"]


def test_each_process_counts_its_own_connects_from_zero(
    tmp_path: Path, store: PolicyStore, servers: Callable[..., BannerServer],
    test_policy: Callable[..., bytes],
) -> None:
    entry, a, b, c = servers(), servers(), servers(), servers()
    client = build_client(tmp_path)
    _install(store, test_policy, entry, [a, b, c])
    first = freeoffload_run(store, [str(client), "127.0.0.1", str(entry.port), "4"])
    assert first.returncode == 0, first.stderr
    assert first.stdout.split("\n")[:-1] == [f"port {p.port}" for p in (a, b, c, a)]
    second = freeoffload_run(store, [str(client), "127.0.0.1", str(entry.port), "2"])
    assert second.stdout.split("\n")[:-1] == [f"port {p.port}" for p in (a, b)]
    assert entry.accepted == 0


def test_threads_of_one_process_share_the_count_atomically(
    tmp_path: Path, store: PolicyStore, servers: Callable[..., BannerServer],
    test_policy: Callable[..., bytes],
) -> None:
    # 8 threads x 60 connects: with an atomic add every count 0..479 is taken exactly once,
    # so each of the 3 listeners gets exactly 160 connections.
    entry, a, b, c = servers(), servers(), servers(), servers()
    client = build_client(tmp_path)
    _install(store, test_policy, entry, [a, b, c])
    done = freeoffload_run(store, [str(client), "127.0.0.1", str(entry.port), "60", "8"])
    assert done.returncode == 0, done.stderr
    seen = collections.Counter(done.stdout.split())
    assert {p: seen[f"{p}"] for p in (str(a.port), str(b.port), str(c.port))} == {
        str(a.port): 160, str(b.port): 160, str(c.port): 160}


def test_new_generation_and_forked_child_start_from_zero(
    store: PolicyStore, servers: Callable[..., BannerServer], test_policy: Callable[..., bytes],
) -> None:
    entry, a, b, c = servers(), servers(), servers(), servers()
    _install(store, test_policy, entry, [a, b, c])
    cmd = [sys.executable, "-m", "freeoffload.firmware_hooks", "run", "--store",
           str(store.directory), "--", "/usr/bin/python3", "-c", SCRIPT]
    with subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) as proc:
        assert proc.stdin is not None and proc.stdout is not None

        def ask(line: str = f"127.0.0.1 {entry.port}") -> str:
            assert proc.stdin is not None and proc.stdout is not None
            proc.stdin.write(line + "\n")
            proc.stdin.flush()
            return proc.stdout.readline().strip()

        try:
            assert [ask(), ask()] == [f"port {a.port}", f"port {b.port}"]
            assert ask("fork") == f"child: port {a.port}"  # the child's own count
            assert ask() == f"port {c.port}"  # the parent's count went on
            _install(store, test_policy, entry, [a, b, c], version=2)
            assert [ask(), ask()] == [f"port {a.port}", f"port {b.port}"]
        finally:
            proc.stdin.close()
            proc.wait(timeout=30)
    assert entry.accepted == 0
