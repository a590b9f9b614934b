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
from fovm_testlib import attach_shared
from freeoffload.offload_vm import ARRAY, VM, ExecutionFaultError, assemble

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


# The index comes from the context; the key is on the stack (native code's inline lookup) or,
# with KEY_IN_CTX, is the context itself (the C path). Absent: 77; else the row's first word
# is incremented in place and the second returned; with READ_PAST, a read past the 16 bytes.
INDEXED = """
    ldxw %r6, [%r1]
    stxw [%r10-4], %r6
    mov %r7, %r1
    lddw %r1, map[0]
    mov %r2, %r10
    add %r2, -4
    KEY_IN_CTX
    call 1
    jeq %r0, 0, absent
    ldxdw %r1, [%r0]
    add %r1, 1
    stxdw [%r0], %r1
    ldxdw %r0, [%r0+OFFSET]
    exit
    absent:
    mov %r0, 77
    exit
"""


@pytest.mark.parametrize("engine", ["auto", "interpreter"])
@pytest.mark.parametrize("key_in_ctx", [False, True])
def test_array_lookup_bounds_rows_and_faults(engine: str, key_in_ctx: bool) -> None:
    """What map_lookup_elem gives a program, inlined in native code or not: every index in
    range is its own writable row, the first out of range and beyond are absent, and the row
    is 16 bytes: reading past the last one faults at that instruction."""
    text = INDEXED.replace("KEY_IN_CTX", "mov %r2, %r7" if key_in_ctx else "")
    with VM(engine=engine) as vm:
        rows = vm.create_map("rows", ARRAY, 4, 16, 4)
        for i in range(4):
            rows.update(struct.pack("<I", i), struct.pack("<QQ", 10 * i, 100 + i))
        vm.load(assemble(text.replace("OFFSET", "8")))
        for _ in range(2):
            assert [vm.run(bytearray(struct.pack("<I", i))) for i in range(6)] == [
                100, 101, 102, 103, 77, 77]
        assert rows.lookup(struct.pack("<I", 2)) == struct.pack("<QQ", 22, 102)
        vm.load(assemble(text.replace("OFFSET", "16")))
        with pytest.raises(ExecutionFaultError, match="out-of-bounds read") as fault:
            vm.run(bytearray(struct.pack("<I", 3)))
        assert fault.value.pc == (13 if key_in_ctx else 12)


@pytest.mark.parametrize("engine", ["auto", "interpreter"])
def test_shared_row_then_local_atomic_counts_once(engine: str) -> None:
    """select_target's shape: read a shared row in place, then add to a process-local row
    (a side effect, in native code through the inline lookup's read-only row); every run
    returns the shared value and counts exactly once."""
    prog = assemble(
        """
        stw [%r10-4], 1
        lddw %r1, map[0]
        mov %r2, %r10
        add %r2, -4
        call 1
        jeq %r0, 0, absent
        ldxdw %r6, [%r0]
        lddw %r1, map[1]
        mov %r2, %r10
        add %r2, -4
        call 1
        jeq %r0, 0, absent
        mov %r1, 1
        lock add [%r0], %r1
        mov %r0, %r6
        exit
        absent:
        mov %r0, 0
        exit
        """
    )
    with VM(engine=engine) as vm:
        shared = vm.create_map("rows", ARRAY, 4, 8, 8)
        _keep = attach_shared(shared)
        shared.update(struct.pack("<I", 1), struct.pack("<Q", 42))
        local = vm.create_map("local_count", ARRAY, 4, 8, 2)
        vm.load(prog)
        assert [vm.run() for _ in range(25)] == [42] * 25
        assert local.lookup(struct.pack("<I", 1)) == struct.pack("<Q", 25)


