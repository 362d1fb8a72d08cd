"""--format junit: well-formed XML in the shape of the common JUnit schema (Jenkins junit-10.xsd / Ant).

The schema is checked by hand: element order and nesting, required attributes and their types, and
that the counts on testsuite/testsuites agree with the test cases they hold.
"""

from __future__ import annotations

import datetime as dt
import re
import xml.etree.ElementTree as ET

import pytest

from feedback_check.reporters import junit, render
from feedback_check.reporters.junit import xml_text
from tests.unit.test_reporters_samples import (
    HOSTILE,
    SAMPLES,
    critical_report,
    many_shops_report,
    unknown_report,
)

DECIMAL = re.compile(r"[0-9]+(\.[0-9]+)?")
# junit-10.xsd allows exactly these on <testsuites> (no timestamp, no skipped).
TESTSUITES_ATTRIBUTES = {"name", "time", "tests", "failures", "errors"}
# Allowed children, in order, of each element (junit-10.xsd); `*` = any number, `?` = at most one.
TESTSUITE_CHILDREN = [("properties", "?"), ("testcase", "*"), ("system-out", "?"), ("system-err", "?")]
TESTCASE_CHILDREN = [("skipped", "?"), ("error", "*"), ("failure", "*"), ("system-out", "?"), ("system-err", "?")]


def check_order(element: ET.Element, allowed: list[tuple[str, str]]) -> None:
    tags = [child.tag for child in element]
    position = 0
    for tag, how_many in allowed:
        count = 0
        while position < len(tags) and tags[position] == tag:
            position += 1
            count += 1
        assert how_many == "*" or count <= 1, f"<{tag}> more than once in <{element.tag}>"
    assert position == len(tags), f"unexpected or misplaced <{tags[position] if position < len(tags) else ''}> " \
                                  f"in <{element.tag}>: {tags}"


def validate(document: str) -> ET.Element:
    assert document.startswith('<?xml version="1.0" encoding="UTF-8"?>\n')
    root = ET.fromstring(document.encode("utf-8"))
    assert root.tag == "testsuites"
    assert set(root.attrib) <= TESTSUITES_ATTRIBUTES, f"<testsuites> attributes outside the schema: {root.attrib}"
    assert DECIMAL.fullmatch(root.get("time", ""))
    totals = {"tests": 0, "failures": 0, "errors": 0}
    for suite in root:
        assert suite.tag == "testsuite"
        for attribute in ("name", "tests", "failures", "errors", "skipped", "time", "timestamp", "hostname"):
            assert attribute in suite.attrib, f"testsuite without {attribute}"
        dt.datetime.fromisoformat(suite.get("timestamp", ""))
        assert "+" not in suite.get("timestamp", "") and not suite.get("timestamp", "").endswith("Z"), \
            "the schema's timestamp has no time zone"
        assert DECIMAL.fullmatch(suite.get("time", ""))
        check_order(suite, TESTSUITE_CHILDREN)
        cases = suite.findall("testcase")
        for prop in suite.iter("property"):
            assert set(prop.attrib) == {"name", "value"}
        for case in cases:
            assert case.get("name") and case.get("classname")
            assert DECIMAL.fullmatch(case.get("time", ""))
            check_order(case, TESTCASE_CHILDREN)
            for problem in (*case.findall("failure"), *case.findall("error")):
                assert problem.get("message") and problem.get("type")
        counts = {"tests": len(cases),
                  "failures": sum(1 for c in cases if c.find("failure") is not None),
                  "errors": sum(1 for c in cases if c.find("error") is not None)}
        assert suite.get("skipped") == str(sum(1 for c in cases if c.find("skipped") is not None))
        for name, count in counts.items():
            assert suite.get(name) == str(count), f"testsuite {name} says {suite.get(name)}, holds {count}"
            totals[name] += count
    for name, count in totals.items():
        assert root.get(name) == str(count)
    return root


@pytest.mark.parametrize("sample", sorted(SAMPLES))
def test_every_sample_is_valid(sample: str) -> None:
    validate(render(SAMPLES[sample](), "junit"))


