"""CSV and PNG output of the scenarios (matplotlib with the Agg backend: no display needed)."""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["percentile", "plot_cpu", "plot_lines", "write_csv"]


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) by the nearest-rank method; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100.0 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def write_csv(path: Path, rows: Iterable[Mapping[str, Any]], fields: Sequence[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=list(fields), extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow(row)
    return path


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_lines(path: Path, series: Mapping[str, tuple[Sequence[float], Sequence[float]]],
               xlabel: str, ylabel: str, title: str) -> Path:
    """One line per series name: (xs, ys)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    for name, (xs, ys) in series.items():
        ax.plot(xs, ys, marker="o", label=name)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_cpu(path: Path, times: Sequence[float], cpu: Mapping[str, Sequence[float]],
             marks: Mapping[str, float], threshold: float, title: str,
             served: Sequence[tuple[float, str]] = ()) -> Path:
    """CPU over time per node, with vertical lines at named moments (e.g. the push) and, at
    the bottom, one marker per task labelled with the node that served it."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=110)
    colors: dict[str, Any] = {}
    for name, values in cpu.items():
        (line,) = ax.plot(times, values, label=name,
                          linewidth=1.6 if name.startswith("edge") else 1.0)
        colors[name] = line.get_color()
    for at, node in served:
        ax.plot([at], [4], marker="v", color=colors.get(node, "black"))
        ax.annotate(node, (at, 6), fontsize=6, rotation=90, ha="center")
    ax.axhline(threshold, color="grey", linestyle=":", label=f"threshold {threshold:g}%")
    for label, at in marks.items():
        ax.axvline(at, color="red", linestyle="--")
        ax.annotate(label, (at, 102), color="red", fontsize=8, ha="left")
    ax.set_ylim(0, 110)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("CPU (% of the node's share)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
