"""redact_report: a clean report is returned as it is after one scan; a report with a secret anywhere
(nested evidence, a mapping key, the cut tail of an excerpt) is masked everywhere."""

from __future__ import annotations

import json

from feedback_check.diagnosis import Report, TargetSummary, redact_report
from feedback_check.findings import make_finding
from feedback_check.redact import MASK

SECRET = "Long-Sha0ut-Passphrase-77"


def report_with(evidence: dict[str, object], details: dict[str, object] | None = None) -> Report:
    finding = make_finding("http.server_error", "https://shop.example/pf", evidence=evidence, detail="boom")
    target = TargetSummary(shop="s", role="accepted", url="https://shop.example/pf", method="POST",
                           findings=(finding,), details=details or {})
    return Report(command="check", findings=(finding,), targets=(target,))


def test_clean_report_is_returned_unchanged() -> None:
    report = report_with({"status_line": "HTTP/1.1 500 Internal Server Error", "nested": {"a": ["b", ("c",)]}})
    assert redact_report(report, [SECRET]) is report


def test_secret_anywhere_is_masked_everywhere() -> None:
    for evidence in ({"nested": {"deep": [("x", f"pass={SECRET}")]}}, {f"key {SECRET.upper()}": 1}):
        masked = redact_report(report_with(evidence), [SECRET])
        text = json.dumps(masked.to_dict(), default=str)
        assert SECRET.lower() not in text.lower() and MASK in text


def test_cut_tail_of_an_excerpt_is_masked() -> None:
    report = report_with({"body_excerpt": "config dump: passphrase=" + SECRET[:6]},
                         {"addresses": [{"http": {"body_excerpt": "ok"}}]})
    masked = redact_report(report, [SECRET])
    assert masked is not report
    assert SECRET[:6] not in json.dumps(masked.to_dict(), default=str)
