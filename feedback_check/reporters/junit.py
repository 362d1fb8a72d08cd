"""`--format junit`: JUnit XML for CI pipelines before go-live.

Shape (the common JUnit schema that Jenkins, GitLab, GitHub and Azure read)::

    <testsuites name="feedback-check" tests= failures= errors= time=>
      <testsuite name="<shop>" tests= failures= errors= skipped= time= timestamp= hostname=>
        <properties><property name="verdict" value="CRITICAL"/>...</properties>
        <testcase classname="feedback-check.<shop>.<role>" name="probe <METHOD> <url>" time=>
          <failure type="<code>" message="<title>">finding text, evidence and fix</failure>
          <system-out>warnings and phase timings</system-out>
        </testcase>
        <testcase classname="feedback-check.<shop>.firewall" name="firewall port <n>">...</testcase>
      </testsuite>
    </testsuites>

One test case per shop × URL × check. A critical finding is a `<failure>` (the post-sale would fail).
Warnings are failures too when they fail the exit code (`--fail-on warning`, the default: a pipeline that
goes red shows a red test); with `--fail-on critical` they are listed in `<system-out>` only.
`<testsuites>` carries only what the Jenkins xunit schema (junit-10.xsd) allows there: name, tests,
failures, errors, time. A shop that could not be checked (run deadline, internal error) is one test case with an
`<error>`. Findings of the profile or platform (not tied to a shop) form the suite `feedback-check`.
Text is stripped of the characters XML 1.0 cannot carry.
"""

from __future__ import annotations

import datetime as dt
import re
import socket
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping

from feedback_check.findings import Finding, Severity, ranked
from feedback_check.report import Report, general_findings
from feedback_check.reporters.views import seconds_text

SUITE_FOR_GENERAL = "feedback-check"
# Characters not allowed in XML 1.0 documents (even escaped).
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_text(value: object) -> str:
    """Text XML 1.0 can carry: forbidden characters become U+FFFD."""
    return _NOT_XML.sub("\ufffd", str(value))


class _Suite:
    def __init__(self, name: str, timestamp: str) -> None:
        self.element = ET.Element("testsuite", {"name": xml_text(name), "timestamp": timestamp,
                                                "hostname": xml_text(_hostname())})
        self.tests = self.failures = self.errors = 0
        self.time = 0.0

    def case(self, classname: str, name: str, seconds: float | None) -> ET.Element:
        self.tests += 1
        self.time += seconds or 0.0
        return ET.SubElement(self.element, "testcase", {"classname": xml_text(classname), "name": xml_text(name),
                                                        "time": _time(seconds)})

    def finish(self) -> ET.Element:
        self.element.set("tests", str(self.tests))
        self.element.set("failures", str(self.failures))
        self.element.set("errors", str(self.errors))
        self.element.set("skipped", "0")
        self.element.set("time", _time(self.time))
        return self.element


