"""Helpers for the agent's tests: free ports and a config builder (not a conftest: the
testbed's tests below import the project conftest by name)."""

from __future__ import annotations

import socket
from typing import Any

from freeoffload.agent.config import AgentConfig, load_config_text
from freeoffload.agent.node import LocalNode


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def config(**fields: Any) -> AgentConfig:
    """An agent config from keyword fields (YAML values), validated like a file."""
    import yaml

    fields.setdefault("listen", f"127.0.0.1:{free_port()}")
    fields.setdefault("zeroconf", False)
    fields.setdefault("probes", {"mode": "procfs"})  # no bcc compile per in-process agent
    return load_config_text(yaml.safe_dump(fields), f"<test {fields.get('node')}>")


class SteadyNode(LocalNode):
    """This machine's record with a fixed CPU use: in-process agents share one busy host, and
    the tests of merging and queries must not depend on what else the machine runs (the trigger
    tests use real load in a cgroup instead)."""

    def __init__(self, cfg: AgentConfig, cpu: float = 5.0) -> None:
        super().__init__(cfg)
        self.cpu = cpu

    def cpu_percent(self, measured: float) -> float:
        return self.cpu
