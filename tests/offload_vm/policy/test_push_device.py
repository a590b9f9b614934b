"""`freeoffload policy push` against a real `freeoffload device` daemon on loopback."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from freeoffload.offload_vm.policy import compile_object, generate_keys, load_private_key
from freeoffload.offload_vm.policy.manifest import MapSchema
from freeoffload.offload_vm.policy.package import build_package

from .vmtools import EXAMPLES, fo

REDIRECTS = (MapSchema("redirects", 1, 24, 24, 1024),)


@pytest.fixture
def device(tmp_path: Path) -> Iterator[tuple[str, Ed25519PrivateKey, Path]]:
    """A device daemon trusting a fresh key; (its URL, the key, the key file)."""
    priv, pub = generate_keys(tmp_path / "keys")
    shutil.copy(pub, tmp_path / "center.pub")
    config = tmp_path / "device.yaml"
    config.write_text("listen: 127.0.0.1:0\nstore: store\nstate_dir: state\n"
                      "trusted_keys: [center.pub]\n")
    proc = subprocess.Popen([sys.executable, "-m", "freeoffload", "device", "--config",
                             str(config)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert "listening on " in line, line + (proc.stderr.read() if proc.stderr else "")
        yield line.split("listening on ", 1)[1].strip(), load_private_key(priv), priv
    finally:
        proc.terminate()
        try:
            proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()


def _status(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url + "/v1/status", timeout=30) as resp:
        answer: dict[str, Any] = json.loads(resp.read())
    return answer


def test_push_installs_and_the_device_refuses_older(device: tuple[str, Ed25519PrivateKey, Path],
                                                    tmp_path: Path, clang: str,
                                                    vm: None) -> None:
    url, key, key_file = device
    elf = compile_object(EXAMPLES / "redirect.c")
    new, old = tmp_path / "v3.fop", tmp_path / "v2.fop"
    new.write_bytes(build_package(elf, "redirect", 3, REDIRECTS, key))
    old.write_bytes(build_package(elf, "redirect", 2, REDIRECTS, key))
    done = fo("policy", "push", new, "--to", url)
    assert done.returncode == 0, done.stderr
    assert "redirect" in json.dumps(_status(url))
    refused = fo("policy", "push", old, "--to", url)
    assert refused.returncode == 2
    assert "the device refused it (HTTP 409)" in refused.stderr
    assert "version 2" in refused.stderr

    table = tmp_path / "table.yaml"
    table.write_text('- {from: "10.0.0.11:80", to: "10.0.0.13:8080"}\n')
    update = tmp_path / "redirects.fmu"
    assert fo("policy", "sign-map", new, "--map", f"redirects={table}", "--key", key_file,
              "--version", "5", "-o", update).returncode == 0
    pushed = fo("policy", "push", update, "--to", url)
    assert pushed.returncode == 0, pushed.stderr
    replayed = fo("policy", "push", update, "--to", url)
    assert replayed.returncode == 2
    assert "the device refused it (HTTP 409)" in replayed.stderr


def test_push_of_a_package_signed_by_another_key_is_refused(
        device: tuple[str, Ed25519PrivateKey, Path], tmp_path: Path, clang: str,
        vm: None) -> None:
    url, _, _ = device
    stranger = tmp_path / "stranger.fop"
    stranger.write_bytes(build_package(compile_object(EXAMPLES / "redirect.c"), "redirect", 3,
                                       REDIRECTS, Ed25519PrivateKey.generate()))
    done = fo("policy", "push", stranger, "--to", url)
    assert done.returncode == 2
    assert "which is not trusted" in done.stderr
