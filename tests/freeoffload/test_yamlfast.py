"""The C loader (freeoffload._yamlfast) against yaml.safe_load and the Python event loader.

Documents are generated with scalars of every YAML 1.1 kind, written plain, single- or
double-quoted, in block and flow collections. The C loader must give exactly safe_load's values
(types included) and exactly the Python loader's locations; files it does not take (anchors,
tags, merge keys, errors) must end in the same errors as before.
"""

from __future__ import annotations

import datetime
import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import need
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from freeoffload import yamlfile
from freeoffload.errors import ConfigError
from freeoffload.yamlfile import LocList, LocMap, load_yaml_text

BAD_TOPOLOGY = Path(__file__).resolve().parents[1] / "topology" / "data" / "bad"


def test_the_c_loader_is_built() -> None:
    need(yamlfile._yamlfast is not None, "freeoffload._yamlfast built (needs libyaml-dev)")


def _fast(text: str | bytes) -> Any:
    assert yamlfile._yamlfast is not None
    return yamlfile._yamlfast.load(text, "doc.yaml", yamlfile._Builder("doc.yaml", []).
                                   resolve_plain)


def _python(text: str | bytes) -> Any:
    """What the Python event loader alone makes of ``text``."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(yamlfile, "_yamlfast", None)
        return load_yaml_text(text, "doc.yaml")


def _same(a: Any, b: Any) -> bool:
    """Equal with the same types (1, 1.0 and True differ; nan equals nan; -0.0 is not 0.0)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) and type(k) is type(j)
                                          for k, j in zip(a, b, strict=True))
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return (math.isnan(a) and math.isnan(b)) or \
            (a == b and math.copysign(1, a) == math.copysign(1, b))
    if isinstance(a, datetime.datetime):
        return a == b and a.utcoffset() == b.utcoffset()
    return bool(a == b)


def _locations(data: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """Every location the loaders record, by path."""
    if isinstance(data, LocMap):
        yield path, data.loc
        for key, value in data.items():
            yield f"{path}.{key!r}", (data.key_loc(key), data.value_loc(key))
            yield from _locations(value, f"{path}.{key!r}")
    elif isinstance(data, LocList):
        yield path, data.loc
        for index, value in enumerate(data):
            yield f"{path}[{index}]", data.item_loc(index)
            yield from _locations(value, f"{path}[{index}]")


# ---- generated documents ----------------------------------------------------------------

PLAIN_KINDS = [
    st.sampled_from(["", "~", "null", "Null", "NULL", "nULL", "yes", "Yes", "YES", "no", "No",
                     "NO", "true", "True", "TRUE", "tRUE", "false", "False", "FALSE", "on",
                     "On", "ON", "off", "Off", "OFF", "y", "n", ".inf", "-.inf", "+.INF",
                     ".Inf", ".nan", ".NaN", ".NAN", "-.nan", "0", "-0", "+0", "00", "-00",
                     "0.", "-0.0", "1e3", "1.0e3", "1.0e+3", "1.0E-3", ".5", "-.5", "+.5",
                     "._", "1_000", "0x_1F", "0b1_01", "0o17", "0777", "08", "1:30",
                     "-1:30:00", "1:30.5", "190:20:30.15", "2001-12-14",
                     "2001-12-14t21:59:43.10-05:00",
                     "2001-12-14 21:59:43.10", "2001-12-14 21:59:43.10 +5", "2002-1-2 3:04:05Z",
                     "10.0.0.1:8080", "12.5.6", "1.2.3", "-", "+", ".", "-x", "+1x", "1x",
                     "1 2", "4 MB", "x=y", "a~b", "99999999999999999999",
                     "123456789012345678", "1234567890123456789", "0." + "0" * 30 + "1",
                     "1" * 30 + ".5", "1.0e+999", "-1.0e+999", "nan", "inf", "Yes please",
                     "é", "ünïcode", "日本"]),
    st.from_regex(r"[-+]?[0-9_]{1,8}(\.[0-9_]{0,6})?([eE][-+]?[0-9]{1,3})?", fullmatch=True),
    st.from_regex(r"[-+]?0x[0-9a-fA-F_]{1,6}|[-+]?0b[01_]{1,8}|[-+]?0[0-9_]{1,6}",
                  fullmatch=True),
    st.from_regex(r"[-+]?[0-9]{1,3}(:[0-9]{1,2}){1,3}(\.[0-9_]{0,3})?", fullmatch=True),
    st.from_regex(r"[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}([Tt ][0-9]{1,2}:[0-9]{2}:[0-9]{2}"
                  r"(\.[0-9]{0,4})?( ?(Z|[-+][0-9]{1,2}(:[0-9]{2})?))?)?", fullmatch=True),
    st.from_regex(r"[A-Za-z][A-Za-z0-9_.~-]{0,12}", fullmatch=True),
    st.integers().map(str),
    st.floats(allow_nan=False).map(repr),
]
plain = st.one_of(*PLAIN_KINDS)
quoted_text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x85"),
                      max_size=12) | plain
