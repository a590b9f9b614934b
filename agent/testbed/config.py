"""The testbed's configuration file and the plan derived from it and its CR-map.

``load_plan(path)`` reads ``examples/testbed/testbed.yaml`` (fields below), loads the CR-map it
names with :func:`freeoffload.topology.load_topology`, and computes everything ``up`` needs:
one :class:`NodePlan` per CR-map node (namespace, address, MAC, CPU share) and, per ordered pair
of nodes, the one-way delay (half the shortest-path Latency, so a round trip takes the file's
Latency) and the bottleneck bandwidth along that path.
"""

from __future__ import annotations

import ipaddress
import itertools
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from freeoffload.errors import ConfigError, Location, TestbedError
from freeoffload.yamlfile import LocMap, load_yaml

__all__ = ["DEFAULT_CONFIG", "NodePlan", "Plan", "load_plan"]

DEFAULT_CONFIG = Path(__file__).resolve().parents[2] / "examples" / "testbed" / "testbed.yaml"

_FIELDS: dict[str, type] = {
    "topology": str,
    "prefix": str,
    "subnet": str,
    "service_port": int,
    "max_cpu": float,
    "min_cpu": float,
    "centers": dict,
}
_DEFAULTS: dict[str, Any] = {
    "prefix": "fotb-",
    "subnet": "10.250.7.0/24",
    "service_port": 7700,
    "max_cpu": 1.0,
    "min_cpu": 0.05,
}


@dataclass(frozen=True)
class NodePlan:
    """One CR-map node as the testbed builds it."""

    name: str
    index: int
    role: str
    group: str
    security: bool
    netns: str
    ip: str
    mac: str
    cpu: float  # cores of this machine

    @property
    def service_url(self) -> str:
        return f"http://{self.ip}"


@dataclass(frozen=True)
class Plan:
    """Everything ``up`` builds, derived once from the config and the CR-map."""

    config_path: Path
    topology_path: Path
    prefix: str
    prefixlen: int
    service_port: int
    nodes: tuple[NodePlan, ...]
    # (src, dst) -> one-way delay (ms) and bottleneck bandwidth (Mbit/s)
    delay_ms: dict[tuple[str, str], float] = field(default_factory=dict)
    bandwidth_mbit: dict[tuple[str, str], float] = field(default_factory=dict)
    centers: dict[str, str] = field(default_factory=dict)  # group -> its center node

    @property
    def hub(self) -> str:
        """The namespace that holds the bridge and the delay stage."""
        return f"{self.prefix}hub"

    def node(self, name: str) -> NodePlan:
        for node in self.nodes:
            if node.name == name:
                return node
        raise TestbedError(f"no node '{name}' in {self.topology_path}; "
                           f"expected one of: {', '.join(n.name for n in self.nodes)}")

    def address(self, name: str) -> str:
        """``ip:port`` of a node's task service."""
        return f"{self.node(name).ip}:{self.service_port}"


def _check_fields(data: Any, source: Path) -> dict[str, Any]:
    if not isinstance(data, LocMap):
        raise ConfigError.at(Location(str(source)), "", "expected a mapping of settings")
    problems = []
    values = dict(_DEFAULTS)
    for key, value in data.items():
        want = _FIELDS.get(key)
        loc = data.key_loc(key)
        if want is None:
            problems.append(ConfigError.at(loc, str(key), "unknown field",
                                           f"expected one of: {', '.join(_FIELDS)}"))
            continue
        ok = isinstance(value, want) or (want is float and isinstance(value, int))
        if not ok or isinstance(value, bool):
            problems.append(ConfigError.at(data.value_loc(key), key,
                                           f"expected {want.__name__}, got {value!r}"))
            continue
        values[key] = value
    if "topology" not in data:
        problems.append(ConfigError.at(data.loc, "topology", "missing",
                                       "name the CR-map file, e.g. ../topologies/paper.yaml"))
    if problems:
        raise ConfigError([p for err in problems for p in err.problems])
    return values


