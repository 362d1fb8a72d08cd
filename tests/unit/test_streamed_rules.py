"""Line-based rule files read as a stream: `inputfile.iter_lines` gives exactly `splitlines()`'s lines and
numbers without holding the file, and the iptables reader over it gives the same ruleset, the same line
texts and the same file:line errors as over the whole text."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from feedback_check import inputfile
from feedback_check.errors import ConfigError
from feedback_check.firewall import iptables
from feedback_check.firewall.analysis import LayerSource, analyse_layers
from feedback_check.firewall.evaluate import evaluate
from feedback_check.firewall.formats import ParseContext
from feedback_check.firewall.ipspace import AddressSet
from feedback_check.platform import load_platform

PF = AddressSet.from_specs(["185.139.244.0/22", "91.208.214.0/24", "185.8.52.0/22"])
ENDS = ["\n", "\r\n", "\r", "\x0c", "\x1e", "\x85", "\u2028", ""]


def _random_text(rng: random.Random, lines: int) -> str:
    words = ["-A INPUT -s 1.2.3.4/32 -j DROP", "", "  ", "é", "x" * rng.randint(0, 3000), "COMMIT", "\t"]
    return "".join(rng.choice(words) + rng.choice(ENDS) for _ in range(lines))


@pytest.mark.parametrize("seed", range(12))
def test_iter_lines_are_splitlines_across_blocks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 seed: int) -> None:
    rng = random.Random(seed)
    monkeypatch.setattr(inputfile, "LINE_BLOCK", rng.choice([1, 7, 64, 4096]))
    text = _random_text(rng, rng.randint(0, 400))
    path = tmp_path / "rules"
    path.write_bytes(text.encode())
    expected = list(enumerate(text.splitlines(), start=1))
    assert list(inputfile.iter_lines(path, inputfile.RULES)) == expected
    assert list(inputfile.text_lines(text)) == expected


def test_iter_lines_checks_type_and_size_before_reading(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="character device"):
        inputfile.iter_lines("/dev/zero", inputfile.RULES)        # refused at once, not when iterated
    with pytest.raises(ConfigError, match="directory"):
        inputfile.iter_lines(tmp_path, inputfile.RULES)
    big = tmp_path / "big"
    big.write_bytes(b"-A INPUT -j DROP\n" * 100_000)
    monkeypatch.setenv("FEEDBACK_CHECK_MAX_RULES_MB", "1")
    with pytest.raises(ConfigError, match="FEEDBACK_CHECK_MAX_RULES_MB"):
        inputfile.iter_lines(big, inputfile.RULES)


def test_iter_lines_stops_a_file_growing_past_the_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "growing"
    path.write_bytes(b"a\n" * 1000)
    monkeypatch.setenv("FEEDBACK_CHECK_MAX_RULES_MB", str(3000 / inputfile.MB))
    monkeypatch.setattr(inputfile, "LINE_BLOCK", 512)
    lines = inputfile.iter_lines(path, inputfile.RULES)     # checked: 2,000 bytes, within 3,000
    with open(path, "ab") as grow:
        grow.write(b"b\n" * 1000)
    with pytest.raises(ConfigError, match="more than"):
        list(lines)


def test_an_undecodable_line_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(inputfile, "LINE_BLOCK", 16)
    path = tmp_path / "rules.v4"
    path.write_bytes(b"*filter\n" + b"-A INPUT -j DROP\n" * 20 + b"-A INPUT -m comment --comment \xff -j DROP\n")
    with pytest.raises(ConfigError) as info:
        list(inputfile.iter_lines(path, inputfile.RULES))
    assert info.value.line == 22 and "not UTF-8" in str(info.value)
    with pytest.raises(ConfigError) as whole:
        inputfile.read_large_text(path, inputfile.RULES)
    assert str(whole.value) == str(info.value)


def _ban_list(rng: random.Random, count: int) -> list[str]:
    lines = []
    for i in range(count):
        address = f"{rng.randint(1, 80)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
        lines.append(f"-A INPUT -s {address}{rng.choice(['/32', '', '/31'])} -j DROP")
        if i % 5000 == 4999:
            lines.append(f"-A INPUT -s 2001:db8::{i:x} -j DROP")
    return lines


def _dump(lines: list[str]) -> str:
    return "\n".join(["*filter", ":INPUT DROP [0:0]", ":FORWARD DROP [0:0]", ":OUTPUT ACCEPT [0:0]", *lines,
                      "-A INPUT -p tcp -m tcp --dport 443 -j ACCEPT", "COMMIT"]) + "\n"


def test_a_long_ban_list_names_each_blocking_line_as_written(tmp_path: Path) -> None:
    """Blocks of pending sources (4,096 per run) are converted as they are read; the line that blocks
    a published address is named with its own text wherever it falls, as over the whole text."""
    rng = random.Random(9)
    lines = _ban_list(rng, 12_000)
    blockers = {4095: "185.139.244.7", 4096: "185.139.245.0/24", 9001: "91.208.214.9/32", 11_999: "185.8.52.3"}
    for index, address in blockers.items():
        lines[index] = f"-A INPUT -s {address} -j DROP"             # inside the run, across its blocks
    lines[7000] = "-A INPUT -s 185.139.246.1/32  -j  DROP"        # a spacing of its own: a run of its own
    blockers[7000] = ""
    text = _dump(lines)
    path = tmp_path / "rules.v4"
    path.write_text(text)
    context = ParseContext(port=443)
    streamed = iptables.parse_lines(inputfile.iter_lines(path, inputfile.RULES), str(path), context)
    whole = iptables.parse(text, str(path), context)
    numbers = {text.splitlines().index(line) + 1: line for line in (lines[i] for i in blockers)}
    for ruleset in (streamed, whole):
        result = evaluate(ruleset, 443)
        decided = sorted((d.origin.line, d.origin.text) for d in result.deciding(PF - result.admitted)
                         if d.origin is not None)
        assert decided == sorted(numbers.items())
    assert evaluate(streamed, 443).admitted == evaluate(whole, 443).admitted


def test_the_earliest_unreadable_source_is_the_error_wherever_its_block_is(tmp_path: Path) -> None:
    rng = random.Random(3)
    lines = _ban_list(rng, 9000)
    lines[8000] = "-A INPUT -s 10.0.0.300/32 -j DROP"         # converted with its block, after line 5000's
    lines[5000] = "-A INPUT -s 10.0.0.256 -j DROP"
    lines[6000] = "-A INPUT -s 2001:db8::zz -j DROP"
    text = _dump(lines)
    path = tmp_path / "rules.v4"
    path.write_text(text)
    with pytest.raises(ConfigError) as streamed:
        iptables.parse_lines(inputfile.iter_lines(path, inputfile.RULES), str(path), ParseContext(port=443))
    assert streamed.value.line == text.splitlines().index(lines[5000]) + 1
    assert "'10.0.0.256'" in str(streamed.value) and f"{path}:{streamed.value.line}" in str(streamed.value)


def test_a_rule_file_is_analysed_from_its_lines_with_and_without_detection(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`firewall FILE` (--type iptables, or auto-detected from the head of a large file) reads the file
    as lines: the whole text is never read (`read_large_text`), and the result is the same."""
    lines = _ban_list(random.Random(5), 40_000)
    lines[30_000] = "-A INPUT -s 185.8.52.0/23 -j DROP"
    path = tmp_path / "rules.v4"
    path.write_text(_dump(lines))
    assert path.stat().st_size > 1 << 20                          # larger than the detection head
    platform = load_platform(None)
    expected = analyse_layers([LayerSource(str(path), "iptables")], platform, port=443)

    def whole(*args: object, **kwargs: object) -> str:
        raise AssertionError("read whole")

    monkeypatch.setattr(inputfile, "read_large_text", whole)
    for kind in ("iptables", "auto"):
        summary = analyse_layers([LayerSource(str(path), kind)], platform, port=443)
        assert summary == expected
        assert any("185.8.52.0/23" in str(f) for f in summary.findings)


