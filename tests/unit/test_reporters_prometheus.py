"""--format prometheus, validated with prometheus_client's own text-format parser."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest
from prometheus_client.parser import text_string_to_metric_families

from feedback_check.findings import Severity
from feedback_check.reporters import render
from feedback_check.reporters.prometheus import escape_label_value, format_value, render_failure
from tests.unit.test_reporters_samples import (
    HOSTILE,
    SAMPLES,
    critical_report,
    healthy_report,
    many_shops_report,
    unknown_report,
)

NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
# One sample line of the text format, strictly: name, optional {label="value",...}, one space, a value.
SAMPLE_LINE = re.compile(r'([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*",?)*\})? '
                         r"(-?[0-9.]+(?:e[+-]?[0-9]+)?|NaN|[+-]Inf)")


def samples_of(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample, parsed by prometheus_client; fails on anything the parser rejects or drops."""
    families = list(text_string_to_metric_families(text))
    parsed = {}
    for family in families:
        assert family.documentation, f"{family.name} has no HELP"
        assert family.type == "gauge", f"{family.name} is not typed"
        for sample in family.samples:
            key = (sample.name, tuple(sorted(sample.labels.items())))
            assert key not in parsed, f"duplicate series {key}"
            parsed[key] = sample.value
    sample_lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert len(parsed) == len(sample_lines), "the parser dropped or merged lines"
    return parsed


@pytest.mark.parametrize("sample", sorted(SAMPLES))
def test_every_sample_parses_completely_and_strictly(sample: str) -> None:
    text = render(SAMPLES[sample](), "prometheus")
    samples_of(text)
    seen_help: set[str] = set()
    seen_type: set[str] = set()
    for line in text.splitlines():
        assert line, "no blank lines"
        if line.startswith("# HELP "):
            name = line.split(" ")[2]
            assert NAME.fullmatch(name) and name not in seen_help
            seen_help.add(name)
        elif line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert kind == "gauge" and name in seen_help and name not in seen_type
            seen_type.add(name)
        else:
            match = SAMPLE_LINE.fullmatch(line)
            assert match, f"not a valid sample line: {line!r}"
            assert match.group(1) in seen_type, "TYPE comes before the samples of a family"


def test_critical_report_values() -> None:
    report = critical_report()
    got = samples_of(render(report, "prometheus"))
    bad, good = report.targets
    where = (("role", "accepted"), ("shop", "shop-ch"), ("url", bad.url))

    def value(name: str, *extra: tuple[str, str], labels: tuple[tuple[str, str], ...] = where) -> float:
        return got[(name, tuple(sorted(labels + extra)))]

    assert got[("feedback_check_run_verdict", ())] == 2
    assert got[("feedback_check_up", (("shop", "shop-ch"),))] == 1
    assert value("feedback_check_verdict") == 2
    assert value("feedback_check_verdict", labels=(("role", "rejected"), ("shop", "shop-ch"), ("url", good.url))) == 0
    for phase in ("dns", "connect", "tls", "ttfb", "total"):
        assert value("feedback_check_phase_seconds", ("phase", phase)) == pytest.approx(bad.timings[phase])  # type: ignore[arg-type]
    address = (("address", "203.0.113.10"),)
    assert value("feedback_check_http_status_code", *address) == 500
    assert value("feedback_check_tls_version_info", *address, ("version", "TLSv1.3")) == 1
    assert bad.probe is not None and bad.probe.addresses[0].tls is not None
    leaf = bad.probe.addresses[0].tls.leaf
    assert leaf is not None
    assert value("feedback_check_certificate_expiry_timestamp_seconds", *address) == round(leaf.not_after.timestamp())
    assert got[("feedback_check_success", (("shop", "shop-ch"),))] == 0
    assert got[("feedback_check_shop_verdict", (("shop", "shop-ch"),))] == 2
    assert value("feedback_check_findings", ("code", "http.server_error"), ("severity", "critical")) == 1
    firewall = (("port", "443"), ("shop", "shop-ch"))
    assert got[("feedback_check_published_addresses_blocked", firewall)] == 1024
    assert got[("feedback_check_published_addresses", firewall)] == 2304
    assert got[("feedback_check_firewall_verdict", firewall)] == 2
    general = (("code", "config.inline_secret"), ("role", ""), ("severity", "warning"), ("shop", ""), ("url", ""))
    assert got[("feedback_check_findings", general)] == 1
    end = report.started.timestamp() + report.duration_seconds
    assert got[("feedback_check_last_run_timestamp_seconds", ())] == pytest.approx(end)
    assert got[("feedback_check_lab_mode", ())] == 0


