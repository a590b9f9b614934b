"""Our userspace eBPF VM (C core, cffi binding) and the offload policy toolchain.

``VM`` loads raw instructions (``load``) or a program of a clang ``-target bpf`` object
(``load_elf``), verifies it and runs it (``run``); ``VM.maps`` gives its maps as ``Map``
objects; ``Program`` lists an object's program sections; ``assemble`` turns
conformance-suite assembly into instructions. Failures raise
``ProgramRejectedError`` (verifier, loader) or ``ExecutionFaultError`` (run time), both with
``pc`` and ``code``.
"""

from freeoffload.errors import ExecutionFaultError, ProgramRejectedError, VMError

from ._elf import Program
from ._vm import ARRAY, HASH, LRU_HASH, VM, Map, abi_version
from .asm import AssemblyError, assemble

__all__ = [
    "ARRAY",
    "HASH",
    "LRU_HASH",
    "VM",
    "AssemblyError",
    "ExecutionFaultError",
    "Map",
    "Program",
    "ProgramRejectedError",
    "VMError",
    "abi_version",
    "assemble",
]
