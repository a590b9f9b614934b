"""Drawing a CR-map with matplotlib (Agg): nodes by role and load, links labelled by latency."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt

from .model import CRMap

__all__ = ["LABEL_LIMIT", "draw", "layout"]

LABEL_LIMIT = 60
_ROW = {"cloud": 2.0, "edge": 1.0, "device": 0.0}
_SHAPE = {"cloud": "s", "edge": "o", "device": "^"}


def layout(crmap: CRMap) -> dict[str, tuple[float, float]]:
    """Cloud on top, edges in the middle, devices below; groups side by side."""
    groups = sorted({n.group for n in crmap.nodes.values() if n.role != "cloud"})
    slot = {g: i for i, g in enumerate(groups)}
    rows: dict[tuple[str, str], list[str]] = {}
    for node in sorted(crmap.nodes.values(), key=lambda n: n.name):
        key = (node.role, "" if node.role == "cloud" else node.group)
        rows.setdefault(key, []).append(node.name)
    width = max(len(groups), 1)
    out: dict[str, tuple[float, float]] = {}
    for (role, group), names in rows.items():
        left = 0.0 if role == "cloud" else float(slot[group])
        span = float(width) if role == "cloud" else 1.0
        for i, name in enumerate(names):
            out[name] = (left + span * (i + 1) / (len(names) + 1), _ROW[role])
    return out


def _bend(crmap: CRMap, where: dict[str, tuple[float, float]], a: str, b: str) -> float:
    """How far a link bows out: links along a row that would pass over other nodes curve."""
    (x1, y1), (x2, y2) = where[a], where[b]
    if y1 != y2:
        return 0.0
    low, high = sorted((x1, x2))
    between = sum(1 for n, (x, y) in where.items() if y == y1 and low < x < high)
    return 0.0 if between == 0 else 0.18 * between * (1 if y1 > 0.5 else -1)


def _link(ax: Any, p: tuple[float, float], q: tuple[float, float], bend: float,
          label: str) -> None:
    control = ((p[0] + q[0]) / 2, (p[1] + q[1]) / 2 + bend * 2)
    ts = [i / 24 for i in range(25)]
    xs = [(1 - t) ** 2 * p[0] + 2 * (1 - t) * t * control[0] + t * t * q[0] for t in ts]
    ys = [(1 - t) ** 2 * p[1] + 2 * (1 - t) * t * control[1] + t * t * q[1] for t in ts]
    ax.plot(xs, ys, color="0.6", linewidth=1, zorder=1)
    if not label:
        return
    ax.annotate(label, (xs[12], ys[12]), fontsize=7, ha="center", va="center", color="0.25",
                bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none"})


def draw(crmap: CRMap, out: Path) -> None:
    """Write a PNG of the map; colour is CPU load (green idle, red saturated).

    Maps of more than :data:`LABEL_LIMIT` nodes are drawn without text on nodes and links.
    """
    where = layout(crmap)
    labels = len(crmap.nodes) <= LABEL_LIMIT
    width = min(40.0, max(6.0, 2.2 * len(crmap.groups()) + 2))
    fig, ax = plt.subplots(figsize=(width, 5.5))
    for edge in crmap.edges:
        a, b = edge.start_node, edge.end_node
        _link(ax, where[a], where[b], _bend(crmap, where, a, b) if labels else 0.0,
              f"{edge.latency_ms:g} ms" if labels else "")
    cmap = plt.get_cmap("RdYlGn_r")
    for role, marker in _SHAPE.items():
        names = [n for n, node in crmap.nodes.items() if node.role == role]
        if not names:
            continue
        loads = [crmap.nodes[n].resource.cpu_percent / 100.0 for n in names]
        ax.scatter([where[n][0] for n in names], [where[n][1] for n in names],
                   c=[cmap(v) for v in loads], marker=marker,
                   s=(900 if role != "device" else 500) if labels else 30,
                   edgecolors=["black" if crmap.nodes[n].security else "0.5" for n in names],
                   linewidths=[2.5 if crmap.nodes[n].security else 0.8 for n in names],
                   label=role, zorder=2)
        for name in names if labels else ():
            node = crmap.nodes[name]
            text = f"{name}\n{node.resource.cpu_percent:g}%"
            if not node.online:
                text += "\noffline"
            ax.annotate(text, where[name], fontsize=7, ha="center", va="center", zorder=3)
    ax.set_title(f"{crmap.source or 'CR-map'}: colour = CPU load, thick border = Security")
    ax.legend(loc="upper right", fontsize=7, markerscale=0.4)
    ax.set_axis_off()
    ax.margins(0.12)
    fig.tight_layout()
    try:
        fig.savefig(out, dpi=110)
    finally:
        plt.close(fig)
