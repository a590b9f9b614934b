"""Plain-text tables of a CR-map's nodes and links (what ``topology show`` prints)."""

from __future__ import annotations

from collections.abc import Sequence

from .model import CRMap, Node

__all__ = ["links_table", "nodes_table"]


def _render(header: Sequence[str], rows: list[list[str]], right: set[int]) -> str:
    widths = [max(len(header[i]), *(len(r[i]) for r in rows)) if rows else len(header[i])
              for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.rjust(w) if i in right else c.ljust(w)
                         for i, (c, w) in enumerate(zip(cells, widths, strict=True))).rstrip()

    return "\n".join([line(header), *(line(r) for r in rows)])


def _num(value: float) -> str:
    return f"{value:g}"


def _node_row(node: Node) -> list[str]:
    power, used = node.computing_power, node.resource
    capability = " ".join(f"{k}={v:g}" for k, v in sorted(node.capability.items())) or "-"
    served = node.role != "device" or power.cpu.cores > 0
    return [
        node.name, node.role, node.group or "-", node.address or "-",
        f"{_num(power.cpu.cores)}x{_num(power.cpu.mhz)}" if served else "-",
        f"{_num(used.cpu_percent)}%",
        f"{node.free_cpu_cores:.2f}" if served else "-",
        f"{_num(node.free_memory_mib)}/{_num(power.memory_mib)}" if served else "-",
        f"{_num(power.storage_gib - used.storage_used_gib)}/{_num(power.storage_gib)}"
        if served else "-",
        "yes" if node.security else "no",
        capability,
        "yes" if node.online else "NO",
    ]


def nodes_table(crmap: CRMap) -> str:
    """One row per node: role, group, address, CPU and load, free resources, Capability."""
    header = ["NAME", "ROLE", "GROUP", "ADDRESS", "CPU(cores x MHz)", "LOAD", "FREE CORES",
              "MEMORY FREE/MiB", "STORAGE FREE/GiB", "SECURE", "CAPABILITY(ms)", "ONLINE"]
    order = {"cloud": 0, "edge": 1, "device": 2}
    nodes = sorted(crmap.nodes.values(), key=lambda n: (order[n.role], n.group, n.name))
    return _render(header, [_node_row(n) for n in nodes], {4, 5, 6, 7, 8})


def links_table(crmap: CRMap) -> str:
    rows = [[e.start_node, e.end_node, _num(e.bandwidth_mbit), _num(e.latency_ms)]
            for e in sorted(crmap.edges, key=lambda e: e.pair)]
    return _render(["FROM", "TO", "BANDWIDTH(Mbit/s)", "LATENCY(ms)"], rows, {2, 3})
