"""``python -m freeoffload.firmware_hooks run [...] -- PROGRAM ARGS``."""

import sys

from ._cli import main

sys.exit(main())
