"""bench/topology.py still runs (tiny sizes; its figures are not judged here)."""

from __future__ import annotations

import re
import subprocess
import sys

from topo_maps import ROOT


def test_the_benchmark_runs_and_prints_figures_beside_baselines() -> None:
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "topology.py"), "--sizes", "10,120",
                           "--queries", "5", "--repeat", "1"],
                          capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("machine: ") and "kernel" in lines[0]
    assert lines[1].split()[:4] == ["nodes", "what", "figure", "baseline"]
    rows = [line for line in lines[2:] if line.startswith("120 ")]
    assert [re.split(r"\s{2,}", r)[1] for r in rows] == [
        "load+validate (yaml)", "load+validate (yaml, Python loader)", "load+validate (json)",
        "select (warm)", "select (cold)", "update+select"]
    assert all(" ms" in r for r in rows)
    assert rows[0].split()[-1].endswith("x")  # a ratio against the baseline
