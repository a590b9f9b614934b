"""``freeoffload policy compile``: clang -> VM verification -> a signed package."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from freeoffload.errors import Location, PolicyError

from .manifest import MAX_U32, MapSchema
from .package import build_package
from .program import verify_program

__all__ = ["Built", "compile_object", "compile_policy", "include_dir"]

_NAME_CHARS = re.compile(r"[^A-Za-z0-9_.-]")


def include_dir() -> Path:
    """The directory holding ``freeoffload/policy.h`` (pass it to clang with -I)."""
    return Path(__file__).resolve().parent.parent / "include"


def _clang() -> str:
    for name in ("clang", "clang-14"):
        found = shutil.which(name)
        if found:
            return found
    raise PolicyError.at(Location("clang"), "", "clang is not installed",
                         "install it with `apt-get install clang` (make install does)")


def compile_object(source: str | Path, stderr: TextIO | None = None,
                   extra_args: tuple[str, ...] = ()) -> bytes:
    """The ELF object clang makes of ``source``; clang's messages go to ``stderr`` as printed."""
    src = Path(source)
    if not src.is_file():
        raise PolicyError.at(Location(str(source)), "", "no such source file")
    with tempfile.TemporaryDirectory(prefix="fopolicy-") as tmp:
        obj = Path(tmp) / "policy.o"
        cmd = [_clang(), "-O2", "-g", "-target", "bpf", "-Wall", f"-I{include_dir()}",
               *extra_args, "-c", str(src), "-o", str(obj)]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.stderr:
            (stderr or sys.stderr).write(done.stderr)
        if done.returncode != 0:
            raise PolicyError.at(Location(str(source)), "", f"clang failed (exit "
                                 f"{done.returncode}); its messages are above")
        return obj.read_bytes()


@dataclass(frozen=True)
class Built:
    """What ``compile_policy`` made."""

    data: bytes
    name: str
    version: int
    maps: tuple[MapSchema, ...]
    signed: bool


def compile_policy(source: str | Path, key: Ed25519PrivateKey | None = None,
                   version: int | None = None, name: str | None = None,
                   stderr: TextIO | None = None, extra_args: tuple[str, ...] = ()) -> Built:
    """Compile, verify in the VM and package ``source``. ``version`` defaults to the current
    Unix time, so that every build is newer than the last; ``name`` to the file's stem;
    ``extra_args`` go to clang (``-I``, ``-D``)."""
    elf = compile_object(source, stderr, extra_args)
    maps = verify_program(elf, str(source))
    stem = _NAME_CHARS.sub("_", Path(source).stem)
    chosen_name = name or stem
    chosen_version = int(time.time()) if version is None else version
    if not 1 <= chosen_version <= MAX_U32:
        raise PolicyError.at(Location("--version"), "version",
                             f"expected an integer from 1 to {MAX_U32}, got {chosen_version}")
    data = build_package(elf, chosen_name, chosen_version, maps, key)
    return Built(data, chosen_name, chosen_version, maps, key is not None)


def write_atomically(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename."""
    target = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(dir=target.parent or Path("."), prefix=f".{target.name}.")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, target)
    except OSError as err:
        raise PolicyError.at(Location(str(path)), "", f"cannot write: {err.strerror}") from err
