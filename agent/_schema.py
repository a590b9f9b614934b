"""A small field-by-field reader of a YAML mapping that collects every problem with its place."""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

from freeoffload.errors import Problem
from freeoffload.yamlfile import LocList, LocMap

__all__ = ["Checker"]

T = TypeVar("T")
_MISSING = object()


class Checker:
    """Reads the fields of one mapping; each reader returns a usable value even when wrong."""

    def __init__(self, data: LocMap, source: str, prefix: str = "") -> None:
        self.data = data
        self.source = source
        self.prefix = prefix
        self.problems: list[Problem] = []
        self._seen: set[str] = set()

    # -- plumbing ---------------------------------------------------------------------------
    def _name(self, key: str) -> str:
        return f"{self.prefix}{key}"

    def problem(self, key: str, message: str, hint: str = "") -> None:
        loc = self.data.value_loc(key) if key in self.data else self.data.loc
        self.problems.append(Problem(loc, self._name(key), message, hint))

    def _get(self, key: str, required: bool = False) -> Any:
        self._seen.add(key)
        if key not in self.data or self.data[key] is None:
            if required:
                self.problems.append(Problem(self.data.loc, self._name(key), "missing",
                                             "this field is required"))
            return _MISSING
        return self.data[key]

    def finish(self) -> list[Problem]:
        """Report unknown keys (with the closest known one) and return every problem."""
        for key in self.data:
            if str(key) in self._seen:
                continue
            close = difflib.get_close_matches(str(key), sorted(self._seen), n=1)
            hint = f"did you mean {close[0]!r}?" if close else (
                "expected one of: " + ", ".join(sorted(self._seen)))
            self.problems.append(Problem(self.data.key_loc(key), self._name(str(key)),
                                         "unknown field", hint))
        return self.problems

    # -- scalar readers ---------------------------------------------------------------------
    def string(self, key: str, default: str, required: bool = False) -> str:
        value = self._get(key, required)
        if value is _MISSING:
            return default
        if not isinstance(value, str | int) or isinstance(value, bool) or str(value) == "":
            self.problem(key, f"expected a non-empty string, got {value!r}")
            return default
        return str(value)

    def choice(self, key: str, allowed: Sequence[str], default: str) -> str:
        value = self.string(key, default)
        if value not in allowed:
            self.problem(key, f"unknown value {value!r}", "expected one of: " + ", ".join(allowed))
            return default
        return value

    def boolean(self, key: str, default: bool) -> bool:
        value = self._get(key)
        if value is _MISSING:
            return default
        if not isinstance(value, bool):
            self.problem(key, f"expected a boolean, got {value!r}", "true or false")
            return default
        return value

    def number(self, key: str, default: float, low: float | None = None,
               high: float | None = None, integer: bool = False) -> float:
        value = self._get(key)
        if value is _MISSING:
            return default
        kinds = (int,) if integer else (int, float)
        if isinstance(value, bool) or not isinstance(value, kinds):
            what = "an integer" if integer else "a number"
            self.problem(key, f"expected {what}, got {value!r}")
            return default
        if not math.isfinite(value):  # JSON bodies may say NaN or Infinity (json accepts them)
            self.problem(key, f"expected a finite number, got {value!r}")
            return default
        if (low is not None and value < low) or (high is not None and value > high):
            bounds = f"{low:g}..{high:g}" if high is not None else f"at least {low:g}"
            self.problem(key, f"{value!r} is out of range", f"allowed: {bounds}")
            return default
        return float(value)

    def path(self, key: str, required: bool = False) -> str:
        return self.string(key, "", required)

    def hostport(self, key: str, default: tuple[str, int]) -> tuple[str, int]:
        from .config import parse_hostport

        text = self.string(key, "")
        if not text:
            return default
        try:
            return parse_hostport(text)
        except ValueError as err:
            self.problem(key, f"{err} in {text!r}", "expected HOST:PORT")
            return default

    def address(self, key: str) -> str:
        text = self.string(key, "")
        if not text:
            return ""
        host, port = self.hostport(key, ("", 0))
        return f"{host}:{port}" if host else ""

    def url(self, key: str) -> str:
        text = self.string(key, "", required=True)
        if text and not text.startswith(("http://", "https://")):
            self.problem(key, f"expected an http:// or https:// URL, got {text!r}")
        return text

    # -- containers -------------------------------------------------------------------------
    def addresses(self, key: str) -> list[str]:
        from .config import parse_hostport

        value = self._get(key)
        if value is _MISSING:
            return []
        if not isinstance(value, LocList):
            self.problem(key, f"expected a list of HOST:PORT, got {value!r}")
            return []
        out = []
        for index, item in enumerate(value):
            try:
                host, port = parse_hostport(str(item))
                out.append(f"{host}:{port}")
            except ValueError as err:
                self.problems.append(Problem(value.item_loc(index), self._name(f"{key}[{index}]"),
                                             f"{err} in {item!r}", "expected HOST:PORT"))
        return out

    def mapping(self, key: str) -> LocMap:
        value = self._get(key)
        if value is _MISSING:
            empty = LocMap()
            empty.loc, empty.key_locs, empty.value_locs = self.data.loc, {}, {}
            return empty
        if not isinstance(value, LocMap):
            self.problem(key, f"expected a mapping, got {value!r}")
            return self.mapping("\0missing")
        return value

    def str_map(self, key: str) -> dict[str, str]:
        value = self.mapping(key)
        out = {}
        for name, item in value.items():
            if not isinstance(item, str | int) or isinstance(item, bool):
                self.problems.append(Problem(value.value_loc(name), self._name(f"{key}.{name}"),
                                             f"expected a string, got {item!r}"))
            else:
                out[str(name)] = str(item)
        return out

    def sub(self, key: str, read: Callable[[Checker], T], default: T) -> T:
        """Read the nested mapping ``key`` with ``read``; ``default`` when it is absent."""
        if key not in self.data or self.data[key] is None:
            self._seen.add(key)
            return default
        value = self.mapping(key)
        if value is not self.data[key]:
            return default
        child = Checker(value, self.source, f"{self._name(key)}.")
        result = read(child)
        self.problems.extend(child.finish())
        return result

    def items(self, key: str) -> Iterator[Checker]:
        """A Checker for each mapping in the list ``key``."""
        value = self._get(key)
        if value is _MISSING:
            return
        if not isinstance(value, LocList):
            self.problem(key, f"expected a list, got {value!r}")
            return
        for index, item in enumerate(value):
            if not isinstance(item, LocMap):
                self.problems.append(Problem(value.item_loc(index), self._name(f"{key}[{index}]"),
                                             f"expected a mapping, got {item!r}"))
                continue
            child = Checker(item, self.source, f"{self._name(key)}[{index}].")
            yield child
            self.problems.extend(child.finish())
