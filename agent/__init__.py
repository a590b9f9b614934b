"""The node daemon: members, group centers, the cloud, offload queries, the re-offload trigger.

``freeoffload agent`` runs a :class:`Daemon`; its state and decisions are an :class:`Agent`
served by :func:`build_app`. :func:`fetch_topology` and :func:`push_to_group` are for other
parts' command lines (``topology show --from URL``, ``policy push --group NAME``).
"""

from .config import AgentConfig, default_config, load_config, load_config_text
from .daemon import Daemon, run_daemon
from .peers import fetch_topology, fetch_topology_text, push_to_group
from .server import build_app
from .service import Agent, Answer
from .state import ReportError, Store

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
