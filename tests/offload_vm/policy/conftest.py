"""Fixtures of the policy tests: a key pair, a second (untrusted) one, the examples."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import need
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = ROOT / "examples" / "policies"
DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture(scope="session")
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture(scope="session")
def other_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def clang() -> str:
    found = shutil.which("clang") or shutil.which("clang-14")
    need(found is not None, "clang is not installed (.ci/install-deps installs it)")
    assert found is not None
    return found


@pytest.fixture
def vm() -> None:
    """Skip (fail in CI) when the VM binding is not built."""
    need_vm()


def need_vm() -> None:
    try:
        from freeoffload.offload_vm import VM  # noqa: F401
    except ImportError as err:
        need(False, f"the VM binding is not built: {err}")
