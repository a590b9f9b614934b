"""Compiling the hook's C libraries: used by setup.py at install and by tests for cross builds.

Two shared libraries come from ``firmware_hooks/src`` plus the VM core (``offload_vm/src``,
compiled in with ``-DFOVM_STATIC -fvisibility=hidden``):

- ``libfreeoffload_hook.so``: the LD_PRELOAD library (GOT rewriting, the connect() runtime).
- ``libfreeoffload_store.so``: the store writer (``fohook_store_*``), loaded by
  :class:`~freeoffload.firmware_hooks.store.PolicyStore` through ctypes. It has no
  constructor, so loading it never hooks the loading process.

This module imports nothing from the package, so setup.py can load it by path.
"""

from __future__ import annotations

import os
import shlex
import subprocess
from collections.abc import Sequence
from pathlib import Path

__all__ = ["HOOK_LIBRARY", "STORE_LIBRARY", "build_libraries", "source_root"]

HOOK_LIBRARY = "libfreeoffload_hook.so"
STORE_LIBRARY = "libfreeoffload_store.so"

_HOOK_SOURCES = ("fohook_api.c", "fohook_elf.c", "fohook_storeio.c", "fohook_ctx.c",
                 "fohook_reads.c", "fohook_runtime.c", "fohook_preload.c")
_STORE_SOURCES = ("fohook_api.c", "fohook_elf.c", "fohook_storeio.c", "fohook_store.c",
                  "fohook_store_maps.c", "fohook_store_ops.c")
_CFLAGS = ("-std=gnu11", "-D_GNU_SOURCE", "-O2", "-g", "-fPIC", "-shared", "-Wall", "-Wextra",
           "-Werror", "-DFOVM_STATIC", "-fvisibility=hidden", "-ftls-model=initial-exec",
           "-Wl,-z,now", "-Wl,-z,relro", "-Wl,--no-undefined")


def source_root() -> Path:
    """The checkout (or sdist) holding ``firmware_hooks/src`` and ``offload_vm/src``."""
    return Path(__file__).resolve().parent.parent


def _vm_sources(root: Path) -> list[Path]:
    return sorted((root / "offload_vm" / "src").glob("*.c"))


def _compile(cc: Sequence[str], sources: Sequence[Path], out: Path, root: Path,
             extra: Sequence[str]) -> None:
    # The VM's private headers only for #include "..." (one is named elf.h, like the system's).
    includes = [*(f"-I{root / d}" for d in ("firmware_hooks/include", "firmware_hooks/src",
                                            "offload_vm/include")),
                "-iquote", str(root / "offload_vm" / "src")]
    tmp = out.with_name(out.name + ".tmp")
    cmd = [*cc, *_CFLAGS, *includes, *extra, "-o", str(tmp), *map(str, sources), "-ldl",
           "-lpthread"]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"building {out.name} failed:\n$ {shlex.join(cmd)}\n{done.stderr}")
    os.replace(tmp, out)


def build_libraries(out_dir: Path, cc: Sequence[str] | None = None,
                    extra_cflags: Sequence[str] = (), root: Path | None = None,
                    names: Sequence[str] = (HOOK_LIBRARY, STORE_LIBRARY)) -> list[Path]:
    """Build the libraries ``names`` (default both) into ``out_dir``; ``cc`` e.g.
    ``["aarch64-linux-gnu-gcc"]`` (default ``$CC`` or ``cc``)."""
    root = root or source_root()
    compiler = list(cc) if cc else shlex.split(os.environ.get("CC", "cc"))
    out_dir.mkdir(parents=True, exist_ok=True)
    src = root / "firmware_hooks" / "src"
    vm = _vm_sources(root)
    outputs = []
    for name, files in ((HOOK_LIBRARY, _HOOK_SOURCES), (STORE_LIBRARY, _STORE_SOURCES)):
        if name not in names:
            continue
        out = out_dir / name
        _compile(compiler, [*(src / f for f in files), *vm], out, root, extra_cflags)
        outputs.append(out)
    return outputs


if __name__ == "__main__":
    import sys

    for built in build_libraries(Path(sys.argv[1]) if len(sys.argv) > 1 else
                                 source_root() / "firmware_hooks" / "_lib"):
        print(built)
