"""Real agents in network namespaces: one cloud, two groups of two edges, a device.

Every agent is a ``python -m freeoffload.agent`` process inside its own namespace (pyroute2;
entered with ``nsenter --net`` so cgroups stay visible),
talking real HTTP over a bridge; members find their centers, and centers the cloud and each
other, with zeroconf. The member g1m runs in a cgroup where the test makes real CPU load. The
tests run in order against one lab (reports and queries first, failures last).
Each node is a cgroup its agent runs in and its probes watch; g1m's probes watch the cgroup of
its workload, where the test makes load.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import need
from netlab import Lab, cgroup2_root, http, wait_until

pytestmark = [pytest.mark.root, pytest.mark.netns]

ROOT = Path(__file__).resolve().parents[2]
INTERVAL = 1.0
TOKENS = {"g1": "tok-g1", "g2": "tok-g2", "cloud": "tok-cloud"}
NODES = {"cloud": "cloud", "g1c": "g1", "g1m": "g1", "g2c": "g2", "g2m": "g2", "dev1": ""}
TASK = {"Name": "t", "Type": "cpu", "Demand": {"CPU": 0.05, "Memory": 8}}


def _auth(group: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[group]}", "X-FreeOffload-Group": group}


class Bed:
    def __init__(self, lab: Lab, tmp: Path, cgroups: dict[str, Path]) -> None:
        self.lab, self.tmp, self.cgroups = lab, tmp, cgroups
        self.cgroup = cgroups["g1m-load"]
        self.configs: dict[str, Path] = {}

    def url(self, short: str, path: str) -> str:
        return f"http://{self.lab.addresses[short]}:7070{path}"

    def get(self, src: str, dst: str, path: str, group: str) -> Any:
        status, body = http(self.lab, src, "GET", self.url(dst, path), headers=_auth(group))
        assert status == 200, (status, body[:300])
        return yaml.safe_load(body)

    def post(self, src: str, dst: str, path: str, doc: Any, group: str | None,
             raw: bytes | None = None) -> tuple[int, Any]:
        body = raw if raw is not None else json.dumps(doc).encode()
        status, text = http(self.lab, src, "POST", self.url(dst, path), body,
                            _auth(group) if group else {})
        return status, json.loads(text) if text.startswith(b"{") else text

    def start_agent(self, short: str) -> None:
        self.lab.start(short, short, [sys.executable, "-m", "freeoffload.agent", "--config",
                                      str(self.configs[short])], self.tmp,
                       cgroup=self.cgroups[short])


def _agent_config(short: str, lab: Lab, tmp: Path, extra: dict[str, Any]) -> Path:
    group = NODES[short]
    role = "cloud" if short == "cloud" else "center" if short.endswith("c") else "member"
    doc: dict[str, Any] = {
        "node": short, "role": role, "group": group, "listen": f"{lab.addresses[short]}:7070",
        "token": TOKENS[group], "report_interval": INTERVAL, "offline_after": 3,
        "probes": {"mode": "procfs"}, "prober": {"interval": 1.0}, "tasks": {"kib": 16},
        "record": {"Role": "cloud" if role == "cloud" else "edge",
                   "Security": short in ("cloud", "g2c", "g2m")},
    }
    if role == "cloud":
        doc["tokens"] = {"g1": TOKENS["g1"], "g2": TOKENS["g2"]}
    elif role == "center":
        other = "g2" if group == "g1" else "g1"
        doc["tokens"] = {other: TOKENS[other]}
    doc.update(extra)
    path = tmp / f"{short}.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def _policy(tmp: Path) -> tuple[Path, Path, Path]:
    from freeoffload.offload_vm.policy import compile_policy, generate_keys, load_private_key

    priv, pub = generate_keys(tmp / "keys")
    built = compile_policy(ROOT / "examples/policies/select_target.c",
                           key=load_private_key(priv), version=1)
    fop = tmp / "select_target.fop"
    fop.write_bytes(built.data)
    return fop, priv, pub


def _device(lab: Lab, tmp: Path, pub: Path) -> None:
    cfg = tmp / "device.yaml"
    cfg.write_text(yaml.safe_dump({
        "name": "dev1", "listen": f"{lab.addresses['dev1']}:7701",
        "store": str(tmp / "store"), "state_dir": str(tmp / "state"),
        "trusted_keys": [str(pub)]}))
    lab.start("device", "dev1", [sys.executable, "-m", "freeoffload", "device", "--config",
                                 str(cfg)], tmp)


def _usage_s(cgroup: Path) -> float:
    for line in (cgroup / "cpu.stat").read_text().splitlines():
        if line.startswith("usage_usec "):
            return int(line.split()[1]) / 1e6
    return 0.0


def _calibrate(lab: Lab, tmp: Path, cgroup: Path) -> float:
    """The CPU figure (percent of the cgroup's capacity) a spinner reaches on this machine
    now: a shared machine may give it far less than a core, so thresholds follow it."""
    capacity = _capacity_cores(cgroup)
    before, started = _usage_s(cgroup), time.monotonic()
    proc = lab.start("calibrate", "g1m", [sys.executable, "-c", SPIN.format(duty=1.0)], tmp,
                     cgroup=cgroup)
    time.sleep(3)
    lab.stop("calibrate")
    used = _usage_s(cgroup) - before
    assert proc.returncode is not None
    return 100.0 * used / (time.monotonic() - started) / capacity


SPIN = ("import os, time\nos.nice(-5)\nwhile True:\n t = time.monotonic()\n"
        " while time.monotonic() - t < {duty:.2f} * 0.1: pass\n"
        " time.sleep((1 - {duty:.2f}) * 0.1)")


def _capacity_cores(cgroup: Path) -> float:
    """Make the cgroup a one-core node where cgroup v2 has the cpu controller; else its CPU
    figure is a share of every core."""
    parent = cgroup.parent
    if "cpu" in (parent / "cgroup.controllers").read_text().split():
        try:
            (parent / "cgroup.subtree_control").write_text("+cpu")
            (cgroup / "cpu.max").write_text("100000 100000")
            return 1.0
        except OSError:
            pass
    return float(os.cpu_count() or 1)


@pytest.fixture(scope="module")
def bed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bed]:
    need(os.geteuid() == 0, "needs root for network namespaces")
    need(cgroup2_root() is not None, "needs cgroup v2")
    tmp = tmp_path_factory.mktemp("netns")
    lab = Lab(f"foag{os.getpid() % 1000}-")
    try:
        for short in NODES:
            lab.add(short)
        # each node is a cgroup its agent runs in and its probes are scoped to
        cgroups = {short: lab.cgroup(short) for short in NODES if short != "dev1"}
        # g1m's probes watch its workload's cgroup, where the test makes load (its agent's own
        # start-up, in the g1m cgroup, must not fire the trigger)
        cgroups["g1m-load"] = lab.cgroup("g1m-load")
        full = _calibrate(lab, tmp, cgroups["g1m-load"])  # what the spinner reads as, now
        fop, priv, pub = _policy(tmp)
        _device(lab, tmp, pub)
        trigger = {"threshold": round(0.5 * full, 1), "hysteresis": round(0.4 * full, 1),
                   "samples": 3, "policy": str(fop), "key": str(priv),
                   "devices": [{"name": "dev1", "attached": "g1m",
                                "url": f"http://{lab.addresses['dev1']}:7701"}]}
        b = Bed(lab, tmp, cgroups)
        for short in ("cloud", "g1c", "g1m", "g2c", "g2m"):
            scope = cgroups["g1m-load" if short == "g1m" else short]
            extra: dict[str, Any] = {"probes": {"mode": "procfs", "cgroup": str(scope)}}
            if short == "g1c":
                extra["trigger"] = trigger
            if short == "g2m":  # its tasks' own service, not the agent's address
                extra["record"] = {"Role": "edge", "Security": True,
                                   "Address": f"{lab.addresses['g2m']}:8080"}
            b.configs[short] = _agent_config(short, lab, tmp, extra)
            b.start_agent(short)
        yield b
    finally:
        for key, log in lab.logs.items():
            tail = log.read_text(errors="replace").splitlines()[-15:] if log.exists() else []
            print(f"--- {key} ---", *tail, sep="\n")
        lab.close()


def _cloud_complete(bed: Bed) -> Any:
    doc = bed.get("cloud", "cloud", "/v1/topology", "cloud")
    names = {n["Name"] for n in doc["nodes"] if n["Online"]}
    pairs = {tuple(sorted((e["StartNode"], e["EndNode"]))) for e in doc["edges"]}
    want = {("g1c", "g1m"), ("g2c", "g2m"), ("cloud", "g1c"), ("cloud", "g2c")}
    return doc if names == {"cloud", "g1c", "g1m", "g2c", "g2m"} and want <= pairs else None


def test_reports_flow_and_the_cloud_map_has_every_node_and_link(bed: Bed) -> None:
    doc = wait_until(lambda: _cloud_complete(bed), 60, "the cloud's map complete")
    by_name = {n["Name"]: n for n in doc["nodes"]}
    assert {by_name[n]["Group"] for n in ("g1c", "g1m")} == {"g1"}
    assert set(by_name["g1m"]["Capability"]) == {"cpu", "io"}  # timed by g1c's prober
    assert by_name["g1m"]["Address"] == f"{bed.lab.addresses['g1m']}:7070"
    # the prober reaches g2m's agent even though its Address names another service
    assert by_name["g2m"]["Address"] == f"{bed.lab.addresses['g2m']}:8080"
    assert set(by_name["g2m"]["Capability"]) == {"cpu", "io"}


def test_select_answers_from_the_right_level(bed: Bed) -> None:
    wait_until(lambda: _cloud_complete(bed), 60, "the cloud's map complete")
    cases = [({**TASK, "Type": "io"}, "group", ("g1c", "g1m")),
             ({**TASK, "Sensitive": True, "Urgent": True}, "other-group", ("g2c", "g2m")),
             ({**TASK, "Sensitive": True}, "cloud", ("cloud",))]
    for task, level, nodes in cases:
        status, answer = bed.post("g1m", "g1c", "/v1/select", {"task": task, "from": "g1m"},
                                  "g1")
        assert status == 200, answer
        assert (answer["level"], answer["node"] in nodes) == (level, True), (task, answer)


def test_unauthenticated_and_malformed_reports_are_refused(bed: Bed) -> None:
    record = bed.get("g1m", "g1c", "/v1/nodes/g1m", "g1")["node"]
    forged = {"Node": {**record, "Name": "intruder"}, "Links": []}
    cases = [(None, forged, None, 401), ("g2", forged, None, 403),
             ("g1", None, b'{"Node": {"Name": "intruder", "Role": "edgy"}}', 400),
             ("g1", None, b"\x00\xff garbage", 400)]
    for group, doc, raw, want in cases:
        status, answer = bed.post("g1m", "g1c", "/v1/report", doc, group, raw)
        assert status == want, answer
        assert answer["error"]
    status, _ = http(bed.lab, "g1m", "GET", bed.url("g1c", "/v1/nodes/intruder"),
                     headers=_auth("g1"))
    assert status == 404
    log = bed.lab.logs["g1c"].read_text()
    assert '"event": "request.refused"' in log and '"event": "report.refused"' in log


def test_member_that_stops_reporting_is_offline_after_three_intervals(bed: Bed) -> None:
    wait_until(lambda: bed.get("g2c", "g2c", "/v1/nodes/g2m", "g2")["node"]["Online"], 30,
               "g2m online")
    proc = bed.lab.procs["g2m"]
    os.killpg(proc.pid, signal.SIGSTOP)
    try:
        def offline() -> Any:
            doc = bed.get("g2c", "g2c", "/v1/nodes/g2m", "g2")
            return None if doc["node"]["Online"] else doc

        doc = wait_until(offline, 3 * INTERVAL + 10, "offline")
        assert doc["last_report_age_s"] >= 3 * INTERVAL
    finally:
        os.killpg(proc.pid, signal.SIGCONT)
    wait_until(lambda: bed.get("g2c", "g2c", "/v1/nodes/g2m", "g2")["node"]["Online"], 30,
               "g2m back online")


def _spin(bed: Bed, duty: float) -> subprocess.Popen[bytes]:
    return bed.lab.start(f"spin{duty}", "g1m", [sys.executable, "-c", SPIN.format(duty=duty)],
                         bed.tmp, cgroup=bed.cgroup)


def _pushes(bed: Bed) -> list[dict[str, Any]]:
    pushes: list[dict[str, Any]] = bed.get("g1m", "g1c", "/v1/pushes", "g1")["pushes"]
    return pushes


def _center_pushes(bed: Bed) -> dict[int, dict[str, Any]]:
    """Every push g1c made to dev1 that dev1 took (fire, restore and refresh alike), by the
    candidates map version it carried, from g1c's log (it has them all; /v1/pushes the last 100)."""
    out: dict[int, dict[str, Any]] = {}
    for line in bed.lab.logs["g1c"].read_text(errors="replace").splitlines():
        try:
            doc = json.loads(line)
        except ValueError:
            continue
        if isinstance(doc, dict) and doc.get("event") in ("push", "refresh") \
                and doc.get("result") == "ok":
            out[int(doc["map_version"])] = doc
    return out


def _device_version(bed: Bed) -> int:
    status = json.loads(http(bed.lab, "g1c", "GET",
                             f"http://{bed.lab.addresses['dev1']}:7701/v1/status")[1])
    assert status["policy"]["name"] == "select_target"
    return int(status["maps"]["candidates"]["version"])


def test_trigger_fires_and_restores_with_hysteresis_under_real_load(bed: Bed) -> None:
    wait_until(lambda: _cloud_complete(bed), 60, "the cloud's map complete")
    assert _pushes(bed) == []
    _spin(bed, 1.0)
    fired = wait_until(lambda: [p for p in _pushes(bed) if p["action"] == "fire"], 30, "fire")
    assert fired[0]["result"] == "ok", fired
    assert fired[0]["device"] == "dev1" and "g1m CPU" in fired[0]["reason"]
    assert "g1m" not in fired[0]["targets"] and fired[0]["targets"]
    # the center also keeps dev1's rows current (refresh pushes, any time): dev1 holds the
    # fire's map or a later push's, and every push since the fire leaves g1m out
    version = _device_version(bed)
    assert version >= fired[0]["map_version"]
    # a push is logged once dev1 has answered it: wait for the line of the one dev1 holds
    pushed = wait_until(lambda: version in _center_pushes(bed) and _center_pushes(bed), 10,
                        f"g1c's log line for the push of version {version}")
    since = [p for v, p in sorted(pushed.items()) if v >= fired[0]["map_version"]]
    assert since[0]["action"] == "fire" and since[0]["map_version"] == fired[0]["map_version"]
    assert not [p for p in since if "g1m" in p["targets"]], since
    bed.lab.stop("spin1.0")
    _spin(bed, 0.3)  # between threshold - hysteresis and threshold: no restore
    time.sleep(8 * INTERVAL)
    assert [p["action"] for p in _pushes(bed)] == ["fire"]
    bed.lab.stop("spin0.3")
    restored = wait_until(lambda: [p for p in _pushes(bed) if p["action"] == "restore"], 30,
                          "restore")
    assert restored[0]["result"] == "ok" and "g1m" in restored[0]["targets"]
    log = bed.lab.logs["g1c"].read_text()
    assert log.count('"event": "push"') == 2


def test_fetch_topology_and_push_to_group_from_a_node(bed: Bed) -> None:
    from freeoffload.offload_vm.policy import compile_policy, load_private_key

    built = compile_policy(ROOT / "examples/policies/select_target.c", version=2,
                           key=load_private_key(bed.tmp / "keys/signing.key"))
    (bed.tmp / "v2.fop").write_bytes(built.data)
    code = (
        "import json, sys\n"
        "from freeoffload.agent import fetch_topology, push_to_group\n"
        "crmap = fetch_topology(sys.argv[1], token='tok-g1', group='g1')\n"
        "print(json.dumps(sorted(crmap.nodes)))\n"
        "data = open(sys.argv[2], 'rb').read()\n"
        "print(json.dumps(push_to_group('g1', data, token='tok-g1', timeout=10)))\n")
    out = bed.lab.run("g1m", [sys.executable, "-c", code, bed.url("g1c", ""),
                              str(bed.tmp / "v2.fop")], timeout=60)
    assert out.returncode == 0, out.stderr
    names, results = (json.loads(line) for line in out.stdout.splitlines()[-2:])
    assert {"g1c", "g1m"} <= set(names)
    assert [(r["device"], r["status"]) for r in results] == [("dev1", 200)], results
    status = json.loads(http(bed.lab, "g1c", "GET",
                             f"http://{bed.lab.addresses['dev1']}:7701/v1/status")[1])
    assert status["policy"]["version"] == 2


def test_center_killed_and_restarted_is_found_again_and_nothing_is_lost(bed: Bed) -> None:
    before = bed.get("g1m", "g1c", "/v1/nodes/g1m", "g1")["node"]
    bed.lab.stop("g1c", signal.SIGKILL)
    time.sleep(4 * INTERVAL)
    kept = bed.get("g1m", "g1m", "/v1/nodes/g1m", "g1")["node"]  # the member keeps its data
    assert kept["ComputingPower"] == before["ComputingPower"]
    metrics = http(bed.lab, "g1m", "GET", bed.url("g1m", "/metrics"))[1].decode()
    assert "freeoffload_agent_center_reachable 0.0" in metrics
    bed.start_agent("g1c")
    after = wait_until(lambda: bed.get("g1m", "g1c", "/v1/nodes/g1m", "g1")["node"], 60,
                       "g1m reported to the restarted center")
    assert after["Online"] and after["ComputingPower"] == before["ComputingPower"]
    assert after["Security"] == before["Security"] and after["Group"] == "g1"
    wait_until(lambda: _cloud_complete(bed), 60, "the cloud's map complete again")


def test_sigterm_detaches_probes_and_exits_cleanly(bed: Bed) -> None:
    for short in ("g2m", "g2c"):
        assert bed.lab.stop(short, signal.SIGTERM) == 0
        log = bed.lab.logs[short].read_text()
        assert '"event": "probes.detached"' in log and '"event": "agent.stopped"' in log
