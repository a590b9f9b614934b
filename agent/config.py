"""The agent's configuration file: loading and validation with line-numbered errors.

Every problem of a file is reported in one pass as ``file:line:col: field: problem; hint``
(:class:`freeoffload.errors.AgentConfigError`). With no file the agent runs the embedded
default: a one-node group that is its own center.

Example::

    node: edge1
    role: member            # member | center | cloud
    group: g1
    listen: 0.0.0.0:7070
    advertise: 10.0.0.1:7070
    center: 10.0.0.2:7070   # members: omit to find it with zeroconf
    cloud: 10.0.0.9:7070    # centers: where group summaries go
    peers: [10.0.1.2:7070]  # centers of other groups (also found with zeroconf)
    token: s3cret           # or token_file: /etc/freeoffload/g1.token
    tokens: {g2: other}     # other groups' tokens accepted here (centers, cloud)
    tls: {cert: edge1.crt, key: edge1.key, ca: ca.crt}  # mTLS; CN or a DNS SAN names the node
    report_interval: 2
    offline_after: 3
    record: {Role: edge, Security: true, Address: 10.0.0.1:8080}
    trigger: {threshold: 70, hysteresis: 10, samples: 3, devices: [...],
              refresh: {interval: 1, max_age: 15, min_change: 0.1}}

``trigger.refresh`` tunes how a center keeps its devices' candidates current besides the
threshold (:mod:`freeoffload.agent.trigger`): it looks at the live map every ``interval``
seconds, pushes a device's rows when they changed by at least ``min_change`` (a share of a
node's cores for free CPU, of the value for free Memory and Storage) or are ``max_age`` seconds
old.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from freeoffload.errors import AgentConfigError, Location, Problem
from freeoffload.yamlfile import LocMap, load_yaml, load_yaml_text

from ._schema import Checker

__all__ = [
    "ROLES",
    "AgentConfig",
    "DeviceConfig",
    "RefreshConfig",
    "TLSConfig",
    "TriggerConfig",
    "default_config",
    "load_config",
    "load_config_text",
    "parse_hostport",
]

ROLES = ("member", "center", "cloud")
DEFAULT_PORT = 7070


@dataclass(frozen=True)
class TLSConfig:
    """mTLS: this agent's certificate and key, and the CA that signs its peers'."""

    cert: str
    key: str
    ca: str


@dataclass(frozen=True)
class DeviceConfig:
    """A device daemon (``freeoffload device``) attached to one node of this group."""

    name: str
    url: str
    attached: str


@dataclass(frozen=True)
class RefreshConfig:
    """How a center keeps its devices' candidates current between threshold pushes."""

    interval: float = 1.0  # s between two looks at the live map
    max_age: float = 15.0  # s: rows this old are pushed again even when unchanged
    min_change: float = 0.1  # free CPU moved by this share of the cores (Memory, Storage: value)


@dataclass(frozen=True)
class TriggerConfig:
    """When a node's CPU stays >= threshold for ``samples`` reports, push new targets."""

    threshold: float = 70.0
    hysteresis: float = 10.0
    samples: int = 3
    policy: str = ""  # the signed selection policy (.fop) pushed with the first map update
    key: str = ""  # Ed25519 private key that signs map updates
    devices: tuple[DeviceConfig, ...] = ()
    refresh: RefreshConfig = field(default_factory=RefreshConfig)


@dataclass(frozen=True)
class AgentConfig:
    node: str
    role: str = "center"
    group: str = "default"
    listen: tuple[str, int] = ("127.0.0.1", DEFAULT_PORT)
    advertise: str = ""
    center: str = ""
    cloud: str = ""
    peers: tuple[str, ...] = ()
    token: str = ""
    tokens: dict[str, str] = field(default_factory=dict)
    tls: TLSConfig | None = None
    zeroconf: bool = True
    report_interval: float = 2.0
    offline_after: int = 3
    record: dict[str, Any] = field(default_factory=dict)
    probe_mode: str = "auto"
    probe_cgroup: str = ""
    prober_interval: float = 10.0
    task_kib: int = 256
    trigger: TriggerConfig = field(default_factory=TriggerConfig)
    source: str = "<default>"

    @property
    def address(self) -> str:
        """host:port at which peers reach this agent."""
        if self.advertise:
            return self.advertise
        host, port = self.listen
        if host in ("0.0.0.0", "::", ""):  # noqa: S104 - naming the wildcard, not binding it
            host = "127.0.0.1"
        return f"{host}:{port}"

    @property
    def scheme(self) -> str:
        return "https" if self.tls else "http"


def parse_hostport(text: str, default_port: int = DEFAULT_PORT) -> tuple[str, int]:
    """``HOST:PORT`` (or ``[v6]:PORT``) -> (host, port); raises ValueError with the reason."""
    text = text.strip()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port_text = rest.removeprefix(":")
    elif text.count(":") == 1:
        host, port_text = text.split(":")
    else:
        host, port_text = text, ""
    if not host:
        raise ValueError("missing host")
    if not port_text:
        return host, default_port
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"port must be 1..65535, got {port_text!r}")
    return host, int(port_text)


def default_config(listen: str | None = None) -> AgentConfig:
    """The embedded default: this host as a one-node group that is its own center."""
    node = socket.gethostname().split(".")[0] or "node"
    cfg = AgentConfig(node=node, role="center", group=node, zeroconf=False)
    if listen:
        cfg = _with_listen(cfg, listen, Location("--listen"))
    return cfg


