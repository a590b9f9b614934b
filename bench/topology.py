"""How fast are loading+validating a CR-map and selecting a target, at 10 to 10,000 nodes?

Generated maps: one cloud, groups of 50 nodes (40 edges, 10 devices), each group a star around
its first edge with a few extra links, group hubs in a ring with chords, hubs linked to the cloud.
Figures, each beside its baseline from the same run:

- load+validate: ``load_topology(file)`` vs the bare parse of the same file, for the map written
  as block YAML (``dump_topology``; baseline: libyaml via ``yaml.load(CSafeLoader)``, no
  locations, no checks) and as JSON-form YAML (``dump_topology_json``, what agents exchange;
  baseline: ``json.loads``). Target: <= 1 s at 10,000 nodes. Block YAML is read by the C
  loader (``freeoffload._yamlfast``); the row "yaml, Python loader" is the same load with the
  C module switched off (the Python event loader every unusual file still goes through).
- select (warm): ``select_target`` with the map's indexes and the requester's latencies cached
  (mean of ``--queries``, best of ``--repeat`` passes) vs the reference path that checks every
  candidate in Python (``explain=True``).
  Target: <= 1 ms at 10,000 nodes.
- select (cold): the first query from a requester after the map changed (routing, index build).
- update+select: replace one node's record (``put_node``, new load) and select again, vs the
  same after ``invalidate()`` (everything rebuilt).

Times are this process's CPU time (``time.process_time``), so other load on a shared machine does
not count; the load average is printed with the machine.

Usage: python bench/topology.py [--sizes 10,1000,10000] [--queries 200]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import yaml
from freeoffload.topology import (
    CPU,
    ComputingPower,
    CRMap,
    Edge,
    Node,
    Resource,
    dump_topology,
    dump_topology_json,
    load_task,
    load_topology,
    select_target,
)
from machine import describe

from freeoffload import yamlfile

ROOT = Path(__file__).resolve().parents[1]
GROUP = 50


def _node(rnd: random.Random, name: str, role: str, group: str, index: int) -> Node:
    return Node(
        name=name, role=role, group=group,  # type: ignore[arg-type]
        address=f"10.{index >> 16 & 255}.{index >> 8 & 255}.{index & 255}:8080",
        computing_power=ComputingPower(CPU(rnd.choice((2, 4, 8)), 2000), 8192, 256),
        security=rnd.random() < 0.3,
        resource=Resource(cpu_percent=rnd.choice((5, 20, 45, 70, 95)), memory_used_mib=2048,
                          storage_used_gib=20, running_tasks=rnd.randint(0, 9)),
        capability={} if role == "device" else {"cpu": rnd.uniform(5, 20),
                                                 "io": rnd.uniform(15, 40)},
    )


def generate(size: int, seed: int = 7) -> CRMap:
    """A map of ``size`` nodes: one cloud and groups of up to 50."""
    rnd = random.Random(seed)
    crmap = CRMap({"cloud": _node(rnd, "cloud", "cloud", "cloud", 1)}, [])
    hubs: list[str] = []
    for start in range(1, size, GROUP):
        group = f"g{start // GROUP}"
        members = [f"{group}-n{i}" for i in range(min(GROUP, size - start))]
        for i, name in enumerate(members):
            role = "device" if i >= 40 else "edge"
            crmap.nodes[name] = _node(rnd, name, role, group, start + i + 1)
        hub = members[0]
        hubs.append(hub)
        for name in members[1:]:
            crmap.edges.append(Edge(hub, name, 1000, round(rnd.uniform(0.3, 3.0), 2)))
        for _ in range(len(members) // 5):
            a, b = rnd.sample(members[1:], 2) if len(members) > 2 else (hub, hub)
            if a != b and crmap.edge_between(a, b) is None:
                crmap.edges.append(Edge(a, b, 1000, round(rnd.uniform(0.3, 3.0), 2)))
        crmap.edges.append(Edge(hub, "cloud", 200, round(rnd.uniform(25, 60), 1)))
    for i, hub in enumerate(hubs[1:], 1):
        crmap.edges.append(Edge(hubs[i - 1], hub, 500, round(rnd.uniform(3, 12), 1)))
        if i % 4 == 0:
            other = hubs[rnd.randrange(i)]
            if other != hub and crmap.edge_between(other, hub) is None:
                crmap.edges.append(Edge(other, hub, 500, round(rnd.uniform(5, 20), 1)))
    crmap.invalidate()
    return crmap


def _best_of(repeat: int, func: Callable[[], object]) -> float:
    times = []
    for _ in range(repeat):
        start = time.process_time()
        func()
        times.append(time.process_time() - start)
    return min(times)


def bench_load(path: Path, repeat: int, base_repeat: int) -> tuple[float, float]:
    text = path.read_bytes()
    if path.suffix == ".json":
        base = _best_of(base_repeat, lambda: json.loads(text))
    else:
        base = _best_of(base_repeat, lambda: yaml.load(text, Loader=yaml.CSafeLoader))
    return _best_of(repeat, lambda: load_topology(path)), base


def bench_python_loader(path: Path, repeat: int) -> float:
    """load+validate of a YAML file with the C loader switched off."""
    fast, yamlfile._yamlfast = yamlfile._yamlfast, None
    try:
        return _best_of(repeat, lambda: load_topology(path))
    finally:
        yamlfile._yamlfast = fast


def bench_select(crmap: CRMap, queries: int, repeat: int,
                 seed: int = 11) -> tuple[float, float, float]:
    """Mean warm select (best of ``repeat`` passes), mean reference select (explain=True),
    first (cold) select; seconds."""
    rnd = random.Random(seed)
    tasks = [load_task(p) for p in sorted((ROOT / "examples" / "tasks").glob("*.yaml"))]
    devices = sorted(n for n, node in crmap.nodes.items() if node.role == "device") or ["cloud"]
    sources = rnd.sample(devices, min(16, len(devices)))
    crmap.invalidate()
    start = time.process_time()
    select_target(crmap, tasks[0], sources[0])
    cold = time.process_time() - start
    for source in sources:  # warm every requester's latencies
        select_target(crmap, tasks[0], source)
    pairs = [(rnd.choice(tasks), rnd.choice(sources)) for _ in range(queries)]

    def warm_pass() -> None:
        for task, source in pairs:
            select_target(crmap, task, source)

    warm = _best_of(repeat, warm_pass) / len(pairs)
    ref_pairs = pairs[: max(3, min(len(pairs), 40))]
    start = time.process_time()
    for task, source in ref_pairs:
        select_target(crmap, task, source, explain=True)
    ref = (time.process_time() - start) / len(ref_pairs)
    return warm, ref, cold


def bench_update(crmap: CRMap, rounds: int, repeat: int,
                 seed: int = 13) -> tuple[float, float]:
    """Mean (replace one record + select) with the caches patched (best of ``repeat`` passes),
    and with them rebuilt."""
    rnd = random.Random(seed)
    task = load_task(ROOT / "examples" / "tasks" / "web_request.yaml")
    source = sorted(crmap.nodes)[-1]
    names = sorted(n for n, node in crmap.nodes.items() if node.role == "edge")

    def one(rebuild: bool) -> None:
        node = crmap.nodes[rnd.choice(names)]
        load = rnd.choice((5.0, 50.0, 95.0))
        crmap.put_node(replace(node, resource=replace(node.resource, cpu_percent=load)))
        if rebuild:
            crmap.invalidate()
        select_target(crmap, task, source)

    one(False)

    def patched_pass() -> None:
        for _ in range(rounds):
            one(False)

    patched = _best_of(repeat, patched_pass) / rounds
    slow = max(2, rounds // 50)
    start = time.process_time()
    for _ in range(slow):
        one(True)
    return patched, (time.process_time() - start) / slow



def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.3f} ms"


def _target(applies: bool, seconds: float, limit: float) -> str:
    if not applies:
        return ""
    return f"<= {_ms(limit)} {'ok' if seconds <= limit else 'MISSED'}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10,1000,10000")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    print(f"machine: {describe()}; libyaml {yaml.__with_libyaml__}; "
          f"C YAML loader {yamlfile._yamlfast is not None}")
    rows = [("nodes", "what", "figure", "baseline", "ratio", "target")]
    with tempfile.TemporaryDirectory() as tmp:
        for size in (int(s) for s in args.sizes.split(",")):
            crmap = generate(size)
            nodes = f"{len(crmap.nodes)}"
            big = size >= 10_000
            for form, dump in (("yaml", dump_topology), ("json", dump_topology_json)):
                path = Path(tmp) / f"map{size}.{form}"
                path.write_text(dump(crmap))
                # the baseline parse of 10,000 nodes of block YAML takes seconds: once
                load, parse = bench_load(path, args.repeat, 1 if big else args.repeat)
                base = f"{_ms(parse)} ({'libyaml parse' if form == 'yaml' else 'json.loads'})"
                rows.append((nodes, f"load+validate ({form})", _ms(load), base,
                             f"{load / parse:.2f}x", _target(big, load, 1.0)))
                if form == "yaml":
                    slow = bench_python_loader(path, 1 if big else args.repeat)
                    rows.append((nodes, "load+validate (yaml, Python loader)", _ms(slow), base,
                                 f"{slow / parse:.2f}x", ""))
            warm, ref, cold = bench_select(crmap, args.queries, args.repeat)
            rows.append((nodes, "select (warm)", _ms(warm), f"{_ms(ref)} (reference scan)",
                         f"{warm / ref:.3f}x", _target(big, warm, 1e-3)))
            rows.append((nodes, "select (cold)", _ms(cold), "", "", ""))
            patched, rebuilt = bench_update(crmap, args.queries, args.repeat)
            rows.append((nodes, "update+select", _ms(patched), f"{_ms(rebuilt)} (rebuilt)",
                         f"{patched / rebuilt:.3f}x", ""))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
