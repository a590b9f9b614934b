"""bench/vm.py still builds and runs (a smoke run with a tiny iteration count; the figures
themselves belong to the benchmark, not to tests)."""

from __future__ import annotations

import platform
import shutil
import subprocess
import sys
from pathlib import Path

from conftest import need

ROOT = Path(__file__).resolve().parents[2]


def test_bench_smoke() -> None:
    need(shutil.which("clang") is not None and shutil.which("gcc") is not None,
         "clang and gcc build the benchmark")
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "vm.py"), "--iterations", "5"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    rows = {line.split()[0]: line.split() for line in proc.stdout.splitlines()[4:9]}
    assert set(rows) == {"empty", "sum", "hash", "policy", "policy_shared"}
    assert int(rows["sum"][1]) > 3000  # the loop ran in the VM, not folded away
    assert "kernel" in proc.stdout.splitlines()[0]
    assert "ns per executed instruction" in proc.stdout
    if platform.machine() == "x86_64":  # the default engine is the JIT there
        assert "the default engine ran as: jit " in proc.stdout