scalar = st.one_of(
    st.tuples(st.just("plain"), plain),
    st.tuples(st.sampled_from(["single", "double"]), quoted_text),
)
keys = st.one_of(st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True),
                 st.integers(-99, 99).map(str))
tree = st.recursive(
    scalar,
    lambda inner: st.tuples(st.sampled_from(["block", "flow"]),
                            st.lists(inner, max_size=4)) |
    st.tuples(st.sampled_from(["block", "flow"]),
              st.dictionaries(keys, inner, max_size=4).map(lambda d: list(d.items()))).map(
                  lambda t: (f"{t[0]}-map", t[1])),
    max_leaves=14,
)


def _scalar(style: str, text: str) -> str:
    if style == "plain":
        return text
    if style == "single":
        return "'" + text.replace("'", "''") + "'"
    return json.dumps(text)


def _render(node: Any, indent: int, flow: bool = False) -> str:
    """The node's text: a scalar or flow collection inline, a block collection on new lines."""
    kind, body = node
    if kind in ("plain", "single", "double"):
        return _scalar(kind, body)
    if flow or kind.startswith("flow") or not body:
        if kind.endswith("map"):
            return "{" + ", ".join(f"{k}: {_render(v, 0, True)}" for k, v in body) + "}"
        return "[" + ", ".join(_render(v, 0, True) for v in body) + "]"
    pad = " " * indent
    lines = []
    for item in body:
        key, value = item if kind.endswith("map") else ("-", item)
        head = f"{pad}{key}:" if kind.endswith("map") else f"{pad}-"
        text = _render(value, indent + 2)
        block = value[0] in ("block", "block-map") and bool(value[1])
        lines.append(f"{head}\n{text}" if block else f"{head} {text}")
    return "\n".join(lines)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(node=tree)
def test_values_and_locations_match_safe_load_and_the_python_loader(node: Any) -> None:
    need(yamlfile._yamlfast is not None, "freeoffload._yamlfast built")
    text = _render(node, 0) + "\n"
    try:
        expected = yaml.safe_load(text)
    except (yaml.YAMLError, ValueError):  # e.g. a bad date, a merge of a scalar
        with pytest.raises(ConfigError):  # with its location, where safe_load may crash
            load_yaml_text(text, "doc.yaml")
        return
    try:
        slow = _python(text)
    except ConfigError as err:
        # keys equal after resolution (1 and 1.0: safe_load keeps the last), or what libyaml
        # refuses and PyYAML's own parser takes (a surrogate pair's escapes): as before
        assert _fast(text) is NotImplemented
        with pytest.raises(ConfigError) as ours:
            load_yaml_text(text, "doc.yaml")
        assert str(ours.value) == str(err)
        return
    if _fast(text) is NotImplemented:  # only what the module leaves to Python on purpose
        assert "<<" in text or "=" in text
        assert _same(load_yaml_text(text, "doc.yaml"), slow)
        return
    fast = load_yaml_text(text, "doc.yaml")
    assert _same(fast, expected), (text, fast, expected)
    assert _same(fast, slow)
    assert dict(_locations(fast)) == dict(_locations(slow)), text


@pytest.mark.parametrize("text", [
    "a: 1\nb: [2, {c: 3.5, d: [x, 'y', \"z\"]}]\n",
    "- - 1\n  - 2\n-\n  a: yes\n- {}\n- []\n",
    "plain\n",
    "'quoted'\n",
    "",
    "# only a comment\n",
    "---\na: b\n...\n",
    "x: |\n  two\n  lines\ny: >-\n  folded\n  text\n",
    "k: é\nü: [日本, 1.5e+3]\n",
])
def test_common_files_are_read_in_c_with_every_location(text: str) -> None:
    need(yamlfile._yamlfast is not None, "freeoffload._yamlfast built")
    fast = _fast(text)
    assert fast is not NotImplemented
    slow = _python(text)
    assert _same(fast, slow) and _same(fast, yaml.safe_load(text))
    assert dict(_locations(fast)) == dict(_locations(slow))
    for data in (text.encode(), text.encode("utf-16")):  # bytes: libyaml finds the encoding
        assert _same(load_yaml_text(data, "doc.yaml"), slow)


