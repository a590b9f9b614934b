"""Maps in shared memory: another process updates a map (through its own VM adopting the
same storage) while our programs and our host lookups read it; no reader ever sees a torn
value, and both sides see each other's entries."""

from __future__ import annotations

import mmap
import os
import struct
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from fovm_testlib import attach_shared
from freeoffload.offload_vm import ARRAY, HASH, VM, Map, VMError, assemble

WORDS = 16  # a 128-byte value: 16 copies of one counter; torn if they differ

WRITER = textwrap.dedent(
    """
    import mmap, struct, sys
    from freeoffload.offload_vm import VM, HASH, ARRAY
    path, kind, rounds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    with open(path, "r+b") as f:
        mem = mmap.mmap(f.fileno(), 0)
    vm = VM()
    m = vm.create_map("shared", kind, 4, 8 * NWORDS, 8)
    m.attach_storage(mem, init=False)
    key = struct.pack("<I", 3)
    for i in range(1, rounds + 1):
        m.update(key, struct.pack("<NWORDSQ", *([i] * NWORDS)))
        if kind == HASH and i % 7 == 0:
            m.delete(key)
            m.update(key, struct.pack("<NWORDSQ", *([i] * NWORDS)))
    print("done", flush=True)
    """
).replace("NWORDS", str(WORDS))

# Looks up key 3 and returns 1 if the 16 words of its value differ (torn), 2 if absent.
READER = assemble(
    """
    stw [%r10-4], 3
    lddw %r1, map[0]
    mov %r2, %r10
    add %r2, -4
    call 1
    jeq %r0, 0, absent
    ldxdw %r1, [%r0]
    mov %r3, 0
    loop:
    ldxdw %r2, [%r0]
    jne %r1, %r2, torn
    add %r0, 8
    add %r3, 1
    jlt %r3, 16, loop
    mov %r0, 0
    exit
    torn:
    mov %r0, 1
    exit
    absent:
    mov %r0, 2
    exit
    """
)


# The same check after a side effect (an update of a local map, index 1), so the program
# runs with snapshots: for an array map one copy of the whole map per run, for a hash map one
# per lookup.
READER_WITH_EFFECT = assemble(
    """
    stdw [%r10-8], 1
    stw [%r10-12], 0
    lddw %r1, map[1]
    mov %r2, %r10
    add %r2, -12
    mov %r3, %r10
    add %r3, -8
    mov %r4, 0
    call 2
    """
) + READER


def _shared_file(tmp_path: Path, size: int) -> tuple[Path, mmap.mmap]:
    path = tmp_path / "map.shm"
    path.write_bytes(b"\0" * size)
    with path.open("r+b") as f:
        return path, mmap.mmap(f.fileno(), 0)


@pytest.mark.parametrize("reader", [READER, READER_WITH_EFFECT], ids=["in-place", "snapshot"])
@pytest.mark.parametrize("kind", [ARRAY, HASH], ids=["array", "hash"])
def test_other_process_writes_never_torn(tmp_path: Path, kind: int, reader: bytes) -> None:
    with VM() as vm:
        m = vm.create_map("shared", kind, 4, 8 * WORDS, 8)
        vm.create_map("local_count", ARRAY, 4, 8, 1)
        path, mem = _shared_file(tmp_path, m.storage_size())
        m.attach_storage(mem, init=True)
        vm.load(reader)
        writer = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(path), str(kind), "20000"],
            stdout=subprocess.PIPE, text=True,
        )
        results = {0: 0, 1: 0, 2: 0}
        host_torn = 0
        try:
            while writer.poll() is None:
                results[vm.run()] += 1
                value = m.lookup(struct.pack("<I", 3))
                if value is not None and len(set(struct.unpack(f"<{WORDS}Q", value))) != 1:
                    host_torn += 1
        finally:
            out, _ = writer.communicate(timeout=120)
        assert writer.returncode == 0 and out.strip() == "done"
        assert results[1] == 0 and host_torn == 0
        assert results[0] > 0  # the reader really saw values while the writer ran
        last = m.lookup(struct.pack("<I", 3))
        assert last == struct.pack(f"<{WORDS}Q", *([20000] * WORDS))


