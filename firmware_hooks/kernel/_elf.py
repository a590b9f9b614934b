"""Reads a clang ``-target bpf`` object for the kernel: program, subprograms, maps, data.

The same objects our VM loads (policies compiled against ``freeoffload/policy.h``): one
program section, static functions in ``.text``, maps in ``.maps`` (BTF-defined) or ``maps``
(legacy ``struct bpf_map_def``), and ``.rodata``/``.data``/``.bss`` used as array maps.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

__all__ = ["BPFObject", "DataSection", "MapDef", "ObjectError", "Reloc", "read_object"]

_SHT_SYMTAB, _SHT_NOBITS, _SHT_REL = 2, 8, 9
_SHF_EXECINSTR = 0x4
_EM_BPF = 247
_R_BPF_64_64, _R_BPF_64_32 = 1, 10
_STT_SECTION = 3
_MAX_BSS = 1 << 24


class ObjectError(ValueError):
    """The object is not one the kernel path can load; the message says what and where."""


@dataclass(frozen=True)
class MapDef:
    name: str
    type: int
    key_size: int
    value_size: int
    max_entries: int
    flags: int = 0


@dataclass(frozen=True)
class DataSection:
    name: str  # ".rodata", ".data", ".bss" (and suffixed variants)
    data: bytes
    readonly: bool


@dataclass(frozen=True)
class Reloc:
    """Instruction ``index`` (of the program, .text appended) refers to ``target``."""

    index: int
    kind: str  # "map", "data" (offset into a data section) or "call"
    target: str  # map or section name; for calls, ""
    offset: int  # data offset, or the absolute instruction index a call goes to


@dataclass
class BPFObject:
    section: str
    insns: bytes  # the program section, then .text (if any)
    maps: list[MapDef] = field(default_factory=list)
    data: list[DataSection] = field(default_factory=list)
    relocs: list[Reloc] = field(default_factory=list)


@dataclass(frozen=True)
class _Section:
    index: int
    name: str
    type: int
    flags: int
    data: bytes
    link: int
    info: int


def _sections(elf: bytes) -> list[_Section]:
    if len(elf) < 64 or elf[:4] != b"\x7fELF":
        raise ObjectError("not an ELF object")
    if elf[4] != 2 or elf[5] != 1:
        raise ObjectError("not a 64-bit little-endian ELF object (clang -target bpf)")
    machine = struct.unpack_from("<H", elf, 18)[0]
    if machine != _EM_BPF:
        raise ObjectError(f"ELF machine {machine} is not BPF ({_EM_BPF})")
    shoff, = struct.unpack_from("<Q", elf, 40)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", elf, 58)
    if shentsize < 64 or shoff + shnum * shentsize > len(elf):
        raise ObjectError("the section header table runs past the end of the file")
    raw = []
    for i in range(shnum):
        name, typ, flags, _a, off, size, link, info = struct.unpack_from(
            "<IIQQQQII", elf, shoff + i * shentsize)
        if typ == _SHT_NOBITS:
            if size > _MAX_BSS:
                raise ObjectError(f"section {i} asks for {size} bytes of zeroes")
            body = bytes(size)
        elif off + size > len(elf):
            raise ObjectError(f"section {i} runs past the end of the file")
        else:
            body = elf[off:off + size]
        raw.append((name, typ, flags, body, link, info))
    strtab = raw[shstrndx][3]
    return [_Section(i, _cstr(strtab, r[0]), r[1], r[2], r[3], r[4], r[5])
            for i, r in enumerate(raw)]


def _cstr(table: bytes, off: int) -> str:
    end = table.find(b"\0", off)
    return table[off:end if end >= 0 else len(table)].decode(errors="replace")


@dataclass(frozen=True)
class _Sym:
    name: str
    type: int
    shndx: int
    value: int


def _symbols(secs: list[_Section]) -> list[_Sym]:
    symtab = next((s for s in secs if s.type == _SHT_SYMTAB), None)
    if symtab is None:
        raise ObjectError("no symbol table")
    names = secs[symtab.link].data
    out = []
    for off in range(0, len(symtab.data) - 23, 24):
        name, info, _other, shndx, value, _size = struct.unpack_from("<IBBHQQ", symtab.data, off)
        out.append(_Sym(_cstr(names, name), info & 0xF, shndx, value))
    return out


def read_object(elf: bytes, section: str | None = None) -> BPFObject:
    """The program ``section`` (default: "connect" if present, else the first program)."""
    try:
        return _read_object(elf, section)
    except ObjectError:
        raise
    except (struct.error, IndexError, KeyError, OverflowError, ValueError) as err:
        raise ObjectError(f"malformed ELF object: {err}") from err


def _read_object(elf: bytes, section: str | None) -> BPFObject:
    secs = _sections(elf)
    progs = [s for s in secs if s.flags & _SHF_EXECINSTR and s.name != ".text" and s.data]
    if section is not None:
        progs = [s for s in progs if s.name == section]
    elif any(s.name == "connect" for s in progs):
        progs = [s for s in progs if s.name == "connect"]
    if not progs:
        raise ObjectError(f"no program section {section or ''}".rstrip())
    prog = progs[0]
    text = next((s for s in secs if s.name == ".text" and s.data), None)
    obj = BPFObject(prog.name, prog.data + (text.data if text else b""))
    obj.maps = _maps(secs)
    obj.data = [DataSection(s.name, s.data, s.name.startswith(".rodata")) for s in secs
                if s.name.startswith((".rodata", ".data", ".bss")) and not s.flags & _SHF_EXECINSTR]
    syms = _symbols(secs)
    bases = {prog.index: 0}
    if text is not None:
        bases[text.index] = len(prog.data) // 8
    for rel in secs:
        if rel.type == _SHT_REL and rel.info in bases:
            obj.relocs += _relocs(rel, bases[rel.info], obj, syms, secs, bases)
    return obj


def _relocs(rel: _Section, base: int, obj: BPFObject, syms: list[_Sym],
            secs: list[_Section], bases: dict[int, int]) -> list[Reloc]:
    out = []
    map_names = {m.name for m in obj.maps}
    for off in range(0, len(rel.data) - 15, 16):
        r_offset, r_info = struct.unpack_from("<QQ", rel.data, off)
        sym, rtype = syms[r_info >> 32], r_info & 0xFFFFFFFF
        index = base + r_offset // 8
        imm = struct.unpack_from("<i", obj.insns, index * 8 + 4)[0]
        target = secs[sym.shndx].name if sym.shndx < len(secs) else ""
        if rtype == _R_BPF_64_32 and sym.shndx in bases:
            dest = bases[sym.shndx] + sym.value // 8 + imm + 1
            out.append(Reloc(index, "call", "", dest))
        elif rtype != _R_BPF_64_64:
            raise ObjectError(f"unsupported relocation type {rtype} at instruction {index}")
        elif target in (".maps", "maps") and sym.name in map_names:
            out.append(Reloc(index, "map", sym.name, 0))
        elif any(d.name == target for d in obj.data):
            extra = sym.value if sym.type != _STT_SECTION else 0
            out.append(Reloc(index, "data", target, extra + imm))
        else:
            raise ObjectError(f"instruction {index} refers to {sym.name or target!r}, "
                              "which is neither a map nor a data section")
    return out


def _maps(secs: list[_Section]) -> list[MapDef]:
    btf = next((s for s in secs if s.name == ".BTF"), None)
    maps: list[MapDef] = []
    if any(s.name == ".maps" for s in secs):
        if btf is None:
            raise ObjectError(".maps needs BTF: compile with clang -g")
        from ._btf import btf_maps

        try:
            maps += [MapDef(*m) for m in btf_maps(btf.data)]
        except (struct.error, IndexError, KeyError) as err:
            raise ObjectError(f"malformed BTF: {err}") from err
    legacy = next((s for s in secs if s.name == "maps"), None)
    if legacy is not None:
        maps += _legacy_maps(secs, legacy)
    return maps


def _legacy_maps(secs: list[_Section], legacy: _Section) -> list[MapDef]:
    out = []
    for sym in _symbols(secs):
        if sym.shndx == legacy.index and sym.name and sym.type != _STT_SECTION:
            typ, ks, vs, n, flags = struct.unpack_from("<IIIII", legacy.data, sym.value)
            out.append(MapDef(sym.name, typ, ks, vs, n, flags))
    return out
