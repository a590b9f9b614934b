"""Probe descriptions: each probe is ``NAME.bpf.c`` + ``NAME.yaml``, found by name.

The YAML says which tracepoints the program needs, and for every map that carries a metric
its name (= the BPF map's name), type, unit, scale and the layout of its key, field by field::

    tracepoints: [sched:sched_switch]
    metrics:
      - name: cpu_busy_seconds_total     # the BPF map of the same name
        type: counter                     # counter | gauge | histogram
        unit: seconds
        scale: 1.0e-9                     # the map holds nanoseconds
        help: time each CPU ran tasks
        key:
          - {name: cpu, type: u32, decoder: cpu}
        value: u64                        # u64 | sum_count | since_running (2 x u64)
    internal: [cpu_last_switch]           # maps used only inside the kernel

Fields whose name starts with ``_`` are padding. A histogram's key has exactly one field with
the ``log2`` decoder (the bucket). Problems are reported all at once through
:class:`~freeoffload.errors.ProbeSpecError`, each with ``file:line:col``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from freeoffload.errors import Location, ProbeSpecError, Problem
from freeoffload.yamlfile import LocList, LocMap, load_yaml, load_yaml_text

__all__ = [
    "BUILTIN_DIR",
    "DECODERS",
    "KeyField",
    "MetricSpec",
    "ProbeSpec",
    "builtin_names",
    "load_probe",
    "load_probe_text",
]

BUILTIN_DIR = Path(__file__).resolve().parent / "builtin"

TYPES = ("counter", "gauge", "histogram")
VALUES = {"u64": 8, "sum_count": 16, "since_running": 16}
DECODERS = ("int", "cpu", "log2", "dev", "string", "inet", "enum")
_SCALARS = {"u8": 1, "u16": 2, "u32": 4, "u64": 8}
_ARRAY = re.compile(r"^(char|u8)\[([1-9][0-9]{0,3})\]$")
_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")
_TRACEPOINT = re.compile(r"^[a-z0-9_]+:[a-z0-9_]+$")
_TOP = ("tracepoints", "optional", "kprobes", "metrics", "internal", "description")
_METRIC_KEYS = ("name", "type", "unit", "scale", "help", "key", "value")
_FIELD_KEYS = ("name", "type", "decoder", "values")


@dataclass(frozen=True)
class KeyField:
    """One field of a map key: its C type and how it becomes a label."""

    name: str
    type: str
    size: int
    decoder: str = "int"
    values: tuple[str, ...] = ()  # for the enum decoder: label of 0, 1, ...

    @property
    def is_padding(self) -> bool:
        return self.name.startswith("_")


@dataclass(frozen=True)
class MetricSpec:
    """One metric, held in the BPF map of the same name."""

    name: str
    type: str
    unit: str
    scale: float
    help: str
    key: tuple[KeyField, ...]
    value: str
    location: Location

    @property
    def key_size(self) -> int:
        return sum(f.size for f in self.key)

    @property
    def value_size(self) -> int:
        return VALUES[self.value]

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.key if not f.is_padding and f.decoder != "log2")


@dataclass(frozen=True)
class ProbeSpec:
    """A probe: its program source, needed tracepoints and metric maps."""

    name: str
    source: Path
    yaml_path: Path
    description: str
    tracepoints: tuple[str, ...]
    metrics: tuple[MetricSpec, ...]
    internal: tuple[str, ...]
    optional: tuple[str, ...] = ()  # used when present (the program tests FO_HAVE_CAT_EVENT)
    kprobes: tuple[tuple[str, str], ...] = ()  # (optional tracepoint, kernel function instead)
    locations: dict[str, Location] = field(default_factory=dict)  # of the top-level keys

    def location(self, key: str) -> Location:
        """Where ``key`` stands in the YAML (the file's start when absent)."""
        return self.locations.get(key, Location(str(self.yaml_path), 1, 1))

    def metric(self, name: str) -> MetricSpec:
        for m in self.metrics:
            if m.name == name:
                return m
        raise KeyError(name)


def builtin_names(directory: Path = BUILTIN_DIR) -> list[str]:
    """Names of the probes in ``directory`` (every ``NAME.yaml`` with a ``NAME.bpf.c``)."""
    return sorted(p.name[: -len(".yaml")] for p in directory.glob("*.yaml")
                  if (directory / (p.name[: -len(".yaml")] + ".bpf.c")).is_file())


def load_probe(name: str, directory: Path = BUILTIN_DIR) -> ProbeSpec:
    """Load probe ``name`` from ``directory``; raises ProbeSpecError naming file:line:col."""
    yaml_path = directory / f"{name}.yaml"
    source = directory / f"{name}.bpf.c"
    data = load_yaml(yaml_path, ProbeSpecError)
    if not source.is_file():
        raise ProbeSpecError.at(Location(str(yaml_path)), "", f"no program {source.name} beside it",
                                "each probe is a pair NAME.bpf.c + NAME.yaml")
    return _build(name, data, str(yaml_path), source, yaml_path)


def load_probe_text(name: str, text: str, source_name: str,
                    source: Path | None = None) -> ProbeSpec:
    """Validate a probe description given as text (``source_name`` names it in errors)."""
    data = load_yaml_text(text, source_name, ProbeSpecError)
    return _build(name, data, source_name, source or Path(f"{name}.bpf.c"), Path(source_name))


def _build(name: str, data: Any, where: str, source: Path, yaml_path: Path) -> ProbeSpec:
    problems: list[Problem] = []
    top = Location(where, 1, 1)
    if not isinstance(data, LocMap):
        raise ProbeSpecError.at(top, "", "expected a mapping with tracepoints, metrics, internal")
    _unknown(data, _TOP, "", problems)
    tracepoints = _tracepoints(data, "tracepoints", problems)
    optional = _tracepoints(data, "optional", problems) if "optional" in data else ()
    kprobes = _kprobes(data, optional, problems)
    metrics = _metrics(data, problems)
    internal = _names(data, "internal", problems)
    seen: dict[str, Location] = {}
    for m in metrics:
        if m.name in seen or m.name in internal:
            problems.append(Problem(m.location, "name", f"map '{m.name}' is described twice"))
        seen[m.name] = m.location
    if problems:
        raise ProbeSpecError(problems)
    description = data.get("description", "")
    return ProbeSpec(name, source, yaml_path, str(description), tracepoints, tuple(metrics),
                     tuple(internal), optional, kprobes,
                     {str(k): data.key_loc(k) for k in data})


def _unknown(node: LocMap, allowed: tuple[str, ...], prefix: str,
             problems: list[Problem]) -> None:
    for key in node:
        if key not in allowed:
            problems.append(Problem(node.key_loc(key), f"{prefix}{key}", "unknown field",
                                    "expected one of: " + ", ".join(allowed)))


def _tracepoints(data: LocMap, field: str, problems: list[Problem]) -> tuple[str, ...]:
    raw = data.get(field)
    if not isinstance(raw, LocList) or not raw:
        problems.append(Problem(data.value_loc(field) if field in data else data.loc,
                                field, "expected a non-empty list of CATEGORY:EVENT"))
        return ()
    out = []
    for i, item in enumerate(raw):
        if not isinstance(item, str) or not _TRACEPOINT.match(item):
            problems.append(Problem(raw.item_loc(i), f"{field}[{i}]",
                                    f"expected CATEGORY:EVENT, got {item!r}",
                                    "e.g. sched:sched_switch"))
        else:
            out.append(item)
    return tuple(out)


def _kprobes(data: LocMap, optional: tuple[str, ...],
             problems: list[Problem]) -> tuple[tuple[str, str], ...]:
    if "kprobes" not in data:
        return ()
    raw = data["kprobes"]
    if not isinstance(raw, LocMap):
        problems.append(Problem(data.value_loc("kprobes"), "kprobes",
                                "expected a mapping of optional tracepoint: kernel function"))
        return ()
    out = []
    for tracepoint, function in raw.items():
        if tracepoint not in optional:
            problems.append(Problem(raw.key_loc(tracepoint), f"kprobes.{tracepoint}",
                                    "not an optional tracepoint of this probe",
                                    "a kprobe only stands in for a tracepoint in optional"))
        elif not isinstance(function, str) or not _NAME.match(function):
            problems.append(Problem(raw.value_loc(tracepoint), f"kprobes.{tracepoint}",
                                    f"expected a kernel function name, got {function!r}"))
        else:
            out.append((str(tracepoint), function))
    return tuple(out)


def _names(data: LocMap, field: str, problems: list[Problem]) -> list[str]:
    raw = data.get(field, [])
    if not isinstance(raw, list):
        problems.append(Problem(data.value_loc(field), field, "expected a list of map names"))
        return []
    out = []
    for i, item in enumerate(raw):
        if not isinstance(item, str) or not _NAME.match(item):
            loc = raw.item_loc(i) if isinstance(raw, LocList) else data.value_loc(field)
            problems.append(Problem(loc, f"{field}[{i}]", f"expected a map name, got {item!r}"))
        else:
            out.append(item)
    return out


def _metrics(data: LocMap, problems: list[Problem]) -> list[MetricSpec]:
    raw = data.get("metrics")
    if not isinstance(raw, LocList) or not raw:
        problems.append(Problem(data.value_loc("metrics") if "metrics" in data else data.loc,
                                "metrics", "expected a non-empty list of metrics"))
        return []
    out = []
    for i, item in enumerate(raw):
        if not isinstance(item, LocMap):
            problems.append(Problem(raw.item_loc(i), f"metrics[{i}]", "expected a mapping"))
            continue
        metric = _metric(item, f"metrics[{i}].", problems)
        if metric is not None:
            out.append(metric)
    return out


def _choice(node: LocMap, key: str, allowed: tuple[str, ...] | dict[str, int], prefix: str,
            problems: list[Problem], default: str | None = None) -> str | None:
    value = node.get(key, default)
    if value is None:
        problems.append(Problem(node.loc, f"{prefix}{key}", "missing",
                                "expected one of: " + ", ".join(allowed)))
        return None
    if value not in allowed:
        problems.append(Problem(node.value_loc(key), f"{prefix}{key}", f"unknown {key} {value!r}",
                                "expected one of: " + ", ".join(allowed)))
        return None
    return str(value)


def _metric(node: LocMap, prefix: str, problems: list[Problem]) -> MetricSpec | None:
    before = len(problems)
    _unknown(node, _METRIC_KEYS, prefix, problems)
    name = node.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        problems.append(Problem(node.value_loc("name") if "name" in node else node.loc,
                                f"{prefix}name", f"expected a snake_case map name, got {name!r}"))
    kind = _choice(node, "type", TYPES, prefix, problems)
    value = _choice(node, "value", VALUES, prefix, problems, default="u64")
    unit = node.get("unit", "")
    if not isinstance(unit, str) or not unit:
        problems.append(Problem(node.value_loc("unit") if "unit" in node else node.loc,
                                f"{prefix}unit", "missing unit", "e.g. seconds, bytes, packets"))
    scale = node.get("scale", 1.0)
    if isinstance(scale, bool) or not isinstance(scale, int | float) or scale <= 0:
        problems.append(Problem(node.value_loc("scale"), f"{prefix}scale",
                                f"expected a positive number, got {scale!r}"))
    key = _key(node, prefix, problems)
    if kind == "histogram" and sum(f.decoder == "log2" for f in key) != 1:
        problems.append(Problem(node.value_loc("key") if "key" in node else node.loc,
                                f"{prefix}key", "a histogram needs exactly one log2 bucket field"))
    if len(problems) > before or kind is None or value is None:
        return None
    return MetricSpec(str(name), kind, str(unit), float(scale), str(node.get("help", "")),
                      tuple(key), value, node.loc)


def _key(node: LocMap, prefix: str, problems: list[Problem]) -> list[KeyField]:
    raw = node.get("key")
    if not isinstance(raw, LocList) or not raw:
        problems.append(Problem(node.value_loc("key") if "key" in node else node.loc,
                                f"{prefix}key", "expected a list of key fields",
                                "e.g. - {name: cpu, type: u32, decoder: cpu}"))
        return []
    out = []
    for i, item in enumerate(raw):
        where = f"{prefix}key[{i}]."
        if not isinstance(item, LocMap):
            problems.append(Problem(raw.item_loc(i), where[:-1], "expected a mapping"))
            continue
        field = _field(item, where, problems)
        if field is not None:
            out.append(field)
    return out


def _field(item: LocMap, where: str, problems: list[Problem]) -> KeyField | None:
    before = len(problems)
    _unknown(item, _FIELD_KEYS, where, problems)
    name = item.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        problems.append(Problem(item.value_loc("name") if "name" in item else item.loc,
                                f"{where}name", f"expected a C field name, got {name!r}"))
    ctype = item.get("type")
    size = _SCALARS.get(ctype, 0) if isinstance(ctype, str) else 0
    match = _ARRAY.match(ctype) if isinstance(ctype, str) else None
    if match:
        size = int(match.group(2))
    if size == 0:
        problems.append(Problem(item.value_loc("type") if "type" in item else item.loc,
                                f"{where}type", f"unknown field type {ctype!r}",
                                "expected u8, u16, u32, u64, char[N] or u8[N]"))
    decoder = _choice(item, "decoder", DECODERS, where, problems, default="int")
    values = item.get("values", [])
    if decoder == "enum" and (not isinstance(values, list) or not values
                              or not all(isinstance(v, str) for v in values)):
        problems.append(Problem(item.value_loc("values") if "values" in item else item.loc,
                                f"{where}values", "an enum field needs a list of label strings"))
    if decoder in ("string", "inet") and size and not match:
        problems.append(Problem(item.value_loc("type"), f"{where}type",
                                f"the {decoder} decoder reads an array field, got {ctype!r}"))
    if decoder == "inet" and match and size != 16:
        problems.append(Problem(item.value_loc("type"), f"{where}type",
                                "the inet decoder reads u8[16] (IPv4 as ::ffff:a.b.c.d)"))
    if len(problems) > before or decoder is None:
        return None
    return KeyField(str(name), str(ctype), size, decoder, tuple(str(v) for v in values))
