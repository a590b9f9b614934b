"""The one module that talks to bcc: compile a probe, check its maps against its YAML, attach
it, and read each metric map with one batch lookup per interval.

bcc's own exceptions (plain ``Exception`` with text) are translated here, and only here, into
:class:`~freeoffload.errors.ProbeError` (the program could not be compiled, loaded or read) or
:class:`~freeoffload.errors.ProbeSpecError` (the YAML does not describe the program's maps).
"""

from __future__ import annotations

import ctypes as ct
import errno
import json
import os
import re
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from freeoffload.errors import ProbeError, ProbeSpecError, Problem

from ._features import has_kprobes, missing_tracepoints, possible_cpus, tracefs
from .spec import MetricSpec, ProbeSpec

__all__ = ["LoadedProbe", "MapReader", "Scope", "load", "release_compiler_memory"]


@dataclass(frozen=True)
class Scope:
    """The cgroup v2 the collectors are limited to: its id (inode) and depth below the root."""

    path: Path
    cgroup_id: int
    level: int


class MapReader:
    """Reads a whole map with BPF_MAP_LOOKUP_BATCH into buffers allocated once.

    Kernels without batch lookups for the map's type fall back to walking the keys (one
    syscall per key); ``batched`` then turns False and ``probes check`` says so.
    """

    def __init__(self, lib: Any, fd: int, key_size: int, value_size: int, max_entries: int,
                 name: str) -> None:
        self.name = name
        self._lib = lib
        self._fd = fd
        self.key_size = key_size
        self.value_size = value_size
        self._max = max_entries
        self._keys = ct.create_string_buffer(key_size * max_entries)
        self._values = ct.create_string_buffer(value_size * max_entries)
        self._token = ct.c_uint32(0)
        self._next = ct.c_uint32(0)
        self._count = ct.c_uint32(0)
        self.batched = True
        self.syscalls = 0

    def read(self) -> tuple[bytes, bytes]:
        """All keys and values (concatenated), in the map's order."""
        if self.batched:
            try:
                return self._read_batch()
            except OSError as err:
                if err.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP, 524):
                    raise ProbeError(f"cannot read map {self.name}: {err.strerror}") from err
                self.batched = False
        return self._read_walk()

    def _read_batch(self) -> tuple[bytes, bytes]:
        total = 0
        while total < self._max:
            self._count.value = self._max - total
            rc = self._lib.bpf_lookup_batch(
                self._fd, ct.byref(self._token) if total else None, ct.byref(self._next),
                ct.byref(self._keys, self.key_size * total),
                ct.byref(self._values, self.value_size * total), ct.byref(self._count))
            err = ct.get_errno()
            self.syscalls += 1
            total += self._count.value
            if rc != 0:
                if err == errno.ENOENT:
                    break
                raise OSError(err, os.strerror(err))
            if self._count.value == 0:
                break
            self._token.value = self._next.value
        return (ct.string_at(self._keys, total * self.key_size),
                ct.string_at(self._values, total * self.value_size))

    def _read_walk(self) -> tuple[bytes, bytes]:
        keys: list[bytes] = []
        values: list[bytes] = []
        key = ct.create_string_buffer(self.key_size)
        nxt = ct.create_string_buffer(self.key_size)
        value = ct.create_string_buffer(self.value_size)
        first = True
        while len(keys) < self._max:
            rc = self._lib.bpf_get_next_key(self._fd, None if first else key, nxt)
            self.syscalls += 1
            if rc != 0:
                break
            first = False
            ct.memmove(key, nxt, self.key_size)
            if self._lib.bpf_lookup_elem(self._fd, key, value) == 0:
                keys.append(key.raw)
                values.append(value.raw)
            self.syscalls += 1
        return b"".join(keys), b"".join(values)


@dataclass
class LoadedProbe:
    """A compiled and attached probe with a reader per metric map."""

    spec: ProbeSpec
    bpf: Any
    readers: dict[str, MapReader]
    compile_seconds: float
    tracepoints: tuple[str, ...]
    skipped: tuple[str, ...] = field(default=())

    def close(self) -> None:
        """Detach the programs and free the maps."""
        if self.bpf is not None:
            self.bpf.cleanup()
            self.bpf = None


def release_compiler_memory() -> None:
    """Give back to the system the heap LLVM used while compiling (glibc's malloc_trim): on
    this machine it takes the collector's private memory from about 72 to 30 MiB."""
    try:
        libc = ct.CDLL(None)
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return  # not glibc
    trim.argtypes = [ct.c_size_t]
    trim(0)


