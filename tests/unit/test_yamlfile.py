"""yamlfile: plain values with line numbers, built straight from PyYAML's node graph."""

from __future__ import annotations

import datetime as dt

import pytest
import yaml

from feedback_check.errors import ConfigError
from feedback_check.yamlfile import LineDict, LineList, load_yaml_text

SAMPLES = [
    "a: 1\nb: [x, 'y', 2.5, null, true, ~, 0x1f, 1e3]\nc: {d: 2020-01-01, e: 2020-01-01T10:00:00Z}\n",
    "base: &b {x: 1, z: [1, 2]}\nd:\n  <<: *b\n  y: 2\ne: *b\n",
    "s: !!set {a, b}\no: !!omap [a: 1, b: 2]\np: !!pairs [a: 1, a: 2]\n",
    "- 1\n- - 2\n  - [3, {k: v}]\n",
    "text: |\n  two\n  lines\nfolded: >\n  one\n  line\n",
    "",
]


@pytest.mark.parametrize("text", SAMPLES)
def test_values_equal_pyyaml_safe_load(text: str) -> None:
    assert load_yaml_text(text, file="f.yaml") == yaml.safe_load(text)


def test_lines_of_keys_and_items() -> None:
    data = load_yaml_text("a:\n  b: 1\n  c:\n    - x\n    - y\nd: 2\n", file="f.yaml")
    assert isinstance(data, LineDict) and isinstance(data["a"], LineDict) and isinstance(data["a"]["c"], LineList)
    assert (data.line, data.line_of("a"), data.line_of("d")) == (1, 1, 6)
    assert data["a"].line_of("c") == 3 and data["a"]["c"].line_of(1) == 5


def test_aliases_and_merge_keys_keep_line_numbers_of_the_anchor() -> None:
    data = load_yaml_text("base: &b\n  x: 1\nshop:\n  <<: *b\n  y: 2\n", file="f.yaml")
    assert data["shop"] == {"x": 1, "y": 2} and data["shop"].line_of("y") == 5


def test_values_inside_other_tags_are_built_the_same_way() -> None:
    data = load_yaml_text("o: !!omap\n  - a: {k: v}\n", file="f.yaml")
    assert data["o"] == [("a", {"k": "v"})] and isinstance(data["o"][0][1], LineDict)


@pytest.mark.parametrize(("text", "problem", "line"), [
    ("x: &a [1, *a]\n", "an alias refers to the collection it stands in", 1),
    ("a: 1\nb:\n  c: 1\n  c: 2\n", "duplicate key 'c'", 4),
    ("? [1]\n: 2\n", "a list or mapping cannot be a key", 1),
    ("a:\n  - \"x\\0y\"\n", "a NUL character", 2),
    ("s: !!set {\"\\0\"}\n", "a NUL character", 1),
    ("v: 2024-13-45\n", "cannot read the value on this line as a YAML timestamp", 1),
])
def test_bad_documents_name_the_line(text: str, problem: str, line: int) -> None:
    with pytest.raises(ConfigError) as caught:
        load_yaml_text(text, file="f.yaml")
    assert problem in caught.value.problem and caught.value.line == line
    assert caught.value.file == "f.yaml"


def test_dates_stay_dates() -> None:
    assert load_yaml_text("d: 2026-11-01\n", file="f.yaml")["d"] == dt.date(2026, 11, 1)
