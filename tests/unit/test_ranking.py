"""The one ranking of findings (findings.ranked) and the main finding every reporter names."""

from __future__ import annotations

from dataclasses import replace

import pytest

from feedback_check.findings import (
    ACTIONABILITY,
    CATALOGUE,
    HYGIENE,
    LAB_EXPECTED_CODES,
    Severity,
    make_finding,
    ranked,
)
from feedback_check.report import Report, TargetSummary
from feedback_check.reporters import html, nagios, text
from feedback_check.reporters.text import main_finding

URL = "http://127.0.0.1:18081/feedback"


def f(code: str, severity: Severity | None = None):  # type: ignore[no-untyped-def]
    return make_finding(code, URL, severity=severity, detail=code)


@pytest.mark.parametrize("actionable", ["http.slow", "signature.forgery_accepted", "handler.unknown_order",
                                        "http.redirect_after_processing"])
def test_actionable_warnings_rank_before_plain_http_whatever_the_phase_order(actionable: str) -> None:
    findings = [f("url.plain_http"), f("url.ip_literal"), f(actionable)]
    assert ranked(findings)[0].code == actionable
    assert main_finding(findings).code == actionable


def test_the_slow_shop_of_the_demo_names_http_slow_then_the_forgery() -> None:
    findings = [f("url.plain_http"), f("signature.forgery_accepted"), f("http.slow")]
    assert [x.code for x in ranked(findings)] == ["http.slow", "signature.forgery_accepted", "url.plain_http"]


def test_severity_still_comes_first() -> None:
    findings = [f("http.slow"), f("url.plain_http"), f("http.server_error"), f("dns.cname_chain")]
    assert [x.code for x in ranked(findings)] == ["http.server_error", "http.slow", "url.plain_http",
                                                  "dns.cname_chain"]


def test_critical_findings_keep_their_phase_order() -> None:
    # A listed code raised to critical (redirect_fails: true) does not jump ahead of an earlier phase's cause.
    findings = [f("tls.cert_expired"), f("http.redirect_after_processing", Severity.CRITICAL), f("http.not_found")]
    assert [x.code for x in ranked(findings)] == [x.code for x in findings]


def test_unlisted_warnings_rank_between_the_actionable_and_the_hygiene_ones() -> None:
    findings = [f("url.plain_http"), f("firewall.unparsed"), f("logs.postsale_slow")]
    unlisted = replace(f("logs.postsale_slow"), code="some.future_code")   # a code added later, in neither list
    ordered = ranked([f("url.plain_http"), unlisted, f("http.slow")])
    assert [x.code for x in ordered] == ["http.slow", "some.future_code", "url.plain_http"]
    assert ranked(findings)[-1].code == "url.plain_http"


def test_stable_among_equals() -> None:
    first, second = f("http.server_error"), f("http.not_found")
    assert ranked([first, second]) == [first, second]
    assert ranked([second, first]) == [second, first]


def test_in_lab_mode_what_the_lab_makes_expected_ranks_last() -> None:
    findings = [f("url.plain_http"), f("url.paramvar_unresolved")]
    assert ranked(findings)[0].code == "url.paramvar_unresolved"
    lab_only = [f("url.ip_literal"), f("url.plain_http"), f("dns.split_horizon")]
    assert ranked(lab_only, lab=False)[0].code == "dns.split_horizon"
    assert [x.code for x in ranked(lab_only, lab=True)] == ["dns.split_horizon", "url.plain_http", "url.ip_literal"]
    # A lab-expected critical (url.port_not_allowed, not lowered) goes after the other critical findings.
    crit = [f("url.port_not_allowed"), f("http.server_error")]
    assert [x.code for x in ranked(crit, lab=True)] == ["http.server_error", "url.port_not_allowed"]
    assert [x.code for x in ranked(crit)] == ["url.port_not_allowed", "http.server_error"]


def test_every_ranked_code_is_catalogued_once() -> None:
    listed = [*ACTIONABILITY, *HYGIENE]
    assert len(listed) == len(set(listed))
    assert set(listed) <= set(CATALOGUE)
    assert LAB_EXPECTED_CODES <= set(CATALOGUE)


def _report(lab: bool) -> Report:
    findings = (f("url.plain_http"), f("signature.forgery_accepted"), f("http.slow"))
    target = TargetSummary(shop="slow-shop", role="accepted", url=URL, method="POST", findings=findings)
    other = TargetSummary(shop="ok-shop", role="accepted", url=URL + "2", method="POST",
                          findings=(f("url.plain_http"),))
    return Report(command="check", findings=findings + other.findings, targets=(target, other), lab=lab)


@pytest.mark.parametrize("lab", [False, True])
def test_text_html_and_nagios_name_the_same_main_finding(lab: bool) -> None:
    report = _report(lab)
    title = CATALOGUE["http.slow"].title
    summary_row = next(line for line in text.render(report, width=200).splitlines() if "slow-shop" in line)
    assert "http.slow" in summary_row and "plain_http" not in summary_row
    assert title in nagios.render(report).splitlines()[0]
    page = html.render(report)
    row = next(r for r in page.split("<tr>") if "slow-shop" in r)
    assert "http.slow" in row or title in row
    assert "url.plain_http" not in row


def test_a_single_url_nagios_line_names_the_actionable_warning_first() -> None:
    findings = (f("url.plain_http"), f("handler.unknown_order"))
    report = Report(command="probe", findings=findings,
                    targets=(TargetSummary(shop="", role="accepted", url=URL, method="POST", findings=findings),),
                    lab=True)
    assert nagios.render(report).startswith(f"FEEDBACK-CHECK WARNING - {CATALOGUE['handler.unknown_order'].title}")


def test_failed_post_sales_in_the_access_log_rank_before_foreign_sources() -> None:
    findings = [f("logs.foreign_sources"), f("logs.postsale_failed", Severity.WARNING)]
    assert ranked(findings)[0].code == "logs.postsale_failed"
