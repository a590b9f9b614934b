"""Helpers for the device tests: keys, signed packages and a real daemon subprocess."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[3]
DATA = Path(__file__).parent / "data"


def compile_policy(src: Path, out: Path) -> bytes:
    subprocess.run(["clang", "-O2", "-g", "-target", "bpf", "-I", str(ROOT / "offload_vm/include"),
                    "-c", str(src), "-o", str(out)], check=True)
    return out.read_bytes()


class Daemon:
    """``freeoffload device --config FILE`` as a child process on a loopback port."""

    def __init__(self, config: Path) -> None:
        self.config = config
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""

    def start(self) -> Daemon:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "freeoffload", "device", "--config", str(self.config)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ))
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if "listening on " not in line:
            self.proc.kill()
            _out, err = self.proc.communicate(timeout=10)
            raise AssertionError(f"the daemon did not start: {line}{err}")
        self.url = line.split("listening on ", 1)[1].strip()
        return self

    def stop(self, sig: int = 15) -> str:
        """Stops the daemon; returns what it wrote on stderr."""
        if self.proc is None:
            return ""
        self.proc.send_signal(sig)
        try:
            _out, err = self.proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _out, err = self.proc.communicate()
        self.proc = None
        return err

    def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, Any]:
        req = urllib.request.Request(self.url + path, data=body, method=method)
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read())

    def put(self, path: str, body: bytes) -> tuple[int, Any]:
        return self.request("PUT", path, body)

    def status(self) -> dict[str, Any]:
        code, answer = self.request("GET", "/v1/status")
        assert code == 200
        assert isinstance(answer, dict)
        return answer


def write_config(directory: Path, pubkey: Path, **extra: str) -> Path:
    shutil.copy(pubkey, directory / "center.pub")
    lines = ["listen: 127.0.0.1:0", "store: store", "state_dir: state",
             "trusted_keys: [center.pub]", *(f"{k}: {v}" for k, v in extra.items())]
    path = directory / "device.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path
