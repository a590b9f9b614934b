"""The device daemon's configuration file, validated with line-numbered errors.

Example (``/etc/freeoffload/device.yaml``)::

    name: pi-kitchen                  # shown in /v1/status (default: the host name)
    listen: 0.0.0.0:7701              # where the edge or center reaches this device
    store: /run/freeoffload           # the policy store hooked programs read
    state_dir: /var/lib/freeoffload/device   # what is installed, kept across restarts
    trusted_keys:                     # Ed25519 public keys (PEM) whose signatures count;
      - /etc/freeoffload/center.pub   # relative paths are from this file's folder
    max_body_bytes: 8388608           # largest accepted push

Every problem of a file is reported at once as ``file:line:col: field: problem; hint``.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from freeoffload.errors import ConfigError, Location, PolicyError, Problem
from freeoffload.yamlfile import LocList, LocMap, load_yaml, load_yaml_text

__all__ = ["DEFAULT_CONFIG", "DeviceConfig", "DeviceConfigError", "load_config",
           "load_config_text"]

DEFAULT_CONFIG = "/etc/freeoffload/device.yaml"
DEFAULT_PORT = 7701
_FIELDS = ("name", "listen", "store", "state_dir", "trusted_keys", "max_body_bytes")


class DeviceConfigError(ConfigError):
    """The device daemon's configuration file is wrong."""


@dataclass(frozen=True)
class DeviceConfig:
    name: str
    host: str
    port: int
    store: Path
    state_dir: Path
    trusted_keys: tuple[Ed25519PublicKey, ...]
    trusted_key_files: tuple[Path, ...]
    max_body_bytes: int = 8 << 20


def load_config(path: str | Path) -> DeviceConfig:
    data = load_yaml(path, DeviceConfigError)
    return _validate(data, str(path), Path(path).resolve().parent)


def load_config_text(text: str, source: str, base: Path) -> DeviceConfig:
    """Parse ``text``; relative paths in it are taken from ``base``."""
    return _validate(load_yaml_text(text, source, DeviceConfigError), source, base)


def _listen(value: Any, loc: Location, problems: list[Problem]) -> tuple[str, int]:
    hint = "expected HOST:PORT, e.g. 0.0.0.0:7701 or [::]:7701"
    if not isinstance(value, str):
        problems.append(Problem(loc, "listen", f"expected a string, got {value!r}", hint))
        return "", 0
    host, sep, port = value.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        problems.append(Problem(loc, "listen", f"{value!r} is not HOST:PORT", hint))
        return "", 0
    return host, int(port)


def _path(value: Any, field: str, loc: Location, base: Path, problems: list[Problem]) -> Path:
    if not isinstance(value, str) or not value:
        problems.append(Problem(loc, field, f"expected a path, got {value!r}"))
        return Path()
    return base / value


def _keys(value: Any, loc: Location, base: Path,
          problems: list[Problem]) -> tuple[list[Ed25519PublicKey], list[Path]]:
    from freeoffload.offload_vm.policy import load_public_key

    hint = "list the .pub files of `freeoffload keys gen` whose signatures this device trusts"
    if not isinstance(value, LocList) or not value:
        problems.append(Problem(loc, "trusted_keys", f"expected a non-empty list, got "
                                f"{value!r}", hint))
        return [], []
    keys, files = [], []
    for i, item in enumerate(value):
        where = value.item_loc(i)
        path = _path(item, f"trusted_keys[{i}]", where, base, problems)
        if path == Path():
            continue
        try:
            keys.append(load_public_key(path))
            files.append(path)
        except PolicyError as err:
            reason = err.problems[0].message
            problems.append(Problem(where, f"trusted_keys[{i}]", f"{path}: {reason}", hint))
    return keys, files


def _validate(data: Any, source: str, base: Path) -> DeviceConfig:
    top = Location(source, 1, 1)
    if not isinstance(data, LocMap):
        raise DeviceConfigError.at(top, "", "expected a mapping of settings",
                                   "see `freeoffload device --help`")
    problems: list[Problem] = []
    for key in data:
        if key not in _FIELDS:
            problems.append(Problem(data.key_loc(key), str(key), "unknown setting",
                                    f"expected one of: {', '.join(_FIELDS)}"))
    host, port = _listen(data.get("listen", f"0.0.0.0:{DEFAULT_PORT}"),
                         data.value_loc("listen"), problems)
    from freeoffload.firmware_hooks.store import default_store_dir

    store = _path(data.get("store", str(default_store_dir())), "store",
                  data.value_loc("store"), base, problems)
    state = _path(data.get("state_dir", "/var/lib/freeoffload/device"), "state_dir",
                  data.value_loc("state_dir"), base, problems)
    keys, files = _keys(data.get("trusted_keys"), data.value_loc("trusted_keys"), base, problems)
    name = data.get("name", socket.gethostname())
    if not isinstance(name, str) or not name:
        problems.append(Problem(data.value_loc("name"), "name", f"expected a name, got {name!r}"))
    limit = data.get("max_body_bytes", 8 << 20)
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1024:
        problems.append(Problem(data.value_loc("max_body_bytes"), "max_body_bytes",
                                f"expected an integer >= 1024, got {limit!r}"))
    if problems:
        raise DeviceConfigError(problems)
    return DeviceConfig(str(name), host, port, store, state, tuple(keys), tuple(files),
                        int(limit))
