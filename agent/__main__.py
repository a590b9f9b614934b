"""``python -m freeoffload.agent ...``: the ``freeoffload agent`` command on its own."""

from __future__ import annotations

import argparse
import sys

from freeoffload.errors import ConfigError, FreeOffloadError

from ._cli import register


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="freeoffload")
    register(parser.add_subparsers(dest="command", metavar="COMMAND"))
    args = parser.parse_args(["agent", *(sys.argv[1:] if argv is None else argv)])
    try:
        return int(args.func(args) or 0)
    except ConfigError as err:
        print(err, file=sys.stderr)
        return 2
    except FreeOffloadError as err:
        print(f"freeoffload: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
