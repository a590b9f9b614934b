"""YAML with locations: every mapping and sequence remembers where its items stand.

``load_yaml`` returns plain Python data in which mappings are :class:`LocMap` (a ``dict``) and
sequences are :class:`LocList` (a ``list``); both know their own :class:`Location` and that of
each key and item, so validators can report ``file:line:col``. Duplicate keys, which PyYAML
would silently overwrite, are reported as problems. libyaml's C parser is used when present.
"""

from __future__ import annotations

from collections.abc import Hashable
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError, Location, Problem

__all__ = ["LocList", "LocMap", "load_yaml", "load_yaml_text", "location_of"]

try:
    _BaseLoader: type = yaml.CSafeLoader
except AttributeError:  # PyYAML built without libyaml
    _BaseLoader = yaml.SafeLoader


class LocMap(dict):  # type: ignore[type-arg]
    """A mapping that knows where it, its keys and its values stand."""

    loc: Location
    key_locs: dict[Hashable, Location]
    value_locs: dict[Hashable, Location]

    def key_loc(self, key: Hashable) -> Location:
        return self.key_locs.get(key, self.loc)

    def value_loc(self, key: Hashable) -> Location:
        return self.value_locs.get(key, self.loc)


class LocList(list):  # type: ignore[type-arg]
    """A sequence that knows where it and each item stand."""

    loc: Location
    item_locs: list[Location]

    def item_loc(self, index: int) -> Location:
        if 0 <= index < len(self.item_locs):
            return self.item_locs[index]
        return self.loc


def location_of(value: Any, default: Location) -> Location:
    """The location of a LocMap or LocList, or ``default`` for anything else."""
    loc = getattr(value, "loc", None)
    return loc if isinstance(loc, Location) else default


def _make_loader(source: str, problems: list[Problem]) -> type:
    def mark_loc(mark: Any) -> Location:
        return Location(source, mark.line + 1, mark.column + 1)

    class Loader(_BaseLoader):  # type: ignore[misc]
        def construct_loc_map(self, node: yaml.MappingNode) -> LocMap:
            result = LocMap()
            result.loc = mark_loc(node.start_mark)
            result.key_locs = {}
            result.value_locs = {}
            self.flatten_mapping(node)
            for key_node, value_node in node.value:
                key = self.construct_object(key_node, deep=True)
                if not isinstance(key, Hashable):
                    problems.append(Problem(mark_loc(key_node.start_mark), str(key),
                                            "a mapping key must be a plain value"))
                    continue
                if key in result:
                    first = result.key_locs[key]
                    problems.append(Problem(mark_loc(key_node.start_mark), str(key),
                                            "duplicate key",
                                            f"first given at line {first.line}"))
                    continue
                result[key] = self.construct_object(value_node, deep=True)
                result.key_locs[key] = mark_loc(key_node.start_mark)
                result.value_locs[key] = mark_loc(value_node.start_mark)
            return result

        def construct_loc_list(self, node: yaml.SequenceNode) -> LocList:
            result = LocList(self.construct_object(child, deep=True) for child in node.value)
            result.loc = mark_loc(node.start_mark)
            result.item_locs = [mark_loc(child.start_mark) for child in node.value]
            return result

    Loader.add_constructor("tag:yaml.org,2002:map", Loader.construct_loc_map)
    Loader.add_constructor("tag:yaml.org,2002:seq", Loader.construct_loc_list)
    return Loader


def load_yaml_text(text: str | bytes, source: str,
                   error: type[ConfigError] = ConfigError) -> Any:
    """Parse YAML ``text``; ``source`` names it in errors. Raises ``error`` with every problem."""
    problems: list[Problem] = []
    loader_cls = _make_loader(source, problems)
    try:
        data = yaml.load(text, Loader=loader_cls)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as err:
        mark: Any | None = err.problem_mark or err.context_mark
        loc = Location(source, mark.line + 1, mark.column + 1) if mark else Location(source)
        raise error([Problem(loc, "", f"YAML syntax: {err.problem or err}",
                             "check indentation, colons and quotes")]) from err
    except yaml.YAMLError as err:
        raise error([Problem(Location(source), "", f"YAML: {err}")]) from err
    if problems:
        raise error(problems)
    return data


def load_yaml(path: str | Path, error: type[ConfigError] = ConfigError) -> Any:
    """Read and parse a YAML file; problems name the file as given."""
    name = str(path)
    try:
        text = Path(path).read_bytes()
    except OSError as err:
        raise error([Problem(Location(name), "", f"cannot read file: {err.strerror}")]) from err
    return load_yaml_text(text, name, error)
