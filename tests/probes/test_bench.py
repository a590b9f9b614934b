"""bench/probes.py runs (tiny) and prints its table with the baselines and ratios."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import need

BENCH = Path(__file__).resolve().parents[2] / "bench" / "probes.py"


@pytest.mark.root
@pytest.mark.bpf
@pytest.mark.slow
def test_the_benchmark_prints_baselines_and_ratios(bpf: None) -> None:
    for tool in ("strace", "sar", "collectl"):
        need(shutil.which(tool) is not None, f"needs {tool} (.ci/install-deps)")
    out = subprocess.run([sys.executable, str(BENCH), "--seconds", "2", "--interval", "1"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith("machine: ") and "kernel " in lines[0]
    rows = {line.split()[0]: line.split() for line in lines if line.startswith(
        ("freeoffload", "sar", "collectl"))}
    assert set(rows) == {"freeoffload", "sar", "collectl"}
    # sar -A and collectl each make thousands of syscalls even in 2 s
    assert int(rows["sar"][2]) > 1000 and int(rows["collectl"][2]) > 1000
    assert rows["sar"][-3].endswith("%") and rows["collectl"][-3].endswith("%")
    assert any(line.startswith("collector CPU: ") for line in lines)
    assert any(line.startswith("bcc start-up") for line in lines)
