"""The diagnosis stage's tables cover every outcome of each phase, and the cases told apart by an
exception's type or OpenSSL's reason code (never by message text) give their findings."""

from __future__ import annotations

import asyncio
import time

import pytest

from feedback_check.diagnosis import connect as connect_diagnosis
from feedback_check.diagnosis import http as http_diagnosis
from feedback_check.diagnosis import tls as tls_diagnosis
from feedback_check.diagnosis.http import http_findings
from feedback_check.diagnosis.tls import tls_findings
from feedback_check.findings import make_finding
from feedback_check.platform import load_platform
from feedback_check.probe.deadline import Budgets, Deadline
from feedback_check.probe.exchange import ProtocolViolation
from feedback_check.probe.http import HttpResult, HttpStatus
from feedback_check.probe.result import FollowUpRequest, FollowUps
from feedback_check.probe.tcp import ConnectStatus
from feedback_check.probe.tls import CertProblem, TlsResult, TlsStatus
from feedback_check.reporters import json as json_reporter

TARGET = "https://shop.example/pf"
PLATFORM = load_platform()


def test_every_outcome_has_its_entry() -> None:
    assert set(http_diagnosis._BY_STATUS) == set(HttpStatus) - {HttpStatus.ANSWERED}
    assert set(tls_diagnosis._BY_STATUS) == set(TlsStatus) - {TlsStatus.OK, TlsStatus.TIMEOUT}
    assert set(tls_diagnosis._BY_PROBLEM) == set(CertProblem)
    assert set(connect_diagnosis._BY_STATUS) == set(ConnectStatus) - {ConnectStatus.OK}


@pytest.mark.parametrize(("reason", "hint"), [
    ("WRONG_VERSION_NUMBER", "typically plain HTTP on the HTTPS port"),
    ("TLSV1_ALERT_UNRECOGNIZED_NAME", "has no certificate for the name shop.example"),
    ("TLSV1_UNRECOGNIZED_NAME", "has no certificate for the name shop.example"),
])
def test_a_failed_handshake_is_explained_by_its_openssl_reason(reason: str, hint: str) -> None:
    # The error text says nothing: only the reason code decides.
    failed = TlsResult("192.0.2.1", 443, "shop.example", TlsStatus.FAILED, error="handshake failed", ssl_reason=reason)
    (finding,) = tls_findings(failed, TARGET, PLATFORM)
    assert hint in finding.detail
    assert finding.fix.startswith("Serve HTTPS on this port with a certificate for shop.example")


def test_a_failed_handshake_without_a_known_reason_has_no_hint_even_when_its_text_names_one() -> None:
    failed = TlsResult("192.0.2.1", 443, "shop.example", TlsStatus.FAILED, error="wrong version number (text only)")
    (finding,) = tls_findings(failed, TARGET, PLATFORM)
    assert finding.detail == "The TLS handshake with 192.0.2.1 port 443 fails: wrong version number (text only)."


def test_tls_bytes_come_from_the_quoted_bytes_not_the_text() -> None:
    assert ProtocolViolation("the answer is not HTTP: ...", shown=b"\x15\x03\x01\x00\x02").tls_bytes
    assert ProtocolViolation("x", shown=b"XY\x16\x03\x01").tls_bytes
    assert not ProtocolViolation("the answer is not HTTP: b'\\x15\\x03'", shown=b"garbage").tls_bytes


def _protocol_error(tls_bytes: bool) -> HttpResult:
    return HttpResult(method="POST", url="http://shop.example/pf", address="192.0.2.1",
                      status=HttpStatus.PROTOCOL_ERROR, verified=True, error="the answer is not HTTP", tls_bytes=tls_bytes)


def test_a_protocol_error_on_tls_bytes_names_https() -> None:
    (tls_like,) = http_findings(_protocol_error(True), TARGET, PLATFORM, online=False)
    (other,) = http_findings(_protocol_error(False), TARGET, PLATFORM, online=False)
    assert "look like TLS" in tls_like.detail and tls_like.fix == "Change the URL to https:// (the port speaks TLS)."
    assert "look like TLS" not in other.detail and other.fix != tls_like.fix


@pytest.mark.parametrize(("code", "expected"), [
    (200, "http.ok"), (204, "http.non_200_success"), (301, "http.redirect"), (401, "http.auth_required"),
    (407, "http.auth_required"), (403, "http.forbidden"), (404, "http.not_found"),
    (405, "http.method_not_allowed"), (418, "http.client_error"), (500, "http.server_error"),
    (503, "http.server_error"), (600, "http.server_error"),
])
def test_an_answer_is_judged_by_its_status_code(code: int, expected: str) -> None:
    answer = HttpResult(method="POST", url="https://shop.example/pf", address="192.0.2.1",
                        status=HttpStatus.ANSWERED, verified=True, status_code=code, reason="X",
                        headers=(("Location", "https://shop.example/pf/"),), total_seconds=0.01)
    assert [f.code for f in http_findings(answer, TARGET, PLATFORM, online=False)] == [expected]


def test_deadline_child_never_outlives_its_parent() -> None:
    parent = Deadline.after(1.0)
    assert parent.child(10.0).at == parent.at
    assert parent.child(0.5).at < parent.at
    start = time.monotonic() - 0.9
    assert parent.child(0.2, start=start).at == pytest.approx(start + 0.2)
    assert not parent.expired and 0.9 < parent.left() <= 1.0
    assert Deadline.after(-0.1).expired and Deadline.after(-0.1).left() < 0


def test_deadline_timeout_cancels_at_the_deadline() -> None:
    async def late() -> float:
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            async with Deadline.after(0.05).timeout():
                await asyncio.sleep(5)
        return time.monotonic() - started

    assert 0.04 < asyncio.run(late()) < 1.0


def test_budgets_derive_from_the_platform_budget() -> None:
    budgets = Budgets.from_platform(PLATFORM.with_budget(4.0))
    assert budgets.request_seconds == budgets.follow_up_seconds == 4.0
    assert budgets.address_seconds == 12.0
    assert budgets.plain_port(Deadline.after(60)).left() == pytest.approx(4.0, abs=0.05)   # one request budget
    assert budgets.plain_port(Deadline.after(-1)).left() == pytest.approx(0.1, abs=0.05)   # the floor
    long = Budgets.from_platform(PLATFORM.with_budget(30.0))
    assert long.plain_port(Deadline.after(60)).left() == pytest.approx(5.0, abs=0.05)      # the cap


def test_follow_ups_replace_the_very_findings_they_name() -> None:
    main = make_finding("http.not_found", TARGET, detail="a")
    twin = make_finding("http.not_found", TARGET, detail="a")              # equal, but another address's
    new = make_finding("handler.unknown_order", TARGET, detail="b")
    follow_ups = FollowUps((FollowUpRequest("x", skipped="no time"),), replaced=(main,), added=(new,))
    assert follow_ups.applied_to([twin, main]) == [twin, new]
    assert follow_ups.applied_to([twin, main])[0] is twin
    assert not follow_ups.answered("x")
    assert json_reporter.follow_up_dict(follow_ups.requests[0]) == {"request": "x", "skipped": "no time"}
