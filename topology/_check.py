"""Reading typed fields out of located YAML while collecting every problem.

A :class:`Checker` never raises: each getter returns the value, or a default after recording a
:class:`Problem` that names the field (dotted path), what was received and what is allowed.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Collection
from typing import Any

from freeoffload.errors import Location, Problem
from freeoffload.yamlfile import LocList, LocMap

__all__ = ["Checker", "describe"]

_ABSENT: Any = object()
_KEY_SETS: dict[tuple[tuple[str, ...], tuple[str, ...]], tuple[frozenset[str], frozenset[str]]] = {}


def describe(value: Any) -> str:
    """How a received value reads in a message."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return repr(value)
    return str(value)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


class Checker:
    """Collects problems for one file."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.problems: list[Problem] = []

    def add(self, loc: Location, field: str, message: str, hint: str = "") -> None:
        self.problems.append(Problem(loc, field, message, hint))

    def sorted_problems(self) -> list[Problem]:
        """The problems in file order (stable for problems at the same place)."""
        return sorted(self.problems, key=lambda p: (p.location.line, p.location.col))

    def mapping(self, value: Any, loc: Location, field: str) -> LocMap | None:
        if isinstance(value, LocMap):
            return value
        self.add(loc, field, f"expected a mapping, got {describe(value)}")
        return None

    def sequence(self, value: Any, loc: Location, field: str) -> LocList | None:
        if isinstance(value, LocList):
            return value
        self.add(loc, field, f"expected a list, got {describe(value)}")
        return None

    def keys(self, data: LocMap, path: str, required: tuple[str, ...],
             optional: tuple[str, ...]) -> None:
        """Report unknown keys (with a suggestion) and missing required ones."""
        sets = _KEY_SETS.get((required, optional))
        if sets is None:
            sets = _KEY_SETS[(required, optional)] = (frozenset(required),
                                                      frozenset(required + optional))
        if sets[0] <= data.keys() <= sets[1]:
            return  # the common case
        allowed = required + optional
        for key in data:
            if key in sets[1]:
                continue
            text = str(key)
            close = [a for a in allowed if a.lower() == text.lower()] or \
                difflib.get_close_matches(text, allowed, n=1)
            hint = f"did you mean '{close[0]}'?" if close else \
                f"expected one of: {', '.join(allowed)}"
            self.add(data.key_loc(key), _join(path, text), "unknown field", hint)
        for key in required:
            if key not in data:
                self.add(data.loc, _join(path, key), "missing required field",
                         f"add '{key}:' to this mapping")

    def number(self, data: LocMap, key: str, path: str, default: float = 0.0, *,
               integer: bool = False, positive: bool = False,
               maximum: float | None = None) -> float:
        """A non-negative number (``positive``: above zero), or ``default`` when absent/bad."""
        value = data.get(key, _ABSENT)
        if value is _ABSENT:
            return default
        kind = type(value)
        if (kind is float or kind is int) and 0 <= value < math.inf and \
                (value > 0 or not positive) and (maximum is None or value <= maximum) and \
                (not integer or value == int(value)):
            return float(value)  # the common case: nothing to report
        self._bad_number(data, key, path, integer=integer, positive=positive, maximum=maximum)
        return default

    def _bad_number(self, data: LocMap, key: str, path: str, *, integer: bool, positive: bool,
                    maximum: float | None) -> None:
        value = data[key]
        loc, field = data.value_loc(key), _join(path, key)
        kind = "a whole number" if integer else "a number"
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.add(loc, field, f"expected {kind}, got {describe(value)}")
        elif not math.isfinite(value):
            self.add(loc, field, f"expected a finite number, got {value}")
        elif integer and value != int(value):
            self.add(loc, field, f"expected a whole number, got {value}")
        elif value < 0 or (positive and value == 0):
            allowed = "above 0" if positive else "0 or more"
            self.add(loc, field, f"must be {allowed}, got {value:g}",
                     "a negative amount cannot be measured" if value < 0 else "")
        else:
            self.add(loc, field, f"must be at most {maximum:g}, got {value:g}")

    def boolean(self, data: LocMap, key: str, path: str, default: bool = False) -> bool:
        if key not in data:
            return default
        value = data[key]
        if isinstance(value, bool):
            return value
        self.add(data.value_loc(key), _join(path, key),
                 f"expected a boolean, got {describe(value)}", "use true or false")
        return default

    def string(self, data: LocMap, key: str, path: str, default: str = "",
               choices: Collection[str] | None = None, what: str = "") -> str:
        value = data.get(key, _ABSENT)
        if value is _ABSENT:
            return default
        if type(value) is str and value.strip() and (choices is None or value in choices):
            return value
        loc, field = data.value_loc(key), _join(path, key)
        if not isinstance(value, str) or not value.strip():
            self.add(loc, field, f"expected a non-empty string, got {describe(value)}")
        else:
            self.add(loc, field, f"unknown {what or key} '{value}'",
                     f"expected one of: {', '.join(choices or ())}")
        return default