@pytest.mark.parametrize("engine", ["auto", "interpreter"])
def test_context_and_null_row_accesses_fault_alike(engine: str) -> None:
    """Native code knows the context pointer and checked rows (its shorter checks): a read
    past the context's end, through a copy of the pointer moved by a constant, and a read
    through a lookup's NULL still fault at their instruction."""
    past_ctx = assemble("mov %r6, %r1\nadd %r6, 8\nldxdw %r0, [%r6+4]\nexit")
    null_row = assemble(
        """
        stw [%r10-4], 9
        lddw %r1, map[0]
        mov %r2, %r10
        add %r2, -4
        call 1
        ldxdw %r0, [%r0]
        exit
        """
    )
    with VM(engine=engine) as vm:
        vm.create_map("rows", ARRAY, 4, 8, 4)
        vm.load(past_ctx)
        assert vm.run(bytearray(range(20))) == int.from_bytes(bytes(range(12, 20)), "little")
        with pytest.raises(ExecutionFaultError, match="out-of-bounds read") as fault:
            vm.run(bytearray(19))
        assert fault.value.pc == 2
        vm.load(null_row)
        with pytest.raises(ExecutionFaultError, match="out-of-bounds read") as fault:
            vm.run()
        assert fault.value.pc == 6


def _lookup(index: int, keep: str) -> str:
    return f"""
        stw [%r10-4], {index}
        lddw %r1, map[0]
        mov %r2, %r10
        add %r2, -4
        call 1
        jeq %r0, 0, out
        {keep}
    """


@pytest.mark.parametrize("engine", ["auto", "interpreter"])
def test_row_copy_recycled_with_the_scratch_faults_alike(engine: str) -> None:
    """A program with a side effect copies rows of a big shared map into its 8 KiB scratch;
    the ninth 1 KiB row recycles it, so row 7's copy is gone: reading it faults in native
    code too (its shorter check for a known row gives way once the scratch was recycled)."""
    count = """
        stw [%r10-4], 0
        lddw %r1, map[1]
        mov %r2, %r10
        add %r2, -4
        call 1
        jeq %r0, 0, out
        mov %r1, 1
        lock add [%r0], %r1
    """
    rows = "".join(_lookup(i, "mov %r7, %r0" if i == 7 else "") for i in range(9))
    prog = assemble(count + rows + "ldxdw %r0, [%r7+8]\nexit\nout:\nmov %r0, 0\nexit")
    with VM(engine=engine) as vm:
        shared = vm.create_map("rows", ARRAY, 4, 1024, 16)
        _keep = attach_shared(shared)
        vm.create_map("local_count", ARRAY, 4, 8, 1)
        vm.load(prog)
        for _ in range(2):
            with pytest.raises(ExecutionFaultError, match="out-of-bounds read"):
                vm.run()


# The context pointer spilled to the frame, then the slot overwritten before it is loaded
# back and used: a narrower store, a store through a copy of r10, a local function writing
# through a pointer into the caller's frame. Native code must not take the reloaded value
# for the context: each read faults (address 0 or 7) as in the interpreter.
SPILL_CLOBBERED = {
    "narrow store": "stxdw [%r10-8], %r1\nstdw [%r10-8], 7\nstw [%r10-8], 7\n",
    "through a copy of r10": "stxdw [%r10-8], %r1\nmov %r2, %r10\nstdw [%r2-8], 0\n",
    "by a local function": "stxdw [%r10-8], %r1\nmov %r1, %r10\nadd %r1, -8\ncall local zero\n",
}


@pytest.mark.parametrize("engine", ["auto", "interpreter"])
@pytest.mark.parametrize("how", sorted(SPILL_CLOBBERED))
def test_spilled_context_pointer_overwritten_is_not_trusted(engine: str, how: str) -> None:
    prog = assemble(SPILL_CLOBBERED[how] + "ldxdw %r1, [%r10-8]\nldxdw %r0, [%r1]\nexit\n"
                    "zero:\nstdw [%r1], 0\nmov %r0, 0\nexit")
    with VM(engine=engine) as vm:
        vm.load(prog)
        with pytest.raises(ExecutionFaultError, match="out-of-bounds read"):
            vm.run(bytearray(64))


@pytest.mark.parametrize("engine", ["auto", "interpreter"])
def test_spilled_context_pointer_reloaded_reads_the_context(engine: str) -> None:
    prog = assemble("stxdw [%r10-16], %r1\nmov %r1, 0\nldxdw %r6, [%r10-16]\n"
                    "ldxdw %r0, [%r6+8]\nexit")
    with VM(engine=engine) as vm:
        vm.load(prog)
        assert vm.run(bytearray(struct.pack("<QQ", 1, 99))) == 99
        with pytest.raises(ExecutionFaultError, match="out-of-bounds read"):
            vm.run(bytearray(15))



