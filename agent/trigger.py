"""The re-offload trigger: when a node's CPU stays high, move its devices' tasks elsewhere.

A :class:`CpuTrigger` watches each node's reported CPU. ``samples`` reports in a row at or above
``threshold`` fire it; ``samples`` reports in a row below ``threshold - hysteresis`` restore it.
On fire, the center computes new targets for every device attached to that node (the CR-map seen
from the device, the overloaded node left out: its own group, plus the other groups' nodes and
links learned from the cloud or the other centers, :meth:`Agent.wider_map`, so that the policy
searches the group first, then the other groups, then the cloud) and pushes them as a signed
update of the selection policy's ``candidates`` map (installing the signed policy first when
the device lacks it); on restore it pushes the targets of the map as it now is. Every push is
logged with its reason.

Besides the threshold, the center keeps its devices' candidates current (the paper's real-time
state): every ``trigger.refresh.interval`` seconds (1 by default) it computes each device's
rows from the live map and pushes them (``action: refresh``) when they changed materially
(:func:`material_change`: a node came or went, went on or offline, its free CPU moved by
``min_change`` of its cores, a tenth by default, its free Memory or Storage by that share) or
the last push is ``max_age`` seconds old (15 by default). Path latencies are not a reason on
their own (probes' RTTs jitter by several times on a busy host, which would push every
second); they travel with the next push, at most ``max_age`` later. Every
push carries a new stamp, so the device's policy starts counting what it places afresh from
data that already measures what it sent before. Refreshes are logged as ``refresh`` events and
kept in :attr:`Pusher.refreshes` (``/v1/pushes`` lists the trigger's fire and restore pushes
and, apart, the refreshes; each record says when, ``at``, in Unix seconds).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from freeoffload.topology import CPU, ComputingPower, CRMap, Edge, Node

from freeoffload.errors import AgentConfigError, AgentError, Location

from .config import AgentConfig, DeviceConfig, RefreshConfig
from .log import event
from .service import Agent

__all__ = ["CpuTrigger", "PushMaterial", "Pusher", "load_push_material", "material_change"]

log = logging.getLogger("freeoffload.agent.trigger")
DEVICE_LINK_MS = 1.0
DEVICE_LINK_MBIT = 100.0
LEVELS = ("group", "other-group", "cloud")  # a candidate row's level
PUSH_TIMEOUT = 10.0  # s for one device to answer a push
_SAME = ("flags", "family", "ip", "port", "role", "level", "capable")


def material_change(old: Sequence[Any], new: Sequence[Any],
                    share: float = RefreshConfig.min_change) -> str | None:
    """What changed between candidate rows ``old`` and ``new`` that would make a device decide
    differently ("; "-separated), or None when they differ only by noise: free CPU by less than
    ``share`` of the node's cores, free Memory or Storage by less than ``share`` of the value
    (see the module's docstring)."""
    if [r.name for r in old] != [r.name for r in new]:
        return f"candidates now {', '.join(r.name for r in new) or 'none'}"
    why = []
    for a, b in zip(old, new, strict=True):
        why += [f"{b.name}: {name} changed" for name in _SAME
                if getattr(a, name) != getattr(b, name)]
        if not (a.flags | b.flags) & 0x2:
            continue  # offline before and after: what it measures decides nothing
        if abs(a.free_cpu_milli - b.free_cpu_milli) >= max(share * b.cpu_milli, 1):
            why.append(f"{b.name}: free CPU {a.free_cpu_milli / 1000:g} -> "
                       f"{b.free_cpu_milli / 1000:g} cores")
        for attr in ("free_memory_mib", "free_storage_mib"):
            x, y = getattr(a, attr), getattr(b, attr)
            if abs(x - y) >= max(share * max(x, y), 1):
                why.append(f"{b.name}: free {attr.split('_')[1]} {x} -> {y} MiB")
    return "; ".join(why) or None


@dataclass
class _NodeState:
    high: int = 0
    low: int = 0
    fired: bool = False


@dataclass
class CpuTrigger:
    """Per-node hysteresis over consecutive CPU samples."""

    threshold: float = 70.0
    hysteresis: float = 10.0
    samples: int = 3
    nodes: dict[str, _NodeState] = field(default_factory=dict)

    def observe(self, node: str, cpu: float) -> str | None:
        """``"fire"``, ``"restore"`` or None for this sample of ``node``'s CPU (percent)."""
        st = self.nodes.setdefault(node, _NodeState())
        st.high = st.high + 1 if cpu >= self.threshold else 0
        st.low = st.low + 1 if cpu < self.threshold - self.hysteresis else 0
        if not st.fired and st.high >= self.samples:
            st.fired = True
            return "fire"
        if st.fired and st.low >= self.samples:
            st.fired = False
            return "restore"
        return None


@dataclass(frozen=True)
class PushMaterial:
    """The signed selection policy and the key that signs map updates."""

    package: bytes
    policy_name: str
    policy_version: int
    key: Any  # Ed25519PrivateKey


def load_push_material(cfg: AgentConfig) -> PushMaterial:
    """Read and verify the trigger's policy and key (AgentConfigError naming the file)."""
    from freeoffload.offload_vm.policy import load_private_key, read_package

    from freeoffload.errors import PolicyError

    trig = cfg.trigger
    where = Location(cfg.source)
    if not trig.policy:
        raise AgentConfigError.at(where, "trigger.policy", "devices are listed but no policy",
                                  "the signed selection policy (.fop) to install on them")
    try:
        key = load_private_key(trig.key)
        data = Path(trig.policy).read_bytes()
        package = read_package(data, [key.public_key()], trig.policy)
    except OSError as err:
        raise AgentConfigError.at(where, "trigger.policy", f"cannot read {trig.policy}: "
                                  f"{err.strerror}") from err
    except PolicyError as err:
        raise AgentConfigError.at(where, "trigger", str(err).splitlines()[0],
                                  "the policy must be signed by trigger.key") from err
    manifest = package.manifest
    if manifest.map("candidates") is None:
        raise AgentConfigError.at(where, "trigger.policy",
                                  f"policy {manifest.name!r} has no 'candidates' map",
                                  "use the selection policy (examples/policies/select_target.c)")
    return PushMaterial(data, manifest.name, manifest.version, key)


def device_view(crmap: CRMap, device: DeviceConfig, group: str, exclude: str = "") -> CRMap:
    """``crmap`` plus ``device`` linked to its node; ``exclude`` (the overloaded node) offline."""
    nodes = dict(crmap.nodes)
    if exclude in nodes:
        nodes[exclude] = dataclasses.replace(nodes[exclude], online=False)
    nodes[device.name] = Node(device.name, "device", ComputingPower(CPU(0.0), 0.0, 0.0),
                              group=group)
    edges = [*crmap.edges, Edge(device.name, device.attached, DEVICE_LINK_MBIT,
                                DEVICE_LINK_MS)]
    return CRMap(nodes, edges, "<trigger>")


def fit_candidates(view: CRMap, requester: str) -> CRMap:
    """``view`` cut to the :data:`MAX_CANDIDATES` rows the candidates map holds.

    The requester's group and the clouds always stay; the other groups' edges fill what is
    left, online ones only, nearest first, alternating secure and insecure ones so that
    sensitive and ordinary tasks both keep their nearest choices. Unchanged when it fits.
    """
    from freeoffload.topology.candidates import MAX_CANDIDATES
    from freeoffload.topology.graph import distances_from

    group = view.nodes[requester].group
    dist = distances_from(view, requester)
    rows = [n for n in view.nodes.values() if n.role in ("edge", "cloud") and n.name in dist]
    if len(rows) <= MAX_CANDIDATES:
        return view
    keep = {n.name for n in rows if n.role == "cloud" or n.group == group}
    others = sorted((n for n in rows if n.name not in keep and n.online),
                    key=lambda n: (dist[n.name], n.name))
    secure = [n.name for n in others if n.security]
    plain = [n.name for n in others if not n.security]
    room = MAX_CANDIDATES - len(keep)
    while room > 0 and (secure or plain):
        for queue in (secure, plain):
            if queue and room > 0:
                keep.add(queue.pop(0))
                room -= 1
    nodes = {name: n for name, n in view.nodes.items()
             if name in keep or n.role not in ("edge", "cloud")}
    # links through a dropped node still count: the path latencies stay those of the full map
    edges = list(view.edges)
    for name in view.nodes:
        if name not in nodes:
            nodes[name] = dataclasses.replace(view.nodes[name], role="device")
    return CRMap(nodes, edges, view.source)


@dataclass
class _Sent:
    rows: list[Any]  # the rows last pushed (Candidate)
    at: float  # time.monotonic() of that push


class Pusher:
    """Pushes the policy and candidates of the devices attached to a node: on the threshold
    trigger, and whenever the live candidates change materially (refresh)."""

    def __init__(self, agent: Agent, material: PushMaterial) -> None:
        self.agent = agent
        self.material = material
        self.trigger = CpuTrigger(agent.cfg.trigger.threshold, agent.cfg.trigger.hysteresis,
                                  agent.cfg.trigger.samples)
        self.history = agent.pushes
        self.refreshes = agent.refreshes
        refresh = agent.cfg.trigger.refresh
        self.refresh_interval = refresh.interval
        self.max_age = refresh.max_age
        self.min_change = refresh.min_change
        self._sent: dict[str, _Sent] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._refresher: asyncio.Task[None] | None = None
        agent.observers.append(self.observe_and_act)
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return  # started with the first observed record
        self._refresher = asyncio.ensure_future(self._refresh_loop())

    def observe_and_act(self, node: Node) -> None:
        """Feed one CPU sample; start the pushes when it fires or restores. The first sample
        also starts the refresh loop."""
        if self._refresher is None and self.agent.cfg.trigger.devices:
            self._refresher = asyncio.ensure_future(self._refresh_loop())
        if not any(d.attached == node.name for d in self.agent.cfg.trigger.devices):
            return
        action = self.trigger.observe(node.name, node.resource.cpu_percent)
        if action is not None:
            task = asyncio.ensure_future(self.act(node.name, action, node.resource.cpu_percent))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def act(self, node: str, action: str, cpu: float) -> None:
        trig = self.agent.cfg.trigger
        if action == "fire":
            reason = (f"{node} CPU {cpu:.1f}% >= {trig.threshold:g}% for {trig.samples} "
                      "samples: moving its devices' tasks")
        else:
            reason = (f"{node} CPU {cpu:.1f}% < {trig.threshold - trig.hysteresis:g}% for "
                      f"{trig.samples} samples: restoring its devices' targets")
        for device in trig.devices:
            if device.attached == node:
                await self._push_device(device, node, action, reason)

    def _rows(self, crmap: CRMap, device: DeviceConfig, stamp: int = 0) -> list[Any]:
        """The device's candidate rows from ``crmap``: its node left out while fired."""
        from freeoffload.topology.candidates import candidate_rows

        state = self.trigger.nodes.get(device.attached)
        exclude = device.attached if state is not None and state.fired else ""
        view = fit_candidates(device_view(crmap, device, self.agent.cfg.group, exclude=exclude),
                              device.name)
        return candidate_rows(view, device.name, stamp=stamp)

    async def _refresh_loop(self) -> None:
        while True:
            await asyncio.sleep(self.refresh_interval)
            try:
                await self.refresh()
            except Exception as err:  # the loop outlives one bad look
                error = f"{type(err).__name__}: {err}"
                event(log, "refresh.failed", logging.WARNING, error=error)
                self.refreshes.append({"action": "refresh", "result": "failed", "error": error})

    async def refresh(self) -> None:
        """One look at the live map: push each device's rows that changed materially (or are
        older than max_age)."""
        started = time.monotonic()
        crmap = await self.agent.wider_map()
        for device in self.agent.cfg.trigger.devices:
            sent = self._sent.get(device.name)
            rows = self._rows(crmap, device)
            if sent is None:
                why = "first rows for this device"
            elif time.monotonic() - sent.at >= self.max_age:
                why = f"rows {self.max_age:g} s old"
            else:
                why = material_change(sent.rows, rows, self.min_change) or ""
            if why:
                await self._push_device(device, device.attached, "refresh",
                                        f"live candidates changed: {why}", crmap, started)

    async def _push_device(self, device: DeviceConfig, node: str, action: str,
                           reason: str, crmap: CRMap | None = None,
                           looked: float | None = None) -> None:
        """Push; a refresh (``looked``: when its map was read) is dropped when another push
        reached the device since: that one's rows are at least as fresh."""
        from freeoffload.offload_vm.policy import sign_map_update
        from freeoffload.topology.candidates import candidate_items

        record: dict[str, Any] = {"device": device.name, "node": node, "action": action,
                                  "reason": reason, "at": round(time.time(), 3)}
        lock = self._locks.setdefault(device.name, asyncio.Lock())
        async with lock:  # one push at a time per device: versions only grow
            sent = self._sent.get(device.name)
            if looked is not None and sent is not None and sent.at > looked:
                return
            try:
                crmap = crmap if crmap is not None else await self.agent.wider_map()
                status = await self._status(device)
                await self._install_policy(device, status, record)
                version = max(int(time.time() * 1000), self._map_version(status) + 1)
                # the stamp names this computation: the device's counts restart with it
                rows = self._rows(crmap, device, stamp=version & 0xFFFFFFFF or 1)
                update = sign_map_update(self.material.policy_name, "candidates", version,
                                         candidate_items(rows), self.material.key)
                await self._put(device, "/v1/maps/candidates", update)
                self._sent[device.name] = _Sent(rows, time.monotonic())
                usable = [r for r in rows if r.flags & 0x2]  # online
                record.update(result="ok", map_version=version,
                              targets=[r.name for r in usable],
                              levels={r.name: LEVELS[r.level] for r in usable})
                self.agent.metrics.pushes.labels(action, "ok").inc()
                event(log, "push" if action != "refresh" else "refresh", **record)
            except (AgentError, ValueError, Exception) as err:
                record.update(result="failed", error=f"{type(err).__name__}: {err}")
                self.agent.metrics.pushes.labels(action, "failed").inc()
                event(log, "push" if action != "refresh" else "refresh", logging.ERROR,
                      **record)
        (self.refreshes if action == "refresh" else self.history).append(record)

    async def _status(self, device: DeviceConfig) -> dict[str, Any]:
        status: dict[str, Any] = await asyncio.wait_for(
            self.agent.peer.json("GET", device.url, "/v1/status"), PUSH_TIMEOUT)
        return status

    def _map_version(self, status: dict[str, Any]) -> int:
        maps = status.get("maps") or {}
        cand = maps.get("candidates") if isinstance(maps, dict) else None
        return int(cand.get("version", 0)) if isinstance(cand, dict) else 0

    async def _install_policy(self, device: DeviceConfig, status: dict[str, Any],
                              record: dict[str, Any]) -> None:
        installed = status.get("policy") or status.get("installed") or {}
        name = installed.get("name") if isinstance(installed, dict) else None
        version = installed.get("version", 0) if isinstance(installed, dict) else 0
        if name == self.material.policy_name and version >= self.material.policy_version:
            return
        await self._put(device, "/v1/policy", self.material.package)
        record["policy"] = f"{self.material.policy_name} v{self.material.policy_version}"

    async def _put(self, device: DeviceConfig, path: str, body: bytes) -> None:
        status, answer = await asyncio.wait_for(self.agent.peer.call(
            "PUT", device.url, path, body, {"Content-Type": "application/octet-stream"}),
            PUSH_TIMEOUT)
        if status >= 400:
            raise AgentError(f"PUT {device.url}{path}: {status}: "
                             f"{answer[:300].decode(errors='replace')}")
