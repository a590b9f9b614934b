"""The line every benchmark prints about the machine it ran on (figures mean little without it)."""

from __future__ import annotations

import os
import platform
from pathlib import Path


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def describe() -> str:
    """CPU model and count, memory, load average, kernel and Python, on one line."""
    try:
        pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        memory = f", {pages / 2**30:.0f} GiB"
    except (ValueError, OSError):
        memory = ""
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (f"{cpu_model()} ({platform.machine()}), {os.cpu_count()} CPUs{memory}, "
            f"load average {load}; kernel {platform.release()}; "
            f"{platform.python_implementation()} {platform.python_version()}")
