"""``freeoffload policy run``: a dry run of a policy in the VM, and the map files it reads.

A map file (``--map NAME=FILE.yaml``) is one of:
- a CR-map (``nodes:`` ...), for the ``candidates`` map, seen from the context's ``from`` node;
- a redirect table: a list of ``{from: ADDRESS:PORT, to: ADDRESS:PORT}`` (``struct fo_addr``);
- raw rows: a list of ``{key: HEX, value: HEX}``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from freeoffload.errors import Location, PolicyError, Problem, VMError
from freeoffload.yamlfile import LocList, LocMap, load_yaml

from .context import ConnectContext, redirect_entry
from .manifest import Manifest, MapSchema
from .program import load_program

__all__ = ["Decision", "load_map_file", "run_policy"]

Rows = list[tuple[bytes, bytes]]


@dataclass(frozen=True)
class Decision:
    """What a policy did with one context."""

    r0: int
    before: ConnectContext
    after: ConnectContext

    @property
    def rewritten(self) -> bool:
        return self.r0 == 1

    @property
    def verdict(self) -> str:
        return {0: "pass", 1: "rewrite"}.get(self.r0, f"unknown return code {self.r0}")


def _cr_map_rows(path: str, from_node: str | None) -> tuple[Rows, dict[str, str]]:
    from freeoffload.topology import load_topology
    from freeoffload.topology.candidates import candidate_items, candidate_rows

    if not from_node:
        raise PolicyError.at(Location("--ctx"), "from", "a CR-map as map file needs the "
                             "requesting node", 'pass --from dev1 or add "from": "dev1" to '
                             '--ctx')
    rows = candidate_rows(load_topology(path), from_node)
    return candidate_items(rows), {r.address: r.name for r in rows}


def _hex(item: LocMap, field: str, source: str) -> bytes:
    try:
        return bytes.fromhex(str(item[field]))
    except (KeyError, ValueError) as err:
        raise PolicyError.at(item.value_loc(field) if field in item else item.loc, field,
                             "expected hex bytes", f"in {source}") from err


def _list_rows(data: LocList, source: str) -> Rows:
    rows: Rows = []
    for i, item in enumerate(data):
        loc = data.item_loc(i)
        if isinstance(item, LocMap) and {"from", "to"} <= set(item):
            rows.append(redirect_entry(str(item["from"]), str(item["to"])))
        elif isinstance(item, LocMap) and {"key", "value"} <= set(item):
            rows.append((_hex(item, "key", source), _hex(item, "value", source)))
        else:
            raise PolicyError.at(loc, f"[{i}]", "expected {from: ADDR:PORT, to: ADDR:PORT} "
                                 "or {key: HEX, value: HEX}")
    return rows


def load_map_file(name: str, path: str, schema: MapSchema | None,
                  from_node: str | None = None) -> tuple[Rows, dict[str, str]]:
    """The rows of ``path`` for map ``name``, checked against the policy's schema; also a
    table from a candidate's ``ADDRESS:PORT`` to its node name (CR-maps only)."""
    if schema is None:
        raise PolicyError.at(Location(path), "", f"the policy has no map {name!r}")
    data = load_yaml(path, PolicyError)
    names: dict[str, str] = {}
    if isinstance(data, LocMap) and "nodes" in data:
        rows, names = _cr_map_rows(path, from_node)
    elif isinstance(data, LocList):
        rows = _list_rows(data, path)
    else:
        raise PolicyError.at(Location(path), "", "expected a CR-map or a list of rows")
    problems = [Problem(Location(path), name, f"row {i}: {len(k)}+{len(v)} bytes, map {name!r} "
                        f"has {schema.key_size}+{schema.value_size}")
                for i, (k, v) in enumerate(rows)
                if (len(k), len(v)) != (schema.key_size, schema.value_size)]
    if problems:
        raise PolicyError(problems[:5])
    return rows, names


def run_policy(elf: bytes, ctx: ConnectContext, maps: dict[str, Sequence[tuple[bytes, bytes]]],
               manifest: Manifest | None = None,
               trace: Callable[[str], None] | None = None) -> Decision:
    """Load ``elf``, fill ``maps`` (name -> rows), run once on ``ctx``; ``trace`` receives
    each ``bpf_trace_printk`` line."""
    try:
        vm: Any = load_program(elf)
    except VMError as err:
        raise PolicyError.at(Location(manifest.name if manifest else "policy"), "verifier",
                             f"the VM rejects the program: {err}") from err
    if trace is not None and hasattr(vm, "on_trace"):
        vm.on_trace(trace)
    for name, rows in maps.items():
        target = vm.maps.get(name)
        if target is None:
            raise PolicyError.at(Location("--map"), name, "the policy has no such map")
        for key, value in rows:
            target.update(key, value)
    buf = bytearray(ctx.pack())
    try:
        r0 = int(vm.run(buf))
    except VMError as err:
        raise PolicyError.at(Location(manifest.name if manifest else "policy"), "run",
                             f"the program faulted: {err}") from err
    return Decision(r0, ctx, ConnectContext.unpack(bytes(buf)))
