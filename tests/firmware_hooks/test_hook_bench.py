"""bench/hook.py runs (tiny iteration counts) and prints its tables with the baseline."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from conftest import need
from hooktools import ROOT, hook_lib

__all__ = ["hook_lib"]  # fixture used below


def test_bench_smoke(hook_lib: Path) -> None:
    need(shutil.which("curl") is not None and shutil.which("clang") is not None,
         "curl and clang are installed by .ci/install-deps")
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "hook.py"), "--iterations", "50",
                           "--rounds", "1", "--startup-runs", "2"], capture_output=True,
                          text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "kernel" in out and "no hook (baseline)" in out
    for row in ("hook, no policy", "hook, policy returning at once", "hook, no matching rule",
                "hook, policy reading the socket type",
                "hook, selection over 16 candidates", "hook, selection, room on every row",
                "hook (LD_PRELOAD), no policy",
                "empty LD_AUDIT module"):
        assert row in out
