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


def test_the_kernel_counts_ipv6_connections_as_proc_net_tcp6_does() -> None:
    if not socket.has_ipv6:
        pytest.fail("this kernel has no IPv6; the sock_diag IPv6 dump cannot be checked")
    with socket.create_server(("::1", 0), family=socket.AF_INET6) as server:
        port = server.getsockname()[1]
        held = []
        try:
            for _ in range(5):
                held.append(socket.create_connection(("::1", port)))
                held.append(server.accept()[0])
            from_kernel = _tcp.peers_from_sock_diag()
            from_proc = _tcp.peers_from_proc(["/proc/net/tcp6"])
        finally:
            for sock in held:
                sock.close()
    assert from_kernel["::1"].connections == from_proc["::1"].connections == 10


def _message(kind: int, seq: int, body: bytes) -> bytes:
    return _tcp._HEADER.pack(_tcp._HEADER.size + len(body), kind, 2, seq, 0) + body


def _socket_message(seq: int, dst: str) -> bytes:
    """An inet_diag_msg: family, state, timer, retrans, ports, src, dst, if, cookie, ..."""
    return _message(_tcp._SOCK_DIAG_BY_FAMILY, seq,
                    bytes(24) + socket.inet_pton(socket.AF_INET6, dst) + bytes(32))


def _answers(*datagrams: bytes) -> list[bytes]:
    """What _dump reads for request 7 from these datagrams (a socketpair stands for netlink)."""
    ours, kernel = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    with ours, kernel:
        ours.settimeout(1.0)
        for datagram in datagrams:
            kernel.send(datagram)
        return list(_tcp._dump(ours, 7))


def test_a_dump_in_several_datagrams_is_read_to_its_done() -> None:
    got = _answers(_socket_message(7, "2001:db8::1") + _socket_message(6, "2001:db8::6")
                   + _socket_message(7, "2001:db8::2"),
                   _socket_message(7, "::ffff:10.0.0.3") + _message(_tcp._NLMSG_DONE, 7,
                                                                    bytes(4)))
    assert [_tcp._address(dst) for dst in got] == ["2001:db8::1", "2001:db8::2", "10.0.0.3"]


@pytest.mark.parametrize(("datagram", "error"), [
    (_message(3, 7, (-5).to_bytes(4, "little", signed=True)), "Input/output error"),
    (_message(2, 7, (-2).to_bytes(4, "little", signed=True) + bytes(16)), "No such file"),
    (_socket_message(7, "::1")[:40], "bad netlink message length 88 \\(40 bytes left\\)"),
    (_message(_tcp._SOCK_DIAG_BY_FAMILY, 7, bytes(20)), "a socket message of 36 bytes"),
], ids=["done-with-error", "error", "cut-short", "socket-message-too-short"])
def test_an_odd_answer_is_an_oserror_so_proc_answers(datagram: bytes, error: str) -> None:
    with pytest.raises(OSError, match=error):
        _answers(datagram)
