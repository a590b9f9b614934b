"""freeoffload: move end-device tasks to the best cloud or edge node in real time.

The parts install as ``freeoffload.topology``, ``freeoffload.probes``, ``freeoffload.agent``,
``freeoffload.offload_vm`` and ``freeoffload.firmware_hooks``; this facade holds the version,
the error tree, the YAML-with-locations loader and the ``freeoffload`` command line.
"""

from . import errors
from .errors import *  # noqa: F403  (the error tree is the facade's public API)

__version__ = "0.1.0"

__all__ = [*errors.__all__, "__version__"]
