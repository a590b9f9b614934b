"""Links a policy object into the kernel wrappers, loads them and keeps their maps in step.

:class:`KernelPolicy` owns every fd it creates (maps, programs) and closes them in
:meth:`close`. Map contents come from the policy store (the same rows the user-space hook
reads): :meth:`sync_maps` makes each kernel map equal to them.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Mapping, Sequence

from . import _sys
from ._elf import BPFObject, MapDef, read_object
from ._wrapper import (
    AF_INET,
    AF_INET6,
    ORIG_MAP,
    ORIG_VALUE_SIZE,
    Task,
    connect_wrapper,
    getpeername_wrapper,
)

__all__ = ["KernelPolicy", "load_getpeername", "make_orig_map"]

_MAP_ARRAY, _MAP_LRU_HASH = 2, 9
_F_RDONLY_PROG = 1 << 7
_PSEUDO_MAP_FD, _PSEUDO_MAP_VALUE, _PSEUDO_CALL = 1, 2, 1

Rows = Sequence[tuple[bytes, bytes]]


def make_orig_map() -> int:
    """The socket cookie -> original destination map the wrappers share."""
    return _sys.map_create(_MAP_LRU_HASH, 8, ORIG_VALUE_SIZE, 65536, ORIG_MAP)


def _patch(insns: bytearray, index: int, src: int, imm: int) -> None:
    regs = insns[index * 8 + 1]
    insns[index * 8 + 1] = (regs & 0x0F) | (src << 4)
    struct.pack_into("<i", insns, index * 8 + 4, imm)


def load_getpeername(orig_fd: int) -> dict[int, int]:
    """The getpeername4/6 programs: attach type -> program fd."""
    out = {}
    for family, attach in ((AF_INET, _sys.ATTACH_INET4_GETPEERNAME),
                           (AF_INET6, _sys.ATTACH_INET6_GETPEERNAME)):
        asm = getpeername_wrapper(family)
        code = bytearray(asm.bytes())
        for index, _name in asm.maps:
            _patch(code, index, _PSEUDO_MAP_FD, orig_fd)
        out[attach] = _sys.prog_load(_sys.PROG_TYPE_CGROUP_SOCK_ADDR, bytes(code), attach,
                                     f"fo_peer{family}")
    return out


class KernelPolicy:
    """One policy object loaded as connect4 and connect6 programs, with its own maps."""

    def __init__(self, elf: bytes, task: Task, orig_fd: int) -> None:
        self.obj: BPFObject = read_object(elf)
        self.map_fds: dict[str, int] = {}
        self.map_defs: dict[str, MapDef] = {m.name: m for m in self.obj.maps}
        self.prog_fds: dict[int, int] = {}
        try:
            self._create_maps()
            for family, attach in ((AF_INET, _sys.ATTACH_INET4_CONNECT),
                                   (AF_INET6, _sys.ATTACH_INET6_CONNECT)):
                code = self._link(family, task, orig_fd)
                self.prog_fds[attach] = _sys.prog_load(
                    _sys.PROG_TYPE_CGROUP_SOCK_ADDR, code, attach, f"fo_connect{family}")
        except BaseException:
            self.close()
            raise

    def _create_maps(self) -> None:
        for m in self.obj.maps:
            self.map_fds[m.name] = _sys.map_create(m.type, m.key_size, m.value_size,
                                                   m.max_entries, m.name, m.flags)
        for d in self.obj.data:
            flags = _F_RDONLY_PROG if d.readonly else 0
            fd = _sys.map_create(_MAP_ARRAY, 4, max(len(d.data), 1), 1, d.name.lstrip("."),
                                 flags)
            self.map_fds[d.name] = fd
            _sys.map_update(fd, b"\0" * 4, d.data or b"\0")
            if d.readonly:
                _sys.map_freeze(fd)

    def _link(self, family: int, task: Task, orig_fd: int) -> bytes:
        asm = connect_wrapper(family, task)
        base = len(asm)
        code = bytearray(asm.bytes() + self.obj.insns)
        for index, _name in asm.maps:
            _patch(code, index, _PSEUDO_MAP_FD, orig_fd)
        for index in asm.calls:
            _patch(code, index, _PSEUDO_CALL, base - index - 1)
        for r in self.obj.relocs:
            at = base + r.index
            if r.kind == "map":
                _patch(code, at, _PSEUDO_MAP_FD, self.map_fds[r.target])
            elif r.kind == "data":
                _patch(code, at, _PSEUDO_MAP_VALUE, self.map_fds[r.target])
                struct.pack_into("<i", code, (at + 1) * 8 + 4, r.offset)
            else:
                _patch(code, at, _PSEUDO_CALL, r.offset - r.index - 1)
        return bytes(code)

    def sync_maps(self, contents: Mapping[str, Rows]) -> None:
        """Makes each named map hold exactly ``rows`` (arrays: the given indexes)."""
        for name, rows in contents.items():
            fd, mdef = self.map_fds.get(name), self.map_defs.get(name)
            if fd is None or mdef is None:
                continue
            wanted = dict(rows)
            if mdef.type != _MAP_ARRAY:
                for key in _sys.map_keys(fd, mdef.key_size):
                    if key not in wanted:
                        _sys.map_delete(fd, key)
            for key, value in wanted.items():
                _sys.map_update(fd, key, value)

    def close(self) -> None:
        for fd in [*self.prog_fds.values(), *self.map_fds.values()]:
            os.close(fd)
        self.prog_fds.clear()
        self.map_fds.clear()
