"""--format text: the report for people."""

from __future__ import annotations

import re
from dataclasses import replace

from feedback_check.findings import make_finding
from feedback_check.probe.http import HttpStatus
from feedback_check.probe.result import FollowUpRequest, FollowUps
from feedback_check.report import Report
from feedback_check.reporters import render
from feedback_check.reporters.text import MAX_DETAIL_LINES, clean, general_findings, main_finding
from tests.unit.test_reporters_samples import (
    SAMPLES,
    critical_report,
    finding,
    healthy_report,
    many_shops_report,
    ok_target,
    refused_result,
    target,
    warning_report,
)

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def text(report: Report, color: bool = False, width: int = 1000) -> str:
    """The report wide enough that these content tests see every line whole (layout: test_text_width)."""
    return render(report, "text", color=color, width=width)


def test_verdict_and_answer_come_first() -> None:
    report = critical_report()
    first = text(report).splitlines()[0]
    assert first.startswith("CRITICAL  ")
    assert report.answer() in first


def test_phases_with_timings_per_url_and_per_address() -> None:
    out = text(critical_report())
    assert "timings: dns 4.0 ms · connect 2.0 ms · tls 11 ms · ttfb 31 ms · total 48 ms" in out
    assert "sent: POST STATUS=9 orderID=FBCHECK-261126-0A1B2C, 3 parameters, signed SHA-512/UTF-8" in out
    assert "dns: shop-ch.example → 203.0.113.10 in 4.0 ms (system resolver)" in out
    assert "  203.0.113.10:\n    connect  ok 2.0 ms\n" in out
    assert "    tls      ok TLSv1.3 TLS_AES_256_GCM_SHA384 11 ms · certificate CN=shop-ch.example by " in out
    assert "    http     POST → HTTP/1.1 500 Internal Server Error · first byte 31 ms · total 48 ms · Server: nginx" \
        in out
    assert "body: <h1>Error</h1>" in out
    assert "also sent: same request with a wrong SHASIGN (POST) → HTTP/1.1 400 Bad Request" in out
    assert "certificate: valid until" in out and "(60 days left)" in out


def test_failed_connect_shows_the_reason() -> None:
    out = text(many_shops_report())
    assert "    connect  refused 1.0 ms (connection refused)" in out


def test_hashed_string_only_when_the_signature_was_rejected() -> None:
    url = "https://shop-ch.example/postfinance/feedback"
    rejected = target("shop-ch", "accepted", url, [finding("signature.rejected", "shop-ch", "accepted", url)])
    shown = text(Report(command="check", findings=rejected.findings, targets=(rejected,)))
    assert "hashed string (passphrase masked): AMOUNT=1********ORDERID=" in shown
    assert "hashed string" not in text(critical_report())


def test_findings_with_evidence_and_fix() -> None:
    out = text(critical_report())
    assert "✗ CRITICAL http.server_error  Endpoint answers with a 5xx error" in out
    assert "evidence: status_line=HTTP/1.1 500 Internal Server Error; server=nginx" in out
    assert "fix: Check the handler's error log for this request." in out
    assert "    · INFO     http.ok  Post-sale accepted\n" in out, "info findings take one line"


def test_firewall_per_layer_and_range_with_deciding_rule_and_fix_lines() -> None:
    out = text(critical_report())
    assert "shop-ch · firewall  port 443: 1,024 of 2,304 published addresses blocked" in out
    assert "    1. server iptables (iptables, /etc/iptables/rules.v4)\n" \
           "       blocks 1,024 of the 2,304 published addresses: 185.139.244.0/22\n" \
           "       admits 1,280 of the 2,304 published addresses: 91.208.214.0/24, 185.8.52.0/22\n" in out
    assert "not understood: /etc/iptables/rules.v4:20: -A INPUT -m geoip" in out
    assert "    ✗ 185.139.244.0/22 blocked\n        drop by /etc/iptables/rules.v4:12 `-A INPUT -p tcp --dport 443 -j DROP`" \
        in out
    assert "    ✓ 91.208.214.0/24 admitted" in out
    assert "    ✗ 185.8.52.0/22 partly blocked: 512 of 1,024 addresses admitted: 185.8.52.0/23" in out
    assert "  fix (in each layer's own syntax):\n    iptables -I INPUT 3 -p tcp -s 185.139.244.0/22 --dport 443 -j ACCEPT\n" \
        in out
    assert "evidence: range=185.139.244.0/22; blocked=[185.139.244.0/22]; deciding=[1 record]" in out
    assert "        fix: iptables -I INPUT 3 -p tcp -s 185.139.244.0/22 --dport 443 -j ACCEPT\n" \
           "             #   persist: in /etc/iptables/rules.v4, before line 12\n" in out, "multi-line fixes keep lines"


def test_assumptions_notes_and_general_findings() -> None:
    report = critical_report()
    out = text(report)
    assert "Assumptions that decided the verdict\n  - " + report.assumptions[0] in out
    assert "Notes\n  - " + report.notes[0] in out
    assert "Profile and platform" in out and "config.inline_secret" in out
    assert [f.code for f in general_findings(report)] == ["config.inline_secret"]