def _ipset_save(rng: random.Random, count: int) -> list[str]:
    lines = ["create bans hash:ip family inet hashsize 1024 maxelem 1000000",
             "create nets hash:net family inet hashsize 1024 maxelem 1000000"]
    for i in range(count):
        name = "bans" if i % 3 else "nets"
        suffix = "" if name == "bans" else f"/{rng.randint(16, 32)}"
        lines.append(f"add {name} {rng.randint(1, 80)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}."
                     f"{rng.randint(1, 254)}{suffix}")
    return lines


def test_ipset_save_read_as_lines_gives_the_same_sets(tmp_path: Path) -> None:
    from feedback_check.firewall import ipset

    lines = _ipset_save(random.Random(2), 20_000)
    text = "\n".join(lines) + "\n"
    path = tmp_path / "ipset.save"
    path.write_text(text)
    streamed = ipset.parse_lines(inputfile.iter_lines(path, inputfile.RULES), str(path))
    whole = ipset.parse(text, str(path))
    assert streamed.keys() == whole.keys() == {"bans", "nets"}
    for name in whole:
        assert streamed[name].sources(["src"], 443, "tcp", {})[0] == whole[name].sources(["src"], 443, "tcp", {})[0]
    assert streamed["bans"].sources(["src"], 443, "tcp", {})[0].size() > 13_000


