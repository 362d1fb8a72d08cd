"""The one-sentence answer of a report, as a merchant reads it."""

from __future__ import annotations

from feedback_check.findings import make_finding
from feedback_check.report import Report


def test_answer_keeps_names_and_acronyms_of_the_first_critical_title() -> None:
    blocked = Report(command="firewall", findings=(make_finding("firewall.range_blocked", "185.139.244.0/22"),))
    assert blocked.answer() == ("PostFinance would report a process error because: published PostFinance range "
                                "blocked at 185.139.244.0/22.")
    tls = Report(command="probe", findings=(make_finding("tls.handshake_failed", "https://shop.example/fb"),))
    assert "because: TLS handshake fails at" in tls.answer()


def test_answer_counts_warnings_in_good_english() -> None:
    one = Report(command="probe", findings=(make_finding("url.plain_http", "http://shop.example/fb"),))
    assert one.answer().endswith("but 1 warning needs attention.")
    two = Report(command="probe", findings=one.findings + (make_finding("http.slow", "http://shop.example/fb"),))
    assert two.answer().endswith("but 2 warnings need attention.")


def test_redact_report_masks_echoed_passphrases_but_not_inside_words_for_a_short_one() -> None:
    from feedback_check.report import redact_report

    echoed = make_finding("http.server_error", "https://shop.example/fb", detail="shaOut='Zq-UNIQUE-91!' failed")
    report = redact_report(Report(command="probe", findings=(echoed,)), ["Zq-UNIQUE-91!", "x"])
    assert report.findings[0].detail == "shaOut='********' failed"
    assert report.findings[0].target == "https://shop.example/fb"     # a short "x" only as a whole word
    assert report.findings[0].severity is echoed.severity


def test_a_short_passphrase_is_masked_where_it_stands_as_a_whole_word() -> None:
    from feedback_check.report import redact_report

    echoed = make_finding("http.client_error", "https://shop.example/test/fb",
                          detail="config: sha_out=test; tests=testing")
    report = redact_report(Report(command="probe", findings=(echoed,)), ["test"])
    assert report.findings[0].detail == "config: sha_out=********; tests=testing"
    assert report.findings[0].target == "https://shop.example/********/fb"
