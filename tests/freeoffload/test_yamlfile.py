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
