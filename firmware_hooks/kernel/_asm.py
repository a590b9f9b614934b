"""A tiny eBPF instruction emitter with labels, for the kernel-side wrappers."""

from __future__ import annotations

import struct

__all__ = ["Asm"]

# opcodes (class | size/op | source)
_MOV_IMM, _MOV_REG, _ADD_IMM, _RSH_IMM, _OR_IMM = 0xB7, 0xBF, 0x07, 0x77, 0x47
_LDX = {1: 0x71, 2: 0x69, 4: 0x61, 8: 0x79}
_STX = {1: 0x73, 2: 0x6B, 4: 0x63, 8: 0x7B}
_ST = {1: 0x72, 2: 0x6A, 4: 0x62, 8: 0x7A}
_JMP_IMM = {"==": 0x15, "!=": 0x55, ">": 0x25, "&": 0x45}
_JMP_REG = {"==": 0x1D, "!=": 0x5D}
_JA, _CALL, _EXIT, _LDDW, _BE = 0x05, 0x85, 0x95, 0x18, 0xDC
_PSEUDO_MAP_FD, _PSEUDO_CALL = 1, 1


class Asm:
    """Appends instructions; jumps name labels that :meth:`bytes` resolves."""

    def __init__(self) -> None:
        self._insns: list[list[int]] = []  # [op, dst, src, off, imm]
        self._labels: dict[str, int] = {}
        self._jumps: list[tuple[int, str]] = []
        self.calls: list[int] = []  # indexes of pseudo calls to the appended policy
        self.maps: list[tuple[int, str]] = []  # (index of lddw, map name)

    def __len__(self) -> int:
        return len(self._insns)

    def _emit(self, op: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> None:
        self._insns.append([op, dst, src, off, imm])

    def label(self, name: str) -> None:
        self._labels[name] = len(self._insns)

    def mov(self, dst: int, imm: int) -> None:
        self._emit(_MOV_IMM, dst, imm=imm)

    def mov32(self, dst: int, imm: int) -> None:
        """dst = imm as an unsigned 32-bit value (zero-extended)."""
        self._emit(0xB4, dst, imm=imm - (1 << 32) if imm >= 1 << 31 else imm)

    def movr(self, dst: int, src: int) -> None:
        self._emit(_MOV_REG, dst, src)

    def add(self, dst: int, imm: int) -> None:
        self._emit(_ADD_IMM, dst, imm=imm)

    def rsh(self, dst: int, imm: int) -> None:
        self._emit(_RSH_IMM, dst, imm=imm)

    def be16(self, dst: int) -> None:
        """Network <-> host order of a 16-bit port (a swap on little-endian hosts)."""
        self._emit(_BE, dst, imm=16)

    def ldx(self, size: int, dst: int, src: int, off: int) -> None:
        self._emit(_LDX[size], dst, src, off)

    def stx(self, size: int, dst: int, off: int, src: int) -> None:
        self._emit(_STX[size], dst, src, off)

    def st(self, size: int, dst: int, off: int, imm: int) -> None:
        self._emit(_ST[size], dst, off=off, imm=imm)

    def jmp(self, label: str) -> None:
        self._jumps.append((len(self._insns), label))
        self._emit(_JA)

    def jif(self, reg: int, cmp: str, imm: int, label: str) -> None:
        self._jumps.append((len(self._insns), label))
        self._emit(_JMP_IMM[cmp], reg, imm=imm)

    def jifr(self, reg: int, cmp: str, src: int, label: str) -> None:
        self._jumps.append((len(self._insns), label))
        self._emit(_JMP_REG[cmp], reg, src)

    def call(self, helper: int) -> None:
        self._emit(_CALL, imm=helper)

    def call_policy(self) -> None:
        """A bpf-to-bpf call to the policy's first instruction (patched by the linker)."""
        self.calls.append(len(self._insns))
        self._emit(_CALL, src=_PSEUDO_CALL)

    def ld_map(self, dst: int, name: str) -> None:
        """dst = the map ``name`` (its fd is patched in by the linker)."""
        self.maps.append((len(self._insns), name))
        self._emit(_LDDW, dst, _PSEUDO_MAP_FD)
        self._emit(0)

    def exit(self) -> None:
        self._emit(_EXIT)

    def bytes(self) -> bytes:
        for index, label in self._jumps:
            self._insns[index][3] = self._labels[label] - index - 1
        return b"".join(struct.pack("<BBhi", op, (src << 4) | dst, off, imm)
                        for op, dst, src, off, imm in self._insns)