def _subnet(values: dict[str, Any], data: LocMap) -> ipaddress.IPv4Network:
    try:
        net = ipaddress.IPv4Network(values["subnet"], strict=True)
    except ValueError as err:
        raise ConfigError.at(data.value_loc("subnet"), "subnet", str(err),
                             "expected a private IPv4 network such as 10.250.7.0/24") from err
    if not net.is_private or net.num_addresses < 256:
        raise ConfigError.at(data.value_loc("subnet"), "subnet",
                             f"{net} is not a private network of at least 256 addresses",
                             "the testbed may use only addresses of its own")
    return net


def _cpu_shares(crmap: Any, max_cpu: float, min_cpu: float) -> dict[str, float]:
    power = {n.name: max(n.computing_power.cpu.cores, 0.01) * max(n.computing_power.cpu.mhz, 1.0)
             for n in crmap.nodes.values()}
    strongest = max(power.values())
    return {name: round(max(min_cpu, max_cpu * p / strongest), 3) for name, p in power.items()}


def _links(crmap: Any, names: list[str]) -> tuple[dict[tuple[str, str], float],
                                                   dict[tuple[str, str], float]]:
    from freeoffload.topology import path_latency, shortest_path

    delay: dict[tuple[str, str], float] = {}
    bandwidth: dict[tuple[str, str], float] = {}
    for a in names:
        for b in names:
            if a == b:
                continue
            latency = path_latency(crmap, a, b)
            if math.isinf(latency):
                continue
            delay[(a, b)] = latency / 2.0
            hops = shortest_path(crmap, a, b)
            rates = [e.bandwidth_mbit for x, y in itertools.pairwise(hops)
                     if (e := crmap.edge_between(x, y)) is not None]
            bandwidth[(a, b)] = min(rates) if rates else 0.0
    return delay, bandwidth


def _centers(data: LocMap, given: dict[str, Any], crmap: Any) -> dict[str, str]:
    groups = {n.group for n in crmap.nodes.values() if n.role == "edge"}
    problems = []
    for group, node in given.items():
        loc = data["centers"].value_loc(group)
        if group not in groups:
            problems.append(ConfigError.at(loc, f"centers.{group}", "no edge is in this group",
                                           f"expected one of: {', '.join(sorted(groups))}"))
        elif node not in crmap.nodes or crmap.nodes[node].group != group:
            members = sorted(n.name for n in crmap.nodes.values()
                             if n.group == group and n.role == "edge")
            problems.append(ConfigError.at(loc, f"centers.{group}",
                                           f"'{node}' is not an edge of {group}",
                                           f"expected one of: {', '.join(members)}"))
    if problems:
        raise ConfigError([p for err in problems for p in err.problems])
    return {str(g): str(n) for g, n in given.items()}


def load_plan(path: str | Path = DEFAULT_CONFIG) -> Plan:
    """Read a testbed config and its CR-map; raise ConfigError naming file, line and field."""
    from freeoffload.topology import load_topology

    source = Path(path)
    data = load_yaml(source)
    values = _check_fields(data, source)
    net = _subnet(values, data)
    topology_path = (source.parent / values["topology"]).resolve()
    crmap = load_topology(topology_path)
    names = sorted(crmap.nodes, key=lambda n: (crmap.nodes[n].role, n))
    if len(names) > 30:
        raise TestbedError(f"{topology_path}: {len(names)} nodes; the testbed builds at most 30")
    shares = _cpu_shares(crmap, float(values["max_cpu"]), float(values["min_cpu"]))
    hosts = list(net.hosts())
    nodes = []
    for index, name in enumerate(names):
        node = crmap.nodes[name]
        nodes.append(NodePlan(
            name=name, index=index, role=node.role, group=node.group, security=node.security,
            netns=f"{values['prefix']}{name}", ip=str(hosts[10 + index]),
            mac=f"02:f0:0f:00:00:{index + 1:02x}", cpu=shares[name]))
    delay, bandwidth = _links(crmap, names)
    centers = _centers(data, values.get("centers", {}), crmap)
    return Plan(config_path=source.resolve(), topology_path=topology_path,
                prefix=values["prefix"], prefixlen=net.prefixlen,
                service_port=values["service_port"], nodes=tuple(nodes),
                delay_ms=delay, bandwidth_mbit=bandwidth, centers=centers)
