"""Established TCP connections counted per remote address, for the procfs collector.

The kernel's sock_diag netlink interface answers first: asked for established sockets only, it
filters them itself, so a sample costs in proportion to the open connections, not to the
thousands of TIME_WAIT ones a busy machine keeps (17,508 lines of /proc/net/tcp once cost
~25-150 ms a sample to read and split). Where sock_diag cannot answer (no ``inet_diag``
module, a sandbox), /proc/net/tcp and tcp6 are read, and a line is split only when its state
field says established. Both look at the caller's network namespace and give the same counts.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import struct
from collections.abc import Callable, Iterable

from .sample import PeerSample

__all__ = ["hex_address", "peers", "peers_from_proc", "peers_from_sock_diag"]

_PROC_TABLES = ("/proc/net/tcp", "/proc/net/tcp6")

# A row of /proc/net/tcp{,6} begins "  sl: local:port remote:port st ", st 01 = established.
_ESTABLISHED = b" 01 "

_NETLINK_SOCK_DIAG = 4
_SOCK_DIAG_BY_FAMILY = 20
_NLM_F_REQUEST_DUMP = 0x301  # NLM_F_REQUEST | NLM_F_DUMP
_NLMSG_ERROR, _NLMSG_DONE = 2, 3
_TCP_ESTABLISHED = 1
_HEADER = struct.Struct("=IHHII")        # struct nlmsghdr
_REQUEST = struct.Struct("=BBBxI48x")    # struct inet_diag_req_v2, the socket id left zero
_DST = slice(24, 40)                     # inet_diag_msg.id.idiag_dst, after the header
_ERRNO = struct.Struct("=i")             # NLMSG_ERROR's and NLMSG_DONE's int
_TIMEOUT = 2.0  # seconds: the kernel answers at once; past this the /proc tables answer


def peers() -> dict[str, PeerSample]:
    """Established TCP connections per remote address (IPv4-mapped IPv6 shown as IPv4)."""
    try:
        return peers_from_sock_diag()
    except OSError:
        return peers_from_proc(_PROC_TABLES)


def _count(remotes: Iterable[bytes], decode: Callable[[bytes], str],
           out: dict[str, PeerSample]) -> None:
    """Count one connection per remote address (each distinct address decoded once)."""
    known: dict[bytes, str] = {}
    for raw in remotes:
        addr = known.get(raw)
        if addr is None:
            addr = known[raw] = decode(raw)
        peer = out.get(addr)
        if peer is None:
            out[addr] = PeerSample(addr, connections=1)
        else:
            peer.connections = (peer.connections or 0) + 1


def _address(raw: bytes) -> str:
    addr = ipaddress.ip_address(raw)
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return str(addr.ipv4_mapped)
    return str(addr)


def hex_address(text: str) -> str:
    """An address as /proc/net/tcp{,6} writes it, decoded."""
    return _address(_host_order(text.encode()))


def _proc_address(field: bytes) -> str:
    return _address(_host_order(field))


def peers_from_proc(tables: Iterable[str]) -> dict[str, PeerSample]:
    """The counts from files in the /proc/net/tcp format (missing files are skipped)."""
    out: dict[str, PeerSample] = {}
    for table in tables:
        try:
            with open(table, "rb") as f:
                text = f.read()
        except OSError:
            continue
        _count(_established_remotes(text), _proc_address, out)
    return out


def _established_remotes(text: bytes) -> Iterable[bytes]:
    """The remote ``address:port`` of every established row, without splitting the others.

    " 01 " is searched for in the whole text; a find is the state column only when what comes
    before it on its line is the three fields ``sl: local remote`` (nothing before the state
    column can be " 01 ", so the first find in an established row is its state)."""
    at = text.find(_ESTABLISHED)
    while at >= 0:
        head = text[text.rfind(b"\n", 0, at) + 1:at].split()
        if len(head) == 3 and head[0].endswith(b":"):
            yield head[2].split(b":")[0]
        at = text.find(_ESTABLISHED, at + 3)


def _host_order(field: bytes) -> bytes:
    """/proc/net/tcp{,6} print addresses as 32-bit words in host (little-endian) order."""
    raw = bytes.fromhex(field.decode())
    if len(raw) == 4:
        return raw[::-1]
    return b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))


def peers_from_sock_diag() -> dict[str, PeerSample]:
    """The counts from the kernel's sock_diag dump of established TCP sockets (OSError when
    netlink or inet_diag cannot answer)."""
    out: dict[str, PeerSample] = {}
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, _NETLINK_SOCK_DIAG) as sock:
        sock.settimeout(_TIMEOUT)
        for seq, (family, size) in enumerate(((socket.AF_INET, 4), (socket.AF_INET6, 16)), 1):
            body = _REQUEST.pack(family, socket.IPPROTO_TCP, 0, 1 << _TCP_ESTABLISHED)
            sock.send(_HEADER.pack(_HEADER.size + len(body), _SOCK_DIAG_BY_FAMILY,
                                   _NLM_F_REQUEST_DUMP, seq, 0) + body)
            _count((dst[:size] for dst in _dump(sock, seq)), _address, out)
    return out


def _dump(sock: socket.socket, seq: int) -> Iterable[bytes]:
    """The ``idiag_dst`` field of every answer to request ``seq``, until NLMSG_DONE (OSError
    for an error the kernel sends, in NLMSG_ERROR or in NLMSG_DONE, or a malformed message)."""
    while True:
        data = sock.recv(1 << 16)
        if not data:
            raise OSError("sock_diag: netlink closed before the end of the dump")
        at = 0
        while at + _HEADER.size <= len(data):
            length, kind, _flags, got, _pid = _HEADER.unpack_from(data, at)
            if length < _HEADER.size or at + length > len(data):
                raise OSError(f"sock_diag: bad netlink message length {length} "
                              f"({len(data) - at} bytes left)")
            if got == seq:
                if kind in (_NLMSG_DONE, _NLMSG_ERROR):
                    # both carry an int: 0, or a negative errno (a dump that failed midway
                    # ends with NLMSG_DONE and the error)
                    code = -_ERRNO.unpack_from(data, at + _HEADER.size)[0] \
                        if length >= _HEADER.size + _ERRNO.size else 0
                    if code:
                        raise OSError(code, f"sock_diag refused the dump: {os.strerror(code)}")
                    if kind == _NLMSG_DONE:
                        return
                elif kind == _SOCK_DIAG_BY_FAMILY:
                    if length < _HEADER.size + _DST.stop:
                        raise OSError(f"sock_diag: a socket message of {length} bytes")
                    yield data[at + _HEADER.size:at + length][_DST]
            at += (length + 3) & ~3
