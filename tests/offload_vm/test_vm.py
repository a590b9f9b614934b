"""The Python face of the VM: loading, helpers, budget, maps from the host, the error table,
and fovm_exec from many threads at once."""

from __future__ import annotations

import struct
import threading

import pytest
from freeoffload.offload_vm import ARRAY, HASH, VM, abi_version, assemble
from freeoffload.offload_vm._fovm import lib
from freeoffload.offload_vm._vm import _ERRORS, STATUS_NAMES

from freeoffload.errors import ExecutionFaultError, ProgramRejectedError, VMError


def test_abi_version_matches_header() -> None:
    assert abi_version() == lib.FOVM_ABI_VERSION == 1


def test_every_status_has_a_name_and_run_errors_a_class() -> None:
    codes = {getattr(lib, n) for n in dir(lib) if n.startswith("FOVM_E_")}
    assert codes == set(STATUS_NAMES) - {lib.FOVM_OK}
    assert {lib.FOVM_E_REJECTED, lib.FOVM_E_ELF} == {
        c for c, cls in _ERRORS.items() if cls is ProgramRejectedError
    }
    assert {lib.FOVM_E_FAULT, lib.FOVM_E_BUDGET, lib.FOVM_E_HELPER} == {
        c for c, cls in _ERRORS.items() if cls is ExecutionFaultError
    }


@pytest.mark.parametrize("program", [b"", b"\x95" * 7, b"\x00" * 12])
def test_program_sizes_rejected(program: bytes) -> None:
    with VM() as vm, pytest.raises(ProgramRejectedError, match="8-byte instructions"):
        vm.load(program)


def test_run_without_program_and_after_close() -> None:
    vm = VM()
    with pytest.raises(VMError, match="no program is loaded"):
        vm.run()
    vm.close()
    with pytest.raises(VMError, match="closed"):
        vm.run()


def test_host_helper_sees_zeroed_registers_through_callx() -> None:
    seen: list[tuple[int, ...]] = []

    def helper(*args: int) -> int:
        seen.append(args)
        return 77

    with VM() as vm:
        vm.register_helper(40, helper, nargs=0)
        vm.load(assemble("mov %r6, 40\nmov %r1, 0\ncall %r6\nexit"))
        assert vm.run() == 77
        assert seen == [(0, 0, 0, 0, 0)]  # r2 = ctx length 0, r3-r5 zeroed at entry


def test_host_helper_arguments_and_failure() -> None:
    def add(a: int, b: int, *_: int) -> int:
        if a == 0:
            raise RuntimeError("refused")
        return a + b

    with VM() as vm:
        vm.register_helper(200, add, nargs=2)
        with pytest.raises(VMError, match="already registered"):
            vm.register_helper(200, add, nargs=2)
        vm.load(assemble("mov %r1, 40\nmov %r2, 2\ncall 200\nexit"))
        assert vm.run() == 42
        vm.load(assemble("mov %r1, 0\nmov %r2, 2\ncall 200\nexit"))
        with pytest.raises(ExecutionFaultError, match=r"helper 200 \(add\) failed") as info:
            vm.run()
        assert info.value.pc == 2
        assert info.value.code == lib.FOVM_E_HELPER


def test_builtin_helper_can_be_replaced_and_bad_ids_refused() -> None:
    with VM() as vm:
        vm.register_helper(5, lambda *_: 123, nargs=0)  # e.g. firmware's own clock
        vm.load(assemble("call 5\nexit"))
        assert vm.run() == 123
        with pytest.raises(VMError, match="id must be below 256"):
            vm.register_helper(256, lambda *_: 0)


def test_budget_counts_instructions() -> None:
    with VM(budget=10) as vm:
        assert vm.budget == 10
        vm.load(assemble("mov %r0, 0\n" + "add %r0, 1\n" * 8 + "exit"))
        assert vm.run_counted() == (8, 10)
        vm.budget = 9
        with pytest.raises(ExecutionFaultError, match="budget of 9 exhausted at PC 9"):
            vm.run()
        with pytest.raises(VMError):
            vm.budget = 0


def test_context_writes_visible_for_bytearray_only() -> None:
    with VM() as vm:
        vm.load(assemble("stb [%r1], 9\nmov %r0, %r2\nexit"))
        ctx = bytearray(3)
        assert vm.run(ctx) == 3
        assert ctx == bytearray(b"\x09\x00\x00")
        frozen = b"\x00\x00"
        vm.run(frozen)
        assert frozen == b"\x00\x00"


def test_host_map_api() -> None:
    with VM() as vm:
        h = vm.create_map("h", HASH, 4, 8, 2)
        a = vm.create_map("a", ARRAY, 4, 4, 3)
        k1, k2, k3 = (struct.pack("<I", i) for i in (1, 2, 3))
        h.update(k1, b"A" * 8)
        with pytest.raises(VMError, match="key exists"):
            h.update(k1, b"B" * 8, flags=1)
        with pytest.raises(VMError, match="no such key"):
            h.update(k2, b"B" * 8, flags=2)
        h.update(k2, b"B" * 8)
        with pytest.raises(VMError, match="is full"):
            h.update(k3, b"C" * 8)
        assert sorted(h.items()) == [(k1, b"A" * 8), (k2, b"B" * 8)]
        h.delete(k1)
        with pytest.raises(KeyError):
            h.delete(k1)
        assert h.lookup(k1) is None
        with pytest.raises(VMError, match="key of 2 bytes, expected 4"):
            h.lookup(b"xx")
        with pytest.raises(VMError, match="value of 1 bytes, expected 8"):
            h.update(k3, b"x")
        assert a.lookup(k2) == b"\0" * 4
        assert [k for k, _ in a.items()] == [struct.pack("<I", i) for i in range(3)]
        with pytest.raises(VMError, match="cannot delete from array map a"):
            a.delete(k1)
        with pytest.raises(VMError, match="outside array map a of 3 entries"):
            a.update(k3, b"1234")
        with pytest.raises(VMError, match="type 4 is not array"):
            vm.create_map("bad", 4, 4, 4, 1)


def test_maps_of_a_replaced_program_are_refused() -> None:
    with VM() as vm:
        vm.create_map("h", HASH, 4, 8, 2)
        old = vm.maps["h"]
        with pytest.raises(ProgramRejectedError, match="not an ELF file"):
            vm.load_elf(b"junk")  # loading an object replaces every map, even when it fails
        assert vm.maps == {}
        with pytest.raises(VMError, match="replaced"):
            old.lookup(b"\0" * 4)


def test_exec_from_many_threads_counts_exactly() -> None:
    program = assemble(
        """
        stw [%r10-4], 0
        lddw %r1, map[0]
        mov %r2, %r10
        add %r2, -4
        call 1
        jeq %r0, 0, +3
        mov %r1, 1
        lock add [%r0], %r1
        mov %r0, 0
        exit
        """
    )
    with VM() as vm:
        counter = vm.create_map("n", ARRAY, 4, 8, 1)
        vm.load(program)

        def work() -> None:
            for _ in range(2000):
                vm.run()

        threads = [threading.Thread(target=work) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert counter.lookup(b"\0" * 4) == struct.pack("<Q", 8000)
