"""``struct fo_connect_ctx`` and ``struct fo_addr`` on the Python side.

The hook fills the context in C; dry runs, tests and tools build it here from what a user
writes (``{"dst": "10.0.0.11:8080", "task": "examples/tasks/audio.yaml"}``).
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass, replace
from typing import Any

from freeoffload.errors import Location, PolicyError, Problem

__all__ = [
    "CTX_SIZE",
    "ConnectContext",
    "context_from_json",
    "format_endpoint",
    "pack_addr",
    "parse_endpoint",
    "redirect_entry",
    "task_fields",
]

CTX_SIZE = 64
AF_INET, AF_INET6 = 2, 10
SOCK_TYPES = {"stream": 1, "dgram": 2}
PROTOCOLS = {"tcp": 6, "udp": 17}
TASK_TYPES = {"cpu": 1, "io": 2}
TASK_SENSITIVE, TASK_URGENT = 0x1, 0x2
CTX_V4MAPPED = 0x1
_CTX = struct.Struct("<4I4sI16s6I")
_ADDR = struct.Struct("<II16s")
_KEYS = ("dst", "task", "sock_type", "protocol", "pid", "v4mapped", "from")


def parse_endpoint(text: str, where: Location | None = None,
                   field: str = "dst") -> tuple[int, bytes, int]:
    """``"a.b.c.d:port"`` or ``"[v6]:port"`` -> (family, address bytes, port)."""
    host, sep, port = str(text).rpartition(":")
    try:
        ip = ipaddress.ip_address(host.strip("[]"))
        number = int(port)
        if not sep or not 0 <= number <= 65535:
            raise ValueError(port)
    except ValueError as err:
        raise PolicyError.at(where or Location("<argument>"), field,
                             f"expected ADDRESS:PORT, got {text!r}",
                             "e.g. 10.0.0.11:8080 or [2001:db8::1]:8080") from err
    family = AF_INET if ip.version == 4 else AF_INET6
    return family, ip.packed, number


def format_endpoint(family: int, ip: bytes, port: int) -> str:
    host = str(ipaddress.ip_address(ip[:4] if family == AF_INET else ip[:16]))
    return f"[{host}]:{port}" if family == AF_INET6 else f"{host}:{port}"


@dataclass(frozen=True)
class ConnectContext:
    """One connect() call as the policy sees it (``struct fo_connect_ctx``)."""

    family: int
    dst_ip: bytes  # 4 or 16 bytes
    dst_port: int
    sock_type: int = 1
    protocol: int = 6
    pid: int = 0
    flags: int = 0
    task_type: int = 0
    task_flags: int = 0
    demand_cpu_milli: int = 0
    demand_memory_mib: int = 0
    demand_storage_mib: int = 0

    @property
    def destination(self) -> str:
        return format_endpoint(self.family, self.dst_ip, self.dst_port)

    def pack(self) -> bytes:
        if self.family == AF_INET:
            ip4, ip6 = self.dst_ip, bytes(16)
        elif self.flags & CTX_V4MAPPED:
            ip4, ip6 = self.dst_ip[12:16], self.dst_ip
        else:
            ip4, ip6 = bytes(4), self.dst_ip
        return _CTX.pack(self.family, self.sock_type, self.protocol, self.pid, ip4,
                         self.dst_port, ip6, self.flags, self.task_type, self.task_flags,
                         self.demand_cpu_milli, self.demand_memory_mib, self.demand_storage_mib)

    @classmethod
    def unpack(cls, data: bytes) -> ConnectContext:
        (family, sock_type, protocol, pid, ip4, port, ip6, flags, ttype, tflags, cpu, mem,
         sto) = _CTX.unpack(bytes(data[:CTX_SIZE]))
        ip = ip4 if family == AF_INET else ip6
        return cls(family, ip, port, sock_type, protocol, pid, flags, ttype, tflags, cpu, mem,
                   sto)


def task_fields(task: Any) -> dict[str, int]:
    """The context's task fields for a :class:`freeoffload.topology.Task`: CPU Demand in
    thousandths of a core (rounded), Memory and Storage in whole MiB (rounded up)."""
    flags = (TASK_SENSITIVE if task.sensitive else 0) | (TASK_URGENT if task.urgent else 0)
    demand = task.demand
    return {"task_type": TASK_TYPES.get(task.type, 0), "task_flags": flags,
            "demand_cpu_milli": round(demand.cpu_cores * 1000),
            "demand_memory_mib": -int(-demand.memory_mib // 1),
            "demand_storage_mib": -int(-demand.storage_mib // 1)}


def _socket_fields(raw: dict[str, Any], loc: Location) -> dict[str, int]:
    sock = raw.get("sock_type", "stream")
    if sock not in SOCK_TYPES:
        raise PolicyError.at(loc, "sock_type", f"unknown socket type {sock!r}",
                             f"expected one of: {', '.join(SOCK_TYPES)}")
    proto = raw.get("protocol", "tcp" if sock == "stream" else "udp")
    if proto not in PROTOCOLS and not (isinstance(proto, int) and 0 <= proto < 256):
        raise PolicyError.at(loc, "protocol", f"unknown protocol {proto!r}",
                             f"expected one of: {', '.join(PROTOCOLS)} or a number")
    pid = raw.get("pid", 0)
    if isinstance(pid, bool) or not isinstance(pid, int) or pid < 0:
        raise PolicyError.at(loc, "pid", f"expected a process id, got {pid!r}")
    return {"sock_type": SOCK_TYPES[sock], "pid": pid,
            "protocol": PROTOCOLS[proto] if isinstance(proto, str) else proto}


def context_from_json(raw: Any, source: str = "--ctx") -> ConnectContext:
    """A context from ``{"dst": ..., "task": TASK.yaml, "sock_type": "stream"|"dgram",
    "protocol": "tcp"|"udp"|N, "pid": N, "v4mapped": bool}`` (``from`` is for map files)."""
    loc = Location(source)
    if not isinstance(raw, dict) or "dst" not in raw:
        raise PolicyError.at(loc, "", "expected a JSON object with at least \"dst\"",
                             '{"dst": "10.0.0.11:8080", "task": "examples/tasks/audio.yaml"}')
    unknown = sorted(set(raw) - set(_KEYS))
    if unknown:
        raise PolicyError([Problem(loc, k, "unknown field", f"expected one of: {', '.join(_KEYS)}")
                           for k in unknown])
    family, ip, port = parse_endpoint(raw["dst"], loc)
    ctx = ConnectContext(family, ip, port, **_socket_fields(raw, loc))
    if raw.get("v4mapped"):
        if family != AF_INET:
            raise PolicyError.at(loc, "v4mapped", "needs an IPv4 dst (the mapped address)")
        ctx = replace(ctx, family=AF_INET6, dst_ip=bytes(10) + b"\xff\xff" + ip,
                      flags=CTX_V4MAPPED)
    if raw.get("task") is not None:
        from freeoffload.topology import load_task

        fields = task_fields(load_task(str(raw["task"])))
        ctx = replace(ctx, task_type=fields["task_type"], task_flags=fields["task_flags"],
                      demand_cpu_milli=fields["demand_cpu_milli"],
                      demand_memory_mib=fields["demand_memory_mib"],
                      demand_storage_mib=fields["demand_storage_mib"])
    return ctx


def pack_addr(endpoint: str) -> bytes:
    """The 24 bytes of ``struct fo_addr`` for ``"ADDRESS:PORT"``."""
    family, ip, port = parse_endpoint(endpoint)
    return _ADDR.pack(family, port, ip.ljust(16, b"\0"))


def redirect_entry(original: str, target: str) -> tuple[bytes, bytes]:
    """A (key, value) row of the redirect example's ``redirects`` map: connections to
    ``original`` go to ``target`` (both ``"ADDRESS:PORT"``)."""
    return pack_addr(original), pack_addr(target)
