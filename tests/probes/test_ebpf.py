"""The eBPF collectors under real load on the running kernel (root, bcc)."""

from __future__ import annotations

import ipaddress
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import need
from freeoffload.probes import open_collector
from freeoffload.probes._ebpf import EbpfCollector
from freeoffload.probes._features import ebpf_off_reason
from freeoffload.probes._scope import resolve_scope, scope_usage_seconds
from freeoffload.probes.record import RecordBuilder
from freeoffload.probes.sample import PeerSample
from freeoffload.topology import load_topology_text

from .conftest import NetPair, join_cgroup
from .test_record import as_crmap

pytestmark = [pytest.mark.root, pytest.mark.bpf]


@pytest.fixture(scope="module")
def node_collector() -> Iterator[EbpfCollector]:
    """One node-wide collector for the tests that need no scope (compiling takes seconds)."""
    need(os.geteuid() == 0, "needs root")
    reason = ebpf_off_reason()
    need(reason is None, f"eBPF is off: {reason}")
    with EbpfCollector() as collector:
        yield collector

SPIN = "import time\nend = time.monotonic() + float(__import__('sys').argv[1])\n" \
       "while time.monotonic() < end: pass\n"


def _realtime(cgroup: Path) -> None:
    """In the child: join the cgroup and run round-robin real-time, so that other load on a
    shared machine cannot keep the spinner from a core (the kernel still caps it at 95%)."""
    join_cgroup(cgroup)
    os.sched_setscheduler(0, os.SCHED_RR, os.sched_param(1))


def test_a_cpu_spinner_in_a_cgroup_is_seen_busy_on_a_core(bpf: None, cgroup: Path) -> None:
    scope = resolve_scope(cgroup)
    with EbpfCollector(scope) as collector:
        spinner = subprocess.Popen([sys.executable, "-c", SPIN, "3"],
                                   preexec_fn=lambda: _realtime(cgroup))
        time.sleep(0.5)
        collector.sample()
        before = scope_usage_seconds(scope)
        time.sleep(2.0)
        sample = collector.sample()
        after = scope_usage_seconds(scope)
        spinner.wait()
    assert before is not None and after is not None
    truth = (after - before) / sample.interval  # cores, from the kernel's own accounting
    seen = sample.cpu.percent / 100.0 * sample.cpu.capacity_cores
    assert sample.mode == "ebpf" and sample.scope == str(cgroup)
    assert seen == pytest.approx(truth, rel=0.1), (seen, truth)
    assert seen >= 0.8, f"spinner seen at {seen:.2f} of a core (cpu.stat: {truth:.2f})"
    assert sample.tasks == 1


def test_cpu_in_a_limited_cgroup_is_a_share_of_its_quota(
        bpf: None, limited_cgroup: tuple[Path, list[Path]]) -> None:
    cgroup, joined = limited_cgroup
    scope = resolve_scope(cgroup)
    with EbpfCollector(scope) as collector:
        spinner = subprocess.Popen([sys.executable, "-c", SPIN, "3.5"],
                                   preexec_fn=lambda: (join_cgroup(*joined), os.nice(-10)))
        time.sleep(0.8)
        collector.sample()
        before = scope_usage_seconds(scope)
        time.sleep(2.0)
        sample = collector.sample()
        after = scope_usage_seconds(scope)
        spinner.wait()
    assert before is not None and after is not None
    assert sample.cpu.capacity_cores == 0.5
    truth = (after - before) / sample.interval / 0.5 * 100  # % of the quota, from cpu.stat
    assert sample.cpu.percent == pytest.approx(truth, rel=0.1, abs=3.0)
    assert sample.cpu.percent >= 60.0, f"{sample.cpu.percent:.0f}% of half a core"


def test_dd_to_a_file_is_counted_in_bytes(bpf: None, cgroup: Path, tmp_path: Path) -> None:
    size = 32 * 1024 * 1024
    with EbpfCollector(resolve_scope(cgroup)) as collector:
        collector.sample()
        subprocess.run(["dd", "if=/dev/zero", f"of={tmp_path / 'data'}", "bs=1M",
                        f"count={size >> 20}", "oflag=direct", "conv=fsync", "status=none"],
                       check=True, preexec_fn=lambda: join_cgroup(cgroup))
        sample = collector.sample()
    written = sum(d.write_bytes for d in sample.disks.values())
    writes = sum(d.writes for d in sample.disks.values())
    assert written == pytest.approx(size, rel=0.05)
    assert writes >= 1
    assert all(d.latency_seconds is not None and d.latency_seconds > 0
               for d in sample.disks.values() if d.writes)


