"""Processes of the testbed: started inside a node's namespace and cgroup, found again by both.

A process is started through ``sh`` that first writes its own pid into the node's cgroup(s) and
then ``exec``s ``nsenter --net=/run/netns/NS`` and the program, so everything it forks stays in
the cgroup and the namespace from its first instruction on. ``down`` finds processes three ways:
the state file's pids, the cgroups' member lists, and every process whose network namespace is
one of the testbed's (leftovers of a crashed ``up``).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from collections.abc import Sequence
from pathlib import Path

from freeoffload.errors import TestbedError

__all__ = ["RELAY_SOURCE", "build_relay", "netns_pids", "run", "spawn"]

RELAY_SOURCE = Path(__file__).with_name("relay.c")
_ENTER = 'for f in $FOTB_PROCS; do echo $$ > "$f" || exit 111; done; exec nsenter "$@"'


def spawn(netns: str, procs_files: Sequence[Path], argv: Sequence[str], log: Path,
          env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """Start ``argv`` in ``netns`` and the cgroups of ``procs_files``; output goes to ``log``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    full_env = dict(os.environ if env is None else env)
    full_env["FOTB_PROCS"] = " ".join(str(p) for p in procs_files)
    with log.open("ab") as out:
        return subprocess.Popen(
            ["sh", "-c", _ENTER, "sh", f"--net=/run/netns/{netns}", "--", *argv],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=full_env,
            start_new_session=True)


def run(netns: str, procs_files: Sequence[Path], argv: Sequence[str],
        timeout: float = 900.0) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` in ``netns`` and the cgroups of ``procs_files``; wait and capture output."""
    env = dict(os.environ)
    env["FOTB_PROCS"] = " ".join(str(p) for p in procs_files)
    return subprocess.run(["sh", "-c", _ENTER, "sh", f"--net=/run/netns/{netns}", "--", *argv],
                          capture_output=True, text=True, timeout=timeout, env=env)


def netns_pids(namespaces: Sequence[str]) -> set[int]:
    """Processes whose network namespace is one of ``namespaces`` (by inode)."""
    inodes = set()
    for name in namespaces:
        try:
            inodes.add(os.stat(f"/run/netns/{name}").st_ino)
        except OSError:
            continue
    if not inodes:
        return set()
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.stat(entry / "ns" / "net").st_ino in inodes:
                found.add(int(entry.name))
        except OSError:
            continue
    return found


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "freeoffload"


def build_relay() -> Path:
    """Compile the delay stage (once per source version) and return the binary's path."""
    source = RELAY_SOURCE.read_bytes()
    digest = hashlib.sha256(source).hexdigest()[:16]
    binary = _cache_dir() / f"fo-relay-{digest}"
    if binary.exists():
        return binary
    binary.parent.mkdir(parents=True, exist_ok=True)
    tmp = binary.with_suffix(f".tmp{os.getpid()}")
    cc = os.environ.get("CC", "gcc")
    result = subprocess.run([cc, "-O2", "-Wall", "-o", str(tmp), str(RELAY_SOURCE)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise TestbedError(f"compiling {RELAY_SOURCE} with {cc} failed:\n{result.stderr.strip()}")
    tmp.replace(binary)
    return binary