def test_shop_that_could_not_be_checked_is_down_with_the_reason() -> None:
    got = samples_of(render(unknown_report(), "prometheus"))
    assert got[("feedback_check_up", (("reason", "internal error: boom"), ("shop", "shop-x")))] == 0
    assert got[("feedback_check_success", (("shop", "shop-x"),))] == 0
    assert got[("feedback_check_run_verdict", ())] == 3


@pytest.mark.parametrize(("sample", "success"), [("healthy", 1), ("warning", 1), ("critical", 0)])
def test_success_means_the_post_sale_would_get_through(sample: str, success: int) -> None:
    got = samples_of(render(SAMPLES[sample](), "prometheus"))
    values = {v for k, v in got.items() if k[0] == "feedback_check_success"}
    assert values == {success}


def test_info_findings_are_not_exported_as_findings() -> None:
    report = healthy_report()
    assert any(f.severity is Severity.INFO for f in report.findings), "the sample has info findings"
    got = samples_of(render(report, "prometheus"))
    severities = {dict(k[1])["severity"] for k in got if k[0] == "feedback_check_findings"}
    assert "info" not in severities


def test_a_failed_run_is_a_complete_exposition_with_the_reason() -> None:
    got = samples_of(render_failure("profile.yaml:3: shops: missing", now=1800000000.5))
    assert got[("feedback_check_up", (("reason", "profile.yaml:3: shops: missing"), ("shop", "")))] == 0
    assert got[("feedback_check_success", (("shop", ""),))] == 0, "could not be checked: not a success"
    assert got[("feedback_check_run_verdict", ())] == 3
    assert got[("feedback_check_last_run_timestamp_seconds", ())] == 1800000000.5


def test_many_shops_one_series_per_url() -> None:
    report = many_shops_report()
    got = samples_of(render(report, "prometheus"))
    verdicts = [k for k in got if k[0] == "feedback_check_verdict"]
    assert len(verdicts) == len(report.targets) == 400
    assert sum(1 for k in verdicts if got[k] == 2) == 10
    ups = {dict(k[1])["shop"]: v for k, v in got.items() if k[0] == "feedback_check_up"}
    assert {dict(k[1]).get("reason") for k in got if k[0] == "feedback_check_up" and got[k] == 0} == {
        "run deadline (--max-runtime 60 s) reached before the check ended"}
    assert len(ups) == 201 and ups["shop-late"] == 0 and ups["shop-001"] == 1


def test_hostile_label_values_round_trip_through_the_parser() -> None:
    report = SAMPLES["hostile"]()
    text = render(report, "prometheus")
    got = samples_of(text)
    shops = {dict(k[1]).get("shop") for k in got if k[0] == "feedback_check_verdict"}
    expected = HOSTILE.replace("\x1b", "\\x1b").replace("\x00", "\\x00").replace("\x07", "\\x07")
    assert shops == {expected}, "quotes, backslashes and newlines survive; control characters become visible"
    assert "\x1b" not in text and "\x00" not in text


def test_duplicate_urls_keep_one_series_with_the_worse_verdict() -> None:
    report = critical_report()
    bad, good = report.targets
    twice = replace(report, targets=(bad, replace(good, role="accepted")))
    got = samples_of(render(twice, "prometheus"))
    verdicts = [v for k, v in got.items() if k[0] == "feedback_check_verdict"]
    assert verdicts == [2]


def test_lab_mode_is_exposed() -> None:
    got = samples_of(render(replace(critical_report(), lab=True), "prometheus"))
    assert got[("feedback_check_lab_mode", ())] == 1


@pytest.mark.parametrize(("raw", "escaped"), [('a"b', 'a\\"b'), ("a\\b", "a\\\\b"), ("a\nb", "a\\nb"),
                                              ("a\x1bb", "a\\\\x1bb"), ("é", "é")])
def test_label_escaping(raw: str, escaped: str) -> None:
    assert escape_label_value(raw) == escaped


@pytest.mark.parametrize(("value", "text"), [(2, "2"), (0.25, "0.25"), (1800000000.0, "1800000000"),
                                             (float("nan"), "NaN"), (float("inf"), "+Inf")])
def test_value_format(value: float, text: str) -> None:
    assert format_value(value) == text
