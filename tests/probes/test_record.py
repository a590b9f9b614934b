"""The node's CR-map record validates through freeoffload.topology with the file's names."""

from __future__ import annotations

import time
from typing import Any

import yaml
from freeoffload.probes import RecordBuilder, open_collector
from freeoffload.probes.sample import CpuSample, MemorySample, PeerSample, Sample
from freeoffload.topology import load_topology_text


def as_crmap(record: dict[str, Any], peers: list[str]) -> str:
    """The record in a map: the agent adds Role, Group and Address; peers are edge nodes."""
    node = dict(record["node"], Role="edge", Group="g1", Address="10.0.0.2:8080")
    cloud = {"Name": "cloud", "Role": "cloud", "Group": "cloud", "Address": "10.0.0.1:8080",
             "ComputingPower": {"CPU": {"cores": 8, "MHz": 3000}, "Memory": 16384,
                                "Storage": 512}}
    others = [dict(cloud, Name=p, Role="edge", Group="g1") for p in peers]
    return yaml.safe_dump({"nodes": [cloud, node, *others], "edges": record["edges"]})


def test_a_procfs_record_validates_as_a_node() -> None:
    collector = open_collector("procfs")
    try:
        time.sleep(0.2)
        builder = RecordBuilder("edge1")
        builder.add(collector.sample())
    finally:
        collector.close()
    crmap = load_topology_text(as_crmap(builder.record(), []), "record.yaml")
    node = crmap.nodes["edge1"]
    assert node.computing_power.cpu.cores >= 1
    assert node.computing_power.memory_mib > node.resource.memory_used_mib > 0
    assert node.resource.running_tasks > 0


def _sample(peers: dict[str, PeerSample], interval: float = 1.0) -> Sample:
    return Sample(time.time(), interval, "ebpf", "", None, CpuSample(10.0, [10.0], 1.0),
                  MemorySample(1 << 30, 1 << 29, 50.0), peers=peers, tasks=3,
                  storage_used_bytes=1 << 30)


def test_links_take_rtt_before_connect_latency_and_the_peak_throughput() -> None:
    builder = RecordBuilder("edge1", names={"10.0.0.3": "edge3"})
    builder.add(_sample({"10.0.0.3": PeerSample("10.0.0.3", 1_000_000, 250_000, None, 0.004,
                                                1, 0)}))
    builder.add(_sample({"10.0.0.3": PeerSample("10.0.0.3", 125_000, 0, 0.002, None, 0, 0)},
                        interval=0.5))
    builder.add(_sample({"10.0.0.4": PeerSample("10.0.0.4", 0, 0, None, None, 0, 0)}))
    edges = builder.edges()
    assert edges == [{"StartNode": "edge1", "EndNode": "edge3", "BandWidth": 10.0,
                      "Latency": 2.0}]
    crmap = load_topology_text(as_crmap(builder.record(), ["edge3"]), "record.yaml")
    edge = crmap.edges[0]
    assert (edge.start_node, edge.end_node, edge.bandwidth_mbit, edge.latency_ms) == \
        ("edge1", "edge3", 10.0, 2.0)
