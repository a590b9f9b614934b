"""Dry runs: contexts from JSON, map files of each kind, the decision and trace lines."""

from __future__ import annotations

from pathlib import Path

import pytest
from freeoffload.offload_vm.policy import (
    ConnectContext,
    MapSchema,
    compile_object,
    context_from_json,
    load_map_file,
    pack_addr,
    redirect_entry,
    run_policy,
)

from freeoffload.errors import PolicyError

from .vmtools import example_object

ROOT = Path(__file__).resolve().parents[3]
DATA = Path(__file__).resolve().parent / "data"
PAPER = str(ROOT / "examples" / "topologies" / "paper.yaml")
ADDR_MAP = MapSchema("redirects", 1, 24, 24, 1024)
CANDIDATES = MapSchema("candidates", 2, 4, 128, 64)


def test_context_from_json_with_a_task_file() -> None:
    ctx = context_from_json({"dst": "10.0.1.11:8080", "task": str(ROOT / "examples" / "tasks" /
                                                                  "audio.yaml"), "pid": 7})
    assert (ctx.family, ctx.dst_ip, ctx.dst_port, ctx.pid) == (2, bytes([10, 0, 1, 11]), 8080, 7)
    assert (ctx.task_type, ctx.task_flags) == (1, 3)  # cpu; sensitive | urgent
    assert (ctx.demand_cpu_milli, ctx.demand_memory_mib, ctx.demand_storage_mib) == (1000, 256,
                                                                                       64)
    assert ConnectContext.unpack(ctx.pack()) == ctx
    assert len(ctx.pack()) == 64


def test_context_of_a_connected_udp_v4mapped_socket() -> None:
    ctx = context_from_json({"dst": "10.0.0.5:5683", "sock_type": "dgram", "v4mapped": True})
    packed = ctx.pack()
    assert (ctx.family, ctx.sock_type, ctx.protocol, ctx.flags) == (10, 2, 17, 1)
    assert packed[16:20] == bytes([10, 0, 0, 5])  # dst_ip4 holds the mapped address
    assert packed[24:40] == bytes(10) + b"\xff\xff" + bytes([10, 0, 0, 5])


@pytest.mark.parametrize(("raw", "message"), [
    ({"dst": "10.0.0.1"}, "dst: expected ADDRESS:PORT, got '10.0.0.1'"),
    ({"dst": "10.0.0.1:99999"}, "dst: expected ADDRESS:PORT, got '10.0.0.1:99999'"),
    ({"dst": "10.0.0.1:80", "sock": 1}, "sock: unknown field; expected one of: dst, task"),
    ({"dst": "10.0.0.1:80", "sock_type": "raw"}, "sock_type: unknown socket type 'raw'"),
    ({"dst": "10.0.0.1:80", "pid": -1}, "pid: expected a process id, got -1"),
    (["10.0.0.1:80"], 'expected a JSON object with at least "dst"'),
])
def test_bad_contexts(raw: object, message: str) -> None:
    with pytest.raises(PolicyError) as err:
        context_from_json(raw)
    assert message in str(err.value)


def test_map_files_of_each_kind(tmp_path: Path) -> None:
    table = tmp_path / "table.yaml"
    table.write_text('- {from: "10.0.0.11:80", to: "10.0.0.13:8080"}\n'
                     f'- {{key: "{pack_addr("[::1]:80").hex()}", '
                     f'value: "{pack_addr("[::1]:8080").hex()}"}}\n')
    rows, names = load_map_file("redirects", str(table), ADDR_MAP)
    assert rows == [redirect_entry("10.0.0.11:80", "10.0.0.13:8080"),
                    redirect_entry("[::1]:80", "[::1]:8080")]
    assert names == {}
    rows, names = load_map_file("candidates", PAPER, CANDIDATES, "dev1")
    assert len(rows) == 64 and names["10.0.2.13:8080"] == "edge3"


def test_bad_map_files(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text('- {from: "10.0.0.11:80", to: "10.0.0.13:8080"}\n- {to: "10.0.0.1:1"}\n')
    with pytest.raises(PolicyError) as err:
        load_map_file("redirects", str(bad), ADDR_MAP)
    assert f"{bad}:2:3: [1]: expected {{from: ADDR:PORT, to: ADDR:PORT}}" in str(err.value)
    with pytest.raises(PolicyError) as err:
        load_map_file("candidates", PAPER, CANDIDATES)
    assert 'pass --from dev1 or add "from": "dev1" to --ctx' in str(err.value)
    with pytest.raises(PolicyError) as err:
        load_map_file("candidates", PAPER, ADDR_MAP, "dev1")
    assert "row 0: 4+128 bytes, map 'candidates' has 24+24" in str(err.value)
    with pytest.raises(PolicyError) as err:
        load_map_file("routes", PAPER, None, "dev1")
    assert "the policy has no map 'routes'" in str(err.value)


def test_run_a_policy_with_a_table(clang: str, vm: None) -> None:
    ctx = context_from_json({"dst": "10.0.0.11:80"})
    decision = run_policy(example_object("redirect"), ctx,
                          {"redirects": [redirect_entry("10.0.0.11:80", "10.0.0.13:8080")]})
    assert (decision.verdict, decision.after.destination) == ("rewrite", "10.0.0.13:8080")
    assert decision.before == ctx


def test_trace_lines_reach_the_dry_run(clang: str, vm: None) -> None:
    lines: list[str] = []
    decision = run_policy(compile_object(DATA / "ok" / "trace.c"),
                          context_from_json({"dst": "10.0.0.11:80", "pid": 31}), {},
                          trace=lines.append)
    assert decision.verdict == "pass"
    assert [line.strip() for line in lines] == ["port 80 pid 31"]
