"""Project-wide test settings.

Tests that need root, BPF, network namespaces or qemu carry markers (see pyproject.toml). CI runs
as root with everything installed by `make test`, so a missing capability there is a failure, not
a skip: skips are allowed only outside CI (CI unset), where a developer may lack root.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import settings

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

# CI draws the same examples on every run, so a landing does not depend on luck; developers'
# runs draw new ones (and keep failures in .hypothesis/ to replay them).
settings.register_profile("ci", derandomize=True, print_blob=True)
if IN_CI:
    settings.load_profile("ci")


def need(condition: bool, reason: str) -> None:
    """Skip when ``condition`` is false, except under CI, where it fails the test."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"CI must provide this: {reason}")
    pytest.skip(reason)


@pytest.fixture
def root() -> None:
    need(os.geteuid() == 0, "needs root")
