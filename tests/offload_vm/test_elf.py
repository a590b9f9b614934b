"""ELF objects compiled by clang from C in data/elf: BTF and legacy maps, globals as array
maps, loops, local calls, trace_printk; ``vm run`` and ``vm check`` on them."""

from __future__ import annotations

import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import need
from fovm_testlib import DATA
from freeoffload.offload_vm import VM, ExecutionFaultError, Program, ProgramRejectedError

SRC = DATA / "elf"


@pytest.fixture(scope="module")
def objs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    need(shutil.which("clang") is not None, "clang compiles eBPF objects")
    out = tmp_path_factory.mktemp("elf")
    built = {}
    for src in sorted(SRC.glob("*.c")):
        obj = out / f"{src.stem}.o"
        subprocess.run(
            ["clang", "-O2", "-g", "-target", "bpf", "-c", str(src), "-o", str(obj)],
            check=True,
        )
        built[src.stem] = obj
    return built


def test_btf_maps_from_program_and_host(objs: dict[str, Path]) -> None:
    with VM() as vm:
        vm.load_elf(objs["maps"].read_bytes(), "count")
        assert set(vm.maps) == {"counts", "config"}
        counts, config = vm.maps["counts"], vm.maps["config"]
        assert (counts.type, counts.key_size, counts.value_size, counts.max_entries) == (
            1, 4, 8, 16)
        config.update(struct.pack("<I", 0), struct.pack("<I", 3))
        ctx = bytearray(struct.pack("<IIQ", 7, 0, 0))
        assert vm.run(ctx) == 1
        assert struct.unpack("<IIQ", ctx) == (7, 21, 1)
        vm.run(ctx)
        assert struct.unpack("<IIQ", ctx)[2] == 2
        # the host sees the program's counter and can change it
        key = struct.pack("<I", 7)
        assert counts.lookup(key) == struct.pack("<Q", 2)
        counts.update(key, struct.pack("<Q", 40))
        vm.run(ctx)
        assert struct.unpack("<IIQ", ctx)[2] == 41
        assert counts.items() == [(key, struct.pack("<Q", 41))]


def test_second_section_deletes(objs: dict[str, Path]) -> None:
    with VM() as vm:
        vm.load_elf(objs["maps"].read_bytes(), "remove")
        counts = vm.maps["counts"]
        counts.update(struct.pack("<I", 5), struct.pack("<Q", 1))
        assert vm.run(struct.pack("<IIQ", 5, 0, 0)) == 1
        assert counts.lookup(struct.pack("<I", 5)) is None
        assert vm.run(struct.pack("<IIQ", 5, 0, 0)) == 0


def _expected_sum(n: int) -> int:
    total = 0
    for i in range(1, n + 1):
        total = (total * 31 + i) & ((1 << 64) - 1)
    return total


def test_globals_loop_local_call_and_trace(objs: dict[str, Path]) -> None:
    lines: list[str] = []
    with VM() as vm:
        vm.on_trace(lines.append)
        vm.load_elf(objs["globals"].read_bytes())
        assert {".rodata", ".data", ".bss"} <= set(vm.maps)
        r0, executed = vm.run_counted()
        total = _expected_sum(1000)
        assert r0 == total & 0x7FFFFFFF
        assert executed > 3000  # the loop really ran
        assert vm.maps[".bss"].lookup(b"\0" * 4) == struct.pack("<Q", total)
        assert vm.maps[".data"].lookup(b"\0" * 4) == struct.pack("<Q", 6)
        assert lines == [f"sum {total} runs 6"]
        # the host rewrites a constant in .rodata; the program sees it
        vm.maps[".rodata"].update(b"\0" * 4, struct.pack("<I", 10))
        assert vm.run() == _expected_sum(10) & 0x7FFFFFFF


def test_legacy_maps_and_lru(objs: dict[str, Path]) -> None:
    with VM() as vm:
        vm.load_elf(objs["legacy"].read_bytes())
        seen = vm.maps["seen"]
        assert (seen.type, seen.key_size, seen.max_entries) == (9, 2, 2)
        assert vm.run(struct.pack("<H", 80)) == 1
        assert vm.run(struct.pack("<H", 80)) == 2
        vm.run(struct.pack("<H", 443))
        vm.run(struct.pack("<H", 80))
        vm.run(struct.pack("<H", 22))  # full: evicts 443, the least recently used
        keys = sorted(struct.unpack("<H", k)[0] for k, _ in seen.items())
        assert keys == [22, 80]


def test_unknown_helper_rejected_with_pc(objs: dict[str, Path]) -> None:
    with VM() as vm:
        vm.load_elf(objs["bad_helper"].read_bytes(), "good")
        assert vm.run() == 7
        with pytest.raises(ProgramRejectedError, match="unknown helper 99 at PC") as info:
            vm.load_elf(objs["bad_helper"].read_bytes(), "bad")
        assert info.value.pc is not None


def test_missing_section_and_garbage() -> None:
    with VM() as vm, pytest.raises(ProgramRejectedError, match="not an ELF file"):
        vm.load_elf(b"hello")


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "freeoffload", "vm", *args],
        capture_output=True, text=True, timeout=120,
    )


def test_cli_run_and_check(objs: dict[str, Path]) -> None:
    proc = _cli("run", str(objs["maps"]), "--section", "count", "--ctx", "07000000" + "00" * 12)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0] == "0x1"
    assert "ctx: 0700000000000000" in proc.stdout
    proc = _cli("check", str(objs["bad_helper"]))
    assert proc.returncode == 1
    assert "good: ok" in proc.stdout
    assert "bad: rejected: unknown helper 99 at PC" in proc.stdout
    proc = _cli("run", str(objs["maps"]), "--section", "nope")
    assert proc.returncode == 1
    assert "no program section named nope" in proc.stderr


def test_program_lists_sections(objs: dict[str, Path]) -> None:
    assert Program(objs["maps"].read_bytes()).sections == ("count", "remove")
    with pytest.raises(ProgramRejectedError, match=r"x\.o: not an ELF file"):
        Program(b"junk", "x.o")


def test_rodata_is_read_only_for_programs(objs: dict[str, Path]) -> None:
    data = objs["rodata_write"].read_bytes()
    with VM() as vm:
        vm.load_elf(data, "read")
        assert vm.run() == 42
        vm.load_elf(data, "write")
        with pytest.raises(ExecutionFaultError, match="out-of-bounds write of 4 bytes"):
            vm.run()
        assert vm.maps[".rodata"].lookup(b"\0" * 4) == struct.pack("<I", 42)