def test_order_summary_then_failing_details_then_general_then_notes() -> None:
    out = text(critical_report())
    positions = [out.index(s) for s in ("Summary", "━━ CRITICAL  shop-ch · accepted", "━━ CRITICAL  shop-ch · firewall",
                                        "Profile and platform", "Assumptions", "Notes")]
    assert positions == sorted(positions)


def test_small_runs_show_healthy_urls_in_full() -> None:
    out = text(healthy_report())
    assert out.startswith("OK  PostFinance's post-sale requests would get through")
    assert "━━ OK  shop-ok · accepted" in out and "timings:" in out
    assert "Summary" not in out, "no table for a single URL"


def test_two_hundred_shops_stay_readable() -> None:
    report = many_shops_report()
    out = text(report)
    lines = out.splitlines()
    summary = lines.index("Summary")
    table = lines[summary + 1: lines.index("", summary)]
    assert table[0].split() == ["SHOP", "ROLE", "VERDICT", "MAIN", "FINDING", "URL", "/", "WHAT"]
    assert len(table) == 1 + 1 + 10 + 1, "header, the shop not checked, the 10 failing URLs, the OK count"
    assert table[-1] == "  … and 390 OK (listed at the end)"
    assert "connect.refused Connection refused" in table[2]
    assert out.count("━━ CRITICAL") == 10 and out.count("━━ UNKNOWN  shop-late") == 1
    assert "━━ OK" not in out, "healthy URLs are not detailed"
    condensed = [line for line in lines if re.match(r"  OK  shop-\d{3}: accepted ", line)]
    assert len(condensed) == 200 - 10
    assert "  OK  shop-001: accepted 48 ms · rejected 48 ms" in lines
    assert len(lines) < 600


def test_colour_only_when_asked() -> None:
    report = critical_report()
    plain, coloured = text(report), text(report, color=True)
    assert "\x1b[" not in plain
    assert "\x1b[1;31mCRITICAL\x1b[0m" in coloured
    assert ANSI.sub("", coloured) == plain, "colour adds escape codes and nothing else"


def test_hostile_strings_are_printable_and_one_line_each() -> None:
    out = text(SAMPLES["hostile"](), color=True)
    stripped = ANSI.sub("", out)
    assert "\x1b" not in stripped and "\x00" not in stripped and "\x07" not in stripped
    assert "\\x1b[31m" in stripped, "escape sequences from the server are shown, not executed"
    assert not any(line.startswith("new line") for line in stripped.splitlines())


def test_huge_details_are_bounded() -> None:
    url = "https://big.example/f"
    refused = refused_result()
    addresses = tuple(replace(refused.addresses[0], address=f"198.51.100.{i}") for i in range(200))
    follow_ups = FollowUps(tuple(FollowUpRequest(f"request {i}", "POST", HttpStatus.ANSWERED, "HTTP/1.1 200 OK")
                                 for i in range(300)))
    t = target("big", "accepted", url, [], probe=replace(refused, addresses=addresses, follow_ups=follow_ups))
    out = text(Report(command="check", findings=(), targets=(t,)))
    assert "… and 192 more addresses (see --format json)" in out
    assert "more lines: see --format json" in out
    assert len(out.splitlines()) < MAX_DETAIL_LINES + 20


def test_changes_are_shown() -> None:
    changes = {"previous_run": "2026-11-26T19:55:00+00:00", "first_run": False,
               "new": [{"shop": "shop-ch", "role": "accepted", "url": "https://x", "code": "http.server_error",
                        "severity": "critical"}],
               "resolved": [{"shop": "shop-ch", "role": "firewall", "url": "port 443", "code": "firewall.range_blocked",
                             "severity": "critical"}],
               "verdict_changes": [{"shop": "shop-ch", "role": "accepted", "url": "https://x", "from": "OK",
                                    "to": "CRITICAL"}]}
    out = text(replace(critical_report(), changes=changes))
    section = out[out.index("Changes since the last run"):]
    assert "previous run: 2026-11-26T19:55:00+00:00" in section
    assert "shop-ch · accepted · https://x: OK → CRITICAL" in section
    assert "NEW      http.server_error  shop-ch · accepted · https://x" in section
    assert "RESOLVED firewall.range_blocked  shop-ch · firewall · port 443" in section
    quiet = text(replace(critical_report(), changes={**changes, "new": [], "resolved": [], "verdict_changes": []}))
    assert "no change." in quiet
    first = text(replace(critical_report(), changes={**changes, "first_run": True, "previous_run": None,
                                                      "new": [], "resolved": [], "verdict_changes": []}))
    assert "first run with this state file" in first


def test_main_finding_ignores_info_and_prefers_critical() -> None:
    url = "https://x.example/f"
    info = make_finding("http.ok", url)
    warning = make_finding("http.slow", url)
    critical = make_finding("http.server_error", url)
    assert main_finding([info]) is None
    assert main_finding([info, warning, critical]) is critical
    assert main_finding([]) is None


def test_clean() -> None:
    assert clean("a\nb\tc\x1b[0m") == "a ⏎ b c\\x1b[0m"
    assert clean("x" * 500, 10) == "x" * 9 + "…"


