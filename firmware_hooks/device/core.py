"""The device's decisions, without HTTP: accept or refuse a signed policy or map update.

A push is checked in this order: readable, signed by a trusted key, not older than (or a
replay of) what was accepted, the program verified in our VM, the maps as the manifest says.
Only then is it installed into the policy store (one atomic generation switch: hooked
programs see the old policy or the new one) and recorded in the state directory. A refused
push changes nothing: the last good policy stays installed and keeps running.
"""

from __future__ import annotations

import hashlib
import sys
import time
from dataclasses import replace
from typing import Any

from freeoffload.errors import HookError, PolicyError, Problem

from .config import DeviceConfig
from .state import DeviceState, InstalledRecord

__all__ = ["Device", "RefusedError"]

_MAP_ARRAY = 2
# HTTP status of a refusal, by the field of its first problem (most telling first)
_FORBIDDEN = ("signature",)
_CONFLICT = ("version",)
_MALFORMED = ("", "format", "manifest", "sha256", "kind", "key_size", "value_size", "count")


class RefusedError(HookError):
    """A push the device does not take: ``status`` is the HTTP status, ``reason`` one line."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def _refusal(err: PolicyError) -> RefusedError:
    fields = [p.field for p in err.problems]
    if any(f in _FORBIDDEN for f in fields):
        status = 403
    elif any(f in _MALFORMED for f in fields):
        status = 400
    elif any(f in _CONFLICT for f in fields):
        status = 409
    else:
        status = 422
    return RefusedError(status, "; ".join(_short(p) for p in err.problems))


def _short(p: Problem) -> str:
    text = f"{p.field}: {p.message}" if p.field else p.message
    return f"{text} ({p.hint})" if p.hint else text


class Device:
    """The installed policy, its maps and their versions; ``config.store`` is the store."""

    def __init__(self, config: DeviceConfig) -> None:
        from freeoffload.firmware_hooks.store import PolicyStore

        self.config = config
        self.store = PolicyStore(config.store)
        try:
            config.store.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise HookError(f"cannot create {config.store.parent}: {err.strerror}") from err
        self.store.init()
        self.state = DeviceState.load(config.state_dir)
        self.refused = 0
        self.last_refusal: dict[str, Any] | None = None
        self.restored = self._restore()

    # ---- start-up -------------------------------------------------------------------------
    def _restore(self) -> str:
        """Checks the recorded policy against today's trusted keys (a key taken out of the
        configuration revokes what it signed) and puts it back if the store lost it."""
        record, data = self.state.policy, self.state.package_bytes()
        if record is None:
            return "nothing installed"
        if data is None:
            return f"policy {record.name}: its package is missing from {self.state.directory}"
        from freeoffload.offload_vm.policy import read_package

        current = self.store.current()
        running = current is not None and current.sha256 == record.sha256 and \
            self._maps_readable()
        try:  # the VM check is needed only when the object goes into the store again
            package = read_package(data, self.config.trusted_keys, "saved package",
                                   check_program=not running)
        except PolicyError as err:
            if running:
                self.store.remove()
            self.state.policy = None
            self.state.map_versions = {}
            self.state.clear_rows()
            self.state.save()
            return (f"policy {record.name} v{record.version} removed: it no longer passes "
                    f"({err})")
        if running:
            return f"policy {record.name} v{record.version} still installed"
        self.store.install(package.name, package.elf, package.version, keep_maps=False)
        for schema in package.manifest.maps:
            rows = self.state.load_rows(schema.name)
            if rows:
                self.store.update_map_bulk(schema.name, rows)
        return f"policy {record.name} v{record.version} restored into {self.store.directory}"

    def _maps_readable(self) -> bool:
        """Whether this build reads the installed policy's map storage (a store written by a
        build with another storage format is refused by hooked programs, which then pass every
        call: such a policy is installed again, rows and all)."""
        current = self.store.current()
        try:
            for info in current.maps if current else ():
                self.store.map_items(info.name)
        except HookError:
            return False
        return True

    def reload(self, config: DeviceConfig) -> str:
        """Takes a re-read configuration: trusted keys, name and limit; a policy whose key
        was removed is revoked. Where to listen, the store and the state need a restart."""
        fixed = [f for f in ("host", "port", "store", "state_dir")
                 if getattr(config, f) != getattr(self.config, f)]
        self.config = replace(config, host=self.config.host, port=self.config.port,
                              store=self.config.store, state_dir=self.config.state_dir)
        message = self._restore()
        if fixed:
            message += f"; {', '.join(fixed)} changed: restart the daemon for that"
        return message

    # ---- pushes -----------------------------------------------------------------------------
    def refuse(self, what: str, err: RefusedError) -> None:
        self.refused += 1
        self.last_refusal = {"what": what, "status": err.status, "error": err.reason,
                             "at": time.time()}
        print(f"freeoffload device: refused {what}: {err.reason}", file=sys.stderr, flush=True)

    def install_policy(self, body: bytes) -> dict[str, Any]:
        from freeoffload.offload_vm.policy import check_package

        package, problems = check_package(body, self.config.trusted_keys, "PUT /v1/policy")
        if package is not None and not problems:
            seen = self.state.seen.get(package.name)
            if seen is not None and package.version <= seen:
                kind = "a replay" if package.version == seen else "older"
                raise RefusedError(409, f"version: policy {package.name!r} version "
                                   f"{package.version} is {kind}: this device has accepted "
                                   f"version {seen} (push version {seen + 1} or newer)")
        if problems or package is None:
            raise _refusal(PolicyError(problems))
        try:
            installed = self.store.install(package.name, package.elf, package.version)
        except HookError as err:
            raise RefusedError(422, f"the policy store refused it: {err}") from err
        sha = hashlib.sha256(package.elf).hexdigest()
        renamed = self.state.policy is None or self.state.policy.name != package.name
        record = InstalledRecord(package.name, package.version, sha,
                                 self.state.save_package(sha, body), time.time())
        self.state.policy = record
        self.state.seen[package.name] = package.version
        if renamed:
            self.state.map_versions = {}
            self.state.clear_rows()
        self._save_all_rows()
        self.state.save()
        print(f"freeoffload device: installed policy {package.name} v{package.version} "
              f"(generation {installed.generation})", file=sys.stderr, flush=True)
        return {"installed": package.name, "version": package.version, "sha256": sha,
                "generation": installed.generation}

    def update_map(self, map_name: str, body: bytes) -> dict[str, Any]:
        from freeoffload.offload_vm.policy import read_map_update, read_package

        record, data = self.state.policy, self.state.package_bytes()
        if record is None or data is None:
            raise RefusedError(409, "no policy is installed: push a policy before its maps")
        manifest = read_package(data, self.config.trusted_keys, "installed package",
                                check_program=False).manifest
        last = self.state.map_versions.get(map_name, 0)
        try:
            update = read_map_update(body, self.config.trusted_keys, f"PUT /v1/maps/{map_name}",
                                     min_version=last + 1, policy=manifest)
        except PolicyError as err:
            raise _refusal(err) from err
        if update.map != map_name:
            raise RefusedError(400, f"map: the update is for map {update.map!r}, the URL "
                               f"names {map_name!r}")
        rows = list(update.rows)
        try:
            if update.replace:
                self._replace(map_name, rows)
            else:
                self.store.update_map_bulk(map_name, rows)
        except HookError as err:
            raise RefusedError(422, f"the policy store refused it: {err}") from err
        self.state.map_versions[map_name] = update.version
        self._save_all_rows([map_name])
        self.state.save()
        return {"map": map_name, "version": update.version, "rows": len(rows),
                "replace": update.replace}

    def _replace(self, map_name: str, rows: list[tuple[bytes, bytes]]) -> None:
        current = self.store.current()
        if current is None:
            raise HookError("no policy is installed")
        info = current.map(map_name)
        if info.type == _MAP_ARRAY:  # rows not given become zero
            given = {k for k, _ in rows}
            zero = bytes(info.value_size)
            rows = rows + [(i.to_bytes(4, sys.byteorder), zero) for i in range(info.max_entries)
                           if i.to_bytes(4, sys.byteorder) not in given]
        self.store.replace_map(map_name, rows)

    def _save_all_rows(self, names: list[str] | None = None) -> None:
        current = self.store.current()
        if current is None:
            return
        for info in current.maps:
            if info.name.startswith(".") or (names is not None and info.name not in names):
                continue
            self.state.save_rows(info.name, sorted(self.store.map_items(info.name).items()))

    # ---- status -----------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        current = self.store.current()
        policy = None
        if self.state.policy is not None:
            policy = dict(vars(self.state.policy))
            policy["generation"] = current.generation if current else None
            policy["running"] = current is not None and current.sha256 == policy["sha256"]
        maps = {}
        for info in current.maps if current else ():
            if info.name.startswith("."):
                continue
            try:
                rows: int | None = len(self.store.map_items(info.name))
            except HookError:  # another writer replaced the policy under us
                rows = None
            maps[info.name] = {"version": self.state.map_versions.get(info.name, 0),
                               "rows": rows,
                               "type": info.type, "key_size": info.key_size,
                               "value_size": info.value_size,
                               "max_entries": info.max_entries}
        return {"device": self.config.name, "store": str(self.store.directory),
                "policy": policy, "maps": maps, "refused": self.refused,
                "last_refusal": self.last_refusal}
