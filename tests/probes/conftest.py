"""Real load for the probes: cgroups, network namespaces over a veth pair, traffic between them.

Everything made here is removed again on teardown, also when a test fails.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import need
from freeoffload.probes._features import ebpf_off_reason
from freeoffload.probes._scope import cgroup2_root

SERVER = r"""
import socket, sys
srv = socket.socket(socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET)
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind((sys.argv[1], int(sys.argv[2])))
srv.listen(4)
print("ready", flush=True)
for _ in range(int(sys.argv[3])):
    conn, _ = srv.accept()
    total = 0
    while True:
        data = conn.recv(1 << 16)
        if not data:
            break
        total += len(data)
    conn.close()
    print(total, flush=True)
"""

CLIENT = r"""
import socket, sys, time
conn = socket.create_connection((sys.argv[1], int(sys.argv[2])))
chunk = b"x" * 65536
limit, seconds = int(sys.argv[3]), float(sys.argv[4])
sent, end = 0, time.monotonic() + seconds
while sent < limit and (seconds <= 0 or time.monotonic() < end):
    n = min(len(chunk), limit - sent)
    conn.sendall(chunk[:n])
    sent += n
conn.shutdown(socket.SHUT_WR)
conn.recv(1)
conn.close()
print(sent, flush=True)
"""


@pytest.fixture
def bpf(root: None) -> None:
    reason = ebpf_off_reason()
    need(reason is None, f"eBPF is off: {reason}")


@pytest.fixture
def cgroup() -> Iterator[Path]:
    """A fresh cgroup v2 directory; its processes are killed and it is removed afterwards."""
    base = cgroup2_root()
    need(base is not None, "needs a cgroup v2 hierarchy")
    assert base is not None
    path = base / f"fo-probes-test-{os.getpid()}-{time.monotonic_ns()}"
    path.mkdir()
    try:
        yield path
    finally:
        _empty_cgroup(path)


@pytest.fixture
def limited_cgroup(cgroup: Path) -> Iterator[tuple[Path, list[Path]]]:
    """A cgroup v2 scope limited to half a core: through its cpu.max when the v2 hierarchy has
    the cpu controller, else (hybrid hosts) through the CFS quota of the same path in the v1
    cpu hierarchy. Yields the scope and every directory a process must join."""
    from freeoffload.probes._scope import _v1_cpu_root

    root = cgroup.parent
    if "cpu" in (root / "cgroup.controllers").read_text().split():
        (root / "cgroup.subtree_control").write_text("+cpu")
        (cgroup / "cpu.max").write_text("50000 100000")
        (cgroup / "cpu.weight").write_text("10000")  # its quota, even on a busy machine
        yield cgroup, [cgroup]
        return
    v1 = _v1_cpu_root()
    need(v1 is not None, "needs the cpu controller in cgroup v2 or v1")
    assert v1 is not None
    mirror = v1 / cgroup.relative_to(root)
    mirror.mkdir()
    try:
        (mirror / "cpu.cfs_period_us").write_text("100000")
        (mirror / "cpu.cfs_quota_us").write_text("50000")
        (mirror / "cpu.shares").write_text("262144")  # its quota, even on a busy machine
        yield cgroup, [cgroup, mirror]
    finally:
        _empty_cgroup(mirror)


@pytest.fixture
def memory_cgroup(cgroup: Path) -> Iterator[tuple[Path, list[Path]]]:
    """A cgroup v2 scope limited to 256 MiB: memory.max when the v2 hierarchy has the memory
    controller, else the v1 memory cgroup of the same path. Yields the scope and the
    directories a process must join."""
    from freeoffload.probes._scope import _v1_root

    root = cgroup.parent
    if "memory" in (root / "cgroup.controllers").read_text().split():
        (root / "cgroup.subtree_control").write_text("+memory")
        (cgroup / "memory.max").write_text(str(256 << 20))
        yield cgroup, [cgroup]
        return
    v1 = _v1_root("memory")
    need(v1 is not None, "needs the memory controller in cgroup v2 or v1")
    assert v1 is not None
    mirror = v1 / cgroup.relative_to(root)
    mirror.mkdir()
    try:
        (mirror / "memory.limit_in_bytes").write_text(str(256 << 20))
        yield cgroup, [cgroup, mirror]
    finally:
        _empty_cgroup(mirror)


def _empty_cgroup(path: Path) -> None:
    for _ in range(50):
        pids = [int(p) for p in (path / "cgroup.procs").read_text().split()]
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.05)
    path.rmdir()


def join_cgroup(*paths: Path) -> None:
    """A preexec_fn body: move the child into ``paths`` before it runs the program."""
    for path in paths:
        (path / "cgroup.procs").write_text(str(os.getpid()))


@dataclass
class NetPair:
    """Two namespaces joined by a veth pair: ``a`` (addr_a) and ``b`` (addr_b)."""

    a: str
    b: str
    addr_a: str
    addr_b: str
    if_a: str
    if_b: str
    addr6_a: str = "fd00:f0::1"
    addr6_b: str = "fd00:f0::2"

    def run(self, ns: str, code: str, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-c", code, *args],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def transfer(self, nbytes: int, seconds: float = 0.0, port: int = 5201,
                 to: str = "") -> tuple[int, int]:
        """Send up to ``nbytes`` from a to b (at ``to``, default addr_b), for at most
        ``seconds`` if given: (sent, received)."""
        to = to or self.addr_b
        server = self.run(self.b, SERVER, to, str(port), "1")
        try:
            assert server.stdout is not None
            assert server.stdout.readline().strip() == "ready", server.stderr
            client = self.run(self.a, CLIENT, to, str(port), str(nbytes), str(seconds))
            out, err = client.communicate(timeout=120)
            assert client.returncode == 0, err
            received = server.stdout.readline().strip()
            return int(out.strip()), int(received)
        finally:
            server.kill()
            server.wait()

    def shape(self, rate: str, limit: int = 0) -> None:
        """A token bucket on a's side of the link: a sends at most ``rate``; with ``limit``
        (bytes) its queue is that short and drops what does not fit."""
        from pyroute2 import NetNS

        with NetNS(self.a) as ns:
            index = ns.link_lookup(ifname=self.if_a)[0]
            if limit:
                ns.tc("add", "tbf", index, rate=rate, burst=16 * 1024, limit=limit)
            else:
                ns.tc("add", "tbf", index, rate=rate, burst=32 * 1024, latency="100ms")


@pytest.fixture
def netpair(root: None) -> Iterator[NetPair]:
    from pyroute2 import NetNS, netns

    tag = f"{os.getpid() % 10000}{time.monotonic_ns() % 1000}"
    pair = NetPair(f"fopr-{tag}-a", f"fopr-{tag}-b", "10.231.7.1", "10.231.7.2",
                   f"fpa{tag}"[:15], f"fpb{tag}"[:15])
    netns.create(pair.a)
    try:
        netns.create(pair.b)
        try:
            with NetNS(pair.a) as ns:
                ns.link("add", ifname=pair.if_a, kind="veth", peer=pair.if_b)
                peer = ns.link_lookup(ifname=pair.if_b)[0]
                ns.link("set", index=peer, net_ns_fd=pair.b)
                index = ns.link_lookup(ifname=pair.if_a)[0]
                ns.addr("add", index=index, address=pair.addr_a, prefixlen=24)
                ns.addr("add", index=index, address=pair.addr6_a, prefixlen=64,
                        flags=0x02)  # IFA_F_NODAD: usable at once
                ns.link("set", index=index, state="up")
                ns.link("set", index=ns.link_lookup(ifname="lo")[0], state="up")
            with NetNS(pair.b) as ns:
                index = ns.link_lookup(ifname=pair.if_b)[0]
                ns.addr("add", index=index, address=pair.addr_b, prefixlen=24)
                ns.addr("add", index=index, address=pair.addr6_b, prefixlen=64, flags=0x02)
                ns.link("set", index=index, state="up")
                ns.link("set", index=ns.link_lookup(ifname="lo")[0], state="up")
            yield pair
        finally:
            netns.remove(pair.b)
    finally:
        netns.remove(pair.a)
