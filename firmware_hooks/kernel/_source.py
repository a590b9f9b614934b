"""Reads the policy store (freeoffload.firmware_hooks.store) for the kernel path.

A new generation brings a new policy object; map rows change in place without a new
generation, so every read takes the rows of every map (a few KiB: cheap at 20 reads/s).
"""

from __future__ import annotations

import os
from pathlib import Path

from freeoffload.errors import HookError

from ._run import Snapshot, Source

__all__ = ["store_source"]


def store_source(store_dir: str | os.PathLike[str]) -> Source:
    from freeoffload.firmware_hooks.store import PolicyStore

    store = PolicyStore(Path(store_dir))
    cache: dict[int, bytes | None] = {}

    def read() -> Snapshot:
        try:
            policy = store.current()
        except HookError:
            return Snapshot(-1, None)  # no store (yet): nothing to run, connect unchanged
        if policy is None:
            return Snapshot(0, None)
        if policy.generation not in cache:
            cache.clear()
            try:
                cache[policy.generation] = (policy.path / "policy.o").read_bytes()
            except OSError:
                cache[policy.generation] = None
        maps = {}
        for info in policy.maps:
            if info.name.startswith("."):
                continue  # .rodata/.data/.bss come from the object itself
            try:
                maps[info.name] = sorted(store.map_items(info.name).items())
            except HookError:
                continue  # replaced under us: the next read sees the new generation
        return Snapshot(policy.generation, cache[policy.generation], maps)

    return read
