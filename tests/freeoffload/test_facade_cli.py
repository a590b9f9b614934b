from __future__ import annotations

import subprocess
import sys

import freeoffload


def test_version_and_help_run_as_a_command() -> None:
    out = subprocess.run([sys.executable, "-m", "freeoffload", "--version"],
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"freeoffload {freeoffload.__version__}"
    helped = subprocess.run([sys.executable, "-m", "freeoffload", "--help"],
                            capture_output=True, text=True, check=True)
    assert "usage: freeoffload" in helped.stdout


def test_no_command_prints_usage_and_fails() -> None:
    out = subprocess.run([sys.executable, "-m", "freeoffload"], capture_output=True, text=True)
    assert out.returncode == 2
    assert "usage: freeoffload" in out.stderr
