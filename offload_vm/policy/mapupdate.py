"""Signed map updates: new rows for one map of an installed policy, from its edge or center.

An update names the policy and the map, carries a version (the sender's counter: a device
refuses one older than what it has, so a replayed update cannot roll a map back) and the rows
(key and value bytes, sized as the policy's map schema says). With ``replace`` the rows are
the whole new content of the map (every other key is deleted, or zeroed for an array).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from freeoffload.errors import Location, PolicyError, Problem

from ._container import Unreadable, pack_container, payload_problem, unpack_container
from ._container import verify_signature as _verify_signature
from .manifest import Manifest

__all__ = ["MAGIC_MAP", "MapUpdate", "read_map_update", "sign_map_update"]

MAGIC_MAP = b"FOMAPUPD"


@dataclass(frozen=True)
class MapUpdate:
    """A map update whose signature and shape were checked."""

    policy: str
    map: str
    version: int
    key_size: int
    value_size: int
    rows: tuple[tuple[bytes, bytes], ...]
    replace: bool


def sign_map_update(policy: str, map_name: str, version: int,
                    rows: Sequence[tuple[bytes, bytes]], key: Ed25519PrivateKey,
                    replace: bool = True) -> bytes:
    """The bytes of a signed update (the body of ``PUT /v1/maps/{map}``)."""
    if not rows and not replace:
        raise ValueError("an update that adds no rows and replaces nothing does nothing")
    key_size = len(rows[0][0]) if rows else 0
    value_size = len(rows[0][1]) if rows else 0
    if any(len(k) != key_size or len(v) != value_size for k, v in rows):
        raise ValueError("every row of a map update must have the same key and value size")
    manifest = {"kind": "map-update", "policy": policy, "map": map_name, "version": version,
                "key_size": key_size, "value_size": value_size, "count": len(rows),
                "replace": replace}
    payload = b"".join(k + v for k, v in rows)
    return pack_container(MAGIC_MAP, manifest, payload, key)


def _field(raw: dict[str, Any], name: str, kind: type, loc: Location,
           problems: list[Problem]) -> Any:
    value: Any = raw.get(name)
    negative = kind is int and isinstance(value, int) and (isinstance(value, bool) or value < 0)
    if not isinstance(value, kind) or negative:
        wanted = "a non-negative integer" if kind is int else kind.__name__
        problems.append(Problem(loc, name, f"expected {wanted}, got {value!r}"))
        return kind()
    return value


def _schema_problems(update: MapUpdate, policy: Manifest, loc: Location) -> list[Problem]:
    if update.policy != policy.name:
        return [Problem(loc, "policy", f"the update is for policy {update.policy!r}, "
                        f"the installed policy is {policy.name!r}")]
    schema = policy.map(update.map)
    if schema is None:
        names = ", ".join(m.name for m in policy.maps) or "none"
        return [Problem(loc, "map", f"policy {policy.name!r} has no map {update.map!r}",
                        f"its maps: {names}")]
    if update.rows and (update.key_size, update.value_size) != (schema.key_size,
                                                                schema.value_size):
        return [Problem(loc, "rows", f"rows are {update.key_size}+{update.value_size} bytes, "
                        f"map {schema.name!r} has {schema.key_size}+{schema.value_size}")]
    if len(update.rows) > schema.max_entries:
        return [Problem(loc, "rows", f"{len(update.rows)} rows, the map holds at most "
                        f"{schema.max_entries}")]
    return []


def read_map_update(data: bytes, trusted: Sequence[Ed25519PublicKey], source: str,
                    min_version: int | None = None,
                    policy: Manifest | None = None) -> MapUpdate:
    """A trusted update, or PolicyError listing every problem. ``min_version``: the lowest
    version accepted (the map's current version + 1 refuses replays); ``policy``: the installed
    policy's manifest, to check the map exists with these sizes."""
    try:
        box = unpack_container(data, MAGIC_MAP, "map update", source)
    except Unreadable as err:
        raise PolicyError([err.problem]) from err
    loc = Location(source)
    problems = [p for p in (_verify_signature(box, list(trusted), source),
                            payload_problem(box, source)) if p is not None]
    raw = box.manifest
    if "version" not in raw:
        problems.append(Problem(loc, "version", "the update has no version"))
    version = _field(raw, "version", int, loc, problems)
    ksize = _field(raw, "key_size", int, loc, problems)
    vsize = _field(raw, "value_size", int, loc, problems)
    count = _field(raw, "count", int, loc, problems)
    if count * (ksize + vsize) != len(box.payload):
        problems.append(Problem(loc, "rows", f"{count} rows of {ksize}+{vsize} bytes do not "
                                f"fill the {len(box.payload)}-byte payload"))
        count = 0
    step = ksize + vsize
    rows = tuple((box.payload[i:i + ksize], box.payload[i + ksize:i + step])
                 for i in range(0, count * step, step)) if step > 0 else ()
    update = MapUpdate(_field(raw, "policy", str, loc, problems),
                       _field(raw, "map", str, loc, problems), version, ksize, vsize, rows,
                       bool(raw.get("replace", True)))
    if min_version is not None and version < min_version:
        problems.append(Problem(loc, "version", f"version {version} is older than the "
                                "installed one (a replay or a rollback)",
                                f"this side accepts version {min_version} or newer"))
    if policy is not None and not problems:
        problems.extend(_schema_problems(update, policy, loc))
    if problems:
        raise PolicyError(problems)
    return update
