"""Peers of the procfs collector: established TCP connections per remote address."""

from __future__ import annotations

import random
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from freeoffload.probes import _tcp
from freeoffload.probes.sample import PeerSample

HEADER = ("  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  "
          "timeout inode\n")
STATES = ["01", "06", "0A", "08", "01", "06", "06", "06"]  # ESTABLISHED, TIME_WAIT, LISTEN, ...


def _row(sl: int, local: str, remote: str, state: str, tail: str) -> str:
    return f"{sl:4d}: {local} {remote} {state} {tail}\n"


def _v4(addr: str) -> str:
    return socket.inet_aton(addr)[::-1].hex().upper()


def _v6(addr: str) -> str:
    raw = socket.inet_pton(socket.AF_INET6, addr)
    return b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4)).hex().upper()


def _by_split(path: Path) -> dict[str, int]:
    """What the collector counted before: split every row, keep state 01."""
    counts: dict[str, int] = {}
    for row in [line.split() for line in path.read_text().splitlines()][1:]:
        if len(row) >= 4 and row[3] == "01":
            addr = _tcp.hex_address(row[2].split(":")[0])
            counts[addr] = counts.get(addr, 0) + 1
    return counts


def _counts(peers: dict[str, PeerSample]) -> dict[str, int]:
    return {addr: peer.connections or 0 for addr, peer in peers.items()}


def test_addresses_decode_as_proc_net_tcp_writes_them() -> None:
    assert _tcp.hex_address("0100007F") == "127.0.0.1"
    assert _tcp.hex_address("0000000000000000FFFF00000100007F") == "127.0.0.1"
    assert _tcp.hex_address("00000000000000000000000001000000") == "::1"


def test_a_large_table_counts_what_splitting_every_row_counted(tmp_path: Path) -> None:
    rng = random.Random(7)
    remotes4 = [f"10.{rng.randrange(256)}.{rng.randrange(256)}.{i}" for i in range(40)]
    remotes6 = [f"2001:db8::{i:x}" for i in range(20)] + ["::ffff:10.9.8.7", "::1"]
    # tails with " 01 " where a state could be mistaken: tx/rx, timer, uid, timeout
    tails = ["00000000:00000000 00:00000000 00000000  1000        0 4711 1 0000 20 4 30 10 -1",
             "00000000:00000001 01:00000001 00000000     0 01 0 1 01 01 0 0 0",
             "00000000:00000000 00:00000000 00000001   101        0 0 3 0 01 "]
    tcp, tcp6 = tmp_path / "tcp", tmp_path / "tcp6"
    with tcp.open("w") as out:
        out.write(HEADER)
        for sl in range(20_000):  # past sl 9999 the first column widens
            remote = f"{_v4(rng.choice(remotes4))}:{rng.randrange(65536):04X}"
            out.write(_row(sl, f"{_v4('10.0.0.1')}:1F90", remote, rng.choice(STATES),
                           rng.choice(tails)))
    with tcp6.open("w") as out:
        out.write(HEADER)
        for sl in range(3_000):
            remote = f"{_v6(rng.choice(remotes6))}:{rng.randrange(65536):04X}"
            out.write(_row(sl, f"{_v6('2001:db8::1')}:1F90", remote, rng.choice(STATES),
                           rng.choice(tails)))
    found = _tcp.peers_from_proc([str(tcp), str(tmp_path / "missing"), str(tcp6)])
    want = _by_split(tcp)
    for addr, count in _by_split(tcp6).items():
        want[addr] = want.get(addr, 0) + count
    assert _counts(found) == want
    assert "10.9.8.7" in want and "::1" in want and sum(want.values()) > 5_000


@pytest.fixture
def connections() -> Iterator[tuple[str, int]]:
    """Established connections to a loopback address of their own, beside closed ones."""
    addr = f"127.{random.randrange(1, 255)}.{random.randrange(1, 255)}.{random.randrange(1, 255)}"
    with socket.create_server((addr, 0), backlog=64) as server:
        port = server.getsockname()[1]
        for _ in range(30):  # closed by the client first: TIME_WAIT on its side
            client = socket.create_connection((addr, port))
            accepted, _ = server.accept()
            client.close()
            accepted.close()
        held = []
        try:
            for _ in range(12):
                held.append(socket.create_connection((addr, port)))
                held.append(server.accept()[0])
            yield addr, 12
        finally:
            for sock in held:
                sock.close()


def test_the_kernel_and_proc_net_tcp_count_the_same_open_connections(
        connections: tuple[str, int]) -> None:
    addr, open_ = connections
    from_kernel = _tcp.peers_from_sock_diag()
    from_proc = _tcp.peers_from_proc(["/proc/net/tcp", "/proc/net/tcp6"])
    assert from_kernel[addr].connections == open_
    assert from_proc[addr].connections == open_
    assert _tcp.peers()[addr].connections == open_
