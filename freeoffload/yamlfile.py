"""YAML with locations: every mapping and sequence remembers where its items stand.

``load_yaml`` returns plain Python data in which mappings are :class:`LocMap` (a ``dict``) and
sequences are :class:`LocList` (a ``list``); both know their own :class:`Location` and that of
each key and item, so validators can report ``file:line:col``. Duplicate keys, which PyYAML
would silently overwrite, are reported as problems. Values come out as ``yaml.safe_load`` gives
them.

Two loaders, one result. The C module ``_yamlfast`` (built over libyaml with the package) reads
the common files, one document of untagged nodes without anchors, aliases, merge keys or
duplicate keys, in one pass and packs the key/item locations, which the classes below unpack on
first use. For everything else (and where the module is not built) it answers NotImplemented and
the Python loader here builds the same values from the parser's events, reporting every problem.
"""

from __future__ import annotations

from array import array
from collections.abc import Hashable
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError, Location, Problem

__all__ = ["LocList", "LocMap", "load_yaml", "load_yaml_text", "location_of"]

_CParser: Any
try:
    from yaml._yaml import CParser as _CParser
except ImportError:  # PyYAML built without libyaml
    _CParser = None


class LocMap(dict):  # type: ignore[type-arg]
    """A mapping that knows where it, its keys and its values stand."""

    # Slots: the C loader sets _marks on each of thousands of mappings without making an
    # attribute dict for it; __dict__ stays for anything else callers attach.
    __slots__ = ("__dict__", "_marks", "key_locs", "loc", "value_locs")
    loc: Location
    key_locs: dict[Hashable, Location]
    value_locs: dict[Hashable, Location]

    def key_loc(self, key: Hashable) -> Location:
        return self.key_locs.get(key, self.loc)

    def value_loc(self, key: Hashable) -> Location:
        return self.value_locs.get(key, self.loc)

    def __getattr__(self, name: str) -> Any:
        """loc, key_locs and value_locs of a mapping from the C loader: unpacked on first use."""
        if name not in ("loc", "key_locs", "value_locs"):
            raise AttributeError(name)
        file, keys, packed = _take_marks(self, name)
        nums = array("I", packed)
        self.loc = Location(file, nums[0], nums[1])
        self.key_locs = {k: Location(file, nums[i], nums[i + 1])
                         for k, i in zip(keys, range(2, len(nums), 4), strict=True)}
        self.value_locs = {k: Location(file, nums[i], nums[i + 1])
                           for k, i in zip(keys, range(4, len(nums), 4), strict=True)}
        return getattr(self, name)


class LocList(list):  # type: ignore[type-arg]
    """A sequence that knows where it and each item stand."""

    __slots__ = ("__dict__", "_marks", "item_locs", "loc")
    loc: Location
    item_locs: list[Location]

    def item_loc(self, index: int) -> Location:
        if 0 <= index < len(self.item_locs):
            return self.item_locs[index]
        return self.loc

    def __getattr__(self, name: str) -> Any:
        """loc and item_locs of a sequence from the C loader: unpacked on first use."""
        if name not in ("loc", "item_locs"):
            raise AttributeError(name)
        file, packed = _take_marks(self, name)
        nums = array("I", packed)
        self.loc = Location(file, nums[0], nums[1])
        self.item_locs = [Location(file, nums[i], nums[i + 1]) for i in range(2, len(nums), 2)]
        return getattr(self, name)


def _take_marks(container: LocMap | LocList, name: str) -> Any:
    """The C loader's packed locations, taken off the container (they are unpacked once)."""
    try:
        marks = container._marks
    except AttributeError:  # not made by the C loader, and the attribute was never set
        raise AttributeError(name) from None
    del container._marks
    return marks


def location_of(value: Any, default: Location) -> Location:
    """The location of a LocMap or LocList, or ``default`` for anything else."""
    loc = getattr(value, "loc", None)
    return loc if isinstance(loc, Location) else default


