"""The kernel-side programs around a policy: cgroup connect4/6 and getpeername4/6.

connect4/6 build a ``struct fo_connect_ctx`` on the stack from the kernel's
``struct bpf_sock_addr``, call the policy (appended after the wrapper, a bpf-to-bpf call),
and on FO_REWRITE write the new destination back exactly as the user-space hook does
(fohook_ctx_apply): an IPv4 socket takes an IPv4 or IPv4-mapped destination, an IPv6 socket
takes IPv6, or IPv4 as ::ffff:a.b.c.d; a port above 65535 or anything else leaves the call
unchanged. The original destination is remembered per socket (socket cookie) in the
``fo_orig`` map so that getpeername4/6 hand the program back the address it asked for.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

from ._asm import Asm

__all__ = ["ORIG_MAP", "ORIG_VALUE_SIZE", "Task", "connect_wrapper", "getpeername_wrapper"]

ORIG_MAP = "fo_orig"
ORIG_VALUE_SIZE = 24  # {u32 family; u32 port (network order); u8 ip[16]}
AF_INET, AF_INET6 = 2, 10
FO_REWRITE, FO_CTX_V4MAPPED = 1, 0x1
_MAPPED_WORD = int.from_bytes(b"\0\0\xff\xff", sys.byteorder)  # word 2 of ::ffff:a.b.c.d

# helpers
_LOOKUP, _UPDATE, _PID_TGID, _COOKIE = 1, 2, 14, 46
# struct bpf_sock_addr
_USER_IP4, _USER_IP6, _USER_PORT, _TYPE, _PROTOCOL = 4, 8, 24, 32, 36
# stack: fo_connect_ctx at -64, the original-destination record at -96, cookie at -104
_CTX, _REC, _KEY = -64, -96, -104
_C_FAMILY, _C_TYPE, _C_PROTO, _C_PID, _C_IP4, _C_PORT = 0, 4, 8, 12, 16, 20
_C_IP6, _C_FLAGS, _C_TASK = 24, 40, 44


@dataclass(frozen=True)
class Task:
    """The task attributes (the environment ``freeoffload run --task`` sets)."""

    type: int = 0
    flags: int = 0
    cpu_milli: int = 0
    memory_mib: int = 0
    storage_mib: int = 0


def _prologue(a: Asm, family: int, task: Task) -> None:
    a.movr(6, 1)
    for off in range(_KEY, 0, 8):
        a.st(8, 10, off, 0)
    a.st(4, 10, _CTX + _C_FAMILY, family)
    a.st(4, 10, _REC, family)
    a.ldx(4, 1, 6, _TYPE)
    a.stx(4, 10, _CTX + _C_TYPE, 1)
    a.ldx(4, 1, 6, _PROTOCOL)
    a.stx(4, 10, _CTX + _C_PROTO, 1)
    a.call(_PID_TGID)
    a.rsh(0, 32)
    a.stx(4, 10, _CTX + _C_PID, 0)
    a.ldx(4, 1, 6, _USER_PORT)
    a.stx(4, 10, _REC + 4, 1)
    a.be16(1)
    a.stx(4, 10, _CTX + _C_PORT, 1)
    values = (task.type, task.flags, task.cpu_milli, task.memory_mib, task.storage_mib)
    for i, value in enumerate(values):
        a.mov32(1, value)
        a.stx(4, 10, _CTX + _C_TASK + 4 * i, 1)


def _run_policy(a: Asm) -> None:
    a.movr(1, 10)
    a.add(1, _CTX)
    a.call_policy()
    a.jif(0, "!=", FO_REWRITE, "allow")
    a.ldx(4, 1, 10, _CTX + _C_PORT)
    a.jif(1, ">", 65535, "allow")
    a.ldx(4, 1, 10, _CTX + _C_FAMILY)


def _remember_and_set_port(a: Asm) -> None:
    a.movr(1, 6)
    a.call(_COOKIE)
    a.stx(8, 10, _KEY, 0)
    a.ld_map(1, ORIG_MAP)
    a.movr(2, 10)
    a.add(2, _KEY)
    a.movr(3, 10)
    a.add(3, _REC)
    a.mov(4, 0)
    a.call(_UPDATE)
    a.ldx(4, 1, 10, _CTX + _C_PORT)
    a.be16(1)
    a.stx(4, 6, _USER_PORT, 1)


def _epilogue(a: Asm) -> None:
    a.label("allow")
    a.mov(0, 1)
    a.exit()


def connect_wrapper(family: int, task: Task) -> Asm:
    a = Asm()
    _prologue(a, family, task)
    if family == AF_INET:
        a.ldx(4, 1, 6, _USER_IP4)
        a.stx(4, 10, _CTX + _C_IP4, 1)
        a.stx(4, 10, _REC + 8, 1)
        _run_policy(a)
        a.jif(1, "==", AF_INET, "apply")
        a.jif(1, "!=", AF_INET6, "allow")
        for word, expect in ((0, 0), (4, 0)):  # an IPv6 destination must be IPv4-mapped
            a.ldx(4, 1, 10, _CTX + _C_IP6 + word)
            a.jif(1, "!=", expect, "allow")
        a.ldx(4, 1, 10, _CTX + _C_IP6 + 8)
        a.mov32(2, _MAPPED_WORD)
        a.jifr(1, "!=", 2, "allow")
        a.ldx(4, 1, 10, _CTX + _C_IP6 + 12)
        a.stx(4, 10, _CTX + _C_IP4, 1)
        a.label("apply")
        _remember_and_set_port(a)
        a.ldx(4, 1, 10, _CTX + _C_IP4)
        a.stx(4, 6, _USER_IP4, 1)
    else:
        _connect6_body(a)
    _epilogue(a)
    return a


def _connect6_body(a: Asm) -> None:
    for word in range(0, 16, 4):
        a.ldx(4, 1, 6, _USER_IP6 + word)
        a.stx(4, 10, _CTX + _C_IP6 + word, 1)
        a.stx(4, 10, _REC + 8 + word, 1)
    for word in (0, 4):
        a.ldx(4, 1, 6, _USER_IP6 + word)
        a.jif(1, "!=", 0, "not_mapped")
    a.ldx(4, 1, 6, _USER_IP6 + 8)
    a.mov32(2, _MAPPED_WORD)
    a.jifr(1, "!=", 2, "not_mapped")
    a.st(4, 10, _CTX + _C_FLAGS, FO_CTX_V4MAPPED)
    a.ldx(4, 1, 6, _USER_IP6 + 12)
    a.stx(4, 10, _CTX + _C_IP4, 1)
    a.label("not_mapped")
    _run_policy(a)
    a.jif(1, "==", AF_INET6, "apply")
    a.jif(1, "!=", AF_INET, "allow")
    a.st(4, 10, _CTX + _C_IP6, 0)  # IPv4 from an IPv6 socket: ::ffff:a.b.c.d
    a.st(4, 10, _CTX + _C_IP6 + 4, 0)
    a.mov32(1, _MAPPED_WORD)
    a.stx(4, 10, _CTX + _C_IP6 + 8, 1)
    a.ldx(4, 1, 10, _CTX + _C_IP4)
    a.stx(4, 10, _CTX + _C_IP6 + 12, 1)
    a.label("apply")
    _remember_and_set_port(a)
    for word in range(0, 16, 4):
        a.ldx(4, 1, 10, _CTX + _C_IP6 + word)
        a.stx(4, 6, _USER_IP6 + word, 1)


def getpeername_wrapper(family: int) -> Asm:
    """Puts back the destination the program asked for, if connect rewrote it."""
    a = Asm()
    a.movr(6, 1)
    a.call(_COOKIE)
    a.stx(8, 10, -8, 0)
    a.ld_map(1, ORIG_MAP)
    a.movr(2, 10)
    a.add(2, -8)
    a.call(_LOOKUP)
    a.jif(0, "==", 0, "allow")
    a.ldx(4, 1, 0, 0)
    a.jif(1, "!=", family, "allow")
    a.ldx(4, 1, 0, 4)
    a.stx(4, 6, _USER_PORT, 1)
    if family == AF_INET:
        a.ldx(4, 1, 0, 8)
        a.stx(4, 6, _USER_IP4, 1)
    else:
        for word in range(0, 16, 4):
            a.ldx(4, 1, 0, 8 + word)
            a.stx(4, 6, _USER_IP6 + word, 1)
    _epilogue(a)
    return a
