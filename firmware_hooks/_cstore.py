"""ctypes binding of ``libfreeoffload_store.so`` (``fohook_store.h``): the one place C store
errors become :class:`HookError`."""

from __future__ import annotations

import ctypes
import functools
from collections.abc import Callable
from typing import Any

from freeoffload.errors import HookError

from ._libs import store_library_path

__all__ = ["call", "library"]


class FohookErr(ctypes.Structure):
    _fields_ = [("code", ctypes.c_int), ("msg", ctypes.c_char * 256)]


_P = ctypes.c_void_p
_S = ctypes.c_char_p
_Z = ctypes.c_size_t
_ERR = ctypes.POINTER(FohookErr)
_SIGNATURES: dict[str, list[Any]] = {
    "fohook_store_init": [_S, _ERR],
    "fohook_store_generation": [_S, ctypes.POINTER(ctypes.c_uint64), _ERR],
    "fohook_store_install": [_S, _S, ctypes.c_uint32, _P, _Z, _S, ctypes.c_uint,
                             ctypes.POINTER(ctypes.c_uint64), _P, _Z, _ERR],
    "fohook_store_remove": [_S, _ERR],
    "fohook_store_update": [_S, _S, _P, _Z, _P, _Z, _Z, _ERR],
    "fohook_store_delete": [_S, _S, _P, _Z, _ERR],
    "fohook_store_items": [_S, _S, _P, _Z, _P, _Z, _Z, ctypes.POINTER(_Z), _ERR],
}
# fohook_status codes the Python side tells apart.
NO_POLICY = 8
NO_MAP = 9


@functools.cache
def library() -> ctypes.CDLL:
    lib = ctypes.CDLL(str(store_library_path()))
    for name, argtypes in _SIGNATURES.items():
        func = getattr(lib, name)
        func.argtypes = argtypes
        func.restype = ctypes.c_int
    return lib


class StoreCallError(HookError):
    """A fohook_store_* call failed; ``code`` is its fohook_status."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def call(name: str, *args: Any) -> None:
    """Call ``fohook_store_<name>`` with ``args`` and a fresh error struct; raise on failure."""
    err = FohookErr()
    func: Callable[..., int] = getattr(library(), f"fohook_store_{name}")
    rc = func(*args, ctypes.byref(err))
    if rc != 0:
        raise StoreCallError(err.msg.decode(errors="replace") or f"status {rc}", rc)