def test_ipset_the_earliest_unreadable_entry_is_the_error_across_blocks(tmp_path: Path) -> None:
    from feedback_check.firewall import ipset

    lines = _ipset_save(random.Random(4), 20_000)
    lines[15_001] = "add bans 10.0.0.999"           # read after `nets`' bad entry but in a later block
    lines[9_001] = "add nets 10.0.0.0/99"          # pending in `nets` while `bans` fills its blocks
    text = "\n".join(lines) + "\n"
    path = tmp_path / "ipset.save"
    path.write_text(text)
    for parse in (lambda: ipset.parse_lines(inputfile.iter_lines(path, inputfile.RULES), str(path)),
                  lambda: ipset.parse(text, str(path))):
        with pytest.raises(ConfigError) as info:
            parse()
        assert info.value.line == 9_002 and "set nets" in str(info.value)


def test_plain_lists_and_ipset_layers_are_read_as_lines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rules = tmp_path / "rules.v4"
    rules.write_text(_dump(["-A INPUT -m set --match-set bans src -j DROP"]))
    sets = tmp_path / "ipset.save"
    sets.write_text("\n".join([*_ipset_save(random.Random(1), 60_000), "add bans 185.139.244.9"]) + "\n")
    allow = tmp_path / "allow.txt"
    allow.write_text("# panel allowlist\n" + "".join(f"10.{i // 256}.{i % 256}.1\n" for i in range(20_000))
                     + "185.139.244.0/22\n91.208.214.0/24\n")
    platform = load_platform(None)
    expected = analyse_layers([LayerSource(str(rules), "iptables"), LayerSource(str(sets), "auto"),
                               LayerSource(str(allow), "plain")], platform, port=443)

    def whole(*args: object, **kwargs: object) -> str:
        raise AssertionError("read whole")

    monkeypatch.setattr(inputfile, "read_large_text", whole)
    for kind in ("ipset", "auto"):
        summary = analyse_layers([LayerSource(str(rules), "iptables"), LayerSource(str(sets), kind),
                                  LayerSource(str(allow), "plain")], platform, port=443)
        assert summary == expected
        assert any("185.139.244.9" in str(f) for f in summary.findings)


def test_every_rule_line_keeps_its_position_in_its_chain_for_fix_lines() -> None:
    """`iptables -I CHAIN n` positions: runs are kept as segments referring to the run's own line numbers."""
    from feedback_check.firewall.iptables.fixes import IptablesFix

    rng = random.Random(6)
    lines = []
    for i in range(3000):
        if i % 700 < 3:
            lines.append(f"-A INPUT -p tcp --dport {1000 + i} -j ACCEPT")
        elif i % 900 == 5:
            lines.append(f"-A OTHER -s 10.0.{i % 250}.1/32 -j DROP")
        else:
            lines.append(f"-A INPUT -s 10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.9/32 -j DROP")
    text = _dump(lines).replace(":OUTPUT ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]\n:OTHER - [0:0]")
    ruleset = iptables.parse(text, "rules.v4", ParseContext(port=443))
    positions = ruleset.fix_context(IptablesFix).positions
    counts: dict[str, int] = {}
    expected = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if line.startswith("-A "):
            chain = line.split()[1]
            counts[chain] = counts.get(chain, 0) + 1
            expected[number] = (4, chain, counts[chain])
    assert {line: positions[line] for line in expected} == expected
    assert sorted(positions) == sorted(expected) and len(positions) == len(expected)
    with pytest.raises(KeyError):
        positions[1]


@pytest.mark.parametrize("spelling", ["/32", "", "mixed"])
def test_ban_lists_in_iptables_save_spelling_are_rebuilt_exactly(spelling: str) -> None:
    """Blocks whose sources are exactly `a.b.c.d/32` (or all `a.b.c.d`) keep no text: the line is rebuilt
    from the interval; any other spelling in a block keeps the block as written."""
    from feedback_check.firewall.iptables.syntax import _Run, _tables

    rng = random.Random(len(spelling))
    lines = []
    for i in range(9000):
        suffix = spelling if spelling != "mixed" else ("/32" if i != 6000 else "")
        lines.append(f"-A INPUT -s {rng.randint(1, 223)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}."
                     f"{rng.randint(0, 255)}{suffix} -j DROP")
    text = _dump(lines)
    tables, _ = _tables(inputfile.text_lines(text), "rules.v4")
    [run] = [item for item in tables[0].rules["INPUT"] if isinstance(item, _Run)]
    assert len(run) == 9000
    assert [run.text_of(i) for i in range(len(run))] == lines
    kept = [joined for _, _, joined, ends in run.written if ends is not None]
    assert len(kept) == (1 if spelling == "mixed" else 0)
