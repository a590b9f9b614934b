"""Just enough BTF to read BTF-defined maps (``struct {...} name SEC(".maps")``).

Each map is a VAR in the ``.maps`` DATASEC whose type is a struct with members ``type``,
``max_entries``, ``map_flags``, ``key_size``/``value_size`` (``__uint``: a pointer to an array
whose length is the value) and ``key``/``value`` (``__type``: a pointer to the type).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

__all__ = ["btf_maps"]

_INT, _PTR, _ARRAY, _STRUCT, _UNION, _ENUM, _FWD, _TYPEDEF = 1, 2, 3, 4, 5, 6, 7, 8
_VOLATILE, _CONST, _RESTRICT, _FUNC, _FUNC_PROTO, _VAR, _DATASEC = 9, 10, 11, 12, 13, 14, 15
_FLOAT, _DECL_TAG, _TYPE_TAG, _ENUM64 = 16, 17, 18, 19
_FOLLOW = (_TYPEDEF, _VOLATILE, _CONST, _RESTRICT, _TYPE_TAG)
# bytes of kind-specific data after the 12-byte header: fixed, and per vlen item
_EXTRA = {_INT: (4, 0), _ARRAY: (12, 0), _STRUCT: (0, 12), _UNION: (0, 12), _ENUM: (0, 8),
          _FUNC_PROTO: (0, 8), _VAR: (4, 0), _DATASEC: (0, 12), _DECL_TAG: (4, 0),
          _ENUM64: (0, 12)}


@dataclass(frozen=True)
class _Type:
    name: str
    kind: int
    vlen: int
    size_or_type: int
    extra: bytes
    members: tuple[str, ...]  # member names of a struct or union


def _cstr(strings: bytes, off: int) -> str:
    end = strings.find(b"\0", off)
    return strings[off:end if end >= 0 else len(strings)].decode(errors="replace")


def _parse(data: bytes) -> list[_Type]:
    magic, _ver, _flags, hdr_len, type_off, type_len, str_off, str_len = struct.unpack_from(
        "<HBBIIIII", data, 0)
    if magic != 0xEB9F:
        raise KeyError("bad BTF magic")
    types_ = data[hdr_len + type_off:hdr_len + type_off + type_len]
    strings = data[hdr_len + str_off:hdr_len + str_off + str_len]
    out = [_Type("", 0, 0, 0, b"", ())]  # type id 0 is void
    pos = 0
    while pos < len(types_):
        name_off, info, st = struct.unpack_from("<III", types_, pos)
        kind, vlen = (info >> 24) & 0x1F, info & 0xFFFF
        fixed, per = _EXTRA.get(kind, (0, 0))
        extra = types_[pos + 12:pos + 12 + fixed + per * vlen]
        members: tuple[str, ...] = ()
        if kind in (_STRUCT, _UNION):
            members = tuple(_cstr(strings, struct.unpack_from("<I", extra, i * 12)[0])
                            for i in range(vlen))
        out.append(_Type(_cstr(strings, name_off), kind, vlen, st, extra, members))
        pos += 12 + len(extra)
    return out


def _size(types_: list[_Type], tid: int) -> int:
    for _ in range(32):
        t = types_[tid]
        if t.kind in _FOLLOW:
            tid = t.size_or_type
        elif t.kind == _ARRAY:
            elem, _index, nelems = struct.unpack_from("<III", t.extra)
            return int(nelems) * _size(types_, elem)
        elif t.kind == _PTR:
            return 8
        else:
            return t.size_or_type
    raise KeyError(f"type {tid} nests too deeply")


def _uint(types_: list[_Type], tid: int) -> int:
    ptr = types_[tid]
    arr = types_[ptr.size_or_type]
    if ptr.kind != _PTR or arr.kind != _ARRAY:
        raise KeyError("a __uint member is not a pointer to an array")
    return int(struct.unpack_from("<III", arr.extra)[2])


def _map(types_: list[_Type], name: str, tid: int) -> tuple[str, int, int, int, int, int]:
    st = types_[tid]
    while st.kind in _FOLLOW:
        st = types_[st.size_or_type]
    if st.kind != _STRUCT:
        raise KeyError(f"map {name} is not a struct")
    fields = {"type": 0, "key_size": 0, "value_size": 0, "max_entries": 0, "map_flags": 0}
    for i, member in enumerate(st.members):
        m_type = struct.unpack_from("<I", st.extra, i * 12 + 4)[0]
        if member in ("key", "value"):
            fields[f"{member}_size"] = _size(types_, types_[m_type].size_or_type)
        elif member in fields:
            fields[member] = _uint(types_, m_type)
    return (name, fields["type"], fields["key_size"], fields["value_size"],
            fields["max_entries"], fields["map_flags"])


def btf_maps(data: bytes) -> list[tuple[str, int, int, int, int, int]]:
    """(name, type, key_size, value_size, max_entries, flags) of every map in ``.maps``."""
    types_ = _parse(data)
    out = []
    for t in types_:
        if t.kind == _DATASEC and t.name == ".maps":
            for i in range(t.vlen):
                var = types_[struct.unpack_from("<I", t.extra, i * 12)[0]]
                out.append(_map(types_, var.name, var.size_or_type))
    return out
