"""Unmodified programs under ``freeoffload run`` with the redirect policy of examples/policies:
curl, mosquitto_pub against two real brokers, Debian's python3 and the venv's python."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import need
from freeoffload.firmware_hooks import PolicyStore
from hooktools import (
    BannerServer,
    build_client,
    fo_addr,
    freeoffload_run,
    hook_lib,
    redirect_elf,
    servers,
    store,
)

__all__ = ["hook_lib", "redirect_elf", "servers", "store"]  # fixtures used below

# Connects to each "HOST PORT" line of stdin and prints the server's greeting.
CONNECT_SCRIPT = """
import socket, sys
for line in sys.stdin:
    host, port = line.split()
    with socket.create_connection((host, int(port)), timeout=10) as s:
        print(s.recv(100).decode().strip(), flush=True)
"""
PYTHONS = {"debian": "/usr/bin/python3", "venv": sys.executable}


def _install_redirect(store: PolicyStore, elf: bytes, a: int, b: int) -> None:
    store.install("redirect", elf, 1)
    store.update_map("redirects", fo_addr("127.0.0.1", a), fo_addr("127.0.0.1", b))


def test_curl_reaches_the_rewritten_server(
    store: PolicyStore, servers: Callable[..., BannerServer], redirect_elf: bytes,
) -> None:
    need(shutil.which("curl") is not None, "curl is installed by .ci/install-deps")
    a, b = servers(http=True), servers(http=True)
    url = f"http://127.0.0.1:{a.port}/"
    plain = freeoffload_run(store, ["curl", "-sS", "--max-time", "10", url])
    assert plain.stdout == f"port {a.port}\n", plain.stderr
    _install_redirect(store, redirect_elf, a.port, b.port)
    moved = freeoffload_run(store, ["curl", "-sS", "--max-time", "10", url])
    assert moved.stdout == f"port {b.port}\n", moved.stderr


@pytest.mark.parametrize("python", sorted(PYTHONS))
def test_python_reaches_the_rewritten_server(
    python: str, store: PolicyStore, servers: Callable[..., BannerServer], redirect_elf: bytes,
) -> None:
    a, b = servers(), servers()
    lines = f"127.0.0.1 {a.port}\n::ffff:127.0.0.1 {a.port}\n"
    argv = [PYTHONS[python], "-c", CONNECT_SCRIPT]
    plain = freeoffload_run(store, argv, input=lines)
    assert plain.stdout == f"port {a.port}\n" * 2, plain.stderr
    _install_redirect(store, redirect_elf, a.port, b.port)
    moved = freeoffload_run(store, argv, input=lines)
    assert moved.stdout == f"port {b.port}\n" * 2, moved.stderr


def test_broken_policy_leaves_python_on_the_original(
    store: PolicyStore, servers: Callable[..., BannerServer], redirect_elf: bytes,
) -> None:
    a, b = servers(), servers()
    _install_redirect(store, redirect_elf, a.port, b.port)
    installed = store.current()
    assert installed is not None
    (installed.path / "policy.o").write_bytes(redirect_elf[: len(redirect_elf) // 2])
    done = freeoffload_run(store, [PYTHONS["debian"], "-c", CONNECT_SCRIPT],
                           input=f"127.0.0.1 {a.port}\n")
    assert done.returncode == 0 and done.stdout == f"port {a.port}\n", done.stderr


def test_policy_installed_while_running_changes_the_next_connection(
    store: PolicyStore, servers: Callable[..., BannerServer], redirect_elf: bytes,
) -> None:
    a, b = servers(), servers()
    cmd = [sys.executable, "-m", "freeoffload.firmware_hooks", "run", "--store",
           str(store.directory), "--",
           PYTHONS["debian"], "-c", CONNECT_SCRIPT]
    with subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) as proc:
        assert proc.stdin is not None and proc.stdout is not None

        def ask() -> str:
            assert proc.stdin is not None and proc.stdout is not None
            proc.stdin.write(f"127.0.0.1 {a.port}\n")
            proc.stdin.flush()
            return proc.stdout.readline().strip()

        try:
            assert ask() == f"port {a.port}"
            _install_redirect(store, redirect_elf, a.port, b.port)
            assert ask() == f"port {b.port}"
            store.update_map("redirects", fo_addr("127.0.0.1", a.port),
                             fo_addr("127.0.0.1", a.port))  # a map row changed in place
            assert ask() == f"port {a.port}"
            store.remove()
            assert ask() == f"port {a.port}"
        finally:
            proc.stdin.close()
            proc.wait(timeout=30)


class Broker:
    """A real mosquitto broker on 127.0.0.1:port logging to a file."""

    def __init__(self, tmp: Path, port: int) -> None:
        self.port = port
        self.log = tmp / f"mosquitto-{port}.log"
        conf = tmp / f"mosquitto-{port}.conf"
        # stdout, not a log file: as root, mosquitto drops to its own user, which cannot
        # write in the test's directory
        conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\n"
                        "log_dest stdout\nlog_type all\n")
        with self.log.open("w") as log:
            self.proc = subprocess.Popen(["mosquitto", "-c", str(conf)], stdout=log,
                                         stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while not _listening(port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()  # never leave a broker behind
                raise RuntimeError(f"mosquitto on port {port} did not start: "
                                   f"{self.log.read_text()[-500:]}")
            time.sleep(0.05)

    def clients(self) -> str:
        """The broker's log (it buffers its output: the broker is stopped first)."""
        self.stop()
        return self.log.read_text()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)


