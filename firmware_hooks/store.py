"""The policy store: the installed offload policy and its maps, shared with hooked programs.

Layout and protocol are in ``firmware_hooks/include/fohook_store.h``; writes go through the
same C code the hook reads with (``libfreeoffload_store.so``), so there is one definition of
the format. Hooked programs notice a new generation on their next ``connect()``; map updates
are visible to them at once (the map files are shared memory).

    store = PolicyStore()                      # FREEOFFLOAD_STORE or /run/freeoffload
    store.install("redirect", elf_bytes, version=3)
    store.update_map("redirects", key, value)
    store.current()                            # InstalledPolicy(name, version, ...) or None

A map whose name starts with ``local_`` (:data:`LOCAL_MAP_PREFIX`) is process-local: each
hooked process keeps its own rows, zeroed when it loads a generation, and the store holds no
file for it. :attr:`InstalledPolicy.local_maps` lists such maps; updating or reading one
through the store raises :class:`HookError`.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from freeoffload.errors import HookError

from . import _cstore

__all__ = ["DEFAULT_STORE", "LOCAL_MAP_PREFIX", "InstalledPolicy", "MapInfo", "PolicyStore",
           "default_store_dir"]

DEFAULT_STORE = "/run/freeoffload"
LOCAL_MAP_PREFIX = "local_"
_KEEP_MAPS = 0x1


def default_store_dir() -> Path:
    """``FREEOFFLOAD_STORE`` when set, else ``/run/freeoffload``."""
    return Path(os.environ.get("FREEOFFLOAD_STORE") or DEFAULT_STORE)


@dataclass(frozen=True)
class MapInfo:
    """One map of an installed policy (type numbered as in Linux: 1 hash, 2 array)."""

    name: str
    type: int
    key_size: int
    value_size: int
    max_entries: int


@dataclass(frozen=True)
class InstalledPolicy:
    """What the store holds now: ``maps`` are the store's (shared with hooked programs),
    ``local_maps`` the process-local ones (``local_*``, no rows in the store)."""

    name: str
    version: int
    generation: int
    section: str | None
    sha256: str
    maps: tuple[MapInfo, ...]
    path: Path
    local_maps: tuple[MapInfo, ...] = ()

    def map(self, name: str) -> MapInfo:
        for info in self.maps:
            if info.name == name:
                return info
        if any(info.name == name for info in self.local_maps):
            raise HookError(f"map {name!r} of policy {self.name!r} is process-local: each "
                            "hooked process keeps its own rows, the store holds none")
        known = ", ".join(m.name for m in self.maps) or "none"
        raise HookError(f"policy {self.name!r} has no map {name!r}; its maps: {known}")


class PolicyStore:
    """A policy store directory; every method is safe against other writers (flock)."""

    def __init__(self, directory: str | os.PathLike[str] | None = None) -> None:
        self.directory = Path(directory) if directory is not None else default_store_dir()

    def __repr__(self) -> str:
        return f"PolicyStore({str(self.directory)!r})"

    def _call(self, name: str, *args: object) -> None:
        try:
            _cstore.call(name, os.fsencode(self.directory), *args)
        except _cstore.StoreCallError as err:
            raise HookError(f"policy store {self.directory}: {err}") from err

    def init(self) -> None:
        """Create the directory and an empty store (generation 0) when absent."""
        self._call("init")

    def generation(self) -> int:
        gen = ctypes.c_uint64(0)
        self._call("generation", ctypes.byref(gen))
        return gen.value

    def install(self, name: str, elf: bytes, version: int, *, section: str | None = None,
                keep_maps: bool = True) -> InstalledPolicy:
        """Verify ``elf`` in the VM and publish it; hooked programs switch on their next call.

        With ``keep_maps`` the rows of maps the new policy shares (same name and shape, not
        ``.rodata``/``.data``/``.bss``) with the one it replaces are kept.
        """
        if not 0 <= version < 2**32:
            raise HookError(f"policy version {version} is not a 32-bit unsigned number")
        gen = ctypes.c_uint64(0)
        meta = ctypes.create_string_buffer(4096)
        self._call("install", name.encode(), version, elf, len(elf),
                   section.encode() if section else None, _KEEP_MAPS if keep_maps else 0,
                   ctypes.byref(gen), meta, len(meta))
        return _parse_meta(meta.value.decode(), gen.value, hashlib.sha256(elf).hexdigest(),
                           self.directory / f"gen-{gen.value}")

    def remove(self) -> None:
        """Publish "no policy": hooked programs' next calls pass unchanged."""
        self._call("remove")

    def current(self) -> InstalledPolicy | None:
        """The installed policy, or None."""
        gen = self.generation()
        path = self.directory / f"gen-{gen}"
        try:
            meta = (path / "meta").read_text()
            digest = hashlib.sha256((path / "policy.o").read_bytes()).hexdigest()
        except FileNotFoundError:
            return None
        return _parse_meta(meta, gen, digest, path)

    def policy_elf(self) -> bytes:
        """The ELF object of the installed policy."""
        policy = self._require()
        return (policy.path / "policy.o").read_bytes()

    def update_map(self, map_name: str, key: bytes, value: bytes) -> None:
        """Write one row of a map of the installed policy, in place."""
        self.update_map_bulk(map_name, [(key, value)])

    def update_map_bulk(self, map_name: str, rows: Iterable[tuple[bytes, bytes]]) -> None:
        """Write many rows under one lock (each row appears atomically to readers)."""
        info = self._require().map(map_name)
        pairs = list(rows)
        for i, (key, value) in enumerate(pairs):
            if len(key) != info.key_size or len(value) != info.value_size:
                raise HookError(
                    f"map {map_name!r} row {i}: key {len(key)} and value {len(value)} bytes; "
                    f"the map has {info.key_size}-byte keys and {info.value_size}-byte values"
                )
        if not pairs:
            return
        keys = b"".join(k for k, _ in pairs)
        values = b"".join(v for _, v in pairs)
        self._call("update", map_name.encode(), keys, info.key_size, values, info.value_size,
                   len(pairs))

    def replace_map(self, map_name: str, rows: Iterable[tuple[bytes, bytes]]) -> None:
        """Make a map hold exactly ``rows`` (array maps: rows not given keep their value)."""
        pairs = list(rows)
        self.update_map_bulk(map_name, pairs)
        if self._require().map(map_name).type == 2:
            return
        wanted = {k for k, _ in pairs}
        for key in self.map_items(map_name):
            if key not in wanted:
                self.delete_map_key(map_name, key)

    def delete_map_key(self, map_name: str, key: bytes) -> None:
        self._call("delete", map_name.encode(), key, len(key))

    def map_items(self, map_name: str) -> dict[bytes, bytes]:
        """Every row of a map of the installed policy."""
        info = self._require().map(map_name)
        capacity = info.max_entries
        keys = ctypes.create_string_buffer(max(1, capacity * info.key_size))
        values = ctypes.create_string_buffer(max(1, capacity * info.value_size))
        count = ctypes.c_size_t(0)
        self._call("items", map_name.encode(), keys, info.key_size, values, info.value_size,
                   capacity, ctypes.byref(count))
        n = min(count.value, capacity)
        k, v = keys.raw, values.raw
        return {k[i * info.key_size:(i + 1) * info.key_size]:
                v[i * info.value_size:(i + 1) * info.value_size] for i in range(n)}

    def _require(self) -> InstalledPolicy:
        policy = self.current()
        if policy is None:
            raise HookError(f"policy store {self.directory}: no policy is installed")
        return policy


def _parse_meta(text: str, gen: int, digest: str, path: Path) -> InstalledPolicy:
    fields: dict[str, str] = {}
    maps: list[MapInfo] = []
    local: list[MapInfo] = []
    for line in text.splitlines():
        word, _, rest = line.partition(" ")
        if word in ("map", "local"):
            name, *numbers = rest.split()
            (maps if word == "map" else local).append(MapInfo(name, *(int(n) for n in numbers)))
        elif word:
            fields[word] = rest
    section = fields.get("section", "-")
    return InstalledPolicy(
        name=fields.get("name", ""),
        version=int(fields.get("version", "0")),
        generation=gen,
        section=None if section == "-" else section,
        sha256=digest,
        maps=tuple(maps),
        path=path,
        local_maps=tuple(local),
    )