_PLAIN_RESOLVERS = yaml.resolver.Resolver.yaml_implicit_resolvers
_STR = "tag:yaml.org,2002:str"
_MERGE = "tag:yaml.org,2002:merge"
_NO_KEY = object()


def _parse_events(text: str | bytes) -> Any:
    """The parser's events: libyaml's C parser when present, else PyYAML's own."""
    if _CParser is not None:
        return iter(_CParser(text).get_event, None)  # None once the stream has ended
    return yaml.parse(text, Loader=yaml.SafeLoader)


class _Builder:
    """Builds LocMap/LocList/scalars straight from parser events.

    Going through PyYAML's composer and constructor costs about seven times the parse itself
    (a Python resolver call per scalar); here plain scalars are resolved once per distinct text
    with PyYAML's own rules, so results are the same as ``yaml.safe_load``'s.
    """

    def __init__(self, source: str, problems: list[Problem]) -> None:
        self.source = source
        self.problems = problems
        self.anchors: dict[str, Any] = {}
        self.plain_cache: dict[str, Any] = {}
        self.constructor = yaml.constructor.SafeConstructor()
        # Open collections: [container, pending key, its location, keys that came by merge].
        self.stack: list[list[Any]] = []
        self.root: Any = None
        self.documents = 0

    def loc(self, mark: Any) -> Location:
        return Location(self.source, mark.line + 1, mark.column + 1)

    def run(self, events: Any) -> Any:
        for event in events:
            kind = type(event)
            if kind is yaml.ScalarEvent:
                self.add(self.scalar(event), event)
            elif kind is yaml.MappingStartEvent:
                self.open(LocMap(), event)
            elif kind is yaml.SequenceStartEvent:
                self.open(LocList(), event)
            elif kind is yaml.MappingEndEvent or kind is yaml.SequenceEndEvent:
                container, anchor_event = self.stack.pop()[0], None
                self.add(container, anchor_event, opened=True)
            elif kind is yaml.AliasEvent:
                self.alias(event)
            elif kind is yaml.DocumentStartEvent:
                self.documents += 1
                if self.documents == 2:
                    self.problems.append(Problem(self.loc(event.start_mark), "",
                                                 "a second YAML document",
                                                 "a file holds exactly one document"))
        return self.root

    def open(self, container: Any, event: Any) -> None:
        container.loc = self.loc(event.start_mark)
        if isinstance(container, LocMap):
            container.key_locs = {}
            container.value_locs = {}
        else:
            container.item_locs = []
        if event.anchor is not None:
            self.anchors[event.anchor] = container
        self.stack.append([container, _NO_KEY, None, set()])

    def alias(self, event: Any) -> None:
        if event.anchor in self.anchors:
            self.add(self.anchors[event.anchor], event)
            return
        self.problems.append(Problem(self.loc(event.start_mark), f"*{event.anchor}",
                                     "unknown alias", "define the anchor (&name) before use"))
        self.add(None, event)

    def scalar(self, event: Any) -> Any:
        text = event.value
        tag = event.tag
        if tag is None or tag == "!":
            if not event.implicit[0]:  # quoted: always a string
                value: Any = text
            elif text in self.plain_cache:
                value = self.plain_cache[text]
            else:
                value = self.plain_cache[text] = self.resolve_plain_at(text, event)
        elif tag == _STR:
            value = text
        else:
            value = self.construct(tag, text, event)
        if event.anchor is not None:
            self.anchors[event.anchor] = value
        return value

    def resolve_plain(self, text: str) -> Any:
        for tag, regexp in _PLAIN_RESOLVERS.get(text[:1], ()):
            if regexp.match(text):
                if tag == _MERGE:
                    return _MergeKey()
                return self.constructor.construct_object(yaml.ScalarNode(tag, text))
        return text

    def resolve_plain_at(self, text: str, event: Any) -> Any:
        """resolve_plain, with a text that looks like a value but is none as a problem."""
        try:
            return self.resolve_plain(text)
        except ValueError as err:  # a date like 2024-13-01; an int over Python's digit limit
            self.problems.append(Problem(self.loc(event.start_mark), text[:40],
                                         f"cannot read as {_kind(text)}: {err}",
                                         "quote it to make it a string"))
            return text

    def construct(self, tag: str, text: str, event: Any) -> Any:
        try:
            return self.constructor.construct_object(yaml.ScalarNode(tag, text))
        except (yaml.YAMLError, ValueError, LookupError, TypeError, OverflowError) as err:
            # PyYAML's constructors fail on some texts with IndexError or KeyError (an empty
            # `!!int`, `!!bool maybe`): each is a value the tag cannot read
            short = tag.rsplit(":", 1)[-1]
            why = (f"{err}" if isinstance(err, (yaml.YAMLError, ValueError))
                   else f"{text!r} is not a valid {short}")
            hint = "write a value of that type after the tag, or drop the tag"
            self.problems.append(Problem(self.loc(event.start_mark), text,
                                         f"cannot read as {tag}: {why}", hint))
            return text

    def add(self, value: Any, event: Any, opened: bool = False) -> None:
        loc = value.loc if opened else self.loc(event.start_mark)
        if not self.stack:
            self.root = value
            return
        frame = self.stack[-1]
        container = frame[0]
        if type(container) is LocList:
            container.append(value)
            container.item_locs.append(loc)
        elif frame[1] is _NO_KEY:
            frame[1], frame[2] = value, loc
        else:
            key, key_loc = frame[1], frame[2]
            frame[1] = _NO_KEY
            self.put(frame, key, key_loc, value, loc)

    def put(self, frame: list[Any], key: Any, key_loc: Location, value: Any,
            loc: Location) -> None:
        container: LocMap = frame[0]
        merged: set[Any] = frame[3]
        if isinstance(key, _MergeKey):
            self.merge(container, merged, value, key_loc)
            return
        if not isinstance(key, Hashable) or isinstance(key, (LocMap, LocList)):
            self.problems.append(Problem(key_loc, str(key), "a mapping key must be a plain value"))
            return
        if key in container and key not in merged:
            first = container.key_locs[key]
            self.problems.append(Problem(key_loc, str(key), "duplicate key",
                                         f"first given at line {first.line}"))
            return
        merged.discard(key)
        container[key] = value
        container.key_locs[key] = key_loc
        container.value_locs[key] = loc

    def merge(self, container: LocMap, merged: set[Any], value: Any, key_loc: Location) -> None:
        sources = value if isinstance(value, LocList) else [value]
        for source in sources:
            if not isinstance(source, LocMap):
                self.problems.append(Problem(key_loc, "<<", "a merge key takes a mapping",
                                             "or a list of mappings"))
                continue
            for key, item in source.items():
                if key in container:  # explicit keys and earlier merges win
                    continue
                container[key] = item
                container.key_locs[key] = source.key_locs.get(key, key_loc)
                container.value_locs[key] = source.value_locs.get(key, key_loc)
                merged.add(key)


# The C loader, when built (see the module docstring); it builds these classes.
_yamlfast: Any
try:
    from . import _yamlfast
except ImportError:  # built without libyaml's headers
    _yamlfast = None
else:
    _yamlfast.configure(LocMap, LocList)


def _kind(text: str) -> str:
    """What a plain text looks like: 'timestamp', 'int', ... (the last part of its tag)."""
    for tag, regexp in _PLAIN_RESOLVERS.get(text[:1], ()):
        if regexp.match(text):
            return str(tag).rpartition(":")[2]
    return "string"


class _MergeKey:
    """The plain key ``<<``: merge the value's mapping(s) into this one."""

    def __hash__(self) -> int:
        return id(self)


def load_yaml_text(text: str | bytes, source: str,
                   error: type[ConfigError] = ConfigError) -> Any:
    """Parse YAML ``text``; ``source`` names it in errors. Raises ``error`` with every problem."""
    problems: list[Problem] = []
    builder = _Builder(source, problems)
    if _yamlfast is not None:
        fast = _yamlfast.load(text, source, builder.resolve_plain)
        if fast is not NotImplemented:
            return fast
    try:
        data = builder.run(_parse_events(text))
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
