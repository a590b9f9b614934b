"""A center's push carries the other groups: the candidates it sends a device let the policy
leave the group when nothing in it can take the task (the paper's edge1 -> edge3 move).

Real agents on loopback (cloud, an insecure group g1 whose center has the trigger, a secure
group g2), a real ``freeoffload device`` server in the same event loop, the example selection
policy compiled by clang; the pushed rows are then run through that policy in our VM.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import shutil
from pathlib import Path
from typing import Any

from agenttools import SteadyNode, config, free_port
from conftest import need
from freeoffload.agent import Daemon
from freeoffload.agent.trigger import fit_candidates
from freeoffload.topology import CPU, ComputingPower, CRMap, Edge, Node, Resource
from freeoffload.topology.candidates import LEVEL_OTHER, MAX_CANDIDATES, candidate_rows

ROOT = Path(__file__).resolve().parents[2]
INTERVAL = 0.2
TASKS = {  # (Type, Sensitive, Urgent)
    "sensitive+urgent": ("cpu", True, True),
    "sensitive": ("cpu", True, False),
    "plain": ("io", False, False),
}


def _agents(device_url: str, fop: Path, key: Path, interval: float = INTERVAL,
            refresh: dict[str, float] | None = None, prober: float = 0.3) -> list[Any]:
    cloud = config(node="cloud", role="cloud", group="cloud", token="tc",
                   tokens={"g1": "t1", "g2": "t2"}, report_interval=interval,
                   record={"Role": "cloud", "Security": True}, prober={"interval": prober},
                   tasks={"kib": 16})
    trigger = {"threshold": 70, "hysteresis": 10, "samples": 2, "policy": str(fop),
               "key": str(key), "devices": [{"name": "dev1", "attached": "g1m1",
                                             "url": device_url}]}
    if refresh is not None:
        trigger["refresh"] = refresh
    cfgs = [cloud]
    for group, token, secure in (("g1", "t1", False), ("g2", "t2", True)):
        extra: dict[str, Any] = {"trigger": trigger} if group == "g1" else {}
        center = config(node=f"{group}c", role="center", group=group, token=token,
                        cloud=cloud.address, report_interval=interval,
                        prober={"interval": prober},
                        record={"Role": "edge", "Security": secure},
                        tasks={"kib": 16}, **extra)
        cfgs += [center, *(config(node=f"{group}m{i}", role="member", group=group, token=token,
                                  center=center.address, report_interval=interval,
                                  record={"Role": "edge", "Security": secure})
                           for i in (1, 2))]
    return cfgs


def _policy(tmp: Path) -> tuple[Path, Path, Path, bytes]:
    from freeoffload.offload_vm.policy import (
        compile_policy,
        generate_keys,
        load_private_key,
        load_public_key,
        read_package,
    )

    priv, pub = generate_keys(tmp / "keys")
    built = compile_policy(ROOT / "examples/policies/select_target.c",
                           key=load_private_key(priv), version=1)
    fop = tmp / "select_target.fop"
    fop.write_bytes(built.data)
    elf = read_package(built.data, [load_public_key(pub)], str(fop)).elf
    return fop, priv, pub, elf


def _device(tmp: Path, pub: Path) -> tuple[Any, int]:
    """dev1's device (the real ``freeoffload device`` core) trusting ``pub``, and its port."""
    from freeoffload.firmware_hooks.device.config import load_config_text
    from freeoffload.firmware_hooks.device.core import Device

    port = free_port()
    return Device(load_config_text(
        f"name: dev1\nlisten: 127.0.0.1:{port}\nstore: store\nstate_dir: state\n"
        f"trusted_keys: [{pub}]\n", "<test device>", tmp)), port


