"""redact_report: a clean report is returned as it is after one scan; a report with a secret anywhere
(nested evidence, a mapping key, the cut tail of an excerpt) is masked everywhere."""

from __future__ import annotations

import json

from feedback_check.findings import make_finding
from feedback_check.redact import MASK
from feedback_check.report import Report, TargetSummary, redact_report
from feedback_check.reporters.json import document

SECRET = "Long-Sha0ut-Passphrase-77"


def report_with(evidence: dict[str, object], platform: dict[str, object] | None = None) -> Report:
    finding = make_finding("http.server_error", "https://shop.example/pf", evidence=evidence, detail="boom")
    target = TargetSummary(shop="s", role="accepted", url="https://shop.example/pf", method="POST",
                           findings=(finding,))
    return Report(command="check", findings=(finding,), targets=(target,), platform=platform or {})


def test_clean_report_is_returned_unchanged() -> None:
    report = report_with({"status_line": "HTTP/1.1 500 Internal Server Error", "nested": {"a": ["b", ("c",)]}})
    assert redact_report(report, [SECRET]) is report


def test_secret_anywhere_is_masked_everywhere() -> None:
    for evidence in ({"nested": {"deep": [("x", f"pass={SECRET}")]}}, {f"key {SECRET.upper()}": 1}):
        masked = redact_report(report_with(evidence), [SECRET])
        text = json.dumps(document(masked), default=str)
        assert SECRET.lower() not in text.lower() and MASK in text


def test_cut_tail_of_an_excerpt_is_masked() -> None:
    report = report_with({"body_excerpt": "config dump: passphrase=" + SECRET[:6]},
                         {"addresses": [{"http": {"body_excerpt": "ok"}}]})
    masked = redact_report(report, [SECRET])
    assert masked is not report
    assert SECRET[:6] not in json.dumps(document(masked), default=str)


def test_secret_after_many_slices_of_repeated_text_is_found() -> None:
    """Texts repeated across shops are scanned once and in slices: a secret in the last of many shops, after
    more than one slice of distinct text, in a one-field dataclass inside the report's platform mapping, is still found."""
    from dataclasses import dataclass

    from feedback_check import report as diagnosis

    @dataclass(frozen=True)
    class Holder:
        text: str

    targets = []
    for i in range(400):
        finding = make_finding("http.server_error", f"https://shop-{i}.example/pf", detail="boom",
                               evidence={"status_line": "HTTP/1.1 500 Internal Server Error",
                                         "page": f"page {i} " + "x" * 2000})
        targets.append(TargetSummary(shop=f"s{i}", role="accepted", url=f"https://shop-{i}.example/pf",
                                     method="POST", findings=(finding,)))
    report = Report(command="check", findings=tuple(f for t in targets for f in t.findings), targets=tuple(targets),
                    platform={f"holder {i}": Holder(f"Location: /err?k={SECRET}" if i == 399 else "fine")
                              for i in range(400)})
    assert 400 * 2000 > 2 * diagnosis._SCAN_CHARS
    masked = redact_report(report, [SECRET])
    assert masked is not report
    assert SECRET not in json.dumps(document(masked), default=str)
    clean = Report(command="check", findings=report.findings, targets=report.targets[:399])
    assert redact_report(clean, [SECRET]) is clean