def _cflags(spec: ProbeSpec, scope: Scope | None, present: list[str],
            kprobed: list[tuple[str, str]]) -> list[str]:
    flags = [f"-I{spec.source.parent}", f"-DFO_MAX_CPUS={possible_cpus()}"]
    if scope is not None:
        flags += [f"-DFO_SCOPE_ID={scope.cgroup_id}ULL", f"-DFO_SCOPE_LEVEL={scope.level}"]
    flags += [f"-DFO_HAVE_{tp.replace(':', '_')}" for tp in present]
    flags += [f"-DFO_KPROBE_{tp.replace(':', '_')}" for tp, _ in kprobed]
    return flags


def load(spec: ProbeSpec, scope: Scope | None = None) -> LoadedProbe:
    """Compile, load and attach ``spec``'s program, then check its maps against the YAML."""
    base = tracefs()
    if base is None:
        raise ProbeError(f"probe {spec.name}: no tracefs mounted")
    missing = missing_tracepoints(spec.tracepoints, base)
    if missing:
        raise ProbeError(f"probe {spec.name}: this kernel has no tracepoint "
                         + ", ".join(missing))
    absent = missing_tracepoints(spec.optional, base)
    present = [tp for tp in spec.optional if tp not in absent]
    kprobed = [(tp, fn) for tp, fn in spec.kprobes if tp in absent] if has_kprobes(base) else []
    try:
        text = spec.source.read_text()
    except OSError as err:
        raise ProbeError(f"probe {spec.name}: cannot read {spec.source}: {err.strerror}") from err
    _check_tracepoints(spec, text)
    start = time.monotonic()
    bpf = _compile(spec, text, _cflags(spec, scope, present, kprobed))
    try:
        _attach_kprobes(spec, bpf, kprobed)
        seconds = time.monotonic() - start
        readers = _check_maps(spec, bpf)
    except BaseException:
        bpf.cleanup()
        raise
    done = {tp for tp, _ in kprobed}
    return LoadedProbe(spec, bpf, readers, seconds,
                       spec.tracepoints + tuple(present) + tuple(f"kprobe:{fn}" for _, fn in
                                                                 kprobed),
                       tuple(tp for tp in absent if tp not in done))


def _check_tracepoints(spec: ProbeSpec, text: str) -> None:
    """Every TRACEPOINT_PROBE of the program is one the YAML lists (so it is checked first)."""
    used = {f"{c}:{e}" for c, e in re.findall(r"TRACEPOINT_PROBE\(\s*(\w+)\s*,\s*(\w+)\s*\)",
                                               text)}
    listed = set(spec.tracepoints) | set(spec.optional)
    unlisted = sorted(used - listed)
    if unlisted:
        raise ProbeSpecError.at(spec.location("tracepoints"), "tracepoints",
                                f"{spec.source.name} attaches to {', '.join(unlisted)}, "
                                "which the YAML does not list",
                                "add them to tracepoints (or optional)")


def _attach_kprobes(spec: ProbeSpec, bpf: Any, kprobed: list[tuple[str, str]]) -> None:
    """Entry and return probes ``fo_kprobe_FN`` / ``fo_kretprobe_FN`` on each function."""
    for _, fn in kprobed:
        try:
            bpf.attach_kprobe(event=fn, fn_name=f"fo_kprobe_{fn}")
            bpf.attach_kretprobe(event=fn, fn_name=f"fo_kretprobe_{fn}")
        except Exception as err:  # bcc raises bare Exception
            raise ProbeError(f"probe {spec.name}: cannot attach kprobe {fn}: {err}") from err