async def _serve(device: Any, port: int) -> Any:
    """The device's HTTP API on 127.0.0.1:``port`` in this event loop; the runner."""
    from aiohttp import web
    from freeoffload.firmware_hooks.device.server import make_app

    runner = web.AppRunner(make_app(device), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner


def _choose(elf: bytes, rows: list[tuple[bytes, bytes]], dst: str, kind: str) -> str:
    """Where the policy sends a connect() to ``dst`` for a task of ``kind``."""
    from freeoffload.offload_vm.policy import ConnectContext, parse_endpoint, run_policy

    family, ip, port = parse_endpoint(dst)
    ttype, sensitive, urgent = TASKS[kind]
    ctx = ConnectContext(family, ip, port, task_type=1 if ttype == "cpu" else 2,
                         task_flags=(1 if sensitive else 0) | (2 if urgent else 0),
                         demand_cpu_milli=100, demand_memory_mib=16, demand_storage_mib=1)
    decision = run_policy(elf, ctx, {"candidates": rows})
    return decision.after.destination


def test_center_pushes_other_groups_secure_edge_when_its_group_has_none(tmp_path: Path) -> None:
    need(shutil.which("clang") is not None, "clang is installed by .ci/install-deps")

    fop, priv, pub, elf = _policy(tmp_path)
    device, port = _device(tmp_path, pub)
    cfgs = _agents(f"http://127.0.0.1:{port}", fop, priv)
    address = {c.node: c.address for c in cfgs}

    async def run() -> dict[str, Any]:
        runner = await _serve(device, port)
        daemons = [Daemon(c, SteadyNode(c)) for c in cfgs]
        by_name = {d.cfg.node: d for d in daemons}
        try:
            for d in daemons:
                await d.start()
            cloud, g1c = by_name["cloud"].agent, by_name["g1c"].agent
            loop = asyncio.get_running_loop()
            end = loop.time() + 30
            # the cloud knows group g2 and its links (probed) before g1m1 gets busy
            want = {("cloud", "g1c"), ("g1c", "g1m1"), ("cloud", "g2c"), ("g2c", "g2m1"),
                    ("g2c", "g2m2")}
            while not ({"g2c", "g2m1", "g2m2"} <= {
                    n for n, e in cloud.store.entries.items() if e.node.online}
                    and want <= set(cloud.store.links)):
                assert loop.time() < end, f"the cloud never knew g2: {cloud.store.links}"
                await asyncio.sleep(0.05)
            assert not g1c.pushes
            local = by_name["g1m1"].local
            assert isinstance(local, SteadyNode)
            local.cpu = 95.0
            while not [p for p in g1c.pushes if p.get("result") == "ok"]:
                assert loop.time() < end, f"no push: {g1c.pushes}"
                await asyncio.sleep(0.05)
            return g1c.pushes[-1]
        finally:
            for d in daemons:
                await d.stop()
            await runner.cleanup()

    push = asyncio.run(run())
    assert push["action"] == "fire" and push["node"] == "g1m1", push
    # other groups' capable nodes are in what the center pushed, with their level
    assert {"g2c", "g2m1", "g2m2"} <= set(push["targets"]), push
    assert {push["levels"][n] for n in ("g2c", "g2m1", "g2m2")} == {"other-group"}
    assert push["levels"]["cloud"] == "cloud" and push["levels"]["g1m2"] == "group"

    rows = device.state.load_rows("candidates")
    assert rows is not None and any(v.strip(b"\0") for _, v in rows)
    node_at = {a: n for n, a in address.items()}
    to_g1m1 = address["g1m1"]  # what dev1's programs connect to
    chosen = node_at[_choose(elf, rows, to_g1m1, "sensitive+urgent")]
    # g1 has no secure node: the nearest secure edge of the other group, not the cloud
    assert chosen == "g2c", chosen
    assert node_at[_choose(elf, rows, to_g1m1, "sensitive")] == "cloud"
    assert node_at[_choose(elf, rows, to_g1m1, "plain")] in {"g1c", "g1m2"}  # own group first


def test_center_keeps_its_device_current_without_the_threshold(tmp_path: Path) -> None:
    """No node is busy, yet the center pushes dev1's candidates (policy first) and pushes
    again, with a new version and stamp, when a member's load changes materially; no push
    while nothing changes. The threshold trigger's history stays empty."""
    need(shutil.which("clang") is not None, "clang is installed by .ci/install-deps")
    from freeoffload.agent.trigger import Pusher

    fop, priv, pub, _ = _policy(tmp_path)
    device, port = _device(tmp_path, pub)
    # reports every second: on a busy host a 0.2 s member misses 3 and flaps offline
    # trigger.refresh from the config: looks twice a second, no push for age alone here
    cfgs = _agents(f"http://127.0.0.1:{port}", fop, priv, interval=1.0,
                   refresh={"interval": 0.5, "max_age": 600, "min_change": 0.2})

    def stamps() -> set[int]:
        rows = device.state.load_rows("candidates") or []
        return {int.from_bytes(v[112:116], "little") for _, v in rows if v.strip(b"\0")}

    async def run() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        loop = asyncio.get_running_loop()
        # nine agents and the device share this process's threads (each is its own process
        # in real life): enough of them that the device's to_thread calls never wait
        loop.set_default_executor(concurrent.futures.ThreadPoolExecutor(max_workers=64))
        runner = await _serve(device, port)
        daemons = [Daemon(c, SteadyNode(c)) for c in cfgs]
        by_name = {d.cfg.node: d for d in daemons}

        async def until(what: Any, check: Any, seconds: float = 60) -> Any:
            end = loop.time() + seconds
            while not (found := check()):
                assert loop.time() < end, what() if callable(what) else what
                await asyncio.sleep(0.05)
            return found

        try:
            for d in daemons:
                await d.start()
            g1c = by_name["g1c"].agent
            pusher = next(o.__self__ for o in g1c.observers
                          if isinstance(getattr(o, "__self__", None), Pusher))

            def ok() -> list[dict[str, Any]]:
                return [r for r in pusher.refreshes if r["result"] == "ok"]

            assert (pusher.refresh_interval, pusher.max_age, pusher.min_change) == (0.5, 600, 0.2)
            await until("no refresh push", ok)
            assert ok()[0].get("policy", "").startswith("select_target")  # installed first
            settled, first_stamps = len(ok()), stamps()
            assert len(first_stamps) == 1 and 0 not in first_stamps
            await asyncio.sleep(4 * pusher.refresh_interval)
            quiet = ok()[settled:]  # (a node that misses reports on a busy host may flap)
            settled = len(ok())
            local = by_name["g1m2"].local
            assert isinstance(local, SteadyNode)
            local.cpu = 60.0
            moved = await until(lambda: f"no refresh after g1m2's load changed: {ok()[-3:]}",
                                lambda: [r for r in ok()[settled:]
                                         if "g1m2: free CPU" in r["reason"]])
            assert stamps() != first_stamps and len(stamps()) == 1
            # operators see the refreshes beside the trigger's pushes, each with its time
            listed = await g1c.peer.json("GET", by_name["g1c"].cfg.address, "/v1/pushes")
            assert listed["pushes"] == g1c.pushes
            assert moved[-1] in listed["refreshes"] and moved[-1]["at"] > 0
            return quiet, [*moved, *g1c.pushes]
        finally:
            for d in daemons:
                await d.stop()
            await runner.cleanup()

    quiet, (moved, *trigger_pushes) = asyncio.run(run())
    assert not [r for r in quiet if "free CPU" in r["reason"]]  # steady loads: no push
    assert not [r for r in quiet if " s old" in r["reason"]]  # max_age 600 s
    assert moved["action"] == "refresh" and moved["device"] == "dev1"
    assert trigger_pushes == []  # 60% is below the threshold


def test_center_reaches_the_other_group_long_before_the_next_prober_round(
        tmp_path: Path) -> None:
    """The links to another group come from probes (the cloud times the centers, each center
    its members), and the first prober round, at start, finds nobody yet. Nodes that join are
    probed at once, so dev1's center pushes rows with the other group within seconds, not a
    prober interval (60 s here) later: in the testbed, edge2's rows lacked edge3 for up to
    10 s after the agents started, and fig7 run right after fig9 moved dev1 nowhere."""
    need(shutil.which("clang") is not None, "clang is installed by .ci/install-deps")
    from freeoffload.agent.trigger import Pusher

    fop, priv, pub, _ = _policy(tmp_path)
    device, port = _device(tmp_path, pub)
    cfgs = _agents(f"http://127.0.0.1:{port}", fop, priv, interval=1.0, prober=60.0)

    async def run() -> tuple[float, dict[str, Any]]:
        runner = await _serve(device, port)
        daemons = [Daemon(c, SteadyNode(c)) for c in cfgs]
        loop = asyncio.get_running_loop()
        try:
            started = loop.time()
            for d in daemons:
                await d.start()
            g1c = next(d.agent for d in daemons if d.cfg.node == "g1c")
            pusher = next(o.__self__ for o in g1c.observers
                          if isinstance(getattr(o, "__self__", None), Pusher))

            def with_g2() -> list[dict[str, Any]]:
                return [r for r in pusher.refreshes if r["result"] == "ok"
                        and {"g2c", "g2m1", "g2m2"} <= set(r["targets"])]

            while not with_g2():
                assert loop.time() < started + 30, (
                    "g1c never pushed rows with group g2; its pushes: "
                    f"{[r.get('targets') for r in pusher.refreshes]}; the cloud's links: "
                    f"{sorted(daemons[0].agent.store.links)}")
                await asyncio.sleep(0.1)
            return loop.time() - started, with_g2()[0]
        finally:
            for d in daemons:
                await d.stop()
            await runner.cleanup()

    took, push = asyncio.run(run())
    assert took < 30 and push["levels"]["g2c"] == "other-group", (took, push)


def _edge(name: str, group: str, secure: bool, ip: int) -> Node:
    return Node(name, "edge", ComputingPower(CPU(2, 2000), 2048, 32), group=group,
                address=f"10.1.{ip // 250}.{ip % 250 + 1}:80", security=secure,
                resource=Resource(10, 100, 1, 0), capability={"cpu": 10.0, "io": 10.0})


def test_fit_candidates_keeps_own_group_clouds_and_nearest_of_each_kind() -> None:
    """More edges than the map's 64 rows: the device's group and the cloud stay, then the
    nearest other-group edges, secure and insecure alike, within the 64."""
    nodes = {"cloud": dataclasses.replace(_edge("cloud", "cloud", True, 0), role="cloud"),
             "dev": Node("dev", "device", ComputingPower(CPU(0), 0, 0), group="a")}
    edges = [Edge("dev", "a0", 100, 1.0), Edge("a0", "cloud", 100, 40.0)]
    for i in range(5):
        nodes[f"a{i}"] = _edge(f"a{i}", "a", False, 1 + i)
        if i:
            edges.append(Edge("a0", f"a{i}", 1000, 0.5))
    for i in range(100):  # far groups; the secure ones are all farther than the insecure
        name = f"s{i:03}" if i % 4 == 0 else f"p{i:03}"
        nodes[name] = _edge(name, f"g{i // 10}", i % 4 == 0, 10 + i)
        edges.append(Edge("a0", name, 500, 5.0 + i + (200 if i % 4 == 0 else 0)))
    view = CRMap(nodes, edges, "<test>")
    fitted = fit_candidates(view, "dev")
    rows = candidate_rows(fitted, "dev")
    names = {r.name for r in rows}
    assert len(rows) == MAX_CANDIDATES
    assert {"cloud", "a0", "a1", "a2", "a3", "a4"} <= names
    secure = sorted(n for n in names if n.startswith("s"))
    assert secure == [f"s{i:03}" for i in range(0, 100, 4)]  # all 25 secure ones fit
    assert {r.level for r in rows if r.name[0] in "sp"} == {LEVEL_OTHER}
    plain = sorted(n for n in names if n.startswith("p"))
    assert len(plain) == MAX_CANDIDATES - 6 - 25 and plain[0] == "p001"  # the nearest ones
    by_name = {r.name: r for r in rows}
    assert by_name["p001"].latency_us == 7000  # dev -> a0 -> p001: 1 + 6 ms
    few = dict(list(nodes.items())[:8])
    small = CRMap(few, [e for e in edges if e.start_node in few and e.end_node in few], "<s>")
    assert fit_candidates(small, "dev") is small  # it fits: unchanged
