"""Shared helpers and fixtures of the hook's tests (imported by the test modules): real
servers on loopback, policies compiled with clang, a policy store in a temporary directory, and
running programs under ``freeoffload run``."""

from __future__ import annotations

import shutil
import socket
import struct
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest
from conftest import need
from freeoffload.firmware_hooks import PolicyStore, hook_library_path

from freeoffload.errors import HookError

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(__file__).resolve().parent / "data"
SDK_INCLUDE = ROOT / "offload_vm" / "include"


def fo_addr(host: str, port: int) -> bytes:
    """A struct fo_addr (policy.h) for an IPv4 address: family, port, address, zero padding."""
    return struct.pack("=II", 2, port) + socket.inet_aton(host) + bytes(12)


def compile_policy(source: Path, out: Path, defines: dict[str, int] | None = None) -> bytes:
    need(shutil.which("clang") is not None, "clang compiles the test policies")
    flags = [f"-D{k}={v}" for k, v in (defines or {}).items()]
    subprocess.run(["clang", "-O2", "-g", "-target", "bpf", f"-I{SDK_INCLUDE}", *flags, "-c",
                    str(source), "-o", str(out)], check=True)
    return out.read_bytes()


class BannerServer:
    """A TCP server on loopback that greets each connection with ``port N`` and a newline
    (as an HTTP response with ``http``)."""

    def __init__(self, http: bool = False, host: str = "127.0.0.1") -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:  # "::" takes IPv4 clients too
            self.sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        self.sock.bind((host, 0))
        self.sock.listen(1024)
        self.port: int = self.sock.getsockname()[1]
        self.accepted = 0
        self.http = http
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _reply(self, conn: socket.socket) -> bytes:
        body = f"port {self.port}\n".encode()
        if not self.http:
            return body
        conn.settimeout(5)
        request = b""
        while b"\r\n\r\n" not in request:
            chunk = conn.recv(4096)
            if not chunk:
                break
            request += chunk
        head = f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        return head.encode() + body

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            try:
                conn.sendall(self._reply(conn))
            except OSError:
                pass
            finally:
                conn.close()

    def close(self) -> None:
        self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self._thread.join(timeout=5)


class NameServer(BannerServer):
    """A loopback TCP server that sends its name to every client (IPv4 and IPv6 with
    ``dual_stack``)."""

    def __init__(self, name: str, dual_stack: bool = False) -> None:
        self.name = name
        super().__init__(host="::" if dual_stack else "127.0.0.1")

    def _reply(self, conn: socket.socket) -> bytes:
        return self.name.encode() + b"\n"


@pytest.fixture
def servers() -> Iterator[Callable[..., BannerServer]]:
    made: list[BannerServer] = []

    def make(http: bool = False, host: str = "127.0.0.1") -> BannerServer:
        made.append(BannerServer(http, host))
        return made[-1]

    yield make
    for server in made:
        server.close()


@pytest.fixture(scope="session")
def hook_lib() -> Path:
    try:
        return hook_library_path()
    except HookError as err:
        need(False, str(err))
        raise


@pytest.fixture
def store(tmp_path: Path, hook_lib: Path) -> PolicyStore:
    store = PolicyStore(tmp_path / "store")
    store.init()
    return store


@pytest.fixture(scope="session")
def redirect_elf(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    out = tmp_path_factory.mktemp("policies") / "redirect.o"
    return compile_policy(ROOT / "examples" / "policies" / "redirect.c", out)


@pytest.fixture(scope="session")
def test_policy(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., bytes]:
    """Compile one of data/*.c with -D defines (cached per source and defines)."""
    cache: dict[tuple[str, tuple[tuple[str, int], ...]], bytes] = {}
    out_dir = tmp_path_factory.mktemp("test-policies")

    def build(name: str, **defines: int) -> bytes:
        key = (name, tuple(sorted(defines.items())))
        if key not in cache:
            out = out_dir / f"{name}-{len(cache)}.o"
            cache[key] = compile_policy(DATA / f"{name}.c", out, defines)
        return cache[key]

    return build


def freeoffload_run(store: PolicyStore, argv: Sequence[str], *, task: Path | None = None,
                    debug: bool = False, input: str | None = None, timeout: float = 60,
                    env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` under ``freeoffload run --store``; the result with text stdout/stderr."""
    cmd = [sys.executable, "-m", "freeoffload.firmware_hooks", "run", "--store",
           str(store.directory)]
    if task is not None:
        cmd += ["--task", str(task)]
    if debug:
        cmd.append("--debug")
    return subprocess.run([*cmd, "--", *argv], input=input, capture_output=True, text=True,
                          timeout=timeout, env=env, check=False)


def build_client(out: Path, flags: Sequence[str] = (), cc: str = "gcc") -> Path:
    """The C test client, with `flags` (linker settings), and libfotest.so in out/lib."""
    out.mkdir(parents=True, exist_ok=True)
    lib = out / "lib"
    lib.mkdir(exist_ok=True)
    subprocess.run([cc, "-O2", "-shared", "-fPIC", "-o", str(lib / "libfotest.so"),
                    str(DATA / "fotest_connect.c")], check=True)
    client = out / "fotest_client"
    subprocess.run([cc, "-O2", "-Wall", "-Wextra", "-Werror", *flags, "-o", str(client),
                    str(DATA / "fotest_client.c"), str(DATA / "fotest_connect.c"), "-lpthread",
                    "-ldl", "-Wl,-rpath,$ORIGIN/lib"], check=True)
    return client
