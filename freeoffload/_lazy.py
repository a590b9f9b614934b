"""Public names a package loads on first use, so that importing it (as every command's
parser does) costs nothing until a name is needed."""

from __future__ import annotations

import importlib
from typing import Any


def load(package: str, namespace: dict[str, Any], where: dict[str, str], name: str) -> Any:
    """``name`` from ``package``'s submodule ``where[name]``, cached in ``namespace``."""
    module = where.get(name)
    if module is None:
        raise AttributeError(f"module {package!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", package), name)
    namespace[name] = value
    return value
