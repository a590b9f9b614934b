"""``python -m freeoffload.agent ...``: the same as ``freeoffload agent ...``."""

import sys

from freeoffload.cli import main

sys.exit(main(["agent", *sys.argv[1:]]))
