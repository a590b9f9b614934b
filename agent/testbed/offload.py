"""The device side of FreeOffload in the testbed, driven through the parts' own command lines.

- ``Device.start``: signing keys (``freeoffload keys gen``), the selection policy compiled and
  signed (``freeoffload policy compile examples/policies/select_target.c``), and the device
  daemon (``freeoffload device``) in the device's namespace with its own policy store.
- ``Device.push(crmap_file)``: the policy and a signed ``candidates`` update for the CR-map as
  the device's center sees it (``freeoffload policy sign-map`` / ``push``), as a center does.
- ``Device.run_client(...)``: the task client, an unmodified program, under ``freeoffload run``
  in the device's namespace: its connect() goes where the installed policy says.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from freeoffload.errors import TestbedError

from . import procs
from .cgroups import Cgroups, kill_pids
from .client import TaskRecord
from .config import Plan

__all__ = ["DEVICE_PORT", "POLICY_SOURCE", "Device", "fo", "ns_run"]

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
POLICY_SOURCE = EXAMPLES / "policies" / "select_target.c"
DEVICE_PORT = 7701
CLIENT_CGROUP = "clients"  # the device's own programs: in its namespace, not limited


def fo(*args: str) -> list[str]:
    """argv of a ``freeoffload`` command run with this interpreter."""
    return [sys.executable, "-m", "freeoffload", *args]


def ns_run(netns: str, argv: Sequence[str], timeout: float = 120.0,
           env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` in ``netns`` and wait; raise TestbedError naming the command if it fails."""
    result = subprocess.run(["nsenter", f"--net=/run/netns/{netns}", *argv], capture_output=True,
                            text=True, timeout=timeout, env=env)
    if result.returncode != 0:
        raise TestbedError(f"`{' '.join(argv[:6])} ...` in {netns} failed "
                           f"({result.returncode}): {(result.stderr or result.stdout)[-800:]}")
    return result


def _run(argv: Sequence[str]) -> str:
    result = subprocess.run(list(argv), capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        raise TestbedError(f"`{' '.join(argv[2:6])} ...` failed: "
                           f"{(result.stderr or result.stdout).strip()[-800:]}")
    return result.stdout


@dataclass
class Device:
    """A device node running ``freeoffload device`` and hooked programs."""

    plan: Plan
    cgroups: Cgroups
    name: str
    root: Path  # this device's store and state; keys and policy are the testbed's (../keys)
    attached: str = "edge1"  # the edge its programs are configured to use
    task_file: Path = EXAMPLES / "tasks" / "audio.yaml"  # what its programs run

    @property
    def url(self) -> str:
        return f"http://{self.plan.node(self.name).ip}:{DEVICE_PORT}"

    @property
    def store(self) -> Path:
        return self.root / "store"

    @property
    def keys(self) -> Path:
        """The testbed's signing keys and signed policy, shared by its devices and centers."""
        return self.root.parent / "keys"

    @property
    def policy(self) -> Path:
        return self.keys / "select_target.fop"

    @property
    def key(self) -> Path:
        return self.keys / "signing.key"

    def _material(self) -> None:
        if not self.key.exists():
            _run(fo("keys", "gen", "--out", str(self.keys)))
        if not self.policy.exists():
            _run(fo("policy", "compile", str(POLICY_SOURCE), "-o", str(self.policy),
                    "--key", str(self.key)))

    def start(self, fresh: bool = False) -> None:
        """Keys, compiled policy, and the device daemon, running when this returns. A daemon
        already running is kept, unless ``fresh``: then it is stopped and everything it had
        installed is removed first (a device that has never been pushed to)."""
        if fresh:
            self.stop()
        elif self.policy.exists() and self.status() is not None:
            return
        self.root.mkdir(parents=True, exist_ok=True)
        self._material()
        config = self.root / "device.yaml"
        config.write_text(json.dumps({
            "name": self.name, "listen": f"{self.plan.node(self.name).ip}:{DEVICE_PORT}",
            "store": str(self.store), "state_dir": str(self.root / "state"),
            "trusted_keys": [str(self.keys / "signing.pub")]}))
        self.cgroups.create(CLIENT_CGROUP, 1.0)
        proc = procs.spawn(self.plan.node(self.name).netns,
                           self.cgroups.procs_files(CLIENT_CGROUP),
                           fo("device", "--config", str(config)),
                           self.root.parent / "logs" / f"{self.name}.device.log")
        (self.root / "daemon.pid").write_text(str(proc.pid))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise TestbedError(f"freeoffload device on {self.name} exited "
                                   f"({proc.returncode}); see {self.root.parent / 'logs'}")
            if self.status() is not None:
                return
            time.sleep(0.3)
        raise TestbedError(f"freeoffload device on {self.name} did not answer at {self.url}")

    def stop(self) -> None:
        """Stop the daemon started here and remove its store and state (keys stay)."""
        pid_file = self.root / "daemon.pid"
        if pid_file.exists():
            kill_pids({int(pid_file.read_text())}, grace=3.0)
        shutil.rmtree(self.root, ignore_errors=True)

    def status(self) -> dict[str, Any] | None:
        """The daemon's ``GET /v1/status``, or None while it does not answer."""
        result = subprocess.run(
            ["nsenter", f"--net=/run/netns/{self.plan.node(self.name).netns}", "curl", "-sf",
             "--max-time", "2", f"{self.url}/v1/status"], capture_output=True, text=True)
        if result.returncode != 0:
            return None
        data = json.loads(result.stdout)
        return data if isinstance(data, dict) else None

    def push(self, crmap_file: Path, version: int | None = None) -> None:
        """Push the policy (first time) and a signed candidates update for ``crmap_file``."""
        hub = self.plan.node(self.name).netns
        status = self.status() or {}
        if not status.get("policy"):
            ns_run(hub, fo("policy", "push", str(self.policy), "--to", self.url))
        update = self.root / "candidates.fmu"
        # milliseconds, as the agents' pushes count, so the newest push wins whoever sends it
        version = version if version is not None else int(time.time() * 1000)
        _run(fo("policy", "sign-map", str(self.policy), "--map", f"candidates={crmap_file}",
                "--from", self.name, "--key", str(self.key), "--version", str(version),
                "-o", str(update)))
        ns_run(hub, fo("policy", "push", str(update), "--to", self.url))

    def run_client(self, task_file: Path, target: str, kind: str, units: int,
                   count: int, concurrency: int = 0) -> list[TaskRecord]:
        """``count`` tasks sent to ``target`` by the client under ``freeoffload run``,
        ``concurrency`` at a time (0: all at once)."""
        argv = fo("run", "--task", str(task_file), "--store", str(self.store), "--",
                  sys.executable, "-m", "freeoffload.agent.testbed.client", "--kind", kind,
                  "--units", str(units), "--count", str(count), "--target", target,
                  "--concurrency", str(concurrency))
        result = procs.run(self.plan.node(self.name).netns,
                           self.cgroups.procs_files(CLIENT_CGROUP), argv)
        records = [TaskRecord(**json.loads(line)) for line in result.stdout.splitlines()
                   if line.startswith("{")]
        if len(records) != count:
            raise TestbedError(f"the hooked client on {self.name} returned {len(records)} of "
                               f"{count} tasks: {result.stderr[-800:]}")
        return records
