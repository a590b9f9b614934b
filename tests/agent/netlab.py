"""A small lab of network namespaces on one bridge (pyroute2), and processes inside them.

Every namespace gets a veth whose other end joins a bridge in a hub namespace, so the nodes
share one L2 segment (zeroconf's multicast included) and nothing touches the host's network.
``Lab.close()`` kills every process it started and removes every namespace and cgroup, also
after a failure.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from pyroute2 import IPRoute, NetNS, netns

VENV_PY = sys.executable


def cgroup2_root() -> Path | None:
    """Where cgroup v2 is mounted (``/sys/fs/cgroup`` or the hybrid ``.../unified``)."""
    for line in Path("/proc/mounts").read_text().splitlines():
        parts = line.split()
        if len(parts) > 2 and parts[2] == "cgroup2":
            return Path(parts[1])
    return None


class Lab:
    def __init__(self, prefix: str, subnet: str = "10.77.0") -> None:
        self.prefix = prefix
        self.subnet = subnet
        self.hub = f"{prefix}hub"
        self.names: list[str] = []
        self.addresses: dict[str, str] = {}
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.logs: dict[str, Path] = {}
        self.cgroups: list[Path] = []
        netns.create(self.hub)
        with NetNS(self.hub) as hub:
            hub.link("add", ifname="br0", kind="bridge")
            for name in ("lo", "br0"):
                hub.link("set", index=hub.link_lookup(ifname=name)[0], state="up")

    def ns(self, short: str) -> str:
        return f"{self.prefix}{short}"

    def add(self, short: str) -> str:
        """A namespace ``short`` on the bridge; returns its IPv4 address."""
        name = self.ns(short)
        index = len(self.names) + 2
        address = f"{self.subnet}.{index}"
        netns.create(name)
        self.names.append(name)
        outer, inner = f"fo{os.getpid() % 10000}h{index}", f"fo{os.getpid() % 10000}n{index}"
        with IPRoute() as ipr:
            ipr.link("add", ifname=outer, kind="veth", peer=inner)
            ipr.link("set", index=ipr.link_lookup(ifname=outer)[0], net_ns_fd=self.hub)
            ipr.link("set", index=ipr.link_lookup(ifname=inner)[0], net_ns_fd=name)
        with NetNS(self.hub) as hub:
            idx = hub.link_lookup(ifname=outer)[0]
            hub.link("set", index=idx, master=hub.link_lookup(ifname="br0")[0], state="up")
        with NetNS(name) as node:
            idx = node.link_lookup(ifname=inner)[0]
            node.link("set", index=idx, ifname="eth0")
            node.addr("add", index=idx, address=address, prefixlen=24)
            node.link("set", index=idx, state="up", multicast=1)
            node.link("set", index=node.link_lookup(ifname="lo")[0], state="up")
            node.route("add", dst="224.0.0.0/4", oif=idx)
        self.addresses[short] = address
        return address

    def start(self, key: str, short: str, argv: list[str], log_dir: Path,
              cgroup: Path | None = None) -> subprocess.Popen[bytes]:
        """Run ``argv`` in namespace ``short`` (in ``cgroup`` when given) as process ``key``."""
        log = log_dir / f"{key}.log"
        self.logs[key] = log
        pre = None
        if cgroup is not None:
            procs = cgroup / "cgroup.procs"

            def pre() -> None:
                procs.write_text(str(os.getpid()))

        with log.open("ab") as out:
            proc = subprocess.Popen([*self.enter(short), *argv],
                                    stdout=out, stderr=subprocess.STDOUT, preexec_fn=pre,
                                    start_new_session=True)
        self.procs[key] = proc
        return proc

    def stop(self, key: str, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int | None:
        proc = self.procs.pop(key, None)
        if proc is None:
            return None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            return proc.wait(5)

    def enter(self, short: str) -> list[str]:
        """The prefix that runs a command in ``short``'s network namespace. Unlike ``ip netns
        exec`` it keeps the mount namespace, so /sys/fs/cgroup stays visible."""
        return ["nsenter", f"--net=/run/netns/{self.ns(short)}"]

    def run(self, short: str, argv: list[str],
            timeout: float = 30) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*self.enter(short), *argv],
                              capture_output=True, text=True, timeout=timeout)

    def cgroup(self, name: str) -> Path:
        """A cgroup v2 ``PREFIX/name`` (its parent made on first use)."""
        root = cgroup2_root()
        if root is None:
            raise RuntimeError("no cgroup v2 mounted")
        parent = root / self.prefix.rstrip("-")
        if parent not in self.cgroups:
            parent.mkdir()
            self.cgroups.append(parent)
        path = parent / name
        path.mkdir()
        self.cgroups.insert(0, path)
        return path

    def close(self) -> None:
        for key in list(self.procs):
            self.stop(key, signal.SIGKILL, 5)
        for path in self.cgroups:
            with contextlib.suppress(OSError):
                if (path / "cgroup.kill").exists():
                    (path / "cgroup.kill").write_text("1")
            for _ in range(50):
                try:
                    path.rmdir()
                    break
                except OSError:
                    time.sleep(0.1)
        for name in [*self.names, self.hub]:
            with contextlib.suppress(Exception):
                netns.remove(name)


def http(lab: Lab, short: str, method: str, url: str, body: bytes | None = None,
         headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    """An HTTP request made from inside namespace ``short`` (with curl)."""
    argv = ["curl", "-sS", "-m", "10", "-o", "-", "-w", "\n%{http_code}", "-X", method]
    for k, v in (headers or {}).items():
        argv += ["-H", f"{k}: {v}"]
    if body is not None:
        argv += ["--data-binary", "@-"]
    out = subprocess.run([*lab.enter(short), *argv, url], input=body,
                         capture_output=True, timeout=20)
    text, _, code = out.stdout.rpartition(b"\n")
    return int(code or 0), text


def wait_until(check: Any, timeout: float, what: str, interval: float = 0.25) -> Any:
    end = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < end:
        with contextlib.suppress(Exception):
            last = check()
            if last:
                return last
        time.sleep(interval)
    raise AssertionError(f"{what}: not within {timeout:g}s (last: {last!r})")


__all__ = ["Lab", "cgroup2_root", "http", "urllib", "wait_until"]
