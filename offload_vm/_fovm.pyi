# The cffi extension built from include/fovm.h by _ffi_build.py (untyped by nature).
from typing import Any

ffi: Any
lib: Any
