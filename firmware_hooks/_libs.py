"""Where the hook's C libraries are: built by setup.py into ``_lib/`` next to this file."""

from __future__ import annotations

import os
from pathlib import Path

from freeoffload.errors import HookError

from ._build import HOOK_LIBRARY, STORE_LIBRARY

__all__ = ["hook_library_path", "library_dir", "store_library_path"]


def library_dir() -> Path:
    """``FREEOFFLOAD_HOOK_LIBDIR`` when set (cross builds, tests), else the package's ``_lib``."""
    override = os.environ.get("FREEOFFLOAD_HOOK_LIBDIR")
    return Path(override) if override else Path(__file__).resolve().parent / "_lib"


def _find(name: str) -> Path:
    path = library_dir() / name
    if not path.is_file():
        raise HookError(
            f"{path} is missing: the hook libraries are built when the package is installed "
            "(pip install -e . or make install)"
        )
    return path


def hook_library_path() -> Path:
    """The absolute path of ``libfreeoffload_hook.so`` (the LD_PRELOAD library)."""
    return _find(HOOK_LIBRARY)


def store_library_path() -> Path:
    """The absolute path of ``libfreeoffload_store.so`` (the store writer)."""
    return _find(STORE_LIBRARY)
