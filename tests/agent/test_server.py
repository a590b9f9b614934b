"""In-process agents on loopback (real HTTP): reports, merging, liveness, auth, queries."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import yaml
from agenttools import SteadyNode, config
from freeoffload.agent import Daemon, fetch_topology
from freeoffload.agent._wire import report_body
from freeoffload.topology import CPU, ComputingPower, Node, Resource

INTERVAL = 0.2
URGENT_SENSITIVE = {"Name": "audio", "Type": "cpu", "Sensitive": True, "Urgent": True,
                    "Demand": {"CPU": 0.1, "Memory": 16, "Storage": 1}}
PLAIN = {"Name": "web", "Type": "io", "Demand": {"CPU": 0.1}}


def node(name: str, group: str, security: bool = False, cpu: float = 10.0) -> Node:
    return Node(name, "edge", ComputingPower(CPU(2, 2000), 2048, 32), group=group,
                address="127.0.0.1:9", security=security, resource=Resource(cpu, 100, 1, 0),
                capability={"cpu": 10.0, "io": 10.0}, updated=None)


@asynccontextmanager
async def agents(*cfgs: Any) -> AsyncIterator[list[Daemon]]:
    daemons = [Daemon(c, SteadyNode(c)) for c in cfgs]
    try:
        for d in daemons:
            await d.start()
        yield daemons
    finally:
        for d in daemons:
            await d.stop()


def headers(token: str, group: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "X-FreeOffload-Group": group}


async def get_json(url: str, hdrs: dict[str, str]) -> Any:
    async with aiohttp.ClientSession(headers=hdrs) as s, s.get(url) as r:
        return r.status, yaml.safe_load(await r.text())


async def post(url: str, body: bytes, hdrs: dict[str, str]) -> tuple[int, Any]:
    async with aiohttp.ClientSession(headers=hdrs) as s, s.post(url, data=body) as r:
        return r.status, await r.json()


async def wait_for(predicate: Any, timeout: float = 15.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not await predicate():
        assert loop.time() < end, "condition not reached in time"
        await asyncio.sleep(0.05)


def group_cfgs(group: str, token: str, secure: bool, **center_extra: Any) -> list[Any]:
    center = config(node=f"{group}c", role="center", group=group, token=token,
                    report_interval=INTERVAL, prober={"interval": 0.5},
                    record={"Role": "edge", "Security": secure}, tasks={"kib": 16},
                    **center_extra)
    members = [config(node=f"{group}m{i}", role="member", group=group, token=token,
                      center=center.address, report_interval=INTERVAL,
                      record={"Role": "edge", "Security": secure}) for i in (1, 2)]
    return [center, *members]


def test_members_report_center_merges_and_answers_in_group() -> None:
    async def run() -> None:
        cfgs = group_cfgs("g1", "t1", secure=True)
        async with agents(*cfgs):
            base, hdr = f"http://{cfgs[0].address}", headers("t1", "g1")

            async def all_in() -> bool:
                _, doc = await get_json(f"{base}/healthz", {})
                return bool(doc["nodes"] == 3)

            await wait_for(all_in)
            async with aiohttp.ClientSession(headers=hdr) as s, \
                    s.get(f"{base}/v1/topology") as r:
                crmap = yaml.safe_load(await r.text())
            assert sorted(n["Name"] for n in crmap["nodes"]) == ["g1c", "g1m1", "g1m2"]
            assert all(n["Online"] and n["Group"] == "g1" for n in crmap["nodes"])
            # the prober timed every member: Capability and a measured link to the center
            async def probed() -> bool:
                _, doc = await get_json(f"{base}/v1/nodes/g1m2", hdr)
                return bool(doc["node"].get("Capability")) and bool(doc["links"])

            async def probed_m1() -> bool:
                _, doc = await get_json(f"{base}/v1/nodes/g1m1", hdr)
                return bool(doc["node"].get("Capability")) and bool(doc["links"])

            await wait_for(probed)
            await wait_for(probed_m1)
            status, doc = await get_json(f"{base}/v1/nodes/g1m2", hdr)
            assert set(doc["node"]["Capability"]) == {"cpu", "io"}
            assert doc["links"][0]["StartNode"] == "g1c"
            body = json.dumps({"task": URGENT_SENSITIVE, "from": "g1m1"}).encode()
            status, answer = await post(f"{base}/v1/select", body, hdr)
            assert status == 200, answer
            assert answer["level"] == "group" and answer["node"] in ("g1c", "g1m1", "g1m2")
            assert answer["rule"] == "sensitive-urgent" and answer["answered_by"] == "g1c"
            # a member passes queries to its center, which sees the whole group
            status, forwarded = await post(f"http://{cfgs[1].address}/v1/select", body, hdr)
            assert status == 200 and forwarded["answered_by"] == "g1c"
            assert forwarded["node"] == answer["node"] and forwarded["level"] == "group"
            # what `topology show --from URL` uses: a group's map needs no cloud node
            crmap = await asyncio.to_thread(fetch_topology, base, "t1", "g1")
            assert sorted(crmap.nodes) == ["g1c", "g1m1", "g1m2"] and crmap.edges

    asyncio.run(run())


def test_member_that_stops_reporting_is_offline_after_three_intervals() -> None:
    async def run() -> None:
        cfgs = group_cfgs("g1", "t1", secure=False)
        async with agents(*cfgs) as daemons:
            base, hdr = f"http://{cfgs[0].address}", headers("t1", "g1")

            async def online() -> bool:
                status, doc = await get_json(f"{base}/v1/nodes/g1m1", hdr)
                return status == 200 and bool(doc["node"]["Online"])

            await wait_for(online)
            await daemons[1].stop()
            await wait_for(lambda: _not(online), timeout=3 * INTERVAL + 5)
            _, doc = await get_json(f"{base}/v1/nodes/g1m1", hdr)
            # offline once silent for 3 intervals, not before, and promptly after
            assert 3 * INTERVAL <= doc["last_report_age_s"] < 3 * INTERVAL + 4
            assert doc["node"]["Resource"]["memory_used"] > 0  # its data is kept
            _, doc = await get_json(f"{base}/v1/nodes/g1m2", hdr)
            assert doc["node"]["Online"]

    asyncio.run(run())


async def _not(predicate: Any) -> bool:
    return not await predicate()


def test_unauthenticated_forged_and_malformed_reports_are_refused_and_change_nothing() -> None:
    async def run() -> None:
        center = config(node="c", role="center", group="g1", token="t1",
                        tokens={"g2": "t2"}, report_interval=5)
        async with agents(center):
            base = f"http://{center.address}"
            good = report_body(node("e1", "g1"), [])
            cases = [
                ({}, good, 401, "unauthenticated: no bearer token"),
                (headers("wrong", "g1"), good, 401, "wrong token for group 'g1'"),
                (headers("t1", "g9"), good, 401, "unknown group 'g9'"),
                (headers("t2", "g2"), good, 403, "of group 'g1' sent with the token of "
                                                 "group 'g2'"),
                (headers("t1", "g1"), b"{not json", 400, "YAML syntax"),
                (headers("t1", "g1"), b'{"Node": {"Name": "e1", "Role": "edge"}}', 400,
                 "Node.ComputingPower: missing required field"),
                (headers("t1", "g1"), good.replace(b'"cpu_percent": 10.0',
                                                   b'"cpu_percent": 250'), 400,
                 "cpu_percent: must be at most 100"),
            ]
            for hdrs, body, status, message in cases:
                got, answer = await post(f"{base}/v1/report", body, hdrs)
                assert got == status, (message, answer)
                assert message in answer["error"]
            status, doc = await get_json(f"{base}/v1/nodes/e1", headers("t1", "g1"))
            assert status == 404 and "unknown node 'e1'" in doc["error"]
            status, doc = await get_json(f"{base}/v1/topology", {})
            assert status == 401
            got, answer = await post(f"{base}/v1/report", good, headers("t1", "g1"))
            assert got == 200 and answer["node"] == "e1"
            async with aiohttp.ClientSession() as s, s.get(f"{base}/metrics") as r:
                text = await r.text()
            assert 'freeoffload_agent_reports_total{kind="report",result="refused"} 4.0' in text
            assert 'freeoffload_agent_requests_refused_total{path="/v1/report"} 3.0' in text
            assert 'freeoffload_agent_requests_refused_total{path="/v1/topology"} 1.0' in text

    asyncio.run(run())


def test_select_asks_other_groups_then_the_cloud() -> None:
    async def run() -> None:
        cloud = config(node="cloud", role="cloud", group="cloud", token="tc",
                       tokens={"g1": "t1", "g2": "t2"}, report_interval=INTERVAL,
                       record={"Role": "cloud", "Security": True}, prober={"interval": 0.3},
                       tasks={"kib": 16})
        g1 = group_cfgs("g1", "t1", secure=False, cloud=cloud.address,
                        tokens={"g2": "t2"})
        g2 = group_cfgs("g2", "t2", secure=True, cloud=cloud.address, tokens={"g1": "t1"})
        g1[0] = config(**{**_fields(g1[0]), "peers": [g2[0].address]})
        async with agents(cloud, *g1, *g2):
            hdr = headers("t1", "g1")

            async def cloud_has_all() -> bool:
                _, doc = await get_json(f"http://{cloud.address}/healthz", {})
                if doc["nodes"] != 7:
                    return False
                _, doc = await get_json(f"http://{cloud.address}/v1/topology",
                                        headers("tc", "cloud"))
                pairs = {tuple(sorted((e["StartNode"], e["EndNode"]))) for e in doc["edges"]}
                return {("cloud", "g1c"), ("g1c", "g1m1"), ("cloud", "g2c")} <= pairs

            await wait_for(cloud_has_all, timeout=20)
            base = f"http://{g1[0].address}"
            status, answer = await post(f"{base}/v1/select", json.dumps(
                {"task": URGENT_SENSITIVE, "from": "g1m1"}).encode(), hdr)
            assert status == 200, answer
            assert answer["level"] == "other-group" and answer["node"].startswith("g2")
            status, answer = await post(f"{base}/v1/select", json.dumps(
                {"task": {**URGENT_SENSITIVE, "Urgent": False}, "from": "g1m1"}).encode(), hdr)
            assert (answer["node"], answer["level"]) == ("cloud", "cloud"), answer
            status, answer = await post(f"{base}/v1/select", json.dumps(
                {"task": PLAIN, "from": "g1m1"}).encode(), hdr)
            assert answer["level"] == "group" and answer["node"].startswith("g1")
            status, answer = await post(f"{base}/v1/select", b'{"task": {"Type": "gpu"}}', hdr)
            assert status == 400 and "gpu" in answer["error"]

    asyncio.run(run())


def _fields(cfg: Any) -> dict[str, Any]:
    return {"node": cfg.node, "role": cfg.role, "group": cfg.group, "token": cfg.token,
            "tokens": cfg.tokens, "cloud": cfg.cloud, "report_interval": cfg.report_interval,
            "listen": f"{cfg.listen[0]}:{cfg.listen[1]}", "record": cfg.record}


def test_a_task_asked_again_is_read_from_the_cache_and_bad_ones_still_refused() -> None:
    from freeoffload.agent._wire import ReportError
    from freeoffload.agent.service import parse_select

    def body(demand: Any, **extra: Any) -> bytes:
        return json.dumps({"task": {"Name": "t", "Type": "cpu", "Urgent": True,
                                    "Demand": demand}, "from": "m1", **extra}).encode()

    first = parse_select(body({"CPU": 1, "Memory": 64}))
    again = parse_select(body({"CPU": 1, "Memory": 64}, scope="group"))
    assert again[0] is first[0] and again[1:] == ("m1", "group", False)
    assert parse_select(body({"CPU": 2, "Memory": 64}))[0].demand.cpu_cores == 2
    for bad in ({"CPU": True, "Memory": 64}, {"CPU": -1, "Memory": 64}):
        try:
            parse_select(body(bad))
        except ReportError as err:
            assert err.status == 400 and "CPU" in err.message
        else:
            raise AssertionError(f"accepted Demand {bad}")
    try:
        parse_select(b'{"task": ')
    except ReportError as err:
        assert err.status == 400 and "not JSON" in err.message
    else:
        raise AssertionError("accepted a cut body")