def test_init_copies_entries_and_adopt_checks_shape(tmp_path: Path) -> None:
    with VM() as vm:
        m = vm.create_map("m", HASH, 4, 4, 4)
        m.update(b"\1\0\0\0", b"one!")
        path, mem = _shared_file(tmp_path, m.storage_size())
        m.attach_storage(mem, init=True)
        assert m.items() == [(b"\1\0\0\0", b"one!")]
        with VM() as other:
            wrong = other.create_map("m", HASH, 4, 8, 4)
            with pytest.raises(VMError, match="shared memory holds type 1 key 4 value 4"):
                wrong.attach_storage(mem, init=False)
            same = other.create_map("m2", HASH, 4, 4, 4)
            same.attach_storage(mem, init=False)
            same.update(b"\2\0\0\0", b"two!")
        assert sorted(m.items()) == [(b"\1\0\0\0", b"one!"), (b"\2\0\0\0", b"two!")]
        with VM() as small:
            tiny = small.create_map("m", HASH, 4, 4, 4)
            with pytest.raises(VMError, match=r"needs \d+ bytes of storage"):
                tiny.attach_storage(bytearray(16), init=True)
        with VM() as junk:
            fresh = junk.create_map("m", HASH, 4, 4, 4)
            with pytest.raises(VMError, match="holds no fovm map"):
                fresh.attach_storage(bytearray(fresh.storage_size()), init=False)
            older = bytearray(mem)
            older[4:8] = struct.pack("<I", 1)  # the header's format version
            with pytest.raises(VMError, match=r"storage format version 1 \(another build wrote "
                               r"it\), this build reads version 2"):
                fresh.attach_storage(older, init=False)
        assert os.path.getsize(path) == m.storage_size()


def test_program_scans_64_shared_rows_of_112_bytes() -> None:
    """The policy SDK's candidates map: 64 rows of 112 bytes in shared storage, all read in
    one run (each lookup is a snapshot in the run's scratch)."""
    scan = assemble(
        """
        mov %r6, 0
        mov %r7, 0
        loop:
        stxw [%r10-4], %r7
        lddw %r1, map[0]
        mov %r2, %r10
        add %r2, -4
        call 1
        jeq %r0, 0, next
        ldxw %r1, [%r0+108]
        add %r6, %r1
        next:
        add %r7, 1
        jlt %r7, 64, loop
        mov %r0, %r6
        exit
        """
    )
    with VM() as vm:
        rows = vm.create_map("candidates", ARRAY, 4, 112, 64)
        for i in range(64):
            rows.update(struct.pack("<I", i), b"\0" * 108 + struct.pack("<I", i))
        _keep = attach_shared(rows)
        vm.load(scan)
        for _ in range(3):
            assert vm.run() == sum(range(64))


def _shared_vm(vm: VM, name: str, kind: int, value_size: int) -> tuple[Map, bytearray]:
    m = vm.create_map(name, kind, 4, value_size, 8)
    return m, attach_shared(m)


def test_zero_copy_run_writes_context_and_falls_back_on_side_effects() -> None:
    """Shared rows are read in place while a program has no side effects; its context writes
    still reach the caller. A write through the row's pointer (a side effect) makes the run
    start over with a private snapshot, as before: the stored row never changes."""
    read_and_write_ctx = assemble(
        """
        stw [%r10-4], 3
        mov %r6, %r1
        lddw %r1, map[0]
        mov %r2, %r10
        add %r2, -4
        call 1
        jeq %r0, 0, absent
        ldxdw %r1, [%r0]
        stxdw [%r6], %r1
        mov %r0, 1
        exit
        absent:
        mov %r0, 2
        exit
        """
    )
    write_row = assemble(
        """
        stw [%r10-4], 3
        lddw %r1, map[0]
        mov %r2, %r10
        add %r2, -4
        call 1
        jeq %r0, 0, absent
        stdw [%r0], 99
        ldxdw %r0, [%r0]
        exit
        absent:
        mov %r0, 2
        exit
        """
    )
    with VM() as vm:
        m, _keep = _shared_vm(vm, "rows", ARRAY, 8)
        m.update(struct.pack("<I", 3), struct.pack("<Q", 1234))
        vm.load(read_and_write_ctx)
        ctx = bytearray(8)
        assert vm.run(ctx) == 1 and struct.unpack("<Q", ctx)[0] == 1234
        vm.load(write_row)
        for _ in range(3):
            assert vm.run() == 99
        assert m.lookup(struct.pack("<I", 3)) == struct.pack("<Q", 1234)


