"""ELF objects without a VM: which program sections an object has (``Program``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from freeoffload.errors import ProgramRejectedError

from ._fovm import ffi, lib

__all__ = ["Program", "program_sections"]


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


@dataclass(frozen=True)
class Program:
    """A clang ``-target bpf`` object: its bytes and program sections (checked on creation).

    ``VM.load_elf(program.elf, program.sections[0])`` loads one of them.
    """

    elf: bytes
    source: str = "<bytes>"
    sections: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        try:
            names = program_sections(self.elf)
        except ProgramRejectedError as err:
            raise ProgramRejectedError(f"{self.source}: {err}", code=err.code) from None
        if not names:
            raise ProgramRejectedError(f"{self.source}: no program sections",
                                       code=lib.FOVM_E_NOENT)
        object.__setattr__(self, "sections", tuple(names))
