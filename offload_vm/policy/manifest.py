"""The manifest of a policy package and the schema of each map it declares."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

from freeoffload.errors import Location, Problem

__all__ = ["HOOKS", "MAP_TYPES", "Manifest", "MapSchema", "parse_manifest"]

HOOKS = ("connect",)
MAP_TYPES = {1: "hash", 2: "array", 9: "lru_hash"}
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$")


@dataclass(frozen=True)
class MapSchema:
    """One map of a policy: its name, Linux map type number and sizes in bytes."""

    name: str
    type: int
    key_size: int
    value_size: int
    max_entries: int

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Manifest:
    """What a signed policy package says about its object."""

    name: str
    hook: str
    version: int
    maps: tuple[MapSchema, ...]
    sha256: str
    key_id: str | None = None

    def map(self, name: str) -> MapSchema | None:
        return next((m for m in self.maps if m.name == name), None)

    def to_json(self) -> dict[str, Any]:
        """The fields that go into the container (sha256 and key_id are added when packing)."""
        return {"name": self.name, "hook": self.hook, "version": self.version,
                "maps": [m.to_json() for m in self.maps]}


MAX_U32 = 0xFFFFFFFF


def _int_field(raw: dict[str, Any], field: str, where: str, loc: Location,
               problems: list[Problem], minimum: int = 0) -> int:
    value = raw.get(field)
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= MAX_U32:
        problems.append(Problem(loc, f"{where}{field}",
                                f"expected an integer from {minimum} to {MAX_U32}, "
                                f"got {value!r}"))
        return 0
    return value


def _parse_maps(raw: Any, loc: Location, problems: list[Problem]) -> tuple[MapSchema, ...]:
    if not isinstance(raw, list):
        problems.append(Problem(loc, "maps", f"expected a list, got {raw!r}"))
        return ()
    maps: list[MapSchema] = []
    for i, item in enumerate(raw):
        where = f"maps[{i}]."
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            problems.append(Problem(loc, f"maps[{i}]", "expected an object with a name"))
            continue
        mtype = _int_field(item, "type", where, loc, problems, 1)
        if mtype and mtype not in MAP_TYPES:
            problems.append(Problem(loc, f"{where}type", f"unknown map type {mtype}",
                                    f"expected one of {sorted(MAP_TYPES)}"))
        maps.append(MapSchema(item["name"], mtype,
                              _int_field(item, "key_size", where, loc, problems, 1),
                              _int_field(item, "value_size", where, loc, problems, 1),
                              _int_field(item, "max_entries", where, loc, problems, 1)))
    return tuple(maps)


def parse_manifest(raw: dict[str, Any], source: str,
                   problems: list[Problem]) -> Manifest:
    """A Manifest from its JSON; every problem found is appended to ``problems``."""
    loc = Location(source)
    name = raw.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        problems.append(Problem(loc, "name", f"expected a policy name, got {name!r}",
                                "letters, digits, _ . -; at most 64"))
        name = ""
    hook = raw.get("hook")
    if hook not in HOOKS:
        problems.append(Problem(loc, "hook", f"unknown hook {hook!r}",
                                f"expected one of: {', '.join(HOOKS)}"))
    if "version" not in raw:
        problems.append(Problem(loc, "version", "the package has no version",
                                "build it with `freeoffload policy compile ... --version N`"))
        version = 0
    else:
        version = _int_field(raw, "version", "", loc, problems, 1)
    maps = _parse_maps(raw.get("maps", []), loc, problems)
    sha = raw.get("sha256")
    key = raw.get("key_id")
    return Manifest(name, str(hook), version, maps, sha if isinstance(sha, str) else "",
                    key if isinstance(key, str) else None)
