from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from freeoffload.agent.config import RefreshConfig, default_config, load_config, load_config_text

from freeoffload.errors import AgentConfigError

DATA = Path(__file__).parent / "data"


def test_good_config_loads_every_field() -> None:
    cfg = load_config(DATA / "ok/center.yaml")
    assert (cfg.node, cfg.role, cfg.group) == ("edge1", "center", "g1")
    assert cfg.listen == ("127.0.0.1", 7070)
    assert cfg.cloud == "10.0.0.9:7070" and cfg.peers == ("10.0.1.2:7070",)
    assert cfg.tokens == {"g2": "g2-secret"} and cfg.token == "g1-secret"
    assert cfg.trigger.threshold == 70 and cfg.trigger.samples == 3
    assert cfg.trigger.refresh == RefreshConfig(interval=0.5, max_age=30, min_change=0.2)
    assert cfg.record["Security"] is True


def test_listen_flag_overrides_the_file() -> None:
    cfg = load_config(DATA / "ok/center.yaml", listen="0.0.0.0:9000")
    assert cfg.listen == ("0.0.0.0", 9000)


def test_no_config_is_a_one_node_group_that_is_its_own_center() -> None:
    cfg = default_config("127.0.0.1:7171")
    assert cfg.role == "center" and cfg.group == cfg.node
    assert cfg.address == "127.0.0.1:7171"


def test_every_problem_is_reported_with_line_and_field() -> None:
    with pytest.raises(AgentConfigError) as caught:
        load_config(DATA / "bad/many.yaml")
    lines = str(caught.value).splitlines()
    src = str(DATA / "bad/many.yaml")
    expected = [
        f"{src}:3:7: role: unknown value 'leader'; expected one of: member, center, cloud",
        f"{src}:4:9: listen: port must be 1..65535",
        f"{src}:5:18: report_interval: expected a number, got 'fast'",
        f"{src}:6:24: peers[1]: missing host",
        f"{src}:9:15: trigger.hysteresis: 65 must be below threshold 60",
        f"{src}:11:25: trigger.devices[0].url: expected an http:// or https:// URL",
        f"{src}:12:1: colud: unknown field; did you mean 'cloud'?",
    ]
    for want in expected:
        assert any(line.startswith(want) for line in lines), (want, lines)
    assert any("trigger.devices[0].attached: missing" in line for line in lines)
    assert any("trigger.key: devices are listed but no signing key" in line for line in lines)


def test_refresh_defaults_and_errors_name_line_field_and_allowed_values() -> None:
    assert load_config_text("node: a\ntrigger: {threshold: 80}\n").trigger.refresh == \
        RefreshConfig(interval=1.0, max_age=15.0, min_change=0.1)
    src = str(DATA / "bad/refresh.yaml")
    with pytest.raises(AgentConfigError) as caught:
        load_config(src)
    lines = str(caught.value).splitlines()
    assert lines[0].startswith(f"{src}:6:14: trigger.refresh.max_age: 10 s is shorter than "
                               "interval 20 s; rows are looked at every interval"), lines
    assert lines[1] == f"{src}:7:17: trigger.refresh.min_change: 1.5 is out of range; " \
                       "allowed: 0.01..1", lines
    assert lines[2].startswith(f"{src}:8:5: trigger.refresh.every: unknown field"), lines
    assert len(lines) == 3, lines


def test_yaml_syntax_error_names_the_line() -> None:
    with pytest.raises(AgentConfigError) as caught:
        load_config(DATA / "bad/syntax.yaml")
    assert str(caught.value).startswith(f"{DATA / 'bad/syntax.yaml'}:3:")


def test_agent_check_command() -> None:
    ok = subprocess.run([sys.executable, "-m", "freeoffload.agent", "check", "--config",
                         str(DATA / "ok/center.yaml")], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert "ok: node edge1, role center, group g1" in ok.stdout
    bad = subprocess.run([sys.executable, "-m", "freeoffload.agent", "check", "--config",
                          str(DATA / "bad/many.yaml")], capture_output=True, text=True)
    assert bad.returncode == 2
    assert "many.yaml:3:7: role: unknown value 'leader'" in bad.stderr
