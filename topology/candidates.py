"""The ``candidates`` map of the selection policy: a CR-map seen from one requesting node.

This is the one definition of ``struct fo_candidate`` (``offload_vm/include/freeoffload/
policy.h``) on the Python side: :func:`candidate_rows` turns a CR-map and a requesting node into
rows, :func:`pack_candidates` into the exact bytes of the map's values (row i is key i). The rows
carry what :func:`freeoffload.topology.select_target` compares, as integers: free resources
rounded so that an integer Demand compares exactly as the float one does, and dense ranks of
path latency, headroom, power per Type and name, so the policy breaks ties as Python does.

Each computation of rows gets a fresh ``stamp`` (every row carries it): the selection policy
counts the demand it has itself placed on each candidate since that row was computed
(process-local state, ``struct fo_placed``) and starts counting afresh when the stamp changes.
:func:`overflow_target` is the policy's answer where :func:`freeoffload.topology.select_target`
has none (no node has the free capacity): the capable node least over-committed for its size.
"""

from __future__ import annotations

import ipaddress
import math
import secrets
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Final

from freeoffload.errors import Location, Problem, TopologyError

from .graph import distances_from
from .model import CRMap, Node, Task

__all__ = [
    "CANDIDATE_SIZE",
    "MAX_CANDIDATES",
    "TASK_TYPE_IDS",
    "Candidate",
    "candidate_items",
    "candidate_rows",
    "fresh_stamp",
    "overflow_target",
    "pack_candidate",
    "pack_candidates",
]

MAX_CANDIDATES: Final = 64  # FO_MAX_CANDIDATES
CANDIDATE_SIZE: Final = 128  # sizeof(struct fo_candidate)
TASK_TYPE_IDS: Final = {"cpu": 1, "io": 2}  # FO_TASK_CPU, FO_TASK_IO
TYPE_SLOTS: Final = 4  # FO_TASK_TYPES
FLAG_VALID, FLAG_ONLINE, FLAG_SECURE, FLAG_FULL = 0x1, 0x2, 0x4, 0x8
AF_INET, AF_INET6 = 2, 10
ROLE_IDS: Final = {"edge": 1, "cloud": 2}
LEVEL_GROUP, LEVEL_OTHER, LEVEL_CLOUD = 0, 1, 2
_U32: Final = 0xFFFFFFFF
_LAYOUT = struct.Struct("<II4sI16s8I4I2I4I6I")


@dataclass(frozen=True)
class Candidate:
    """One row of the candidates map (``struct fo_candidate``); ``name`` is not packed."""

    name: str
    flags: int
    family: int
    ip: bytes  # 4 bytes (IPv4) or 16 (IPv6), network byte order
    port: int
    role: int
    level: int
    latency_us: int
    headroom_milli: int
    capable: int
    free_cpu_milli: int
    free_memory_mib: int
    free_storage_mib: int
    capability_us: tuple[int, ...] = field(default=(0,) * TYPE_SLOTS)
    latency_rank: int = 0
    headroom_rank: int = 0
    power_rank: tuple[int, ...] = field(default=(0,) * TYPE_SLOTS)
    name_rank: int = 0
    cpu_milli: int = 0
    stamp: int = 0

    @property
    def address(self) -> str:
        host = str(ipaddress.ip_address(self.ip))
        return f"[{host}]:{self.port}" if self.family == AF_INET6 else f"{host}:{self.port}"


def _u32(value: float) -> int:
    return 0 if value <= 0 else _U32 if value >= _U32 else int(value)


def _free_milli(free: float) -> int:
    """The largest D with ``not free < D / 1000``: compares with D as Python compares floats."""
    if free < 0:
        return 0
    m = _u32(math.floor(free * 1000))
    while m < _U32 and not free < (m + 1) / 1000:
        m += 1
    while m > 0 and free < m / 1000:
        m -= 1
    return m


def fresh_stamp() -> int:
    """A new nonzero 32-bit stamp for rows computed now (random: stamps from different
    centers and processes must not collide; the policy only compares them for equality)."""
    return secrets.randbits(32) or 1


