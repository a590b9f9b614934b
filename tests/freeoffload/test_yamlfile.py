from __future__ import annotations

from pathlib import Path

import pytest

from freeoffload.errors import ConfigError, Location
from freeoffload.yamlfile import LocList, LocMap, load_yaml, load_yaml_text


def test_mappings_and_sequences_know_their_locations() -> None:
    data = load_yaml_text("a: 1\nb:\n  - x\n  - {c: true}\n", "f.yaml")
    assert isinstance(data, LocMap)
    assert data.key_loc("b") == Location("f.yaml", 2, 1)
    items = data["b"]
    assert isinstance(items, LocList)
    assert items.item_loc(1) == Location("f.yaml", 4, 5)
    assert items[1].value_loc("c") == Location("f.yaml", 4, 9)
    assert data == {"a": 1, "b": ["x", {"c": True}]}


def test_duplicate_keys_are_reported_with_both_lines() -> None:
    with pytest.raises(ConfigError) as info:
        load_yaml_text("a: 1\nb: 2\na: 3\n", "dup.yaml")
    assert str(info.value) == "dup.yaml:3:1: a: duplicate key; first given at line 1"


def test_syntax_error_names_file_line_and_column() -> None:
    with pytest.raises(ConfigError) as info:
        load_yaml_text("a: [1, 2\nb: 3\n", "bad.yaml")
    problem = info.value.problems[0]
    assert problem.location.file == "bad.yaml"
    assert problem.location.line == 2
    assert "YAML syntax" in problem.message


def test_unreadable_file_names_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "none.yaml"
    with pytest.raises(ConfigError) as info:
        load_yaml(missing)
    assert str(info.value).startswith(f"{missing}: cannot read file")


SAME_AS_SAFE_LOAD = [
    "a: yes\nb: No\nc: ~\nd: 0x1F\ne: 1_000\nf: 1e3\ng: .inf\nh: 2024-01-02\ni: '12'\n",
    "base: &b {x: 1, y: 2}\nderived:\n  <<: *b\n  y: 3\nlist: [*b, *b]\n",
    "m:\n  y: 3\n  <<: [{y: 1, z: 2}, {z: 9, w: 4}]\n",
    "s: !!str 12\nf: !!float 3\nseq:\n- - 1\n  - 2\n- {}\n- []\n",
    "text: |\n  two\n  lines\nfolded: >\n  one\n  line\n",
    "- 1\n- -2.5\n- +3\n- 0o17\n- null\n- ''\n",
]


@pytest.mark.parametrize("text", SAME_AS_SAFE_LOAD)
def test_values_are_those_safe_load_gives(text: str) -> None:
    import yaml

    assert load_yaml_text(text, "same.yaml") == yaml.safe_load(text)


def test_merged_keys_keep_their_origin_and_explicit_keys_win() -> None:
    data = load_yaml_text("base: &b {x: 1, y: 2}\nd:\n  <<: *b\n  y: 3\n", "m.yaml")
    assert data["d"] == {"x": 1, "y": 3}
    assert data["d"].value_loc("x") == Location("m.yaml", 1, 14)
    assert data["d"].value_loc("y") == Location("m.yaml", 4, 6)


def test_unknown_alias_and_second_document_are_problems() -> None:
    with pytest.raises(ConfigError) as info:
        load_yaml_text("a: 1\n---\nb: 2\n", "two.yaml")
    assert "two.yaml:2:1: a second YAML document" in str(info.value)
    with pytest.raises(ConfigError) as info:
        load_yaml_text("a: 1\nb: *nope\n", "alias.yaml")
    assert str(info.value) == (
        "alias.yaml:2:4: *nope: unknown alias; define the anchor (&name) before use")


def test_a_text_that_looks_like_a_value_but_is_none_is_a_located_problem() -> None:
    with pytest.raises(ConfigError) as info:
        load_yaml_text("a: 1\nwhen: 2024-13-45\nf: !!float x\n", "v.yaml")
    assert str(info.value).splitlines() == [
        "v.yaml:2:7: 2024-13-45: cannot read as timestamp: month must be in 1..12; "
        "quote it to make it a string",
        "v.yaml:3:4: x: cannot read as tag:yaml.org,2002:float: could not convert string to "
        "float: 'x'; write a value of that type after the tag, or drop the tag",
    ]


def test_a_tag_with_a_text_it_cannot_read_is_a_located_problem() -> None:
    # PyYAML's own constructors fail on these with IndexError and KeyError
    with pytest.raises(ConfigError) as info:
        load_yaml_text("a: !!int \nb: 2\nc: !!bool maybe\n", "t.yaml")
    assert str(info.value).splitlines() == [
        "t.yaml:1:4: cannot read as tag:yaml.org,2002:int: '' is not a valid int; "
        "write a value of that type after the tag, or drop the tag",
        "t.yaml:3:4: maybe: cannot read as tag:yaml.org,2002:bool: 'maybe' is not a valid "
        "bool; write a value of that type after the tag, or drop the tag",
    ]
