"""The systemd example and the benchmark stay runnable."""

from __future__ import annotations

import configparser
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples/systemd"


def test_example_config_passes_agent_check(tmp_path: Path) -> None:
    (tmp_path / "site-a.token").write_text("site-a-token\n")
    text = (EXAMPLES / "agent.yaml").read_text()
    text = text.replace("/etc/freeoffload/site-a.token", str(tmp_path / "site-a.token"))
    text = text.replace("mode: auto", "mode: procfs")  # the probes' own tests load eBPF
    (tmp_path / "agent.yaml").write_text(text)
    out = subprocess.run([sys.executable, "-m", "freeoffload.agent", "check", "--config",
                          str(tmp_path / "agent.yaml")], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "node edge1, role member, group site-a" in out.stdout


def test_systemd_unit_runs_the_agent_and_checks_first() -> None:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.read(EXAMPLES / "freeoffload-agent.service")
    service = unit["Service"]
    assert service["ExecStart"].endswith("freeoffload agent --config /etc/freeoffload/agent.yaml")
    assert "agent check" in service["ExecStartPre"]
    assert service["KillSignal"] == "SIGTERM"
    if shutil.which("systemd-analyze"):
        out = subprocess.run(["systemd-analyze", "verify",
                              str(EXAMPLES / "freeoffload-agent.service")],
                             capture_output=True, text=True)
        assert "Unknown key" not in out.stderr and "Unknown section" not in out.stderr


@pytest.mark.slow
def test_bench_smoke_prints_the_table_with_baseline_and_ratios() -> None:
    out = subprocess.run([sys.executable, str(ROOT / "bench/agent.py"), "--tiny"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "kernel" in out.stdout and "baseline: bare aiohttp" in out.stdout
    rows = [line for line in out.stdout.splitlines() if line.startswith("| reports")]
    assert len(rows) == 2 and all(float(r.split("|")[4]) > 0 for r in rows)
