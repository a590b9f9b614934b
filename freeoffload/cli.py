"""The ``freeoffload`` command line.

Each part contributes its subcommands through a private ``_cli`` module with one function,
``register(subparsers)``, which adds parsers whose ``func`` default takes the parsed arguments
and returns the exit status. Errors of the project print as their message and exit non-zero:
2 for a user's bad input (:class:`ConfigError`), 1 for anything else that went wrong.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence

from . import __version__
from .errors import ConfigError, FreeOffloadError

__all__ = ["build_parser", "main"]

# The parts that add subcommands, in the order --help lists them, with the commands each adds.
# A command line naming one of these commands imports only its part: the others' imports
# (aiohttp, numpy, networkx, ...) would cost every command seconds of start-up.
_PARTS = {
    "topology": ("topology",),
    "offload_vm": ("vm",),
    "offload_vm.policy": ("policy", "keys"),
    "firmware_hooks": ("run",),
    "firmware_hooks.device": ("device",),
    "probes": ("probes",),
    "agent": ("agent",),
    "agent.testbed": ("testbed",),
}


def _parts_for(argv: Sequence[str]) -> list[str]:
    command = next((arg for arg in argv if not arg.startswith("-")), None)
    for part, commands in _PARTS.items():
        if command in commands:
            return [part]
    return list(_PARTS)  # --help, --version or an unknown command: every part


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser with every part's commands, or with only the part ``argv`` names."""
    parser = argparse.ArgumentParser(
        prog="freeoffload",
        description="Move end-device tasks to the best cloud or edge node in real time.",
    )
    parser.add_argument("--version", action="version", version=f"freeoffload {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for part in _parts_for([] if argv is None else argv):
        name = f"freeoffload.{part}._cli"
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as err:
            if err.name is None or not (name + ".").startswith(err.name + "."):
                raise
            continue  # this part is not installed
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] | None = getattr(args, "func", None)
    if func is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(func(args) or 0)
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
