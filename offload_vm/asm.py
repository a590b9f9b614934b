"""An assembler for the eBPF text syntax of the conformance suite.

``assemble(text) -> bytes`` turns lines such as ``mov32 %r0, 0x1``, ``ldxw %r2, [%r1+4]``,
``jne %r0, 15, failed``, ``lock fetch add32 [%r10-4], %r1`` or ``call local func1`` into
8-byte instruction slots (little-endian). Labels are ``name:`` lines; the first ``exit`` also
defines the label ``exit``. Beyond the suite: ``lddw %r1, map[0]`` loads map 0 and
``lddw %r1, map_value[0]+8`` the address of byte 8 of its first value. Errors raise
:class:`AssemblyError` naming the line.
"""

from __future__ import annotations

import re
import struct

from freeoffload.errors import ProgramRejectedError

__all__ = ["AssemblyError", "assemble"]

_ALU = {
    "add": 0x00, "sub": 0x10, "mul": 0x20, "div": 0x30, "or": 0x40, "and": 0x50,
    "lsh": 0x60, "rsh": 0x70, "neg": 0x80, "mod": 0x90, "xor": 0xA0, "mov": 0xB0,
    "arsh": 0xC0, "sdiv": 0x30, "smod": 0x90,
}
_JMP = {
    "jeq": 0x10, "jgt": 0x20, "jge": 0x30, "jset": 0x40, "jne": 0x50, "jsgt": 0x60,
    "jsge": 0x70, "jlt": 0xA0, "jle": 0xB0, "jslt": 0xC0, "jsle": 0xD0,
}
_SIZE = {"w": 0x00, "h": 0x08, "b": 0x10, "dw": 0x18}
_ATOMIC = {"add": 0x00, "or": 0x40, "and": 0x50, "xor": 0xA0}
_CLS_ALU, _CLS_JMP, _CLS_JMP32, _CLS_ALU64 = 0x04, 0x05, 0x06, 0x07
_MEM = re.compile(r"^\[\s*%r(\d+)\s*(?:([+-])\s*(\w+))?\s*\]$")


class AssemblyError(ProgramRejectedError):
    """A line of assembly could not be assembled."""