LEFT_TO_PYTHON = [
    "a: 1\nb: 2\na: 3\n",  # duplicate key
    "a: [1, 2\nb: 3\n",  # syntax error
    "a: 1\n---\nb: 2\n",  # second document
    "a: 1\nb: *nope\n",  # unknown alias
    "base: &b {x: 1}\nd:\n  <<: *b\n  y: 2\n",  # anchor, alias, merge
    "d:\n  <<: 3\n",  # merge of a scalar
    "? [a, b]\n: 1\n",  # collection key
    "s: !!str 12\nf: !!float x\n",  # tags, one unreadable
    "v: =\n",  # the value tag, which safe_load cannot construct
    "{1: a, 1.0: b}\n",  # keys equal after resolution
    "a:\n  - 1\n - 2\n",  # bad indentation
    "a: 'open\n",
    "\t- x\n",
    "d: 2024-13-45\n",  # looks like a date, is none
]


@pytest.mark.parametrize("text", LEFT_TO_PYTHON)
def test_unusual_files_end_as_before(text: str) -> None:
    need(yamlfile._yamlfast is not None, "freeoffload._yamlfast built")
    assert _fast(text) is NotImplemented
    try:
        before: Any = _python(text)
    except ConfigError as err:
        before = str(err)
    try:
        now: Any = load_yaml_text(text, "doc.yaml")
    except ConfigError as err:
        now = str(err)
    if isinstance(before, str):
        assert now == before
    else:
        assert _same(now, before)
        assert dict(_locations(now)) == dict(_locations(before))


@pytest.mark.parametrize("path", sorted(BAD_TOPOLOGY.glob("*.yaml")), ids=lambda p: p.name)
def test_bad_topology_files_report_the_same_problems(
        path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from freeoffload.topology import check_task, load_task, load_topology

    def problems() -> str:
        try:
            if not path.name.startswith("task_"):
                load_topology(path)
                return ""
            task = load_task(path)
            header = path.read_text().splitlines()[1]  # '# map: FILE' for a valid task
            check_task(load_topology(path.parents[1] / header.removeprefix("# map: ")), task)
        except ConfigError as err:
            return str(err)
        return ""

    now = problems()
    with monkeypatch.context() as patch:
        patch.setattr(yamlfile, "_yamlfast", None)
        before = problems()
    assert now == before and now


def test_locations_follow_the_keys_when_a_mapping_changes() -> None:
    data = load_yaml_text("a: 1\nb: 2\nc: [x, y]\n", "m.yaml")
    del data["a"]
    data["z"] = 9
    assert data.value_loc("b").line == 2
    assert data.key_loc("z") == data.loc  # added later: no location of its own
    data["c"].append("w")
    assert data["c"].item_loc(2) == data["c"].loc
    assert data["c"].item_loc(1).col == 8


SAMPLE = ("nodes:\n- Name: e1\n  Role: edge\n  CPU: {cores: 4, MHz: 2.0e+3}\n"
          "  Tags: [a, 'b', \"c\"]\n  When: 2024-01-02\n  Hex: 0x1F\n  Text: |\n    two\n"
          "    lines\n- {k: ~}\n- [.5, -1_0, 1:30]\n")


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_damaged_text_ends_in_a_value_or_a_located_error(data: st.DataObject) -> None:
    """Whatever the bytes, the C module returns a value or steps aside; it never crashes."""
    need(yamlfile._yamlfast is not None, "freeoffload._yamlfast built")
    text = SAMPLE.encode()
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(text)))
        cut = data.draw(st.integers(0, 6))
        junk = data.draw(st.binary(max_size=4) | st.sampled_from(
            [b":", b"- ", b"[", b"]", b"{", b"}", b"'", b'"', b"&a ", b"*a", b"!!int ", b"\t",
             b"\n  ", b"#", b"<<: ", b"---\n", b"\xff", b"\xc3", b"? "]))
        text = text[:at] + junk + text[at + cut:]
    fast = _fast(text)
    try:
        before: Any = _python(text)
    except ConfigError as err:
        assert fast is NotImplemented
        with pytest.raises(ConfigError) as now:
            load_yaml_text(text, "doc.yaml")
        assert str(now.value) == str(err)
        return
    if fast is not NotImplemented:
        assert _same(fast, before)
        assert dict(_locations(fast)) == dict(_locations(before))
