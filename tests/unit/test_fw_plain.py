"""Plain allowlists (one address/CIDR/range per line), on the examples in examples/firewall/plain."""

from __future__ import annotations

import pytest

from feedback_check.errors import ConfigError
from feedback_check.firewall import plain
from feedback_check.firewall.formats import ParseContext
from feedback_check.firewall.ipspace import AddressSet
from feedback_check.firewall.model import Action
from feedback_check.platform import load_platform
from tests.unit.fw_formats_helpers import (
    admitted,
    analyse,
    blocked,
    deciding_lines,
    detected_formats,
    example,
    missing,
)


def test_current_list_with_a_half_range() -> None:
    ruleset, evaluation, ctx = analyse(plain, "plain/postfinance-allowlist.txt")
    assert ruleset.chains["input"].policy is Action.DROP
    assert admitted(evaluation) == ["91.208.214.0/25", "185.8.52.0/22", "185.139.244.0/22"]
    assert blocked(evaluation) == ["91.208.214.128/25"]
    assert deciding_lines(evaluation, "91.208.214.0/25") == [5]
    assert deciding_lines(evaluation, "91.208.214.128/25") == [None]     # not listed: the list's default
    assert "203.0.113.10" in evaluation.admitted
    assert plain.fix_lines(ruleset, evaluation, missing(evaluation), ctx)[1:] == ["91.208.214.128/25"]


def test_legacy_2019_list_misses_the_new_ranges() -> None:
    _, evaluation, _ctx = analyse(plain, "plain/legacy-2019.txt")
    assert admitted(evaluation) == ["185.8.52.254/32", "185.8.53.254/32", "185.8.54.254/32"]
    assert evaluation.admitted == load_platform().legacy_addresses
    assert "91.208.214.0/24" in blocked(evaluation) and "185.139.244.0/22" in blocked(evaluation)


def test_bad_lines_are_unparsed_with_their_numbers() -> None:
    ruleset, evaluation, _ = analyse(plain, "plain/with-typos.txt")
    assert [(o.line, o.text) for o in ruleset.unparsed] == [(5, "185.8.52.0/33"), (6, "postfinance.ch")]
    assert blocked(evaluation) == []


def test_nothing_usable_is_a_config_error_naming_the_line() -> None:
    with pytest.raises(ConfigError) as error:
        plain.parse("# list\n\nshop.example\n", "list.txt", ParseContext(port=443))
    assert error.value.file == "list.txt" and error.value.line == 3
    with pytest.raises(ConfigError, match="empty"):
        plain.parse("# only comments\n; here\n", "list.txt", ParseContext(port=443))


def test_ipv6_and_ranges() -> None:
    ruleset = plain.parse("2001:db8::/32\n10.0.0.1 - 10.0.0.5\n", "l.txt", ParseContext(port=443))
    from feedback_check.firewall.evaluate import evaluate
    result = evaluate(ruleset, 443).admitted
    assert result == AddressSet.from_specs(["2001:db8::/32", "10.0.0.1-10.0.0.5"])


@pytest.mark.parametrize("name", ["postfinance-allowlist.txt", "legacy-2019.txt"])
def test_examples_are_detected_as_plain_only(name: str) -> None:
    text = example(f"plain/{name}").read_text(encoding="utf-8")
    assert detected_formats(text) == ["plain"]


def test_a_list_with_a_typo_is_not_claimed_by_detection() -> None:
    # Detection must be reliable: a stray word makes it ask for --type plain instead of guessing.
    assert not plain.detect(example("plain/with-typos.txt").read_text(encoding="utf-8"))
