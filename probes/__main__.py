"""``python -m freeoffload.probes ACTION``: the same as ``freeoffload probes ACTION``."""

import sys

from freeoffload.cli import main

sys.exit(main(["probes", *sys.argv[1:]]))