def test_one_case_per_shop_url_and_check_with_failures_carrying_the_finding() -> None:
    report = critical_report()
    root = validate(render(report, "junit"))
    shop = root.find("testsuite[@name='shop-ch']")
    assert shop is not None
    cases = shop.findall("testcase")
    assert [c.get("classname") for c in cases] == ["feedback-check.shop-ch.accepted", "feedback-check.shop-ch.rejected",
                                                   "feedback-check.shop-ch.firewall"]
    assert cases[0].get("name") == f"probe POST {report.targets[0].url}"
    failure = cases[0].find("failure")
    assert failure is not None
    assert failure.get("type") == "http.server_error"
    assert failure.get("message") == "Endpoint answers with a 5xx error"
    assert "Check the handler's error log" in (failure.text or "")
    assert "HTTP/1.1 500" in (failure.text or "")
    assert cases[1].find("failure") is None
    assert float(cases[1].get("time", "")) == pytest.approx(0.048)
    fw_failure = cases[2].find("failure")
    assert fw_failure is not None and fw_failure.get("type") == "firewall.range_blocked"
    run = root.find("testsuite[@name='feedback-check']")
    assert run is not None
    props = {p.get("name"): p.get("value") for p in run.iter("property")}
    assert props["verdict"] == "CRITICAL" and props["answer"] == report.answer()
    general = run.find("testcase")
    assert general is not None and general.find("failure") is not None
    assert "config.inline_secret" in (general.findtext("failure") or ""), "a warning fails: it fails the exit code"


def test_warnings_fail_when_they_fail_the_exit_code() -> None:
    root = validate(render(SAMPLES["warning"](), "junit"))
    assert root.get("failures") == "1", "a warning-only run exits 1: its report must say failures=1"
    case = root.find(".//testcase[@classname='feedback-check.shop-slow.accepted']")
    assert case is not None
    failure = case.find("failure")
    assert failure is not None and failure.get("type") in ("http.slow", "tls.cert_expiring")
    assert "http.slow" in (failure.text or "") and "tls.cert_expiring" in (failure.text or "")


def test_with_fail_on_critical_warnings_are_listed_not_failed() -> None:
    root = validate(junit.render(SAMPLES["warning"](), warnings_fail=False))
    assert root.get("failures") == "0"
    case = root.find(".//testcase[@classname='feedback-check.shop-slow.accepted']")
    assert case is not None and case.find("failure") is None
    out = case.findtext("system-out") or ""
    assert "http.slow" in out and "tls.cert_expiring" in out


def test_shop_that_could_not_be_checked_is_an_error() -> None:
    root = validate(render(unknown_report(), "junit"))
    assert root.get("errors") == "1"
    error = root.find(".//testcase/error")
    assert error is not None and "internal error: boom" in (error.get("message") or "")


def test_many_shops() -> None:
    report = many_shops_report()
    root = validate(render(report, "junit"))
    assert root.get("tests") == str(len(report.targets) + 1)
    assert root.get("failures") == "10" and root.get("errors") == "1"


def test_hostile_text_stays_well_formed_xml() -> None:
    root = validate(render(SAMPLES["hostile"](), "junit"))
    failure = root.find(".//failure")
    assert failure is not None
    assert ']]> <tag> & \'apos\'' in (failure.text or ""), "markup characters are escaped, not dropped"
    assert "\x00" not in (failure.text or "") and "\ufffd" in (failure.text or "")
    assert xml_text(HOSTILE).count("\ufffd") == 3   # ESC, NUL and BEL are not XML 1.0 characters


@pytest.mark.parametrize("sample", sorted(SAMPLES))
def test_junitparser_reads_the_counts_the_exit_code_implies(sample: str) -> None:
    """junitparser (what many CI tools use to read JUnit XML) agrees with the document's own counts, and a
    report whose exit code is not 0 has at least one failure or error."""
    from junitparser import Error, Failure, JUnitXml

    report = SAMPLES[sample]()
    document = JUnitXml.fromstring(render(report, "junit"))
    cases = [case for suite in document for case in suite]
    failures = sum(1 for case in cases if any(isinstance(r, Failure) for r in case.result))
    errors = sum(1 for case in cases if any(isinstance(r, Error) for r in case.result))
    assert (document.tests, document.failures, document.errors) == (len(cases), failures, errors)
    if report.verdict.exit_code:
        assert failures + errors > 0, "a run that fails the pipeline must show a failing test"
    else:
        assert failures + errors == 0


def test_firewall_case_counts_are_formatted_as_in_every_report() -> None:
    """Audit 21: one number format (1,024) in every report."""
    out = render(critical_report(), "junit")
    assert "1,024 of 2,304 published addresses blocked" in out and "1024 of 2304" not in out
