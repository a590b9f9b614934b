"""The testbed: the paper's network on one machine, its task services and its experiments.

``freeoffload testbed up`` builds every CR-map node of ``examples/testbed/testbed.yaml`` as a
network namespace with its link latencies, bandwidths and CPU share; ``down`` removes all of it;
``run fig7|fig9`` runs the paper's experiments against the real parts.

The names are imported on first use (a module ``__getattr__``), so that importing the
``testbed`` command's ``_cli`` (every ``freeoffload`` command does) stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from freeoffload import _lazy

if TYPE_CHECKING:
    from .bed import STATE_DIR, Status, down, read_state, status, up
    from .config import DEFAULT_CONFIG, NodePlan, Plan, load_plan

_WHERE = {
    "DEFAULT_CONFIG": "config",
    "NodePlan": "config",
    "Plan": "config",
    "STATE_DIR": "bed",
    "Status": "bed",
    "down": "bed",
    "load_plan": "config",
    "read_state": "bed",
    "status": "bed",
    "up": "bed",
}

__all__ = [
    "DEFAULT_CONFIG",
    "STATE_DIR",
    "NodePlan",
    "Plan",
    "Status",
    "down",
    "load_plan",
    "read_state",
    "status",
    "up",
]


def __getattr__(name: str) -> Any:
    return _lazy.load(__name__, globals(), _WHERE, name)


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
