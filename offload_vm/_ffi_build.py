"""Builds the cffi API-mode extension ``freeoffload.offload_vm._fovm``.

The ``cdef`` is generated from ``include/fovm.h`` (the one source of truth for the C API):
comments, preprocessor lines (except plain integer ``#define``s) and the export macro are
stripped. setup.py lists this file in ``cffi_modules``; ``python offload_vm/_ffi_build.py``
builds it in place for a quick try.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from cffi import FFI

HERE = Path(__file__).resolve().parent
HEADER = HERE / "include" / "fovm.h"

# Callbacks into Python: host helpers and trace_printk output.
_PYTHON_CALLBACKS = """
extern "Python" int _fovm_py_helper(void *, uint64_t, uint64_t, uint64_t, uint64_t, uint64_t,
                                    uint64_t *);
extern "Python" void _fovm_py_trace(void *, const char *, size_t);
"""


def header_cdef(text: str) -> str:
    """The declarations of a C header in the subset of C that cffi's cdef reads."""
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    text = re.sub(r"//[^\n]*", "", text)
    out: list[str] = []
    skip = 0
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("#ifdef __cplusplus"):
            skip += 1
            continue
        if skip:
            if stripped.startswith("#endif"):
                skip -= 1
            continue
        if stripped.startswith("#"):
            match = re.match(r"#define\s+(\w+)\s+(\d+)\s*$", stripped)
            if match:
                out.append(f"#define {match.group(1)} {match.group(2)}")
            continue
        out.append(line.replace("FOVM_API ", ""))
    return "\n".join(out)


def _relative(path: Path) -> str:
    return os.path.relpath(path, Path.cwd())


def make_ffi() -> FFI:
    ffi = FFI()
    ffi.cdef(header_cdef(HEADER.read_text()) + _PYTHON_CALLBACKS)
    sources = sorted(_relative(p) for p in (HERE / "src").glob("*.c"))
    ffi.set_source(
        "freeoffload.offload_vm._fovm",
        '#include "fovm.h"\n',
        sources=sources,
        include_dirs=[_relative(HERE / "include"), _relative(HERE / "src")],
        extra_compile_args=["-std=c99", "-O2"],
    )
    return ffi


ffibuilder = make_ffi()

if __name__ == "__main__":
    ffibuilder.compile(tmpdir=str(HERE.parent / "build" / "cffi"), verbose=False)
