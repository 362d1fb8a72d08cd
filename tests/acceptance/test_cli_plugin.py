"""The Nagios plugin conventions end to end (a subprocess against real shops on 127.0.0.1): the status word
follows the exit code actually used, every UNKNOWN reason is on stdout, a write failure never hides a
report, check_curl-style thresholds (-w/-c/-C/-t) and a check_curl-like OK line. Icinga/Nagios read
nothing but stdout and the exit code, so these two are what is checked."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.acceptance.test_cli_check import PASSPHRASE, assert_no_traceback, run_cli, write_profile
from tests.servers.certs import HOST, TestPki
from tests.servers.http_servers import LoopbackServer, ShaOutVerifier, answer, app
from tests.unit.test_reporters_nagios import parse as parse_nagios

ENV = {"ACCEPTANCE_SHA_OUT": PASSPHRASE}


def nagios(*args: str) -> tuple[int, str, dict[str, object], str, str]:
    """(exit code, state word, perfdata, first line, stderr) of one plugin run."""
    result = run_cli(*args, "--format", "nagios", env=ENV)
    assert_no_traceback(result)
    state, _text, perf, _long = parse_nagios(result.stdout)
    return result.returncode, state, perf, result.stdout.splitlines()[0], result.stderr


def slow_server(delay: float) -> LoopbackServer:
    return LoopbackServer(app({"/fb": answer(200, b"OK", delay=delay)}))


def test_status_word_follows_the_exit_code_with_fail_on_critical(tmp_path: Path) -> None:
    with LoopbackServer(app({"/fb": ShaOutVerifier(PASSPHRASE)})) as server:
        profile = write_profile(tmp_path, server.url("/fb"))       # plain http: a warning
        warned = nagios("check", "--config", str(profile), "--lab")
        relaxed = nagios("check", "--config", str(profile), "--lab", "--fail-on", "critical")
    assert warned[:2] == (1, "WARNING")
    assert "Feedback URL uses plain http" in warned[3] or "http" in warned[3]
    assert relaxed[:2] == (0, "OK"), relaxed[3]
    assert "not alerted on (--fail-on critical)" in relaxed[3]


def test_a_warning_first_line_names_the_warning(tmp_path: Path) -> None:
    with slow_server(0.6) as server:
        profile = write_profile(tmp_path, server.url("/fb"))
        code, state, perf, first, _ = nagios("check", "--config", str(profile), "--lab", "-w", "0.3")
    assert (code, state) == (1, "WARNING")
    # The main (first-ranked) warning is named, the others counted: the slow answer before plain HTTP
    # (the most actionable first; in --lab plain HTTP is what a test box shows anyway).
    assert "Endpoint answers slowly" in first and "more warnings" in first, first
    assert "warning needs attention" not in first
    assert perf["total"].warn == "0.3" and perf["total"].value >= 0.6    # type: ignore[attr-defined]


def test_critical_time_is_the_budget(tmp_path: Path) -> None:
    with slow_server(1.5) as server:
        profile = write_profile(tmp_path, server.url("/fb"))
        code, state, perf, first, _ = nagios("check", "--config", str(profile), "--lab", "-w", "0.2", "-c", "0.5",
                                             "-t", "10")
    assert (code, state) == (2, "CRITICAL")
    assert "time budget" in first, first
    assert perf["total"].crit == "0.5" and perf["total"].warn == "0.2"  # type: ignore[attr-defined]
    assert perf["urls_critical"].value == 1                              # type: ignore[attr-defined]


def test_warning_time_above_the_critical_time_is_a_usage_error(tmp_path: Path) -> None:
    result = run_cli("probe", "http://127.0.0.1:9/", "-w", "10", "-c", "5", "--format", "nagios")
    assert result.returncode == 3
    assert result.stdout.startswith("FEEDBACK-CHECK UNKNOWN - ") and "-w/--warning-time" in result.stdout
    assert "-w/--warning-time" in result.stderr


def test_certificate_days_and_check_curl_ok_line(tmp_path: Path, pki: TestPki, dns_stub) -> None:  # type: ignore[no-untyped-def]
    with LoopbackServer(app({"/postfinance/feedback": ShaOutVerifier(PASSPHRASE)}),
                        tls=pki.leaf("valid").server_context()) as server:
        resolver = dns_stub({HOST: {"A": ["127.0.0.1"]}})
        profile = write_profile(tmp_path, server.url("/postfinance/feedback", host=HOST))
        common = ("check", "--config", str(profile), "--lab", "--resolver", resolver, "--ca-bundle",
                  str(pki.ca_bundle), "-t", "5")
        ok = nagios(*common)
        window = nagios(*common, "-C", "400,30")
    code, state, perf, first, _ = ok
    assert (code, state) == (0, "OK"), first
    assert " - HTTP/1.1 200 OK - " in first and " bytes in " in first and " second response time" in first
    assert (perf["cert_days_left"].warn, perf["cert_days_left"].crit) == ("21:", "7:")  # type: ignore[attr-defined]
    code, state, perf, first, _ = window
    assert (code, state) == (1, "WARNING"), first                          # 80 days left < 400
    assert (perf["cert_days_left"].warn, perf["cert_days_left"].crit) == ("400:", "30:")  # type: ignore[attr-defined]
    assert "certificate" in first.lower()


@pytest.mark.parametrize("args", [("check", "--config", "/nonexistent/profile.yaml"),
                                  ("check", "--no-such-option"),
                                  ("probe", "http://127.0.0.1:9/", "-C", "seven")])
def test_every_unknown_reason_is_one_line_on_stdout(args: tuple[str, ...]) -> None:
    result = run_cli(*args, "--format", "nagios")
    assert result.returncode == 3
    assert_no_traceback(result)
    lines = result.stdout.splitlines()
    assert len(lines) == 1 and lines[0].startswith("FEEDBACK-CHECK UNKNOWN - "), result.stdout
    assert result.stderr.startswith("feedback-check: error: ")
    assert result.stderr.strip().removeprefix("feedback-check: error: ")[:40] in lines[0]


def test_unwritable_state_keeps_a_real_critical_and_prints_the_report(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    state = blocker / "state.json"
    with LoopbackServer(app({"/fb": answer(500, b"boom")})) as bad, \
            LoopbackServer(app({"/fb": ShaOutVerifier(PASSPHRASE)})) as good:
        critical = nagios("check", "--config", str(write_profile(tmp_path, bad.url("/fb"))), "--lab",
                          "--state", str(state))
        (tmp_path / "ok").mkdir()
        fine = nagios("check", "--config", str(write_profile(tmp_path / "ok", good.url("/fb"))), "--lab",
                      "--fail-on", "critical", "--state", str(state))
    code, state_word, _perf, first, stderr = critical
    assert (code, state_word) == (2, "CRITICAL")
    assert "process error" in first
    assert "--state" in stderr and "state.json" in stderr
    code, state_word, _perf, first, stderr = fine
    assert (code, state_word) == (3, "UNKNOWN"), first
    assert "--state" in first and "the check itself: WARNING" in first
    assert "--state" in stderr


def test_unwritable_output_prints_the_report_then_the_error(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    with LoopbackServer(app({"/fb": answer(500, b"boom")})) as bad:
        profile = write_profile(tmp_path, bad.url("/fb"))
        result = run_cli("check", "--config", str(profile), "--lab", "--format", "nagios",
                         "--output", str(blocker / "out.txt"), env=ENV)
    assert result.returncode == 2
    assert result.stdout.startswith("FEEDBACK-CHECK CRITICAL - ")
    assert "UNKNOWN: " in result.stdout and "cannot write report" in result.stderr


def test_failed_run_still_replaces_the_textfile(tmp_path: Path) -> None:
    textfile = tmp_path / "feedback_check.prom"
    textfile.write_text("feedback_check_success{shop=\"old\"} 1\n")
    result = run_cli("check", "--config", str(tmp_path / "missing.yaml"), "--format", "prometheus",
                     "--output", str(textfile))
    assert result.returncode == 3 and "missing.yaml" in result.stderr
    text = textfile.read_text()
    assert 'shop="old"' not in text
    assert 'feedback_check_up{shop="",reason="' in text and "missing.yaml" in text
    assert "feedback_check_run_verdict 3" in text


CHECK_HTTP = Path("/usr/lib/nagios/plugins/check_http")
OK_TAIL = re.compile(r"(HTTP/1\.[01] \d{3} [^-|]*?) - (\d+) bytes in (\d+\.\d{3}) second response time")


def test_ok_line_reads_like_the_monitoring_plugins_own(tmp_path: Path) -> None:
    """The OK line has check_http's/check_curl's shape: status line, bytes, seconds with three decimals."""
    if not CHECK_HTTP.exists():
        pytest.skip("check_http is not installed (Debian package monitoring-plugins-basic; .ci/run installs it)")
    with LoopbackServer(app({"/fb": ShaOutVerifier(PASSPHRASE), "/plain": answer(200, b"OK")})) as server:
        theirs = subprocess.run([str(CHECK_HTTP), "-H", "127.0.0.1", "-p", str(server.port), "-u", "/plain",
                                 "-P", "orderID=1"], capture_output=True, text=True, timeout=30, check=False)
        profile = write_profile(tmp_path, server.url("/fb"))
        code, state, _perf, first, _ = nagios("check", "--config", str(profile), "--lab", "--fail-on", "critical")
    assert theirs.returncode == 0 and theirs.stdout.startswith("HTTP OK: "), theirs.stdout
    their_tail = OK_TAIL.search(theirs.stdout)
    our_tail = OK_TAIL.search(first)
    assert their_tail and our_tail, (theirs.stdout, first)
    assert our_tail.group(1) == their_tail.group(1) == "HTTP/1.1 200 OK"
    assert (code, state) == (0, "OK")
