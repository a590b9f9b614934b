"""The JIT as a host sees it: used by default on x86-64, the interpreter when forced by the
API or FOVM_JIT=0, and silently when the process may not make memory executable (Linux's
memory-deny-write-execute); a helper registered after loading replaces the built-in in
native code too. (Both engines run every conformance and .data case: test_conformance.py,
test_data.py; the fuzz target compares them: test_fuzz.py.)"""

from __future__ import annotations

import os
import platform
import struct
import subprocess
import sys
import textwrap

import pytest
from freeoffload.offload_vm import ARRAY, VM, assemble

X86 = platform.machine() == "x86_64"

LOOKUP = assemble(
    """
    stw [%r10-4], 0
    lddw %r1, map[0]
    mov %r2, %r10
    add %r2, -4
    call 1
    jeq %r0, 0, absent
    ldxdw %r0, [%r0]
    exit
    absent:
    mov %r0, 77
    exit
    """
)

CHILD = textwrap.dedent(
    """
    import ctypes, sys
    from freeoffload.offload_vm import VM, assemble
    if sys.argv[1] == "mdwe":
        libc = ctypes.CDLL(None, use_errno=True)
        # PR_SET_MDWE (65), PR_MDWE_REFUSE_EXEC_GAIN (1): no mapping may become executable
        if libc.prctl(65, 1, 0, 0, 0) != 0:
            print("unsupported", ctypes.get_errno())
            sys.exit(0)
    with VM() as vm:
        vm.load(assemble("mov %r0, 6\\nmul %r0, 7\\nexit"))
        print(vm.engine, vm.run())
    """
)


def _child(mode: str, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run([sys.executable, "-c", CHILD, mode], capture_output=True, text=True,
                          timeout=60, env={**os.environ, **(env or {})})
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def test_default_engine_and_forcing_the_interpreter() -> None:
    with VM() as vm:
        assert vm.engine is None  # nothing loaded
        vm.create_map("rows", ARRAY, 4, 8, 1)
        vm.load(LOOKUP)
        assert vm.engine == ("jit" if X86 else "interpreter")
        assert vm.run() == 0
    with VM(engine="interpreter") as vm:
        vm.create_map("rows", ARRAY, 4, 8, 1)
        vm.load(LOOKUP)
        assert vm.engine == "interpreter"
    assert _child("env", {"FOVM_JIT": "0"}) == "interpreter 42"
    assert _child("plain") == ("jit 42" if X86 else "interpreter 42")


def test_no_executable_memory_falls_back_silently() -> None:
    out = _child("mdwe")
    if out.startswith("unsupported"):
        pytest.skip(f"this kernel has no PR_SET_MDWE ({out})")
    assert out == "interpreter 42"


@pytest.mark.parametrize("engine", ["auto", "interpreter"])
def test_helper_registered_after_load_replaces_builtin(engine: str) -> None:
    with VM(engine=engine) as vm:
        rows = vm.create_map("rows", ARRAY, 4, 8, 1)
        rows.update(struct.pack("<I", 0), struct.pack("<Q", 5))
        vm.load(LOOKUP)
        assert vm.run() == 5
        vm.register_helper(1, lambda *_: 0, nargs=2, name="no_lookup")
        assert vm.run() == 77