def _compile(spec: ProbeSpec, text: str, cflags: list[str]) -> Any:
    """bcc's BPF object; bcc prints compiler and verifier messages on fd 2, so they are
    caught there and the first error (with the source file's name) goes into the ProbeError."""
    try:
        from bcc import BPF
    except ImportError as err:
        raise ProbeError(f"probe {spec.name}: bcc is not importable: {err}") from err
    with tempfile.TemporaryFile() as log:
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(log.fileno(), 2)
        try:
            return BPF(text=text.encode(), cflags=cflags)
        except Exception as err:  # bcc raises bare Exception with its message
            os.dup2(saved, 2)
            log.seek(0)
            detail = _first_error(log.read().decode("utf-8", "replace"), spec.source.name, text)
            raise ProbeError(f"probe {spec.name}: {detail or err}") from err
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def _first_error(output: str, source: str, text: str) -> str:
    """The compiler's first error, or the verifier's last words, naming the source file.

    bcc compiles a rewritten text (tracepoint structs inserted), so its line numbers are
    shifted: the line is found again by the code clang quotes under the message."""
    lines = output.splitlines()
    for i, line in enumerate(lines):
        match = re.match(r"^/virtual/main\.c:(\d+):(\d+): (error: .*)$", line)
        if match:
            quoted = lines[i + 1].strip() if i + 1 < len(lines) else ""
            found = [n for n, code in enumerate(text.splitlines(), 1)
                     if quoted and code.strip() == quoted]
            where = f"{found[0]}:{match.group(2)}" if len(found) == 1 else \
                f"{match.group(1)}:{match.group(2)} (of bcc's rewritten text)"
            return f"{source}:{where}: {match.group(3)}"
    verifier = [line.strip() for line in lines if line.strip() and not line.startswith(";")]
    tail = [line for line in verifier if not line.startswith("processed ")]
    return f"{source}: the verifier refused it: {tail[-1]}" if tail else ""


def _lib() -> Any:
    from bcc.libbcc import lib

    lib.bpf_num_tables.restype = ct.c_ulonglong
    lib.bpf_num_tables.argtypes = [ct.c_void_p]
    lib.bpf_table_name.restype = ct.c_char_p
    lib.bpf_table_name.argtypes = [ct.c_void_p, ct.c_ulonglong]
    lib.bpf_table_key_size.restype = ct.c_size_t
    lib.bpf_table_key_size.argtypes = [ct.c_void_p, ct.c_char_p]
    lib.bpf_table_leaf_size.restype = ct.c_size_t
    lib.bpf_table_leaf_size.argtypes = [ct.c_void_p, ct.c_char_p]
    return lib


def _check_maps(spec: ProbeSpec, bpf: Any) -> dict[str, MapReader]:
    lib = _lib()
    module = bpf.module
    names = {lib.bpf_table_name(module, i).decode()
             for i in range(lib.bpf_num_tables(module))}
    problems: list[Problem] = []
    for name in sorted(names - {m.name for m in spec.metrics} - set(spec.internal)):
        problems.append(Problem(spec.location("metrics"), "metrics",
                                f"map '{name}' of {spec.source.name} is not described",
                                "add it to metrics or internal"))
    source = spec.source.read_text()
    for name in spec.internal:
        if name not in names and name not in source:
            problems.append(Problem(spec.location("internal"), "internal",
                                    f"{spec.source.name} has no map '{name}'"))
    readers = {}
    for metric in spec.metrics:
        if metric.name not in names:
            problems.append(Problem(metric.location, "name", f"{spec.source.name} has no map "
                                    f"'{metric.name}'", "the metric name is the map's name"))
            continue
        problems += _check_layout(metric, lib, module)
        map_id = lib.bpf_table_id(module, metric.name.encode())
        readers[metric.name] = MapReader(
            lib, lib.bpf_table_fd(module, metric.name.encode()), metric.key_size,
            metric.value_size, int(lib.bpf_table_max_entries_id(module, map_id)), metric.name)
    if problems:
        raise ProbeSpecError(problems)
    return readers


def _check_layout(metric: MetricSpec, lib: Any, module: Any) -> list[Problem]:
    """The key's size, field names and offsets, and the value's size, against the program."""
    name = metric.name.encode()
    problems = []
    key_size = int(lib.bpf_table_key_size(module, name))
    if key_size != metric.key_size:
        problems.append(Problem(metric.location, "key", f"map '{metric.name}' has a {key_size}-"
                                f"byte key; the fields described add up to {metric.key_size}"))
    value_size = int(lib.bpf_table_leaf_size(module, name))
    if value_size != metric.value_size:
        problems.append(Problem(metric.location, "value", f"map '{metric.name}' has "
                                f"{value_size}-byte values; {metric.value} is "
                                f"{metric.value_size} bytes"))
    desc = json.loads(lib.bpf_table_key_desc(module, name).decode() or "null")
    if isinstance(desc, list) and len(desc) > 1 and isinstance(desc[1], list):
        members = [m[0] for m in desc[1] if isinstance(m, list) and m]
        described = [f.name for f in metric.key]
        if members != described:
            problems.append(Problem(metric.location, "key", f"map '{metric.name}' key fields "
                                    f"are {members}; the YAML describes {described}"))
    elif len(metric.key) != 1:
        problems.append(Problem(metric.location, "key", f"map '{metric.name}' has a scalar key; "
                                f"the YAML describes {len(metric.key)} fields"))
    return problems