def _with_listen(cfg: AgentConfig, listen: str, loc: Location) -> AgentConfig:
    from dataclasses import replace

    try:
        return replace(cfg, listen=parse_hostport(listen))
    except ValueError as err:
        raise AgentConfigError.at(loc, "listen", str(err), "expected HOST:PORT") from err


def load_config(path: str | Path, listen: str | None = None) -> AgentConfig:
    """Load and validate an agent configuration file; ``listen`` overrides its ``listen``."""
    data = load_yaml(path, AgentConfigError)
    return _build(data, str(path), listen)


def load_config_text(text: str, source: str = "<text>", listen: str | None = None) -> AgentConfig:
    data = load_yaml_text(text, source, AgentConfigError)
    return _build(data, source, listen)


def _build(data: Any, source: str, listen: str | None) -> AgentConfig:
    if not isinstance(data, LocMap):
        raise AgentConfigError.at(Location(source, 1, 1), "", "expected a mapping of settings",
                                  "see examples/systemd/agent.yaml")
    chk = Checker(data, source)
    cfg = _read_top(chk)
    problems: list[Problem] = chk.finish()
    problems.extend(_cross_checks(cfg, data, source))
    if problems:
        raise AgentConfigError(sorted(problems, key=lambda p: (p.location.line,
                                                                p.location.col)))
    if listen:
        cfg = _with_listen(cfg, listen, Location("--listen"))
    return cfg


def _read_top(chk: Checker) -> AgentConfig:
    hostname = socket.gethostname().split(".")[0] or "node"
    node = chk.string("node", hostname)
    role = chk.choice("role", ROLES, "center")
    token = chk.string("token", "")
    token_file = chk.string("token_file", "")
    if token_file and not token:
        token = _read_token(chk, token_file)
    probes = chk.sub("probes", lambda c: (c.choice("mode", ("auto", "ebpf", "procfs"), "auto"),
                                          c.string("cgroup", "")), ("auto", ""))
    return AgentConfig(
        node=node,
        role=role,
        group=chk.string("group", node),
        listen=chk.hostport("listen", ("127.0.0.1", DEFAULT_PORT)),
        advertise=chk.address("advertise"),
        center=chk.address("center"),
        cloud=chk.address("cloud"),
        peers=tuple(chk.addresses("peers")),
        token=token,
        tokens=chk.str_map("tokens"),
        tls=_read_tls(chk),
        zeroconf=chk.boolean("zeroconf", True),
        report_interval=chk.number("report_interval", 2.0, low=0.05),
        offline_after=int(chk.number("offline_after", 3, low=1, integer=True)),
        record=dict(chk.mapping("record")),
        probe_mode=probes[0],
        probe_cgroup=probes[1],
        prober_interval=chk.sub("prober", lambda c: c.number("interval", 10.0, low=0.1), 10.0),
        task_kib=chk.sub("tasks", lambda c: int(c.number("kib", 256, low=1, integer=True)), 256),
        trigger=chk.sub("trigger", _read_trigger, TriggerConfig()),
        source=chk.source,
    )


def _read_token(chk: Checker, path: str) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError as err:
        chk.problem("token_file", f"cannot read {path}: {err.strerror}",
                    "a file holding the group's token")
        return ""


def _read_tls(chk: Checker) -> TLSConfig | None:
    read: Callable[[Checker], TLSConfig | None] = lambda c: TLSConfig(  # noqa: E731
        cert=c.path("cert", required=True), key=c.path("key", required=True),
        ca=c.path("ca", required=True))
    return chk.sub("tls", read, None)


def _read_trigger(chk: Checker) -> TriggerConfig:
    threshold = chk.number("threshold", 70.0, low=1, high=100)
    hysteresis = chk.number("hysteresis", 10.0, low=0, high=99)
    if hysteresis >= threshold:
        chk.problem("hysteresis", f"{hysteresis:g} must be below threshold {threshold:g}",
                    "restore happens below threshold minus hysteresis")
    devices = []
    for item in chk.items("devices"):
        devices.append(DeviceConfig(name=item.string("name", "", required=True),
                                    url=item.url("url"),
                                    attached=item.string("attached", "", required=True)))
    return TriggerConfig(threshold=threshold, hysteresis=hysteresis,
                         samples=int(chk.number("samples", 3, low=1, integer=True)),
                         policy=chk.path("policy"), key=chk.path("key"),
                         devices=tuple(devices),
                         refresh=chk.sub("refresh", _read_refresh, RefreshConfig()))


def _read_refresh(chk: Checker) -> RefreshConfig:
    interval = chk.number("interval", 1.0, low=0.05, high=3600)
    max_age = chk.number("max_age", 15.0, low=0.05, high=86400)
    if max_age < interval:
        chk.problem("max_age", f"{max_age:g} s is shorter than interval {interval:g} s",
                    "rows are looked at every interval: max_age must be at least that")
    return RefreshConfig(interval=interval, max_age=max_age,
                         min_change=chk.number("min_change", 0.1, low=0.01, high=1))


def _cross_checks(cfg: AgentConfig, data: LocMap, source: str) -> list[Problem]:
    problems: list[Problem] = []
    if cfg.trigger.devices and not cfg.trigger.key:
        loc = data.value_loc("trigger")
        problems.append(Problem(loc, "trigger.key", "devices are listed but no signing key",
                                "pushes to devices are signed: give an Ed25519 private key"))
    if cfg.role == "member" and cfg.tokens:
        problems.append(Problem(data.key_loc("tokens"), "tokens",
                                "only centers and the cloud accept other groups' tokens",
                                "remove it or make this node a center"))
    return problems
