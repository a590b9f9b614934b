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


def test_a_command_imports_only_its_own_part() -> None:
    code = (
        "import sys\n"
        "from freeoffload.cli import build_parser\n"
        "build_parser(['topology', 'validate', 'x.yaml'])\n"
        "print(sorted(m for m in sys.modules if m.startswith(('aiohttp', 'freeoffload.agent'))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_help_lists_every_part_s_commands() -> None:
    out = subprocess.run([sys.executable, "-m", "freeoffload", "--help"],
                         capture_output=True, text=True, check=True)
    for command in ("topology", "vm", "policy", "keys", "run", "device", "probes", "agent",
                    "testbed"):
        assert f"    {command} " in out.stdout, command
