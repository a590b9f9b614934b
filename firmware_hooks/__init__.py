"""The PLT/GOT connect() hook, the device runtime and fixed hook points for firmware.

- :func:`hook_library_path`: ``libfreeoffload_hook.so``, the library ``freeoffload run`` puts in
  ``LD_PRELOAD`` (built with the package).
- :class:`~freeoffload.firmware_hooks.store.PolicyStore`: the policy store hooked programs read
  (default ``/run/freeoffload``, ``FREEOFFLOAD_STORE`` overrides).
"""

from __future__ import annotations

from ._libs import hook_library_path, store_library_path
from .store import DEFAULT_STORE, InstalledPolicy, MapInfo, PolicyStore, default_store_dir

__all__ = [
    "DEFAULT_STORE",
    "InstalledPolicy",
    "MapInfo",
    "PolicyStore",
    "default_store_dir",
    "hook_library_path",
    "store_library_path",
]
