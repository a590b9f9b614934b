"""The kernel path side by side with the user-space hook: same store, same decisions.

A statically linked client is redirected only by the kernel path; a dynamic one by both.
getpeername() hands back the address the program asked for. Root, BPF and cgroup v2 needed.
"""

from __future__ import annotations

import errno
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import need
from hooktools import NameServer

from freeoffload.errors import HookError

ROOT = Path(__file__).resolve().parents[3]
DATA = Path(__file__).parent / "data"
pytestmark = [pytest.mark.root, pytest.mark.bpf]


Trio = tuple[NameServer, NameServer, NameServer]  # dual-stack servers A, B and C


class UdpServer:
    """A loopback UDP server that answers every datagram with its name."""

    def __init__(self, name: str) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.name = name
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                _data, peer = self.sock.recvfrom(64)
                self.sock.sendto(self.name.encode() + b"\n", peer)
            except OSError:
                return

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def servers() -> Iterator[Trio]:
    trio = (NameServer("A", True), NameServer("B", True), NameServer("C", True))
    yield trio
    for s in trio:
        s.close()


@pytest.fixture(scope="module")
def clients(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    need(shutil.which("gcc") is not None, "gcc")
    out = tmp_path_factory.mktemp("clients")
    built = {}
    for kind, flags in (("static", ["-static"]), ("dynamic", [])):
        path = out / f"client_{kind}"
        subprocess.run(["gcc", "-O2", "-Wall", *flags, "-o", str(path), str(DATA / "client.c")],
                       check=True)
        built[kind] = path
    return built


@pytest.fixture(scope="module")
def redirect_elf(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    need(shutil.which("clang") is not None, "clang")
    out = tmp_path_factory.mktemp("policy") / "redirect.o"
    subprocess.run(["clang", "-O2", "-g", "-target", "bpf", "-I", str(ROOT / "offload_vm/include"),
                    "-c", str(ROOT / "examples/policies/redirect.c"), "-o", str(out)], check=True)
    return out.read_bytes()


def _kernel_ready() -> None:
    need(os.geteuid() == 0, "needs root")
    from freeoffload.firmware_hooks.kernel import kernel_support

    reason = kernel_support()
    need(reason is None, f"kernel path: {reason}")


def _store(tmp_path: Path, elf: bytes | None, rules: list[tuple[str, str]]) -> Path:
    from freeoffload.firmware_hooks.store import PolicyStore
    from freeoffload.offload_vm.policy.context import redirect_entry

    store = PolicyStore(tmp_path / "store")
    try:
        store.init()
    except HookError as err:
        need(False, f"policy store library: {err}")
    if elf is not None:
        store.install("redirect", elf, version=1)
        store.update_map_bulk("redirects", [redirect_entry(a, b) for a, b in rules])
    return store.directory


def _run_kernel(argv: list[str], store: Path, env: dict[str, str] | None = None) -> str:
    """run_in_cgroup in its own process, as `freeoffload run --kernel` would."""
    code = ("import sys; from freeoffload.firmware_hooks.kernel import run_in_cgroup; "
            "sys.exit(run_in_cgroup(sys.argv[2:], sys.argv[1], {}))")
    proc = subprocess.run([sys.executable, "-c", code, str(store), *argv], capture_output=True,
                          text=True, timeout=60, env=env)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def _run_hooked(argv: list[str], store: Path) -> str:
    from freeoffload.firmware_hooks import hook_library_path

    try:
        lib = hook_library_path()
    except HookError as err:
        need(False, str(err))
    env = dict(os.environ, LD_PRELOAD=str(lib), FREEOFFLOAD_STORE=str(store))
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=30, env=env)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def _leftover_cgroups() -> list[str]:
    from freeoffload.firmware_hooks.kernel._cgroup import cgroup2_mount

    mount = cgroup2_mount()
    assert mount is not None
    return [str(p) for p in mount.rglob(f"freeoffload-run-*-{os.getpid()}-*")]


def test_static_client_is_redirected_only_by_the_kernel_path(
        tmp_path: Path, servers: Trio, clients: dict[str, Path],
        redirect_elf: bytes) -> None:
    _kernel_ready()
    a, b, _c = servers
    store = _store(tmp_path, redirect_elf, [(f"127.0.0.1:{a.port}", f"127.0.0.1:{b.port}")])
    argv = ["127.0.0.1", str(a.port)]
    # the program asked for A: getpeername says A even where the connection went to B
    asked = f"peer=127.0.0.1:{a.port}"
    assert _run_kernel([str(clients["static"]), *argv], store) == f"got=B {asked}"
    assert _run_kernel([str(clients["dynamic"]), *argv], store) == f"got=B {asked}"
    assert _run_hooked([str(clients["dynamic"]), *argv], store).startswith("got=B ")
    assert _run_hooked([str(clients["static"]), *argv], store) == f"got=A {asked}"
    assert _leftover_cgroups() == []


def test_ipv6_sockets_take_the_same_decisions(
        tmp_path: Path, servers: Trio, clients: dict[str, Path],
        redirect_elf: bytes) -> None:
    _kernel_ready()
    a, b, c = servers
    store = _store(tmp_path, redirect_elf, [(f"127.0.0.1:{a.port}", f"127.0.0.1:{b.port}"),
                                            (f"[::1]:{a.port}", f"[::1]:{c.port}")])
    for host, expect in (("::ffff:127.0.0.1", "B"), ("::1", "C")):
        argv = ["-6", host, str(a.port)]
        kernel = _run_kernel([str(clients["static"]), *argv], store)
        user = _run_hooked([str(clients["dynamic"]), *argv], store)
        assert kernel == f"got={expect} peer=[{host}]:{a.port}"
        assert user.split()[0] == f"got={expect}"


def test_without_a_policy_connections_are_unchanged(
        tmp_path: Path, servers: Trio, clients: dict[str, Path]) -> None:
    _kernel_ready()
    a, _b, _c = servers
    store = _store(tmp_path, None, [])
    out = _run_kernel([str(clients["static"]), "127.0.0.1", str(a.port)], store)
    assert out == f"got=A peer=127.0.0.1:{a.port}"


def _go(fifo: Path, timeout: float = 60.0) -> None:
    """Let the program's next ``read x < FIFO`` through; fail (not hang) when none comes."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
            break
        except OSError as err:  # ENXIO: no reader has the FIFO open yet
            if err.errno != errno.ENXIO or time.monotonic() > deadline:
                pytest.fail(f"the program stopped reading {fifo}: {err}")
            time.sleep(0.02)
    try:
        os.write(fd, b"go\n")
    finally:
        os.close(fd)


def _wait_lines(path: Path, count: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and len(path.read_text().splitlines()) >= count:
            return
        time.sleep(0.02)
    pytest.fail(f"step {count} of the program did not finish in {timeout:.0f} s")


def test_a_map_update_changes_the_next_connection_of_a_running_program(
        tmp_path: Path, servers: Trio, clients: dict[str, Path],
        redirect_elf: bytes) -> None:
    _kernel_ready()
    from freeoffload.firmware_hooks.store import PolicyStore
    from freeoffload.offload_vm.policy.context import redirect_entry

    a, b, c = servers
    store = _store(tmp_path, redirect_elf, [(f"127.0.0.1:{a.port}", f"127.0.0.1:{b.port}")])
    fifo = tmp_path / "go"
    os.mkfifo(fifo)
    client = f"{clients['static']} 127.0.0.1 {a.port}"
    # A read that meets the writer's close first sees end-of-file: it waits for the next one.
    script = f"{client}; until read x < {fifo}; do :; done; {client}"
    code = ("import sys; from freeoffload.firmware_hooks.kernel import run_in_cgroup; "
            "sys.exit(run_in_cgroup(sys.argv[2:], sys.argv[1], {}))")
    proc = subprocess.Popen([sys.executable, "-c", code, str(store), "sh", "-c", script],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().startswith("got=B ")
        PolicyStore(store).update_map("redirects", *redirect_entry(f"127.0.0.1:{a.port}",
                                                                   f"127.0.0.1:{c.port}"))
        time.sleep(1.5)  # the kernel path copies the rows on its next poll (50 ms)
        _go(fifo)
        assert proc.stdout.readline().startswith("got=C ")
        assert proc.wait(timeout=30) == 0
    finally:
        proc.kill()
        proc.wait()
    assert _leftover_cgroups() == []


def test_the_exit_status_and_cleanup_when_the_program_fails(tmp_path: Path) -> None:
    _kernel_ready()
    from freeoffload.firmware_hooks.kernel import run_in_cgroup

    store = _store(tmp_path, None, [])
    assert run_in_cgroup(["sh", "-c", "exit 7"], store, dict(os.environ)) == 7
    assert run_in_cgroup(["sh", "-c", "kill -TERM $$"], store, dict(os.environ)) == 128 + 15
    with pytest.raises(HookError, match="cannot run /nonexistent"):
        run_in_cgroup(["/nonexistent"], store, {})
    # a leftover background process is killed with its cgroup
    assert run_in_cgroup(["sh", "-c", "sleep 300 & exit 0"], store, dict(os.environ)) == 0
    assert _leftover_cgroups() == []


def test_a_process_without_privileges_is_told_why_not(tmp_path: Path) -> None:
    """Root with every capability dropped (as an unprivileged service would run)."""
    need(os.geteuid() == 0, "needs root to drop capabilities")
    need(shutil.which("setpriv") is not None, "setpriv (util-linux)")
    code = ("from freeoffload.firmware_hooks.kernel import run_in_cgroup\n"
            "try:\n    run_in_cgroup(['true'], '/nonexistent', {})\n"
            "except Exception as e:\n    print(type(e).__name__, e)\n")
    proc = subprocess.run(["setpriv", "--bounding-set=-all", "--inh-caps=-all",
                           sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert proc.stdout.startswith("HookError the kernel path is not available: "), proc.stderr
    assert "Operation not permitted" in proc.stdout
    assert "CAP_BPF" in proc.stdout


def _compile(src: Path, out: Path) -> bytes:
    need(shutil.which("clang") is not None, "clang")
    subprocess.run(["clang", "-O2", "-g", "-target", "bpf", "-I", str(ROOT / "offload_vm/include"),
                    "-c", str(src), "-o", str(out)], check=True)
    return out.read_bytes()


def test_policy_swaps_and_row_changes_reach_the_kernel_while_the_program_runs(
        tmp_path: Path, servers: Trio, clients: dict[str, Path],
        redirect_elf: bytes, capfd: pytest.CaptureFixture[str]) -> None:
    """Straight from snapshots (no store): none -> rows to B -> rows to C -> a policy the
    kernel refuses (fails open, says why) -> none."""
    _kernel_ready()
    from freeoffload.firmware_hooks.kernel import Snapshot, run_with_source
    from freeoffload.offload_vm.policy.context import redirect_entry

    a, b, c = servers
    bad = _compile(DATA / "out_of_bounds.c", tmp_path / "oob.o")
    to = {n: [redirect_entry(f"127.0.0.1:{a.port}", f"127.0.0.1:{s.port}")]
          for n, s in (("B", b), ("C", c))}
    steps = [Snapshot(0, None), Snapshot(1, redirect_elf, {"redirects": to["B"]}),
             Snapshot(1, redirect_elf, {"redirects": to["C"]}), Snapshot(2, bad),
             Snapshot(3, None)]
    fifo = tmp_path / "next"
    os.mkfifo(fifo)
    step = [0]

    def source() -> Snapshot:
        return steps[step[0]]

    client = f"{clients['static']} 127.0.0.1 {a.port}"
    done = tmp_path / "done"  # one line per finished step: the next snapshot waits for it
    script = "; ".join([f"until read x < {fifo}; do :; done; {client}; echo >> {done}"]
                       * len(steps))
    result: list[int] = []
    runner = threading.Thread(target=lambda: result.append(
        run_with_source(["sh", "-c", script], source, dict(os.environ))))
    runner.start()
    try:
        for i in range(len(steps)):
            step[0] = i
            time.sleep(1.0)  # many polls, even on a loaded machine
            _go(fifo)
            _wait_lines(done, i + 1)
    finally:
        runner.join(timeout=60)
    assert result == [0]
    captured = capfd.readouterr()
    got = [line.split()[0] for line in captured.out.splitlines()]
    assert got == ["got=A", "got=B", "got=C", "got=A", "got=A"]
    assert "the policy does not load in the kernel" in captured.err
    assert "connections go unchanged" in captured.err
    assert _leftover_cgroups() == []


def test_policies_with_global_data_run_in_the_kernel(
        tmp_path: Path, servers: Trio, clients: dict[str, Path]) -> None:
    """.rodata, .data and .bss become kernel array maps behind the policy's instructions."""
    _kernel_ready()
    _a, b, _c = servers
    need(shutil.which("clang") is not None, "clang")
    out = tmp_path / "globals.o"
    subprocess.run(["clang", "-O2", "-g", "-target", "bpf", f"-DTARGET_PORT={b.port}", "-I",
                    str(ROOT / "offload_vm/include"), "-c", str(DATA / "globals.c"), "-o",
                    str(out)], check=True)
    proc = subprocess.run(
        [sys.executable, "-c",
         "import sys; from freeoffload.firmware_hooks.kernel import Snapshot, run_with_source; "
         "elf = open(sys.argv[1], 'rb').read(); "
         "sys.exit(run_with_source(sys.argv[2:], lambda: Snapshot(1, elf), {}))",
         str(out), str(clients["static"]), "127.0.0.1", "9"],
        capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "got=B peer=127.0.0.1:9"


def test_a_killed_run_leaves_nothing_behind_for_long(tmp_path: Path) -> None:
    """SIGKILL gives run_in_cgroup no chance to clean up: its bpf links go with it, and its
    emptied cgroup is removed by the next run."""
    _kernel_ready()
    from freeoffload.firmware_hooks.kernel import run_in_cgroup

    store = _store(tmp_path, None, [])
    code = ("import sys; from freeoffload.firmware_hooks.kernel import run_in_cgroup; "
            "sys.exit(run_in_cgroup(['sleep', '300'], sys.argv[1], {}))")
    proc = subprocess.Popen([sys.executable, "-c", code, str(store)])
    from freeoffload.firmware_hooks.kernel._cgroup import cgroup2_mount

    mount = cgroup2_mount()
    assert mount is not None
    pattern = f"freeoffload-run-{proc.pid}-*"
    deadline = time.monotonic() + 30
    while not list(mount.rglob(pattern)) and time.monotonic() < deadline:
        time.sleep(0.05)
    (left,) = list(mount.rglob(pattern))
    deadline = time.monotonic() + 30
    while not (left / "cgroup.procs").read_text().strip() and time.monotonic() < deadline:
        time.sleep(0.05)
    sleeper = int((left / "cgroup.procs").read_text().split()[0])
    proc.kill()
    proc.wait()
    os.kill(sleeper, 9)  # the orphaned program (started by this test)
    deadline = time.monotonic() + 10
    while (left / "cgroup.procs").read_text().strip() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert left.exists()
    assert run_in_cgroup(["true"], store, dict(os.environ)) == 0
    assert not left.exists()


def test_connected_udp_sockets_take_the_same_decisions(
        tmp_path: Path, clients: dict[str, Path], redirect_elf: bytes) -> None:
    """CoAP-style clients connect() their UDP socket: both paths redirect that too."""
    _kernel_ready()
    a, b = UdpServer("UA"), UdpServer("UB")
    try:
        store = _store(tmp_path, redirect_elf, [(f"127.0.0.1:{a.port}", f"127.0.0.1:{b.port}")])
        argv = ["-u", "127.0.0.1", str(a.port)]
        kernel = _run_kernel([str(clients["static"]), *argv], store)
        user = _run_hooked([str(clients["dynamic"]), *argv], store)
        assert kernel == f"got=UB peer=127.0.0.1:{a.port}"
        assert user.split()[0] == "got=UB"
        assert _run_hooked([str(clients["static"]), *argv], store).split()[0] == "got=UA"
    finally:
        a.close()
        b.close()


def test_run_kernel_decides_each_connect_once(
        tmp_path: Path, servers: Trio, clients: dict[str, Path],
        redirect_elf: bytes) -> None:
    """A chained table (A->B, B->C): one decision sends A to B on either path; the hook and the
    kernel both deciding would send it on to C."""
    _kernel_ready()
    a, b, c = servers
    store = _store(tmp_path, redirect_elf, [(f"127.0.0.1:{a.port}", f"127.0.0.1:{b.port}"),
                                            (f"127.0.0.1:{b.port}", f"127.0.0.1:{c.port}")])
    got = {}
    for args in ([], ["--kernel"]):
        proc = subprocess.run(
            [sys.executable, "-m", "freeoffload.firmware_hooks", "run", *args, "--store",
             str(store), "--", str(clients["dynamic"]), "127.0.0.1", str(a.port)],
            capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        got[bool(args)] = proc.stdout.split()[0]
    assert got == {False: "got=B", True: "got=B"}


def test_without_hook_keeps_other_preloads() -> None:
    from freeoffload.firmware_hooks.kernel import without_hook

    env = {"LD_PRELOAD": "/x/libfreeoffload_hook.so /y/libother.so", "A": "1"}
    assert without_hook(env) == {"LD_PRELOAD": "/y/libother.so", "A": "1"}
    assert without_hook({"LD_PRELOAD": "/x/libfreeoffload_hook.so"}) == {}
    assert without_hook({"B": "2"}) == {"B": "2"}