def _listening(port: int) -> bool:
    import socket

    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


@pytest.fixture
def brokers(tmp_path: Path) -> Iterator[tuple[Broker, Broker]]:
    need(shutil.which("mosquitto") is not None and shutil.which("mosquitto_pub") is not None,
         "mosquitto and mosquitto-clients are installed by .ci/install-deps")
    made: list[Broker] = []
    try:
        for _ in range(2):
            made.append(Broker(tmp_path, _free_port()))
        yield made[0], made[1]
    finally:
        for broker in made:
            broker.stop()


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def test_mosquitto_pub_reaches_the_rewritten_broker(
    store: PolicyStore, brokers: tuple[Broker, Broker], redirect_elf: bytes,
) -> None:
    a, b = brokers
    pub = ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(a.port), "-t", "fo/test", "-m", "hi"]
    plain = freeoffload_run(store, [*pub, "-i", "fo-plain"])
    assert plain.returncode == 0, plain.stderr
    _install_redirect(store, redirect_elf, a.port, b.port)
    moved = freeoffload_run(store, [*pub, "-i", "fo-moved"])
    assert moved.returncode == 0, moved.stderr
    assert "fo-plain" in a.clients() and "fo-plain" not in b.clients()
    assert "fo-moved" in b.clients() and "fo-moved" not in a.clients()


def test_library_python_loads_late_is_hooked(
    tmp_path: Path, store: PolicyStore, servers: Callable[..., BannerServer], redirect_elf: bytes,
) -> None:
    # python3 dlopen()s its _ctypes extension, which dlopen()s the library, which connects:
    # two objects loaded after start-up, both through hooked dlopen() calls
    a, b = servers(), servers()
    client = build_client(tmp_path)
    library = client.parent / "lib" / "libfotest.so"
    script = (
        "import ctypes, sys\n"
        f"lib = ctypes.CDLL({str(library)!r})\n"
        "buf = ctypes.create_string_buffer(128)\n"
        f"rc = lib.fotest_connect(b'127.0.0.1', {a.port}, buf, 128)\n"
        "print(buf.value.decode() if rc == 0 else 'FAILED')\n"
    )
    _install_redirect(store, redirect_elf, a.port, b.port)
    done = freeoffload_run(store, [PYTHONS["debian"], "-c", script])
    assert done.stdout == f"port {b.port}\n", done.stderr