def _slot(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    return struct.pack("<BBhi", code, (src << 4) | dst, off, _s32(imm))


def _s32(value: int) -> int:
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value & 0x80000000 else value


def _int(text: str) -> int:
    text = text.strip()
    if text.lower().startswith(("0x", "-0x", "+0x")):
        return int(text, 16)
    return int(text, 10)


def _reg(text: str) -> int:
    match = re.fullmatch(r"%r(\d+)", text.strip())
    if not match or int(match.group(1)) > 10:
        raise ValueError(f"expected a register %r0..%r10, got {text.strip()!r}")
    return int(match.group(1))


def _mem(text: str) -> tuple[int, int]:
    match = _MEM.match(text.strip())
    if not match:
        raise ValueError(f"expected a memory operand like [%r1+8], got {text.strip()!r}")
    off = _int(match.group(3)) if match.group(3) else 0
    return int(match.group(1)), -off if match.group(2) == "-" else off


class _Assembler:
    def __init__(self, labels: dict[str, int]) -> None:
        self.labels = labels
        self.pc = 0

    def target(self, text: str) -> int:
        text = text.strip()
        if re.fullmatch(r"[+-]\d+", text):
            return int(text)
        if text not in self.labels:
            raise ValueError(f"unknown label {text!r}")
        return self.labels[text] - self.pc - 1

    def alu(self, name: str, ops: list[str]) -> bytes:
        cls = _CLS_ALU64
        if name.endswith("32"):
            cls, name = _CLS_ALU, name[:-2]
        elif name.endswith("64"):
            name = name[:-2]
        op = _ALU[name]
        off = 1 if name in ("sdiv", "smod") else 0
        dst = _reg(ops[0])
        if name == "neg":
            return _slot(cls | op, dst)
        if ops[1].strip().startswith("%"):
            return _slot(cls | 0x08 | op, dst, _reg(ops[1]), off)
        return _slot(cls | op, dst, 0, off, _int(ops[1]))

    def movsx(self, name: str, ops: list[str]) -> bytes:
        match = re.fullmatch(r"movsx(8|16|32)(32|64)", name)
        if not match:
            raise ValueError(f"unknown instruction {name!r}")
        cls = _CLS_ALU64 if match.group(2) == "64" else _CLS_ALU
        return _slot(cls | 0x08 | 0xB0, _reg(ops[0]), _reg(ops[1]), int(match.group(1)))

    def jump(self, name: str, ops: list[str]) -> bytes:
        cls = _CLS_JMP
        if name.endswith("32"):
            cls, name = _CLS_JMP32, name[:-2]
        op = _JMP[name]
        dst = _reg(ops[0])
        off = self.target(ops[2])
        if ops[1].strip().startswith("%"):
            return _slot(cls | 0x08 | op, dst, _reg(ops[1]), off)
        return _slot(cls | op, dst, 0, off, _int(ops[1]))

    def call(self, rest: str) -> bytes:
        rest = rest.strip()
        if rest.startswith("local"):
            return _slot(0x85, 0, 1, 0, self.target(rest[len("local"):]))
        if rest.startswith("%"):
            return _slot(0x8D, _reg(rest))
        return _slot(0x85, 0, 0, 0, _int(rest))

    def memory(self, name: str, ops: list[str]) -> bytes:
        if name.startswith("ldxs"):
            src, off = _mem(ops[1])
            return _slot(0x81 | _SIZE[name[4:]], _reg(ops[0]), src, off)
        if name.startswith("ldx"):
            src, off = _mem(ops[1])
            return _slot(0x61 | _SIZE[name[3:]], _reg(ops[0]), src, off)
        if name.startswith("stx"):
            dst, off = _mem(ops[0])
            return _slot(0x63 | _SIZE[name[3:]], dst, _reg(ops[1]), off)
        dst, off = _mem(ops[0])
        return _slot(0x62 | _SIZE[name[2:]], dst, 0, off, _int(ops[1]))

    def atomic(self, words: list[str], ops: list[str]) -> bytes:
        fetch = words[0] == "fetch"
        name = words[1] if fetch else words[0]
        size = 0x18
        if name.endswith("32"):
            size, name = 0x00, name[:-2]
        if name == "xchg":
            imm = 0xE1
        elif name == "cmpxchg":
            imm = 0xF1
        else:
            imm = _ATOMIC[name] | (0x01 if fetch else 0)
        dst, off = _mem(ops[0])
        return _slot(0xC3 | size, dst, _reg(ops[1]), off, imm)

    def line(self, text: str) -> bytes:
        name, _, rest = text.partition(" ")
        ops = [o for o in re.split(r",(?![^\[]*\])", rest)] if rest.strip() else []
        if name == "exit":
            return _slot(0x95)
        if name in ("ja", "ja32"):
            off = self.target(rest)
            return _slot(0x06, imm=off) if name == "ja32" else _slot(0x05, off=off)
        if name == "call":
            return self.call(rest)
        if name == "lddw":
            pseudo = re.fullmatch(
                r"map_value\[(\d+)\]\s*(?:\+\s*(\w+))?|map\[(\d+)\]", ops[1].strip()
            )
            if pseudo and pseudo.group(3) is not None:
                return _slot(0x18, _reg(ops[0]), 1, imm=int(pseudo.group(3))) + _slot(0)
            if pseudo:
                off = _int(pseudo.group(2)) if pseudo.group(2) else 0
                return _slot(0x18, _reg(ops[0]), 2, imm=int(pseudo.group(1))) + _slot(0, imm=off)
            value = _int(ops[1]) & 0xFFFFFFFFFFFFFFFF
            return _slot(0x18, _reg(ops[0]), imm=value) + _slot(0, imm=value >> 32)
        if name == "lock":
            match = re.fullmatch(r"(fetch )?(\w+) (\[[^\]]*\]) ?, ?(%r\d+)", rest.strip())
            if not match:
                raise ValueError("expected lock [fetch] OP [%rD+off], %rS")
            words = ["fetch", match.group(2)] if match.group(1) else [match.group(2)]
            return self.atomic(words, [match.group(3), match.group(4)])
        match = re.fullmatch(r"(le|be|swap|bswap)(16|32|64)", name)
        if match:
            code = {"le": 0xD4, "be": 0xDC}.get(match.group(1), 0xD7)
            return _slot(code, _reg(rest), imm=int(match.group(2)))
        if name.startswith("movsx"):
            return self.movsx(name, ops)
        if re.sub(r"(32|64)$", "", name) in _ALU:
            return self.alu(name, ops)
        if re.sub(r"32$", "", name) in _JMP:
            return self.jump(name, ops)
        if re.fullmatch(r"(ldxs?|stx?)(b|h|w|dw)", name):
            return self.memory(name, ops)
        raise ValueError(f"unknown instruction {name!r}")


def _lines(text: str) -> list[tuple[int, str]]:
    out = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if line:
            out.append((number, re.sub(r"\s+", " ", line)))
    return out


def assemble(text: str) -> bytes:
    """Assemble conformance-suite syntax into instruction bytes."""
    lines = _lines(text)
    labels: dict[str, int] = {}
    pc = 0
    for _, line in lines:
        if line.endswith(":"):
            labels[line[:-1].strip()] = pc
            continue
        if line == "exit" and "exit" not in labels:
            labels["exit"] = pc
        pc += 2 if line.startswith("lddw") else 1
    asm = _Assembler(labels)
    out = bytearray()
    for number, line in lines:
        if line.endswith(":"):
            continue
        try:
            slot = asm.line(line)
        except (ValueError, KeyError, IndexError, struct.error) as err:
            raise AssemblyError(f"line {number}: {line!r}: {err}") from err
        out += slot
        asm.pc += len(slot) // 8
    return bytes(out)
