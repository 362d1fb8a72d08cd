"""--format nagios against the Nagios plugin development guidelines, with a strict parser written here.

Grammar checked (monitoring-plugins guidelines, "Plugin Output" and "Performance data"):
  first line   := "FEEDBACK-CHECK " STATE " - " text [" | " perfdata]
  perfdata     := item (" " item)*
  item         := label "=" value [uom] [";" [warn] [";" [crit] [";" [min] [";" [max]]]]]
  label        := "'" (any but "'" and "=")+ "'" | (any but space, "'" and "=")+
  value, min, max := -?[0-9]+(\\.[0-9]+)?        (the same UOM for value, min and max)
  warn, crit   := range: ["@"] [start ":"] [end], start may be "~"
  uom          := s | ms | us | % | B | KB | MB | TB | c | (none)
The plugin text (first line and long output) never contains "|" except the one before the perfdata.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

import pytest

from feedback_check.findings import Verdict
from feedback_check.reporters import render
from feedback_check.reporters.nagios import render as nagios_render
from feedback_check.reporters.nagios import unknown_line
from tests.unit.test_reporters_samples import (
    HOSTILE,
    SAMPLES,
    critical_report,
    healthy_report,
    many_shops_report,
    ok_target,
    warning_report,
)

NUMBER = r"-?[0-9]+(?:\.[0-9]+)?"
RANGE = rf"@?(?:(?:{NUMBER}|~):)?(?:{NUMBER})?"
UOMS = ("", "s", "ms", "us", "%", "B", "KB", "MB", "TB", "c")
ITEM = re.compile(
    rf"(?P<label>'(?:[^'=])+'|[^ '=]+)=(?P<value>{NUMBER})(?P<uom>[a-zA-Z%]*)"
    rf"(?:;(?P<warn>{RANGE})(?:;(?P<crit>{RANGE})(?:;(?P<min>{NUMBER})?(?:;(?P<max>{NUMBER})?)?)?)?)?"
)
FIRST_LINE = re.compile(r"FEEDBACK-CHECK (OK|WARNING|CRITICAL|UNKNOWN) - ([^|]+?)(?: \| (.*))?")


@dataclass(frozen=True)
class Perf:
    label: str
    value: float
    uom: str
    warn: str
    crit: str
    min: str
    max: str


def parse(output: str) -> tuple[str, str, dict[str, Perf], list[str]]:
    """Strictly parse a plugin answer: (state, text, perfdata by label, long output lines)."""
    assert output.endswith("\n")
    first, *long_output = output[:-1].split("\n")
    match = FIRST_LINE.fullmatch(first)
    assert match, f"first line does not follow the plugin grammar: {first!r}"
    state, text, perfdata = match.groups()
    assert all("|" not in line for line in long_output), "a | in the long output would start performance data"
    items: dict[str, Perf] = {}
    position = 0
    while perfdata is not None and position < len(perfdata):
        item = ITEM.match(perfdata, position)
        assert item, f"performance data does not parse at {perfdata[position:position + 60]!r}"
        label = item["label"].strip("'")
        assert label not in items, f"duplicate label {label!r}"
        assert item["uom"] in UOMS, f"unit {item['uom']!r} is not one the guidelines allow"
        items[label] = Perf(label, float(item["value"]), item["uom"], item["warn"] or "", item["crit"] or "",
                            item["min"] or "", item["max"] or "")
        position = item.end()
        if position < len(perfdata):
            assert perfdata[position] == " ", f"items must be separated by one space at {perfdata[position:]!r}"
            position += 1
    return state, text, items, long_output


def nagios(report) -> str:  # type: ignore[no-untyped-def]
    return render(report, "nagios")


def test_parser_rejects_what_the_guidelines_forbid() -> None:
    """The parser above is strict: it refuses the usual mistakes (so passing it means something)."""
    bad = ["FEEDBACK-CHECK OK - x | 'a'=1s;;;0 'a'=2",       # duplicate label
           "FEEDBACK-CHECK OK - x | a=1 sec",               # space in the value part
           "FEEDBACK-CHECK OK - x | 'a'=1days",             # unit not allowed
           "FEEDBACK-CHECK OK - x | 'a'=1e5",               # exponent
           "FEEDBACK-CHECK OK - x | 'a=b'=1",               # = inside a label
           "FEEDBACK-CHECK OK - x | a b=1",                 # unquoted label with a space
           "FEEDBACK-CHECK FINE - x",                       # unknown state
           "FEEDBACK-CHECK OK - x | 'a'=1;;;0;2;3"]         # too many fields
    for line in bad:
        with pytest.raises(AssertionError):
            parse(line + "\n")
    parse("FEEDBACK-CHECK OK - x | 'a b'=1.5s;5;20;0 c=3;~:10;@1:2;0;4 'd'=1\n")


@pytest.mark.parametrize("sample", sorted(SAMPLES))
def test_every_sample_follows_the_grammar_and_states_its_verdict(sample: str) -> None:
    report = SAMPLES[sample]()
    state, text, _, _ = parse(nagios(report))
    assert state == report.verdict.name
    assert text.strip()


def test_single_url_perfdata_names_every_phase_certificate_and_firewall() -> None:
    report = critical_report()
    _, text, perf, long_output = parse(nagios(report))
    target = report.targets[0]
    for phase in ("dns", "connect", "tls", "ttfb", "total"):
        assert perf[phase].uom == "s"
        assert perf[phase].min == "0"
    assert perf["cert_days_left"].value == pytest.approx(min(t.cert_days_left for t in report.targets), abs=0.01)  # type: ignore[type-var]
    assert perf["blocked_addresses"].value == 1024
    assert perf["blocked_addresses"].crit == "0" and perf["blocked_addresses"].max == "2304"
    assert perf["urls_critical"].value == 1 and perf["urls_ok"].value == 1
    assert perf[f"{target.shop}/{target.role} total"].value == pytest.approx(target.timings["total"])  # type: ignore[arg-type]
    assert "Endpoint answers with a 5xx error" in text
    assert any("http.server_error" in line and "Fix:" in line for line in long_output)
    assert any("firewall.range_blocked" in line for line in long_output)
    assert any("config.inline_secret" in line for line in long_output), "profile findings are in the long output"


def test_aggregate_phases_are_one_urls_whole_set_never_mixed() -> None:
    report = critical_report()
    fast, slow = report.targets
    fast = replace(fast, timings={"dns": 0.9, "connect": 0.5, "tls": 0.4, "ttfb": 0.1, "total": 0.2})
    slow = replace(slow, timings={"dns": 0.001, "connect": 0.002, "tls": 0.003, "ttfb": 1.0, "total": 1.5})
    _, _, perf, _ = parse(nagios(replace(report, targets=(fast, slow))))
    # Maxima per phase would claim dns 0.9 s and total 1.5 s for a request that never happened.
    assert {phase: perf[phase].value for phase in ("dns", "connect", "tls", "ttfb", "total")} == \
        {"dns": 0.001, "connect": 0.002, "tls": 0.003, "ttfb": 1.0, "total": 1.5}


def test_state_word_is_the_state_of_the_exit_code_used() -> None:
    state, text, _, _ = parse(nagios_render(warning_report(), state=Verdict.OK))
    assert state == "OK" and "not alerted on (--fail-on critical)" in text
    assert "slow" in text.lower() or "certificate" in text.lower()
    state, text, _, long_output = parse(nagios_render(critical_report(), state=Verdict.CRITICAL,
                                                      problems=["--state: x.json: cannot write"]))
    assert state == "CRITICAL" and "5xx error" in text
    assert long_output[0] == "UNKNOWN: --state: x.json: cannot write"
    state, text, _, _ = parse(nagios_render(healthy_report(), state=Verdict.UNKNOWN,
                                            problems=["--state: x.json: cannot write"]))
    assert state == "UNKNOWN" and text.startswith("--state: x.json: cannot write; the check itself: OK")


def test_unknown_line_is_one_plugin_line() -> None:
    line = unknown_line("profile.yaml:3: bad | pipe\nnew line")
    state, text, perf, long_output = parse(line + "\n")
    assert state == "UNKNOWN" and "pipe" in text and not perf and not long_output


def test_thresholds_come_from_the_platform_the_report_carries() -> None:
    report = replace(warning_report(), platform={"timing": {"budget_seconds": 20, "slow_seconds": 5},
                                                 "tls": {"cert_warning_days": 21, "cert_critical_days": 7}})
    state, _, perf, _ = parse(nagios(report))
    assert state == "WARNING"
    assert (perf["total"].warn, perf["total"].crit) == ("5", "20")
    assert perf["total"].value == pytest.approx(7.2)
    assert (perf["cert_days_left"].warn, perf["cert_days_left"].crit) == ("21:", "7:")


def test_without_platform_thresholds_none_are_invented() -> None:
    _, _, perf, _ = parse(nagios(healthy_report()))
    assert perf["total"].warn == "" and perf["total"].crit == ""


def test_many_urls_keep_only_aggregates_and_a_short_first_line() -> None:
    report = many_shops_report()
    output = nagios(report)
    state, text, perf, long_output = parse(output)
    assert state == "CRITICAL"
    assert perf["urls_critical"].value == 10 and perf["urls_ok"].value == 390
    assert not any("/" in label for label in perf), "no per-URL data above the limit"
    assert len(output.split("\n", 1)[0]) < 1024
    assert "10 of 400 URLs failing" in text and "1 shop not checked" in text
    assert long_output[0].startswith("UNKNOWN shop-late")
    assert sum(1 for line in long_output if line.startswith("CRITICAL ")) == 10


def test_unknown_run_says_why() -> None:
    state, text, _, long_output = parse(nagios(SAMPLES["unknown"]()))
    assert long_output == ["UNKNOWN shop-x: not checked: internal error: boom"]
    assert state == "UNKNOWN" and "internal error: boom" in text
    assert Verdict.UNKNOWN.exit_code == 3


def test_hostile_text_cannot_break_the_plugin_output() -> None:
    output = nagios(SAMPLES["hostile"]())
    _, text, _, long_output = parse(output)
    assert "\x1b" not in output and "\x00" not in output
    assert "pipe" in text and "|" not in text
    assert all(HOSTILE not in line for line in long_output), "newlines inside values never split a line"


def test_failing_counts_only_critical_urls_and_warnings_apart() -> None:
    """Audit 10: a WARNING URL still gets through; "N of M URLs failing" counts the CRITICAL ones only."""
    critical = critical_report()
    slow = warning_report().targets[0]
    report = replace(critical, targets=(*critical.targets, slow), findings=(*critical.findings, *slow.findings))
    state, text, perf, _ = parse(nagios(report))
    assert state == "CRITICAL"
    assert perf["urls_critical"].value == 1 and perf["urls_warning"].value == 1
    assert "1 of 3 URLs failing, 1 warning, first shop-ch · accepted" in text
    only_warning = replace(warning_report(), targets=(slow, ok_target("shop-ok")))
    state, text, _, _ = parse(nagios(only_warning))
    assert state == "WARNING" and "0 of 2 URLs failing, 1 warning, first shop-slow · accepted" in text