def test_side_effect_after_zero_copy_read_happens_once_per_run() -> None:
    """A program that reads a shared row, then counts itself in a local map: restarting the
    run with snapshot copies happens before the update, so the count is exact."""
    count = assemble(
        """
        stw [%r10-4], 0
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
        ldxdw %r1, [%r0]
        add %r1, 1
        stxdw [%r10-16], %r1
        lddw %r1, map[1]
        mov %r2, %r10
        add %r2, -4
        mov %r3, %r10
        add %r3, -16
        mov %r4, 0
        call 2
        mov %r0, %r6
        exit
        absent:
        mov %r0, 0
        exit
        """
    )
    with VM() as vm:
        shared, _keep = _shared_vm(vm, "rows", ARRAY, 8)
        shared.update(struct.pack("<I", 0), struct.pack("<Q", 7))
        local = vm.create_map("local_count", ARRAY, 4, 8, 1)
        vm.load(count)
        for _ in range(10):
            assert vm.run() == 7
        assert local.lookup(struct.pack("<I", 0)) == struct.pack("<Q", 10)


@pytest.mark.parametrize("engine", ["auto", "interpreter"])
def test_snapshot_rows_past_the_written_ones_read_zero(engine: str) -> None:
    """A run with a side effect copies only the rows ever written nonzero (the storage header
    counts them) and owes zeros for the rest: a lookup past them, and a read past the
    copied rows through a pointer, see zeros; a host update past them is seen next run."""
    prog = assemble(
        """
        stw [%r10-4], 0
        lddw %r1, map[1]
        mov %r2, %r10
        add %r2, -4
        call 1
        jeq %r0, 0, out
        mov %r1, 1
        lock add [%r0], %r1
        stw [%r10-4], 1
        lddw %r1, map[0]
        mov %r2, %r10
        add %r2, -4
        call 1
        jeq %r0, 0, out
        ldxdw %r6, [%r0]
        ldxdw %r7, [%r0+72]
        stw [%r10-4], 6
        lddw %r1, map[0]
        mov %r2, %r10
        add %r2, -4
        call 1
        jeq %r0, 0, out
        ldxdw %r8, [%r0]
        mov %r0, %r6
        lsh %r7, 16
        lsh %r8, 32
        or %r0, %r7
        or %r0, %r8
        exit
        out:
        mov %r0, 0
        exit
        """
    )
    with VM(engine=engine) as vm:
        rows, _keep = _shared_vm(vm, "rows", ARRAY, 16)  # 8 rows of 16 bytes
        local = vm.create_map("local_count", ARRAY, 4, 8, 1)
        rows.update(struct.pack("<I", 1), struct.pack("<QQ", 5, 0))
        rows.update(struct.pack("<I", 5), bytes(16))  # zeros: not counted as written
        vm.load(prog)
        assert [vm.run() for _ in range(3)] == [5] * 3  # row 5's word (via row 1 + 72), row 6
        rows.update(struct.pack("<I", 5), struct.pack("<QQ", 0, 7))
        rows.update(struct.pack("<I", 6), struct.pack("<QQ", 9, 0))
        assert vm.run() == 5 | 7 << 16 | 9 << 32
        assert local.lookup(struct.pack("<I", 0)) == struct.pack("<Q", 4)
