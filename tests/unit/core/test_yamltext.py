"""The strict YAML loader rule files and pipeline specs share."""

from __future__ import annotations

import pytest

from shipyard.core.errors import InvalidInputError
from shipyard.core.yamltext import line_of, load_yaml


def test_lines_are_found_by_path_and_booleans_keys_stay_text() -> None:
    data, node = load_yaml("on:\n  dataset: x\nsteps:\n  - a\n  - b: {c: 1}\n", "f.yaml")
    assert data == {"on": {"dataset": "x"}, "steps": ["a", {"b": {"c": 1}}]}
    assert line_of(node, ["steps", 1, "b", "c"]) == 5
    assert line_of(node, ["on", "dataset"]) == 2
    assert line_of(node, ["steps", 7]) == 3  # the deepest part that exists
    assert line_of(None, ["x"]) is None


def test_a_key_given_twice_and_a_syntax_error_name_their_line() -> None:
    with pytest.raises(InvalidInputError, match=r"f\.yaml line 3: key 'a' is given twice"):
        load_yaml("x:\n  a: 1\n  a: 2\n", "f.yaml")
    with pytest.raises(InvalidInputError, match="line 2, column") as caught:
        load_yaml("x: [1,\n  }\n", "f.yaml")
    assert caught.value.details["line"] == 2