def _dense_rank(names: Sequence[str], key: Callable[[str], float | str]) -> dict[str, int]:
    values = sorted({key(n) for n in names})
    index = {v: i for i, v in enumerate(values)}
    return {n: index[key(n)] for n in names}


def _address(crmap: CRMap, node: Node) -> tuple[int, bytes, int]:
    try:
        ip = ipaddress.ip_address(node.host)
    except ValueError as err:
        raise TopologyError([Problem(Location(crmap.source or "<map>"), f"{node.name}.Address",
                                     f"'{node.address}' has no IP address",
                                     "the candidates map needs IP:port (the device connects "
                                     "to it without a name lookup)")]) from err
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    family = AF_INET if ip.version == 4 else AF_INET6
    return family, ip.packed, node.port


def _level(node: Node, requester: Node) -> int:
    if node.role == "cloud":
        return LEVEL_CLOUD
    own = bool(requester.group) and node.group == requester.group
    return LEVEL_GROUP if own else LEVEL_OTHER


def _power(node: Node, task_type: str) -> float:
    found = node.effective_ms(task_type)
    return math.inf if found is None else found


def _row(node: Node, requester: Node, dist: float, stamp: int, family: int, ip: bytes,
         port: int) -> Candidate:
    full = node.free_memory_mib < 0 or node.free_storage_mib < 0 or node.free_cpu_cores < 0
    flags = (FLAG_VALID | (FLAG_ONLINE if node.online else 0)
             | (FLAG_SECURE if node.security else 0) | (FLAG_FULL if full else 0))
    measured = [0] * TYPE_SLOTS
    capable = 0
    for name, tid in TASK_TYPE_IDS.items():
        ms = node.capability.get(name)
        if ms is not None:
            capable |= 1 << tid
            measured[tid] = _u32(round(ms * 1000))
    return Candidate(node.name, flags, family, ip, port, ROLE_IDS[node.role],
                     _level(node, requester), _u32(round(dist * 1000)),
                     _u32(round(node.headroom * 1000)), capable,
                     _free_milli(node.free_cpu_cores), _u32(math.floor(node.free_memory_mib)),
                     _u32(math.floor(node.free_storage_mib)), tuple(measured),
                     cpu_milli=_u32(round(node.computing_power.cpu.cores * 1000)),
                     stamp=stamp & _U32 or 1)


def candidate_rows(crmap: CRMap, from_node: str, stamp: int | None = None) -> list[Candidate]:
    """The rows for a device or node ``from_node``: every edge and cloud node it reaches,
    sorted by name, each with ``stamp`` (default: :func:`fresh_stamp`). Raises TopologyError
    for an unknown node, an address without an IP, or more than :data:`MAX_CANDIDATES`
    candidates."""
    dist = distances_from(crmap, from_node)
    requester = crmap.nodes[from_node]
    nodes = [crmap.nodes[n] for n in sorted(crmap.nodes)
             if crmap.nodes[n].role in ROLE_IDS and n in dist]
    if len(nodes) > MAX_CANDIDATES:
        raise TopologyError([Problem(Location(crmap.source or "<map>"), "nodes",
                                     f"{len(nodes)} edge and cloud nodes reach {from_node}; "
                                     f"the candidates map holds {MAX_CANDIDATES}",
                                     "send the requester's group and the cloud only")])
    stamp = fresh_stamp() if stamp is None else stamp
    rows = [_row(n, requester, dist[n.name], stamp, *_address(crmap, n)) for n in nodes]
    return _ranked(rows, {n.name: n for n in nodes}, dist)


def _ranked(rows: list[Candidate], nodes: dict[str, Node],
            dist: dict[str, float]) -> list[Candidate]:
    names = [r.name for r in rows]
    latency = _dense_rank(names, lambda n: dist[n])
    headroom = _dense_rank(names, lambda n: -nodes[n].headroom)
    by_name = _dense_rank(names, lambda n: n)
    power = {t: _dense_rank(names, lambda n, t=t: _power(nodes[n], t))  # type: ignore[misc]
             for t in TASK_TYPE_IDS}
    out = []
    for r in rows:
        ranks = [0] * TYPE_SLOTS
        for t, tid in TASK_TYPE_IDS.items():
            ranks[tid] = power[t][r.name]
        out.append(Candidate(**{**r.__dict__, "latency_rank": latency[r.name],
                                "headroom_rank": headroom[r.name], "name_rank": by_name[r.name],
                                "power_rank": tuple(ranks)}))
    return out


