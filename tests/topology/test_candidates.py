"""The candidates map rows: what a CR-map looks like to the selection policy."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest
from freeoffload.topology import load_topology
from freeoffload.topology.candidates import (
    CANDIDATE_SIZE,
    MAX_CANDIDATES,
    Candidate,
    _free_milli,
    candidate_items,
    candidate_rows,
    pack_candidate,
    pack_candidates,
)
from hypothesis import given
from hypothesis import strategies as st

from freeoffload.errors import TopologyError

ROOT = Path(__file__).resolve().parents[2]
PAPER = ROOT / "examples" / "topologies" / "paper.yaml"
INCLUDE = ROOT / "offload_vm" / "include"


def test_paper_rows_from_dev1() -> None:
    rows = {r.name: r for r in candidate_rows(load_topology(PAPER), "dev1")}
    assert sorted(rows) == ["cloud", "edge1", "edge2", "edge3", "edge4"]  # no devices
    edge1, edge3, cloud = rows["edge1"], rows["edge3"], rows["cloud"]
    assert (edge1.level, edge3.level, cloud.level) == (0, 1, 2)  # group, other group, cloud
    assert (edge1.role, cloud.role) == (1, 2)
    assert edge1.address == "10.0.1.11:8080" and edge1.ip == bytes([10, 0, 1, 11])
    assert edge1.flags == 0x7 and rows["edge2"].flags == 0x3  # edge2 has no Security
    assert edge1.headroom_milli == 80  # 92% busy
    assert edge1.free_cpu_milli == 319  # 4 cores x 0.08 = 0.32 (0.31999...), rounded down
    assert edge1.capable == (1 << 1) | (1 << 2)
    assert edge1.capability_us[1] == 12500  # 12.5 ms, unscaled: the policy scales it
    assert edge1.cpu_milli == 4000 and cloud.cpu_milli == 32000
    assert edge1.stamp != 0 and {r.stamp for r in rows.values()} == {edge1.stamp}
    assert edge1.latency_rank == 0 and edge1.headroom_rank == 4 and cloud.name_rank == 0


def test_ranks_are_dense_and_ordered_as_the_values() -> None:
    rows = candidate_rows(load_topology(PAPER), "dev1")
    for value, rank in (("latency_us", "latency_rank"), ("headroom_milli", "headroom_rank")):
        ordered = sorted(rows, key=lambda r: getattr(r, rank))
        values = [getattr(r, value) for r in ordered]
        assert values == sorted(values, reverse=(value == "headroom_milli"))
        assert sorted({getattr(r, rank) for r in rows}) == list(range(len({*values})))


def test_offline_and_unreachable_nodes() -> None:
    crmap = load_topology(PAPER)
    crmap.put_node(replace(crmap.nodes["edge2"], online=False))
    crmap.edges = [e for e in crmap.edges if "edge4" not in (e.start_node, e.end_node)]
    crmap.invalidate()
    rows = {r.name: r for r in candidate_rows(crmap, "dev1")}
    assert not rows["edge2"].flags & 0x2  # present, not online
    assert "edge4" not in rows  # no path: never a candidate


def test_overcommitted_memory_marks_the_node_full() -> None:
    crmap = load_topology(PAPER)
    node = crmap.nodes["edge3"]
    crmap.put_node(replace(node, resource=replace(node.resource, memory_used_mib=1e6)))
    row = next(r for r in candidate_rows(crmap, "dev1") if r.name == "edge3")
    assert row.flags & 0x8 and row.free_memory_mib == 0


def test_address_without_ip_is_a_located_error() -> None:
    crmap = load_topology(PAPER)
    crmap.put_node(replace(crmap.nodes["edge3"], address="edge3.local:8080"))
    with pytest.raises(TopologyError) as err:
        candidate_rows(crmap, "dev1")
    assert "edge3.Address: 'edge3.local:8080' has no IP address" in str(err.value)


def test_ipv6_and_mapped_addresses() -> None:
    crmap = load_topology(PAPER)
    crmap.put_node(replace(crmap.nodes["edge3"], address="[2001:db8::13]:8080"))
    crmap.put_node(replace(crmap.nodes["edge4"], address="[::ffff:10.0.2.14]:8080"))
    rows = {r.name: r for r in candidate_rows(crmap, "dev1")}
    assert rows["edge3"].family == 10 and rows["edge3"].address == "[2001:db8::13]:8080"
    assert rows["edge4"].family == 2 and rows["edge4"].address == "10.0.2.14:8080"
    packed = pack_candidate(rows["edge3"])
    assert packed[8:12] == bytes(4) and packed[16:32] == rows["edge3"].ip


def test_every_computation_gets_a_new_stamp_unless_given() -> None:
    crmap = load_topology(PAPER)
    first, second = candidate_rows(crmap, "dev1"), candidate_rows(crmap, "dev1")
    assert first[0].stamp != second[0].stamp and 0 not in (first[0].stamp, second[0].stamp)
    assert {r.stamp for r in candidate_rows(crmap, "dev1", stamp=77)} == {77}
    assert pack_candidate(candidate_rows(crmap, "dev1", stamp=77)[0])[112:116] == (77).to_bytes(
        4, "little")


def test_items_fill_every_slot() -> None:
    rows = candidate_rows(load_topology(PAPER), "dev1")
    items = candidate_items(rows)
    assert len(items) == MAX_CANDIDATES
    assert items[0] == ((0).to_bytes(4, "little"), pack_candidate(rows[0]))
    assert items[-1] == ((MAX_CANDIDATES - 1).to_bytes(4, "little"), bytes(CANDIDATE_SIZE))
    assert pack_candidates(rows) == b"".join(v for _, v in items[:len(rows)])


@given(st.floats(min_value=0, max_value=1e5, allow_nan=False),
       st.integers(min_value=0, max_value=10**8))
def test_free_cpu_compares_like_the_float(free: float, demand_milli: int) -> None:
    assert (free < demand_milli / 1000) == (demand_milli > _free_milli(free))


_LAYOUT_C = r"""
#include <stdio.h>
#include <string.h>
#include <freeoffload/policy.h>
int main(void) {
    struct fo_candidate c;
    unsigned char ip6[16];
    memset(&c, 0, sizeof c);
    for (int i = 0; i < 16; i++) ip6[i] = (unsigned char)(0xa0 + i);
    c.flags = 7; c.family = 10; c.port = 8080; memcpy(c.ip6, ip6, 16);
    c.role = 1; c.level = 2; c.latency_us = 3; c.headroom_milli = 4; c.capable = 6;
    c.free_cpu_milli = 7; c.free_memory_mib = 8; c.free_storage_mib = 9;
    for (int i = 0; i < FO_TASK_TYPES; i++) {
        c.capability_us[i] = 20 + i; c.power_rank[i] = 30 + i;
    }
    c.latency_rank = 11; c.headroom_rank = 12; c.name_rank = 13; c.cpu_milli = 14; c.stamp = 15;
    fwrite(&c, sizeof c, 1, stdout);
    return 0;
}
"""


def test_python_layout_is_the_headers(tmp_path: Path) -> None:
    cc = shutil.which("cc") or shutil.which("gcc")
    assert cc, "a C compiler is part of the build dependencies"
    (tmp_path / "layout.c").write_text(_LAYOUT_C)
    subprocess.run([cc, "-Wall", "-Werror", f"-I{INCLUDE}", "layout.c", "-o", "layout"],
                   cwd=tmp_path, check=True)
    from_c = subprocess.run([tmp_path / "layout"], capture_output=True, check=True).stdout
    row = Candidate("x", 7, 10, bytes(range(0xa0, 0xb0)), 8080, 1, 2, 3, 4, 6, 7, 8, 9,
                    (20, 21, 22, 23), 11, 12, (30, 31, 32, 33), 13, 14, 15)
    assert len(from_c) == CANDIDATE_SIZE
    assert pack_candidate(row) == from_c
