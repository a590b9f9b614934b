"""ELF helpers for the command line: the program sections of an object."""

from __future__ import annotations

from freeoffload.errors import ProgramRejectedError

from ._fovm import ffi, lib


def program_sections(data: bytes) -> list[str]:
    """Names of the program sections of a clang ``-target bpf`` object, in file order."""
    out: list[str] = []
    name = ffi.new("char[]", 256)
    err = ffi.new("fovm_error *")
    while True:
        code = lib.fovm_elf_program_section(data, len(data), len(out), name, 256, err)
        if code == lib.FOVM_E_NOENT:
            return out
        if code != lib.FOVM_OK:
            raise ProgramRejectedError(ffi.string(err.msg).decode(), code=code)
        out.append(ffi.string(name).decode())
