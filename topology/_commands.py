"""The work behind ``freeoffload topology`` subcommands."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from freeoffload.errors import ConfigError, Location, Problem, TopologyError
from freeoffload.yamlfile import load_yaml, load_yaml_text, location_of

from ._check import describe
from .dump import dump_topology, dump_topology_json
from .loader import from_json, kind_of, load_task, load_topology, parse_task, parse_topology
from .model import CRMap, Selection, Task
from .select import check_task, select_target
from .table import links_table, nodes_table

__all__ = ["select", "show", "validate"]


def _parse_any(data: Any, path: str) -> CRMap | Task:
    if kind_of(data) is TopologyError:
        return parse_topology(data, path)
    return parse_task(data, path)


def _load_any(path: str) -> CRMap | Task:
    try:
        text = Path(path).read_bytes()
    except OSError:
        load_yaml(path, ConfigError)  # raises, saying why the file cannot be read
        raise
    fast = from_json(text)
    if isinstance(fast, dict):
        try:
            return _parse_any(fast, path)
        except ConfigError:
            pass  # parse again with locations, to say where
    data = load_yaml_text(text, path, ConfigError)
    if not isinstance(data, dict):
        raise ConfigError([Problem(location_of(data, Location(path, 1, 1)), "(file)",
                                   f"expected a CR-map or a task, got {describe(data)}",
                                   "a CR-map is a mapping with 'nodes:'; a task one with "
                                   "'Name:', 'Type:' and 'Demand:'")])
    return _parse_any(data, path)


def validate(files: list[str]) -> int:
    """Check every file; raise one ConfigError listing every problem of every file."""
    problems: list[Problem] = []
    maps: list[CRMap] = []
    tasks: list[Task] = []
    for name in files:
        try:
            loaded = _load_any(name)
        except ConfigError as err:
            problems += err.problems
            continue
        if isinstance(loaded, CRMap):
            maps.append(loaded)
            print(f"{name}: ok: CR-map, {len(loaded.nodes)} nodes, {len(loaded.edges)} edges")
        else:
            tasks.append(loaded)
            print(f"{name}: ok: task '{loaded.name}', Type {loaded.type}")
    for crmap in maps:
        for task in tasks:
            try:
                check_task(crmap, task)
            except ConfigError as err:
                problems += err.problems
    if problems:
        raise ConfigError(problems)
    return 0


def show(file: str, fmt: str, png: str | None) -> int:
    crmap = load_topology(file)
    if fmt == "yaml":
        sys.stdout.write(dump_topology(crmap))
    elif fmt == "json":
        print(dump_topology_json(crmap))
    else:
        print(nodes_table(crmap))
        print()
        print(links_table(crmap))
    if png:
        from ._draw import draw

        try:
            draw(crmap, Path(png))
        except OSError as err:
            raise ConfigError([Problem(Location(png), "--png",
                                       f"cannot write the picture: {err.strerror}")]) from err
        print(f"wrote {png}", file=sys.stderr)
    return 0


def _plain(selection: Selection, task: Task, from_node: str) -> str:
    lines = [selection.node or "none"]
    lines.append(f"rule: {selection.rule}")
    lines.append(f"level: {selection.level}")
    if selection.latency_ms is not None:
        lines.append(f"latency: {selection.latency_ms:g} ms from {from_node}")
    if selection.rejections:
        lines.append("rejected:")
        width = max(len(r.node) for r in selection.rejections)
        lines += [f"  {r.node:<{width}}  {r.reason}" for r in selection.rejections]
    return "\n".join(lines)


def select(map_file: str, task_file: str, from_node: str, *, explain: bool,
           as_json: bool) -> int:
    """Print where the task goes; 1 when no node can run it."""
    crmap = load_topology(map_file)
    task = load_task(task_file)
    selection = select_target(crmap, task, from_node, explain=explain)
    if as_json:
        out = {"task": task.name, "from": from_node, **selection.to_dict()}
        if not explain:
            del out["rejections"]
        print(json.dumps(out, indent=2))
    else:
        print(_plain(selection, task, from_node))
    if selection.node is None:
        print(f"freeoffload: no node can run task '{task.name}' from {from_node}"
              f"{'' if explain else ' (--explain says why)'}", file=sys.stderr)
        return 1
    return 0