def test_warning_report_lists_both_warnings_and_no_fix_for_info() -> None:
    out = text(warning_report())
    assert out.startswith("WARNING  ")
    assert "! WARNING  http.slow" in out and "! WARNING  tls.cert_expiring" in out
    healthy = text(Report(command="check", findings=(), targets=(ok_target("s"),)))
    assert "fix:" not in healthy



# --- audit 19 and 21 ----------------------------------------------------------------------------------

def _with_follow_ups(follow_ups: list[dict[str, object]]) -> Report:
    report = critical_report()
    bad = report.targets[0]
    requests = tuple(FollowUpRequest(str(f["request"]), str(f.get("method", "")),
                                     None if f.get("skipped") else HttpStatus.ANSWERED, str(f.get("status_line", "")),
                                     str(f.get("error") or ""), skipped=str(f.get("skipped") or ""))
                     for f in follow_ups)
    assert bad.probe is not None
    bad = replace(bad, probe=replace(bad.probe, follow_ups=FollowUps(requests)))
    return replace(report, targets=(bad, *report.targets[1:]))


def test_re_signed_variants_with_the_same_answer_are_one_line() -> None:
    answer = "HTTP/1.1 500 Internal Server Error"
    variants = ["SHA-1 instead of SHA-512", "SHA-256 instead of SHA-512", "names not upper-cased",
                "URL-encoded values"]
    follow_ups: list[dict[str, object]] = [
        {"request": "same request with a wrong SHASIGN", "method": "POST", "status_line": answer},
        *({"request": f"signed for a handler using {v}", "method": "POST", "status_line": answer} for v in variants),
        {"request": "signed for a handler using a case-sensitive sort", "method": "POST",
         "status_line": "HTTP/1.1 200 OK"}]
    out = text(_with_follow_ups(follow_ups))
    sent = [line for line in out.splitlines() if "also sent:" in line]
    assert sent[:3] == [
        f"  also sent: same request with a wrong SHASIGN (POST) → {answer}",
        f"  also sent: 4 re-signed variants (SHA-1, SHA-256, …) (POST) → all {answer}",
        "  also sent: signed for a handler using a case-sensitive sort (POST) → HTTP/1.1 200 OK"]
    # Each variant keeps its name in the JSON report.
    document = render(_with_follow_ups(follow_ups), "json")
    assert all(f"signed for a handler using {v}" in document for v in variants)


def test_run_line_puts_the_counts_on_their_own_line_rather_than_splitting_a_phrase() -> None:
    report = replace(many_shops_report(), command="demo")
    wide = text(report, width=200).splitlines()[1]
    assert wide.endswith("· 400 URLs, 201 shops") and wide.startswith("feedback-check demo · ")
    lines = render(report, "text", width=60).splitlines()
    run = next(i for i, line in enumerate(lines) if line.startswith("feedback-check demo"))
    assert lines[run].endswith(" s") and lines[run + 1] == "checked: 400 URLs, 201 shops"


def test_firewall_header_shows_the_urls_host_port_and_path() -> None:
    report = critical_report()
    moved = tuple(replace(t, url="https://shop-ch.example:8443/postfinance/feedback") for t in report.targets)
    out = text(replace(report, targets=moved))
    assert "  for: shop-ch.example:8443/postfinance/feedback\n" in out
    assert "  for: shop-ch.example/postfinance/feedback\n" in text(report)


def test_a_generated_layer_name_does_not_repeat_its_format() -> None:
    report = critical_report()
    fw = report.firewalls[0]
    layers = (replace(fw.analysis.layers[0], name="layer 1 (iptables)"),)
    fw = replace(fw, analysis=replace(fw.analysis, layers=layers))
    out = text(replace(report, firewalls=(fw,)))
    assert "    1. layer 1 (iptables, /etc/iptables/rules.v4)\n" in out
    assert "(iptables) (iptables" not in out


def test_an_unreachable_resolver_is_not_read_as_no_address_nor_as_a_sent_request() -> None:
    """A resolver this machine cannot reach (verdict UNKNOWN) says why, and the prepared post-sale is
    not called "sent": nothing reached the shop (text and HTML say the same)."""
    from feedback_check.probe.dns import Resolution

    base = critical_report()
    probe = base.targets[0].probe
    assert probe is not None
    why = "cannot reach resolver 127.0.0.1:1 from this machine: connection refused"
    unresolved = replace(probe, addresses=(), dns=Resolution(host="shop-ch.example", ipv4=(), ipv6=(), cname_chain=(),
                                                            seconds=0.002, findings=(), unreachable=why))
    unknown = replace(base.targets[0], findings=(), probe=unresolved, unknown=why)
    report = replace(base, targets=(unknown,), findings=(), firewalls=())
    out = text(report)
    assert f"dns: shop-ch.example → not resolved: {why}" in out and "no address" not in out
    assert "  prepared, not sent: POST STATUS=9" in out and "  sent: " not in out
    page = render(report, "html")
    assert "not resolved: cannot reach resolver" in page and "Prepared, not sent:" in page
    assert "  sent: POST STATUS=9" in text(base)
