"""The public eBPF ISA conformance suite (../shared/bpf_conformance), all 313 programs at
ISA v4, through our assembler and VM, and a sample through ``freeoffload vm exec``."""

from __future__ import annotations

import platform
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import need
from fovm_testlib import CONFORMANCE, parse
from freeoffload.offload_vm import VM

FILES = sorted(CONFORMANCE.glob("*.data")) if CONFORMANCE.is_dir() else []


def test_suite_is_present() -> None:
    need(len(FILES) == 313, f"the conformance suite (313 .data files) under {CONFORMANCE}")


# x86-64 compiles programs to native code; elsewhere "auto" interprets too.
NATIVE = "jit" if platform.machine() == "x86_64" else "interpreter"


@pytest.mark.parametrize("engine", ["auto", "interpreter"])
@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_conformance(path: Path, engine: str) -> None:
    case = parse(path)
    assert case.runnable, f"{path.name}: sections {sorted(case.sections)}"
    with VM(engine=engine) as vm:
        vm.register_helper(5, lambda a, *_: a, nargs=1, name="identity")
        vm.load(case.program())
        assert vm.engine == (NATIVE if engine == "auto" else "interpreter")
        assert vm.run(case.mem()) == case.result()


SAMPLE = FILES[::40]


@pytest.mark.parametrize("path", SAMPLE, ids=[p.stem for p in SAMPLE])
def test_plugin_protocol(path: Path) -> None:
    case = parse(path)
    proc = subprocess.run(
        [sys.executable, "-m", "freeoffload", "vm", "exec", case.mem().hex()],
        input=case.program().hex(), capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert int(proc.stdout.strip(), 16) == case.result()


def test_plugin_reports_errors() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "freeoffload", "vm", "exec"],
        input="ff00000000000000", capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode != 0
    assert "unknown opcode 0xff at PC 0" in proc.stderr