# A side effect (a snapshot run), then row 0 of map 0 (copied into the run's scratch) in r0.
COUNT_THEN_ROW = """
    stw [%r10-4], 0
    lddw %r1, map[1]
    mov %r2, %r10
    add %r2, -4
    call 1
    jeq %r0, 0, out
    mov %r1, 1
    lock add [%r0], %r1
    lddw %r1, map[0]
    mov %r2, %r10
    add %r2, -4
    call 1
    jeq %r0, 0, out
"""


@pytest.mark.parametrize("engine", ["auto", "interpreter"])
def test_spilled_row_overwritten_through_a_row_pointer_is_not_trusted(engine: str) -> None:
    """A row pointer spilled to the frame, then the slot overwritten through a copy of the
    pointer moved by a constant onto it (the general check accepts a store into the frame
    whatever register made the address): the reloaded value points below the frame, and
    reading through it faults in native code too."""
    # from the row to the slot [%r10-8]: the same in every snapshot run (both in its state)
    distance = COUNT_THEN_ROW + "mov %r1, %r10\nsub %r1, %r0\nmov %r0, %r1\nadd %r0, -8\n"
    clobber = """
        stxdw [%r10-8], %r0
        mov %r6, %r0
        add %r6, DELTA
        mov %r1, %r10
        add %r1, -600
        stxdw [%r6], %r1
        ldxdw %r7, [%r10-8]
        ldxdw %r0, [%r7]
    """
    with VM(engine=engine) as vm:
        shared = vm.create_map("rows", ARRAY, 4, 8, 4)
        _keep = attach_shared(shared)
        vm.create_map("local_count", ARRAY, 4, 8, 1)
        vm.load(assemble(distance + "exit\nout:\nexit"))
        delta = vm.run()
        assert 0 < delta < 1 << 20
        clobber = clobber.replace("DELTA", str(delta))
        vm.load(assemble(COUNT_THEN_ROW + clobber + "exit\nout:\nexit"))
        with pytest.raises(ExecutionFaultError, match="out-of-bounds read") as fault:
            vm.run()
        assert fault.value.pc == 22


@pytest.mark.parametrize("engine", ["auto", "interpreter"])
def test_atomic_with_the_frame_pointer_as_source(engine: str) -> None:
    """`lock and [%r10-8], %r10` over all ones leaves the frame pointer's value in the slot,
    in native code too (it hands the atomic every register, r10 included)."""
    prog = assemble("stdw [%r10-8], -1\nlock and [%r10-8], %r10\nldxdw %r0, [%r10-8]\n"
                    "sub %r0, %r10\nexit")
    with VM(engine=engine) as vm:
        vm.load(prog)
        assert vm.run() == 0


@pytest.mark.parametrize("engine", ["auto", "interpreter"])
def test_spilled_context_overwritten_through_the_context_is_not_trusted(engine: str) -> None:
    """The same through the context pointer moved past the context's end onto the slot (a
    zero-copy run's private copy of the context is at a fixed distance from the frame)."""
    clobber = """
        stxdw [%r10-8], %r1
        mov %r6, %r1
        add %r6, DELTA
        mov %r7, %r10
        add %r7, -600
        stxdw [%r6], %r7
        ldxdw %r8, [%r10-8]
        ldxdw %r0, [%r8]
        exit
    """
    with VM(engine=engine) as vm:
        _keep = attach_shared(vm.create_map("rows", ARRAY, 4, 8, 4))  # zero-copy runs
        vm.load(assemble("mov %r0, %r10\nadd %r0, -8\nsub %r0, %r1\nexit"))
        (delta,) = struct.unpack("<q", struct.pack("<Q", vm.run(bytearray(16))))
        assert 16 <= abs(delta) < 1 << 20
        vm.load(assemble(clobber.replace("DELTA", str(delta))))
        with pytest.raises(ExecutionFaultError, match="out-of-bounds read") as fault:
            vm.run(bytearray(16))
        assert fault.value.pc == 7
