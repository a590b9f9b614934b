"""Turning a metric map's raw keys and values into labelled numbers, one decoder per field kind.

A snapshot maps label tuples to the map's cumulative value (``int`` for ``u64``, a
``(sum, count)`` pair for ``sum_count``); histogram buckets become the last label, given as the
bucket's upper bound in the metric's unit. :func:`delta` subtracts two snapshots.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Callable
from pathlib import Path

from .spec import KeyField, MetricSpec

__all__ = ["Decoder", "Snapshot", "delta"]

Label = str | int | float
Value = int | tuple[int, int]
Snapshot = dict[tuple[Label, ...], Value]

_FORMATS = {"u8": "B", "u16": "H", "u32": "I", "u64": "Q"}


def _device_name(dev: int, cache: dict[int, str]) -> str:
    """A kernel dev_t (major << 20 | minor) as its block device name, e.g. ``vda``."""
    name = cache.get(dev)
    if name is None:
        major, minor = dev >> 20, dev & 0xFFFFF
        name = f"{major}:{minor}"
        try:
            for line in Path(f"/sys/dev/block/{major}:{minor}/uevent").read_text().splitlines():
                if line.startswith("DEVNAME="):
                    name = line.split("=", 1)[1]
        except OSError:
            pass
        cache[dev] = name
    return name


def _inet(raw: bytes) -> str:
    addr = ipaddress.IPv6Address(raw)
    mapped = addr.ipv4_mapped
    return str(mapped) if mapped is not None else str(addr)


class Decoder:
    """Decodes the raw contents of one metric map (the one method: :meth:`decode`)."""

    def __init__(self, metric: MetricSpec) -> None:
        self.metric = metric
        fmt = "".join(f"{f.size}s" if "[" in f.type else _FORMATS[f.type] for f in metric.key)
        self._key = struct.Struct("=" + fmt)
        self._value = struct.Struct("=Q" if metric.value == "u64" else "=QQ")
        self._devices: dict[int, str] = {}
        self._fields: list[tuple[int, Callable[[object], Label]]] = []
        bucket = None
        for i, f in enumerate(metric.key):
            if f.is_padding:
                continue
            if f.decoder == "log2":
                bucket = i
                continue
            self._fields.append((i, self._field_decoder(f)))
        self._bucket = bucket

    def _field_decoder(self, f: KeyField) -> Callable[[object], Label]:
        if f.decoder == "dev":
            return lambda v: _device_name(int(v), self._devices)  # type: ignore[call-overload]
        if f.decoder == "string":
            return lambda v: bytes(v).split(b"\0", 1)[0].decode(  # type: ignore[call-overload]
                "utf-8", "replace")
        if f.decoder == "inet":
            return lambda v: _inet(bytes(v))  # type: ignore[call-overload]
        if f.decoder == "enum":
            names = f.values
            return lambda v: names[v] if isinstance(v, int) and v < len(names) else str(v)
        return lambda v: v if isinstance(v, int) else str(v)

    def decode(self, keys: bytes, values: bytes) -> Snapshot:
        """Label tuple -> cumulative value (sums over entries that decode to the same labels)."""
        out: Snapshot = {}
        scale = self.metric.scale
        fields = self._fields
        bucket = self._bucket
        pair = self.metric.value != "u64"
        for key, value in zip(self._key.iter_unpack(keys), self._value.iter_unpack(values),
                              strict=True):
            labels: tuple[Label, ...] = tuple(dec(key[i]) for i, dec in fields)
            if bucket is not None:
                labels += ((2 ** (int(key[bucket]) + 1)) * scale,)
            old = out.get(labels)
            if pair:
                total, count = old if isinstance(old, tuple) else (0, 0)
                out[labels] = (total + int(value[0]), count + int(value[1]))
            else:
                out[labels] = (old if isinstance(old, int) else 0) + int(value[0])
        return out


def delta(old: Snapshot, new: Snapshot) -> Snapshot:
    """What changed from ``old`` to ``new``; an entry that went down (evicted) counts afresh."""
    out: Snapshot = {}
    for labels, value in new.items():
        before = old.get(labels)
        if isinstance(value, tuple):
            prev = before if isinstance(before, tuple) else (0, 0)
            pair = (value[0] - prev[0], value[1] - prev[1])
            if pair[1] < 0 or pair[0] < 0:
                pair = value
            if pair[1]:
                out[labels] = pair
        else:
            change = value - (before if isinstance(before, int) else 0)
            if change < 0:
                change = value
            if change:
                out[labels] = change
    return out
