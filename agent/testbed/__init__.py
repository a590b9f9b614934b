"""The testbed: the paper's network on one machine, its task services and its experiments.

``freeoffload testbed up`` builds every CR-map node of ``examples/testbed/testbed.yaml`` as a
network namespace with its link latencies, bandwidths and CPU share; ``down`` removes all of it;
``run fig7|fig9`` runs the paper's experiments against the real parts.
"""

from .bed import STATE_DIR, Status, down, read_state, status, up
from .config import DEFAULT_CONFIG, NodePlan, Plan, load_plan

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
