"""``freeoffload topology validate|show|select`` as a user runs them."""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from freeoffload.topology import _cli
from topo_maps import PAPER, ROOT, TASKS

from freeoffload.errors import ConfigError

DATA = Path(__file__).parent / "data"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Run one topology subcommand in-process, the way the facade does (ConfigError -> 2)."""
    parser = argparse.ArgumentParser(prog="freeoffload")
    _cli.register(parser.add_subparsers())
    args = parser.parse_args(["topology", *argv])
    try:
        code = int(args.func(args) or 0)
    except ConfigError as err:
        print(err, file=sys.stderr)
        code = 2
    out = capsys.readouterr()
    return code, out.out, out.err


def test_validate_accepts_valid_files(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "validate", str(PAPER), *map(str, sorted(TASKS.glob("*.yaml"))))
    assert code == 0, err
    assert f"{PAPER}: ok: CR-map, 7 nodes, 8 edges" in out
    assert "task 'audio-processing', Type cpu" in out


def test_validate_prints_every_problem_of_every_file(capsys: pytest.CaptureFixture[str]) -> None:
    bad = [DATA / "bad" / "negative.yaml", DATA / "bad" / "task_bool.yaml",
           DATA / "ok" / "cpu_only.yaml", TASKS / "web_request.yaml"]
    code, out, err = run(capsys, "validate", *map(str, bad))
    assert code == 2
    lines = err.strip().splitlines()
    assert lines[0].startswith(f"{bad[0]}:12:61: edges[0].Latency: must be 0 or more")
    assert lines[1].startswith(f"{bad[1]}:4:9: Urgent: expected a boolean, got 'yes please'")
    # web_request is io; the map given beside it has only cpu
    assert lines[2].startswith(f"{TASKS / 'web_request.yaml'}:3:7: Type: no node of")
    assert len(lines) == 3
    assert "cpu_only.yaml: ok" in out


def test_show_prints_the_node_table(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "show", str(PAPER))
    assert code == 0
    header, *rows = out.split("\n\n")[0].splitlines()
    assert header.split()[:3] == ["NAME", "ROLE", "GROUP"]
    assert [r.split()[0] for r in rows] == ["cloud", "edge1", "edge2", "edge3", "edge4", "dev1",
                                            "dev2"]
    edge1 = rows[1].split()
    assert "92%" in edge1 and "0.32" in edge1 and "yes" in edge1
    assert "LATENCY(ms)" in out


@pytest.mark.parametrize("fmt", ["yaml", "json"])
def test_show_yaml_and_json_carry_the_paper_field_names(
        capsys: pytest.CaptureFixture[str], tmp_path: Path, fmt: str) -> None:
    code, out, _ = run(capsys, "show", str(PAPER), "--format", fmt)
    assert code == 0
    if fmt == "json":
        data = json.loads(out)
        assert data["nodes"][1]["ComputingPower"]["CPU"]["cores"] == 4
        assert data["edges"][0]["Latency"] == 2.5
    else:
        again = tmp_path / "again.yaml"
        again.write_text(out)
        assert run(capsys, "validate", str(again))[0] == 0


def test_show_draws_a_png(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    picture = tmp_path / "paper.png"
    code, _, err = run(capsys, "show", str(PAPER), "--png", str(picture))
    assert code == 0
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert picture.stat().st_size > 10_000  # a real drawing, not an empty canvas
    assert f"wrote {picture}" in err
    code, _, err = run(capsys, "show", str(PAPER), "--png", str(tmp_path / "no" / "x.png"))
    assert code == 2
    assert "--png: cannot write the picture" in err


def test_select_prints_the_name_first(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "select", "--map", str(PAPER), "--task",
                       str(TASKS / "audio.yaml"), "--from", "dev1")
    assert code == 0
    assert out.splitlines()[:3] == ["edge3", "rule: sensitive-urgent", "level: other-group"]
    assert "rejected" not in out


def test_select_explain_lists_every_rejection(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "select", "--map", str(PAPER), "--task",
                       str(TASKS / "audio.yaml"), "--from", "dev1", "--explain")
    assert code == 0
    rejected = out.split("rejected:\n")[1].splitlines()
    assert [line.split()[0] for line in rejected] == ["edge1", "edge2", "edge4", "cloud"]
    assert "free CPU 0.32 cores < Demand 1" in rejected[0]


def test_select_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "select", "--map", str(PAPER), "--task",
                       str(TASKS / "web_request.yaml"), "--from", "dev2", "--json", "--explain")
    assert code == 0
    answer = json.loads(out)
    assert (answer["node"], answer["rule"], answer["level"]) == ("edge3", "urgent", "group")
    assert answer["latency_ms"] == 2.8
    assert {r["node"] for r in answer["rejections"]} == {"edge1", "edge2", "edge4", "cloud"}


def test_select_errors(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run(capsys, "select", "--map", str(PAPER), "--task",
                       str(TASKS / "audio.yaml"), "--from", "dev7")
    assert (code, "from: unknown node 'dev7'" in err) == (2, True)
    huge = tmp_path / "huge.yaml"
    huge.write_text("Name: huge\nType: cpu\nDemand: {CPU: 500}\n")
    code, out, err = run(capsys, "select", "--map", str(PAPER), "--task", str(huge),
                         "--from", "dev1")
    assert code == 1
    assert out.splitlines()[0] == "none"
    assert "no node can run task 'huge' from dev1" in err


def test_the_installed_command_runs_topology() -> None:
    command = shutil.which("freeoffload", path=str(Path(sys.executable).parent))
    assert command, "the freeoffload console script is installed beside the interpreter"
    done = subprocess.run([command, "topology", "select", "--map", str(PAPER), "--task",
                           str(TASKS / "audio.yaml"), "--from", "dev1"],
                          capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == "edge3"
    bad = subprocess.run([command, "topology", "validate", str(DATA / "bad" / "no_cloud.yaml")],
                         capture_output=True, text=True)
    assert bad.returncode == 2
    assert bad.stderr.strip().endswith("no cloud node; add a node with 'Role: cloud': "
                                       "it answers what no group can")


def test_validate_json_form_maps(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, _ = run(capsys, "show", str(PAPER), "--format", "json")
    good = tmp_path / "paper.json"
    good.write_text(out)
    bad = tmp_path / "bad.json"
    bad.write_text(out.replace('"Latency": 2.5', '"Latency": "fast"', 1))
    code, out, err = run(capsys, "validate", str(good), str(bad))
    assert code == 2
    assert f"{good}: ok: CR-map, 7 nodes, 8 edges" in out
    line = next(i for i, text in enumerate(bad.read_text().splitlines(), 1) if '"fast"' in text)
    assert err.startswith(f"{bad}:{line}:")
    assert "edges[0].Latency: expected a number, got 'fast'" in err
