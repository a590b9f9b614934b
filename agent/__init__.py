"""The node daemon: members, group centers, the cloud, offload queries, the re-offload trigger.

``freeoffload agent`` runs a :class:`Daemon`; its state and decisions are an :class:`Agent`
served by :func:`build_app`. :func:`fetch_topology` and :func:`push_to_group` are for other
parts' command lines (``topology show --from URL``, ``policy push --group NAME``).

The names are imported on first use (a module ``__getattr__``): every ``freeoffload`` command
imports this package for its ``_cli``, and the daemon's imports (aiohttp, prometheus_client,
zeroconf, networkx) would cost each of them a second of start-up.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from freeoffload import _lazy

if TYPE_CHECKING:
    from .config import AgentConfig, default_config, load_config, load_config_text
    from .daemon import Daemon, run_daemon
    from .peers import fetch_topology, fetch_topology_text, push_to_group
    from .server import build_app
    from .service import Agent, Answer
    from .state import ReportError, Store

_WHERE = {
    "Agent": "service",
    "AgentConfig": "config",
    "Answer": "service",
    "Daemon": "daemon",
    "ReportError": "state",
    "Store": "state",
    "build_app": "server",
    "default_config": "config",
    "fetch_topology": "peers",
    "fetch_topology_text": "peers",
    "load_config": "config",
    "load_config_text": "config",
    "push_to_group": "peers",
    "run_daemon": "daemon",
}

__all__ = [
    "Agent",
    "AgentConfig",
    "Answer",
    "Daemon",
    "ReportError",
    "Store",
    "build_app",
    "default_config",
    "fetch_topology",
    "fetch_topology_text",
    "load_config",
    "load_config_text",
    "push_to_group",
    "run_daemon",
]


def __getattr__(name: str) -> Any:
    return _lazy.load(__name__, globals(), _WHERE, name)


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
