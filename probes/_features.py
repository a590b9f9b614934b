"""What this machine offers the collectors: privileges, bcc, kernel headers, tracefs, kprobes.

Nothing here imports bcc; :func:`ebpf_off_reason` says in one line why eBPF cannot run, naming
what is missing, or returns ``None`` when it can.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import importlib.util
import os
from pathlib import Path

__all__ = [
    "ebpf_off_reason",
    "has_kprobes",
    "headers_dir",
    "missing_tracepoints",
    "possible_cpus",
    "tracefs",
]

_CAP_SYS_ADMIN = 21
_CAP_PERFMON = 38
_CAP_BPF = 39
_TRACEFS_CANDIDATES = (Path("/sys/kernel/tracing"), Path("/sys/kernel/debug/tracing"))


def _effective_caps() -> int:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("CapEff:"):
                return int(line.split()[1], 16)
    except OSError:
        pass
    return 0


def _privileged() -> bool:
    caps = _effective_caps()
    if caps & (1 << _CAP_SYS_ADMIN):
        return True
    return bool(caps & (1 << _CAP_BPF)) and bool(caps & (1 << _CAP_PERFMON))


def headers_dir() -> Path:
    """Where bcc looks for the running kernel's headers."""
    return Path("/lib/modules") / os.uname().release / "build"


def _mount_tracefs(target: Path) -> bool:
    libc_name = ctypes.util.find_library("c")
    if libc_name is None or not target.is_dir():
        return False
    libc = ctypes.CDLL(libc_name, use_errno=True)
    return int(libc.mount(b"tracefs", str(target).encode(), b"tracefs", 0, None)) == 0


def _is_dir(path: Path) -> bool:
    try:
        return path.is_dir()
    except OSError:  # not readable by this user
        return False


def _exists(path: Path) -> bool:
    try:
        return path.exists()
    except OSError:
        return False


def tracefs(mount: bool = True) -> Path | None:
    """The tracefs directory (``.../events`` inside), mounting it when allowed and needed."""
    for path in _TRACEFS_CANDIDATES:
        if _is_dir(path / "events"):
            return path
    if mount and os.geteuid() == 0 and _mount_tracefs(_TRACEFS_CANDIDATES[0]):
        return _TRACEFS_CANDIDATES[0]
    return None


def missing_tracepoints(names: tuple[str, ...] | list[str], base: Path) -> list[str]:
    """The ``category:event`` names that have no directory under ``base/events``."""
    return [n for n in names if not _exists(base / "events" / n.replace(":", "/") / "format")]


def has_kprobes(base: Path | None) -> bool:
    """Whether the kernel has kprobes (a PMU or tracefs' kprobe_events)."""
    if _exists(Path("/sys/bus/event_source/devices/kprobe")):
        return True
    return base is not None and _exists(base / "kprobe_events")


def possible_cpus() -> int:
    """How many CPUs the kernel may ever bring up (the size of per-CPU arrays)."""
    try:
        text = Path("/sys/devices/system/cpu/possible").read_text().strip()
        last = max(int(part.split("-")[-1]) for part in text.split(","))
        return last + 1
    except (OSError, ValueError):
        return os.cpu_count() or 1


def ebpf_off_reason() -> str | None:
    """One line saying why the eBPF collectors cannot run here, or None when they can."""
    if os.environ.get("FREEOFFLOAD_PROBES_MODE", "") == "procfs":
        return "procfs mode requested (FREEOFFLOAD_PROBES_MODE=procfs)"
    if not _privileged():
        return "not root: eBPF needs root or CAP_BPF+CAP_PERFMON"
    if importlib.util.find_spec("bcc") is None:
        return "no bcc: install Debian's python3-bpfcc (PyPI's 'bcc' is another package)"
    if not _is_dir(headers_dir() / "include"):
        return f"no kernel headers at {headers_dir()}: install linux-headers-{os.uname().release}"
    if tracefs() is None:
        return "no tracefs: mount -t tracefs tracefs /sys/kernel/tracing"
    return None