def test_tcp_over_a_veth_pair_counts_bytes_peer_and_rtt(
        node_collector: EbpfCollector, netpair: NetPair) -> None:
    size = 16 * 1024 * 1024
    node_collector.sample()
    sent, received = netpair.transfer(size)
    time.sleep(0.2)
    sample = node_collector.sample()
    assert sent == received == size
    to_b = sample.peers[netpair.addr_b]
    from_a = sample.peers[netpair.addr_a]
    assert to_b.sent_bytes == pytest.approx(size, rel=0.05)
    assert from_a.received_bytes == pytest.approx(size, rel=0.05)
    assert to_b.rtt_seconds is not None and 0 < to_b.rtt_seconds < 0.1
    assert to_b.connects == 1 and to_b.connect_seconds is not None
    link = sample.interfaces[netpair.if_a]
    # The link carries the payload plus headers, in GSO segments of up to 64 KiB.
    assert link.tx_bytes == pytest.approx(size, rel=0.05) and link.tx_packets > 0
    assert sample.interfaces[netpair.if_b].rx_bytes == pytest.approx(size, rel=0.05)
    builder = RecordBuilder("edge-a", names={netpair.addr_b: "edge-b"})
    builder.add(sample)
    edges = builder.edges()
    assert [e["EndNode"] for e in edges if e["EndNode"] == "edge-b"] == ["edge-b"]
    edge = next(e for e in edges if e["EndNode"] == "edge-b")
    assert edge["BandWidth"] > 0 and edge["Latency"] > 0
    others = sorted({e["EndNode"] for e in edges} - {"edge-b"})
    crmap = load_topology_text(as_crmap(builder.record(), ["edge-b", *others]), "record.yaml")
    assert any(e.end_node == "edge-b" and e.latency_ms == edge["Latency"] for e in crmap.edges)


def test_tcp_over_ipv6_keeps_the_peer_address(
        node_collector: EbpfCollector, netpair: NetPair) -> None:
    size = 4 * 1024 * 1024
    node_collector.sample()
    sent, received = netpair.transfer(size, port=5206, to=netpair.addr6_b)
    sample = node_collector.sample()
    assert sent == received == size
    peer = sample.peers[str(ipaddress.IPv6Address(netpair.addr6_b))]
    assert peer.sent_bytes == pytest.approx(size, rel=0.05)
    assert peer.rtt_seconds is not None and peer.connects == 1
    back = sample.peers[str(ipaddress.IPv6Address(netpair.addr6_a))]
    assert back.received_bytes == pytest.approx(size, rel=0.05)


def _send(collector: EbpfCollector, netpair: NetPair, seconds: float,
          port: int) -> tuple[PeerSample, float]:
    """What the collector sees of a sending to b as fast as it can for ``seconds`` (and
    until b has it all): the peer, and the sample's Mbit/s, as the node record takes it."""
    collector.sample()
    netpair.transfer(1 << 40, seconds, port)
    sample = collector.sample()
    peer = sample.peers[netpair.addr_b]
    return peer, (peer.sent_bytes or 0) * 8 / sample.interval / 1e6


def test_a_shaped_link_moves_the_throughput_seen(
        node_collector: EbpfCollector, netpair: NetPair) -> None:
    free, free_mbit = _send(node_collector, netpair, 1.0, 5202)
    netpair.shape("8mbit")
    shaped, shaped_mbit = _send(node_collector, netpair, 3.0, 5203)
    # 8 Mbit/s through the token bucket, a little less over the sample (process start-up).
    assert 5.0 < shaped_mbit < 9.0, shaped_mbit
    assert free_mbit > 5 * shaped_mbit, (free_mbit, shaped_mbit)
    # Segments now wait in the token bucket's queue: the smoothed RTT grows with it.
    assert free.rtt_seconds is not None and shaped.rtt_seconds is not None
    assert shaped.rtt_seconds > 5 * free.rtt_seconds, (free.rtt_seconds, shaped.rtt_seconds)


def test_a_link_that_drops_shows_retransmits_to_the_peer(
        node_collector: EbpfCollector, netpair: NetPair) -> None:
    free, _ = _send(node_collector, netpair, 0.5, 5204)
    netpair.shape("20mbit", limit=20000)  # a queue shorter than a burst of segments
    lossy, _ = _send(node_collector, netpair, 2.0, 5205)
    assert free.retransmits is not None and lossy.retransmits is not None
    # Per byte sent: a fast veth sends hundreds of MB in 0.5 s and may retransmit a little too.
    free_rate = free.retransmits / max(free.sent_bytes or 0, 1)
    lossy_rate = lossy.retransmits / max(lossy.sent_bytes or 0, 1)
    assert lossy.retransmits >= 50 and lossy_rate > 10 * free_rate, (free, lossy)


def test_auto_mode_picks_ebpf_as_root(bpf: None) -> None:  # a collector of its own
    collector = open_collector()
    try:
        time.sleep(0.2)
        sample = collector.sample()
    finally:
        collector.close()
    assert sample.mode == "ebpf" and sample.reason == ""
    assert len(sample.cpu.per_cpu) == os.cpu_count()
    assert sample.cpu.runq_latency  # the scheduler ran something in 0.2 s
