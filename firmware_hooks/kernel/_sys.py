"""The bpf() system call through ctypes: maps, program loading and cgroup links.

Only what the kernel path needs. Every failure raises :class:`BPFSyscallError` with the
command, errno and, for a program the kernel's verifier refused, its log.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import platform
import struct

__all__ = [
    "ATTACH_INET4_CONNECT",
    "ATTACH_INET4_GETPEERNAME",
    "ATTACH_INET6_CONNECT",
    "ATTACH_INET6_GETPEERNAME",
    "PROG_TYPE_CGROUP_SOCK_ADDR",
    "BPFSyscallError",
    "link_create",
    "link_update",
    "map_create",
    "map_delete",
    "map_freeze",
    "map_keys",
    "map_update",
    "prog_load",
]

# bpf() commands, program and attach types (include/uapi/linux/bpf.h)
_MAP_CREATE, _MAP_LOOKUP, _MAP_UPDATE, _MAP_DELETE, _MAP_NEXT_KEY = 0, 1, 2, 3, 4
_PROG_LOAD = 5
_MAP_FREEZE, _LINK_CREATE, _LINK_UPDATE = 22, 28, 29
PROG_TYPE_CGROUP_SOCK_ADDR = 18
ATTACH_INET4_CONNECT, ATTACH_INET6_CONNECT = 10, 11
ATTACH_INET4_GETPEERNAME, ATTACH_INET6_GETPEERNAME = 29, 30
_ATTR_SIZE = 144

_SYSCALL_NR = {"x86_64": 321, "aarch64": 280, "armv7l": 386, "armv6l": 386, "i686": 357}
_CMD_NAMES = {_MAP_CREATE: "map create", _MAP_UPDATE: "map update", _PROG_LOAD: "program load",
              _MAP_FREEZE: "map freeze", _MAP_DELETE: "map delete",
              _MAP_NEXT_KEY: "map next key", _LINK_CREATE: "cgroup link",
              _LINK_UPDATE: "link update", _MAP_LOOKUP: "map lookup"}


class BPFSyscallError(OSError):
    """A bpf() call failed; ``log`` holds the kernel verifier's output for program loads."""

    def __init__(self, cmd: int, err: int, log: str = "") -> None:
        what = _CMD_NAMES.get(cmd, f"bpf command {cmd}")
        super().__init__(err, f"bpf {what}: {os.strerror(err)}")
        self.log = log


_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
_libc.syscall.restype = ctypes.c_long


def _bpf(cmd: int, attr: ctypes.Array[ctypes.c_char], log: str = "") -> int:
    nr = _SYSCALL_NR.get(platform.machine())
    if nr is None:
        raise BPFSyscallError(cmd, errno.ENOSYS)
    ret = int(_libc.syscall(ctypes.c_long(nr), ctypes.c_int(cmd), attr,
                            ctypes.c_uint(_ATTR_SIZE)))
    if ret < 0:
        raise BPFSyscallError(cmd, ctypes.get_errno(), log)
    return ret


def _attr(fmt: str, *values: object) -> ctypes.Array[ctypes.c_char]:
    buf = ctypes.create_string_buffer(_ATTR_SIZE)
    struct.pack_into(fmt, buf, 0, *values)
    return buf


def _addr(buf: ctypes.Array[ctypes.c_char]) -> int:
    return ctypes.addressof(buf)


def map_create(map_type: int, key_size: int, value_size: int, max_entries: int,
               name: str, flags: int = 0) -> int:
    """A new map; returns its fd."""
    attr = _attr("=IIIIIII16s", map_type, key_size, value_size, max_entries, flags, 0, 0,
                 name.encode()[:15])
    return _bpf(_MAP_CREATE, attr)


def map_update(fd: int, key: bytes, value: bytes, flags: int = 0) -> None:
    kbuf = ctypes.create_string_buffer(key, len(key))
    vbuf = ctypes.create_string_buffer(value, len(value))
    _bpf(_MAP_UPDATE, _attr("=IIQQQ", fd, 0, _addr(kbuf), _addr(vbuf), flags))


def map_lookup(fd: int, key: bytes, value_size: int) -> bytes | None:
    kbuf = ctypes.create_string_buffer(key, len(key))
    vbuf = ctypes.create_string_buffer(value_size)
    try:
        _bpf(_MAP_LOOKUP, _attr("=IIQQQ", fd, 0, _addr(kbuf), _addr(vbuf), 0))
    except BPFSyscallError as err:
        if err.errno == errno.ENOENT:
            return None
        raise
    return vbuf.raw


def map_delete(fd: int, key: bytes) -> None:
    kbuf = ctypes.create_string_buffer(key, len(key))
    try:
        _bpf(_MAP_DELETE, _attr("=IIQ", fd, 0, _addr(kbuf)))
    except BPFSyscallError as err:
        if err.errno != errno.ENOENT:
            raise


def map_keys(fd: int, key_size: int) -> list[bytes]:
    """Every key of a hash map (a snapshot)."""
    keys: list[bytes] = []
    cur = ctypes.create_string_buffer(key_size)
    nxt = ctypes.create_string_buffer(key_size)
    prev = 0  # NULL: the first key
    while True:
        try:
            _bpf(_MAP_NEXT_KEY, _attr("=IIQQ", fd, 0, prev, _addr(nxt)))
        except BPFSyscallError as err:
            if err.errno == errno.ENOENT:
                return keys
            raise
        keys.append(nxt.raw)
        ctypes.memmove(cur, nxt, key_size)
        prev = _addr(cur)


def map_freeze(fd: int) -> None:
    _bpf(_MAP_FREEZE, _attr("=I", fd))


def prog_load(prog_type: int, insns: bytes, expected_attach: int, name: str) -> int:
    """Loads and verifies a program; the verifier's log is in the error on refusal."""
    ibuf = ctypes.create_string_buffer(insns, len(insns))
    lic = ctypes.create_string_buffer(b"GPL")
    log = ctypes.create_string_buffer(1 << 20)
    attr = _attr("=IIQQIIQII16sII", prog_type, len(insns) // 8, _addr(ibuf), _addr(lic),
                 0, 0, 0, 0, 0, name.encode()[:15], 0, expected_attach)
    try:
        return _bpf(_PROG_LOAD, attr)
    except BPFSyscallError as err:
        if err.errno not in (errno.EACCES, errno.EINVAL, errno.E2BIG):
            raise
    # Load again with the log on, to say why (a first try without it is the fast path).
    attr = _attr("=IIQQIIQII16sII", prog_type, len(insns) // 8, _addr(ibuf), _addr(lic),
                 1, len(log), _addr(log), 0, 0, name.encode()[:15], 0, expected_attach)
    try:
        return _bpf(_PROG_LOAD, attr)
    except BPFSyscallError as err:
        text = log.value.decode(errors="replace").strip()
        raise BPFSyscallError(_PROG_LOAD, err.errno or errno.EINVAL, text) from None


def link_create(prog_fd: int, cgroup_fd: int, attach_type: int) -> int:
    """Attaches a program to a cgroup for as long as the returned link fd stays open."""
    return _bpf(_LINK_CREATE, _attr("=IIII", prog_fd, cgroup_fd, attach_type, 0))


def link_update(link_fd: int, new_prog_fd: int) -> None:
    """Swaps the program behind a link atomically."""
    _bpf(_LINK_UPDATE, _attr("=IIII", link_fd, new_prog_fd, 0, 0))
