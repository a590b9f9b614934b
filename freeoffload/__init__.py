"""freeoffload: move end-device tasks to the best cloud or edge node in real time.

The parts install as ``freeoffload.topology``, ``freeoffload.probes``, ``freeoffload.agent``,
``freeoffload.offload_vm`` and ``freeoffload.firmware_hooks``; this facade holds the version,
the error tree, the YAML-with-locations loader and the ``freeoffload`` command line.
"""

from .errors import (
    AgentConfigError,
    AgentError,
    ConfigError,
    ExecutionFaultError,
    FreeOffloadError,
    HookError,
    Location,
    PolicyError,
    ProbeError,
    ProbeSpecError,
    Problem,
    ProgramRejectedError,
    TaskError,
    TestbedError,
    TopologyError,
    VMError,
)

__version__ = "0.1.0"

__all__ = [
    "AgentConfigError",
    "AgentError",
    "ConfigError",
    "ExecutionFaultError",
    "FreeOffloadError",
    "HookError",
    "Location",
    "PolicyError",
    "ProbeError",
    "ProbeSpecError",
    "Problem",
    "ProgramRejectedError",
    "TaskError",
    "TestbedError",
    "TopologyError",
    "VMError",
    "__version__",
]
