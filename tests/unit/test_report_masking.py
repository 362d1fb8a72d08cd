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
    """Texts repeated across shops are scanned once: a secret in the last of many shops, after much distinct
    text, in a one-field dataclass inside the report's platform mapping, is still found."""
    from dataclasses import dataclass


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
    masked = redact_report(report, [SECRET])
    assert masked is not report
    assert SECRET not in json.dumps(document(masked), default=str)
    clean = Report(command="check", findings=report.findings, targets=report.targets[:399])
    assert redact_report(clean, [SECRET]) is clean


def test_a_secret_in_the_probe_result_is_masked_in_the_typed_result_and_its_json_form() -> None:
    from feedback_check.platform import load_platform
    from feedback_check.probe.http import HttpResult, HttpStatus
    from feedback_check.probe.result import AddressProbe, ProbeResult
    from feedback_check.probe.tcp import ConnectResult, ConnectStatus
    from feedback_check.probe.url import check_url

    answer = HttpResult(method="POST", url="https://shop.example/pf", address="192.0.2.1",
                        status=HttpStatus.ANSWERED, verified=True, status_code=302, reason="Found",
                        headers=(("Location", f"/err?k={SECRET}"),))
    address = AddressProbe("192.0.2.1", ConnectResult("192.0.2.1", 443, ConnectStatus.OK, 0.001), http=answer)
    result = ProbeResult(check_url("https://shop.example/pf", paramvar=None, platform=load_platform()),
                         addresses=(address,))
    target = TargetSummary(shop="s", role="accepted", url="https://shop.example/pf", method="POST", findings=(),
                           probe=result)
    report = Report(command="check", findings=(), targets=(target,))
    masked = redact_report(report, [SECRET])
    assert masked is not report
    assert SECRET not in json.dumps(document(masked), default=str)
    typed = masked.targets[0].probe
    assert typed is not None and SECRET not in typed.addresses[0].http.headers[0][1]
    clean = TargetSummary(shop="s", role="accepted", url="https://shop.example/pf", method="POST", findings=(),
                          probe=ProbeResult(result.url_check))
    clean_report = Report(command="check", findings=(), targets=(clean,))
    assert redact_report(clean_report, [SECRET]) is clean_report
