"""The bounded reader, the JSON/YAML depth and alias bounds, and the linear word splitter."""

from __future__ import annotations

import os
import random
import shlex
from pathlib import Path

import pytest

from feedback_check import inputfile, jsonfile
from feedback_check.errors import ConfigError
from feedback_check.firewall.words import split_words
from feedback_check.yamlfile import load_yaml_text


def test_regular_files_are_read_and_others_refused_without_blocking(tmp_path: Path) -> None:
    good = tmp_path / "profile.yaml"
    good.write_text("version: 1\n")
    assert inputfile.read_text(good, inputfile.PROFILE) == "version: 1\n"
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(ConfigError, match="named pipe"):
        inputfile.read_text(fifo, inputfile.PROFILE)           # no writer: open() would block without O_NONBLOCK
    with pytest.raises(ConfigError, match="character device"):
        inputfile.read_bytes("/dev/zero", inputfile.RULES)
    with pytest.raises(ConfigError, match="directory"):
        inputfile.read_bytes(tmp_path, inputfile.STATE)
    with pytest.raises(ConfigError, match="file not found"):
        inputfile.read_bytes(tmp_path / "missing", inputfile.STATE)


def test_size_limit_and_its_override(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    big = tmp_path / "rules"
    big.write_bytes(b"#" * (2 * inputfile.MB))
    monkeypatch.setenv("FEEDBACK_CHECK_MAX_RULES_MB", "1")
    with pytest.raises(ConfigError, match="FEEDBACK_CHECK_MAX_RULES_MB") as info:
        inputfile.read_large_text(big, inputfile.RULES)
    assert str(big) in str(info.value) and "2.0 MB" in str(info.value)
    monkeypatch.setenv("FEEDBACK_CHECK_MAX_RULES_MB", "2.5")
    assert len(inputfile.read_large_text(big, inputfile.RULES)) == 2 * inputfile.MB
    monkeypatch.setenv("FEEDBACK_CHECK_MAX_RULES_MB", "lots")
    with pytest.raises(ConfigError, match="not a size in MB"):
        inputfile.read_bytes(big, inputfile.RULES)


def test_undecodable_text_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "rules"
    path.write_bytes(b"ok\nok\n\xff\n")
    for read in (inputfile.read_text, inputfile.read_large_text):
        with pytest.raises(ConfigError, match="not UTF-8") as info:
            read(path, inputfile.RULES)
        assert info.value.line == 3


def test_first_line_only(tmp_path: Path) -> None:
    path = tmp_path / "secret"
    path.write_text("the-passphrase\nsecond\n")
    assert inputfile.read_first_line(path, inputfile.PASSPHRASE) == "the-passphrase\n"


def test_include_budget_counts_files_bytes_and_depth() -> None:
    budget = inputfile.IncludeBudget(files=2, depth=3, bytes=100)
    budget.take(10, file="a", line=1, depth=1)
    budget.take(10, file="a", line=2, depth=3)
    with pytest.raises(ConfigError, match="more than 2 files"):
        budget.take(10, file="a", line=3, depth=1)
    with pytest.raises(ConfigError, match="deeper than 3"):
        inputfile.IncludeBudget(depth=3).take(1, file="a", line=1, depth=4)
    with pytest.raises(ConfigError, match="in total"):
        inputfile.IncludeBudget(bytes=5).take(6, file="a", line=1, depth=1)


def test_json_depth_is_bounded_with_file_and_line() -> None:
    assert jsonfile.loads('{"a": [1, {"b": 2}]}', "x.json") == {"a": [1, {"b": 2}]}
    deep = "[\n" * 70 + "]" * 70
    with pytest.raises(ConfigError, match="nested deeper than 64") as info:
        jsonfile.loads(deep, "x.json")
    assert info.value.file == "x.json" and info.value.line == 65
    with pytest.raises(ConfigError, match="nested deeper"):
        jsonfile.loads("[" * 100_000 + "]" * 100_000, "x.json")     # RecursionError inside json
    assert jsonfile.loads('["[[[[", "\\"]"]', "x.json") == ["[[[[", '"]']   # brackets in strings do not count


def test_yaml_anchors_within_bounds_still_work_and_bombs_do_not() -> None:
    data = load_yaml_text("base: &b {timeout: 5}\nshop: {<<: *b, name: a}\nother: *b\n", file="p.yaml")
    assert data["shop"] == {"timeout": 5, "name": "a"} and data["other"] == {"timeout": 5}
    bomb = "a: &a [" + ",".join(["x"] * 50) + "]\n" + "".join(
        f"{n}: &{n} [" + ",".join([f"*{p}"] * 50) + "]\n" for p, n in zip("abc", "bcd"))
    with pytest.raises(ConfigError, match="aliases") as info:
        load_yaml_text(bomb, file="p.yaml")
    assert info.value.file == "p.yaml" and info.value.line == 3


@pytest.mark.parametrize("line", [
    '-A INPUT -m comment --comment "a b" -j ACCEPT', "add s 1.2.3.4 comment 'it''s'", 'a\\ b "c\\"d" e\\\\f',
    'x""y', "''", '"a\\nb"', "tab\tsep  \r\n",
])
def test_words_are_those_of_shlex(line: str) -> None:
    assert split_words(line) == shlex.split(line, comments=False, posix=True)


def test_words_agree_with_shlex_on_random_lines() -> None:
    alphabet = ["a", "b", " ", "\t", '"', "'", "\\", "é", "\n", "#"]
    generator = random.Random(9)
    for _ in range(20_000):
        line = "".join(generator.choice(alphabet) for _ in range(generator.randint(0, 14)))
        try:
            expected: list[str] | None = shlex.split(line, comments=False, posix=True)
        except ValueError:
            expected = None
        try:
            got: list[str] | None = split_words(line)
        except ValueError:
            got = None
        assert got == expected, repr(line)
