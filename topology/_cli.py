"""``freeoffload topology``: validate, show, select (heavy imports happen inside commands)."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["register"]


def _validate(args: argparse.Namespace) -> int:
    from ._commands import validate

    return validate(args.files)


def _show(args: argparse.Namespace) -> int:
    from ._commands import show

    return show(args.file, args.format, args.png)


def _select(args: argparse.Namespace) -> int:
    from ._commands import select

    return select(args.map, args.task, args.from_node, explain=args.explain, as_json=args.json)


def register(subparsers: Any) -> None:
    """Add ``topology`` and its subcommands to the ``freeoffload`` parser."""
    parser = subparsers.add_parser(
        "topology", help="CR-map files: validate, show, select a target for a task",
        description="Validate and show CR-maps and task files; choose where a task goes.")
    commands = parser.add_subparsers(dest="topology_command", metavar="SUBCOMMAND")
    parser.set_defaults(func=lambda _args: parser.print_help() or 2)

    validate = commands.add_parser(
        "validate", help="check CR-map and task files; print every problem",
        description="Check each FILE (a CR-map or a task); tasks are also checked against the "
                    "maps given. Prints every problem as file:line:col: field: problem; hint "
                    "and exits 2, or 0 when all are valid.")
    validate.add_argument("files", nargs="+", metavar="FILE")
    validate.set_defaults(func=_validate)

    show = commands.add_parser("show", help="print a CR-map's nodes and links (or draw it)",
                               description="Print a CR-map as a table, YAML or JSON; "
                                           "optionally draw it to a PNG.")
    show.add_argument("file", metavar="FILE")
    show.add_argument("--format", choices=("table", "yaml", "json"), default="table")
    show.add_argument("--png", metavar="OUT.png", help="also draw nodes by role and load, "
                                                       "links labelled by latency")
    show.set_defaults(func=_show)

    select = commands.add_parser(
        "select", help="choose the node a task goes to",
        description="Run the selection algorithm. Plain output: the chosen node's Name on the "
                    "first line, then the rule and level that answered. Exits 1 when no node "
                    "can run the task.")
    select.add_argument("--map", required=True, metavar="FILE", help="the CR-map")
    select.add_argument("--task", required=True, metavar="FILE", help="the task file")
    select.add_argument("--from", required=True, dest="from_node", metavar="NODE",
                        help="the requesting node's Name")
    select.add_argument("--explain", action="store_true",
                        help="also list every rejected candidate and why")
    select.add_argument("--json", action="store_true", help="print the answer as JSON")
    select.set_defaults(func=_select)