def render(report: Report, *, color: bool = False, warnings_fail: bool = True) -> str:
    """The JUnit XML document (colour never applies). `warnings_fail`: warnings fail their test case
    (they fail the exit code)."""
    failing = (Severity.CRITICAL, Severity.WARNING) if warnings_fail else (Severity.CRITICAL,)
    started = report.started.astimezone(dt.UTC) if report.started.tzinfo else report.started
    timestamp = started.replace(microsecond=0, tzinfo=None).isoformat()
    suites: dict[str, _Suite] = {SUITE_FOR_GENERAL: _Suite(SUITE_FOR_GENERAL, timestamp)}
    _properties(suites[SUITE_FOR_GENERAL].element, report)

    def suite(name: str) -> _Suite:
        if name not in suites:
            suites[name] = _Suite(name, timestamp)
        return suites[name]

    for shop in report.shops:
        if shop.error:
            s = suite(shop.name)
            case = s.case(f"feedback-check.{shop.name}", "check", None)
            ET.SubElement(case, "error", {"type": "not_checked", "message": xml_text(shop.error)}).text = \
                xml_text(f"{shop.name} could not be checked: {shop.error}")
            s.errors += 1
    for t in report.targets:
        s = suite(t.shop or "probe")
        case = s.case(f"feedback-check.{t.shop or 'probe'}.{t.role}", f"probe {t.method} {t.url}",
                      _total(t.timings))
        s.failures += _attach(case, t.findings, failing)
        timings = " · ".join(f"{k} {seconds_text(v)}" for k, v in (t.timings or {}).items()
                             if isinstance(v, (int, float)))
        _system_out(case, t.findings, failing, f"timings: {timings}" if timings else "")
    for fw in report.firewalls:
        s = suite(fw.shop or "firewall")
        case = s.case(f"feedback-check.{fw.shop or 'firewall'}.firewall", f"firewall port {fw.port}", None)
        s.failures += _attach(case, fw.findings, failing)
        _system_out(case, fw.findings, failing, f"{fw.blocked_addresses:,} of {fw.published_addresses:,} published "
                                       "addresses blocked")
    general = general_findings(report)
    if general:
        s = suite(SUITE_FOR_GENERAL)
        case = s.case(SUITE_FOR_GENERAL, "profile and platform", None)
        s.failures += _attach(case, general, failing)
        _system_out(case, general, failing, "")

    root = ET.Element("testsuites", {"name": "feedback-check"})
    for s in suites.values():
        root.append(s.finish())
    root.set("tests", str(sum(s.tests for s in suites.values())))
    root.set("failures", str(sum(s.failures for s in suites.values())))
    root.set("errors", str(sum(s.errors for s in suites.values())))
    root.set("time", _time(report.duration_seconds))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _attach(case: ET.Element, findings: Iterable[Finding], failing: tuple[Severity, ...]) -> int:
    """A `<failure>` for the failing findings of a test case; returns 1 when it failed."""
    critical = [f for f in ranked(findings) if f.severity in failing]
    if not critical:
        return 0
    first = critical[0]
    message = first.title + (f" (and {len(critical) - 1} more)" if len(critical) > 1 else "")
    failure = ET.SubElement(case, "failure", {"type": xml_text(first.code), "message": xml_text(message)})
    failure.text = xml_text("\n\n".join(_finding_text(f) for f in critical))
    return 1


def _system_out(case: ET.Element, findings: Iterable[Finding], failing: tuple[Severity, ...], extra: str) -> None:
    lines = [_finding_text(f) for f in ranked(findings) if f.severity is Severity.WARNING
             and Severity.WARNING not in failing]
    if extra:
        lines.append(extra)
    if lines:
        ET.SubElement(case, "system-out").text = xml_text("\n\n".join(lines))


def _finding_text(f: Finding) -> str:
    lines = [f"[{f.severity.value}] {f.code}: {f.title}" + (f" ({f.target})" if f.target else "")]
    if f.detail:
        lines.append(f.detail)
    if f.evidence:
        lines.append("evidence: " + "; ".join(f"{k}={v}" for k, v in f.evidence.items()))
    if f.fix:
        lines.append(f"fix: {f.fix}")
    return "\n".join(lines)


def _properties(suite: ET.Element, report: Report) -> None:
    props = ET.Element("properties")
    # The run-wide facts go to the first suite, `feedback-check`.
    entries = [("verdict", report.verdict.name), ("answer", report.answer()), ("lab_mode", str(report.lab).lower())]
    entries += [(f"assumption.{i + 1}", a) for i, a in enumerate(report.assumptions)]
    entries += [(f"note.{i + 1}", n) for i, n in enumerate(report.notes)]
    for name, value in entries:
        ET.SubElement(props, "property", {"name": name, "value": xml_text(value)})
    suite.append(props)


def _total(timings: Mapping[str, float | None]) -> float | None:
    value = timings.get("total") if timings else None
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _time(seconds: float | None) -> str:
    return f"{max(seconds or 0.0, 0.0):.3f}"


def _hostname() -> str:
    try:
        return socket.gethostname() or "localhost"
    except OSError:
        return "localhost"

