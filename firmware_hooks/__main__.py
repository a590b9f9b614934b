"""``python -m freeoffload.firmware_hooks run [...] -- PROGRAM ARGS``: as ``freeoffload run``."""

import sys

from freeoffload.cli import main

sys.exit(main(sys.argv[1:]))