def pack_candidate(row: Candidate, key: int = 0) -> bytes:
    """The 128 bytes of one ``struct fo_candidate``, for the map's row ``key``."""
    ip4 = row.ip if row.family == AF_INET else bytes(4)
    ip6 = row.ip if row.family == AF_INET6 else bytes(16)
    return _LAYOUT.pack(row.flags, row.family, ip4, row.port, ip6, row.role, row.level,
                        row.latency_us, row.headroom_milli, row.capable, row.free_cpu_milli,
                        row.free_memory_mib, row.free_storage_mib, *row.capability_us,
                        row.latency_rank, row.headroom_rank, *row.power_rank, row.name_rank,
                        row.cpu_milli, row.stamp, key, 0, 0)


def pack_candidates(rows: Sequence[Candidate]) -> bytes:
    """The values of the candidates map, row i at key i, concatenated."""
    return b"".join(pack_candidate(r, i) for i, r in enumerate(rows))


def candidate_items(rows: Sequence[Candidate]) -> list[tuple[bytes, bytes]]:
    """Every (key, value) of the map: the rows, then zero rows up to MAX_CANDIDATES, so
    writing them all replaces whatever the map held."""
    if len(rows) > MAX_CANDIDATES:
        raise ValueError(f"{len(rows)} rows; the candidates map holds {MAX_CANDIDATES}")
    values = [pack_candidate(r, i) for i, r in enumerate(rows)]
    values += [bytes(CANDIDATE_SIZE)] * (MAX_CANDIDATES - len(values))
    return [(struct.pack("<I", i), v) for i, v in enumerate(values)]


def overflow_target(crmap: CRMap, task: Task, from_node: str) -> str | None:
    """The selection policy's answer where :func:`~freeoffload.topology.select_target` has
    none because no node has the free capacity (the policy, like Python, keeps the
    algorithm's choice whenever there is one).

    Among the nodes that pass every test of the algorithm except free CPU (online, reached,
    a Capability for the Type, Security for a Sensitive task, the cloud for a Sensitive task
    that is not Urgent, free Memory and Storage covering Demand), the one whose CPU is least
    committed relative to its size once the task is there: ``cpu_percent / 100 + Demand CPU /
    cores`` (``cpu_percent`` counts a node over-committed past 100 in full); ties in the
    rule's order (level, then as ``select_target``). CPU is time-shared, so committing more
    of it than a node has only slows the node's tasks down, in proportion to its size;
    memory and storage are not shared that way. None when no node passes.
    """
    from .select import rule_for

    dist = distances_from(crmap, from_node)
    requester = crmap.nodes[from_node]
    rule = rule_for(task)
    demand = task.demand
    best: tuple[float, int, tuple[float | str, ...]] | None = None
    chosen = None
    for node in crmap.nodes.values():
        power = node.effective_ms(task.type)
        cores = node.computing_power.cpu.cores
        if (node.role not in ROLE_IDS or not node.online or node.name not in dist
                or power is None or (task.sensitive and not node.security)
                or (rule == "sensitive" and node.role != "cloud")
                or _u32(round(cores * 1000)) == 0 or node.free_memory_mib < demand.memory_mib
                or node.free_storage_mib < demand.storage_mib):
            continue
        level = _level(node, requester)
        order: tuple[float | str, ...] = (dist[node.name], power, node.name)
        if rule == "neither" and level != LEVEL_CLOUD:
            order = (-node.headroom, power, dist[node.name], node.name)
        key = (node.resource.cpu_percent / 100 + demand.cpu_cores / cores, level, order)
        if best is None or key < best:
            best, chosen = key, node.name
    return chosen
