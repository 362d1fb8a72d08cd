"""The probe's TCP and HTTP phases and follow-up requests against real servers on 127.0.0.1."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from feedback_check.findings import Severity
from feedback_check.platform import load_platform
from feedback_check.reporters.json import target_dict
from tests.servers.http_servers import (
    PASSPHRASE,
    BlackholeServer,
    Servers,
    ShaOutVerifier,
    answer,
    app,
    closes_silently,
    codes,
    drips,
    finding,
    garbage,
    never_answers,
    only_method,
    redirect,
    refusing_port,
    resets,
    run_probe,
    servers_fixture,  # noqa: F401 - the `servers` fixture
    truncated,
    waf_403,
)


def no_passphrase_anywhere(summary: object) -> None:
    text = json.dumps(target_dict(summary), default=str)  # type: ignore[arg-type]
    text += " ".join(f.detail + json.dumps(dict(f.evidence), default=str) for f in summary.findings)  # type: ignore[attr-defined]
    assert PASSPHRASE not in text


def test_correctly_signed_post_is_accepted_and_verified_independently(servers: Servers) -> None:
    verifier = ShaOutVerifier(PASSPHRASE)
    server = servers(app({"/postfinance/feedback": verifier}))
    summary = run_probe(server.url("/postfinance/feedback"))
    assert "http.ok" in codes(summary)
    assert verifier.verdicts[0] is True               # the endpoint's own hashlib check passed
    first = server.requests[0]
    assert first.method == "POST"
    assert first.headers["content-type"] == "application/x-www-form-urlencoded"
    assert first.headers["host"] == f"127.0.0.1:{server.port}"
    names = [name for name, _ in verifier.received[0]]
    assert names[:3] == ["orderID", "amount", "currency"] and names[-1] == "SHASIGN"
    assert dict(verifier.received[0])["orderID"].startswith("FBCHECK-")
    # the forged-signature follow-up was rejected by the verifying endpoint: no warning
    assert verifier.verdicts[1:] == [False]
    assert "signature.forgery_accepted" not in codes(summary)
    ok = finding(summary, "http.ok")
    assert ok.evidence["status_line"] == "HTTP/1.1 200 OK"
    assert summary.timings["total"] is not None and summary.timings["connect"] is not None
    no_passphrase_anywhere(summary)


@pytest.mark.parametrize(("algorithm", "encoding", "hashlib_name", "codec"), [
    ("SHA-1", "ISO-8859-1", "sha1", "iso-8859-1"), ("SHA-256", "UTF-8", "sha256", "utf-8"),
    ("SHA-512", "ISO-8859-1", "sha512", "iso-8859-1")])
def test_get_request_signed_with_each_algorithm_and_encoding(servers: Servers, algorithm: str, encoding: str,
                                                               hashlib_name: str, codec: str) -> None:
    verifier = ShaOutVerifier(PASSPHRASE, algorithm=hashlib_name, encoding=codec, method="GET")
    server = servers(app({"/pf": verifier}))
    summary = run_probe(server.url("/pf") + "?shop=ch", method="GET", algorithm=algorithm, encoding=encoding)
    assert verifier.verdicts[0] is True
    assert "http.ok" in codes(summary)
    assert server.requests[0].query.startswith("shop=ch&orderID=")
    assert dict(verifier.received[0])["CN"] == "Test Käufer"
    assert ("signature.weak_algorithm" in codes(summary)) == (algorithm == "SHA-1")


def test_forgery_accepted_when_the_endpoint_ignores_shasign(servers: Servers) -> None:
    server = servers(app({"/feedback": answer(200)}))
    summary = run_probe(server.url("/feedback"))
    forged = finding(summary, "signature.forgery_accepted")
    assert forged.severity is Severity.WARNING
    assert forged.evidence["forged_status_line"] == "HTTP/1.1 200 OK"
    assert len(server.requests) == 2
    assert "http.ok" in codes(summary)
    quiet = run_probe(server.url("/feedback"), check_forgery=False)
    assert "signature.forgery_accepted" not in codes(quiet)


@pytest.mark.parametrize(("handler", "setting"), [
    (ShaOutVerifier(PASSPHRASE, algorithm="sha256"), "SHA-256 instead of SHA-512"),
    (ShaOutVerifier(PASSPHRASE, encoding="iso-8859-1", wire_encoding="utf-8"), "hashed as ISO-8859-1"),
    (ShaOutVerifier("Test-Account-Passphrase-1"), "the TEST account's passphrase"),
    (ShaOutVerifier(PASSPHRASE, sha_out_list=frozenset(p for p in
                    load_platform().sha_out_parameters if p not in ("PAYIDSUB", "TICKET"))), "older SHA-OUT"),
])
def test_signature_rejected_names_the_setting_the_handler_uses(servers: Servers, handler: ShaOutVerifier,
                                                                setting: str) -> None:
    server = servers(app({"/feedback": handler}))
    summary = run_probe(server.url("/feedback"), test_passphrase="Test-Account-Passphrase-1")
    rejected = finding(summary, "signature.rejected")
    assert setting in rejected.evidence["accepted_when"]
    assert rejected.severity is Severity.CRITICAL
    assert "http.client_error" not in codes(summary)       # one cause, one finding
    assert handler.verdicts[0] is False and handler.verdicts[-1] is True
    no_passphrase_anywhere(summary)


def test_signature_rejected_from_the_answer_text(servers: Servers) -> None:
    handler = ShaOutVerifier("a passphrase nobody knows", reject_body=b"Invalid signature (SHASIGN)")
    server = servers(app({"/feedback": handler}))
    summary = run_probe(server.url("/feedback"))
    rejected = finding(summary, "signature.rejected")
    assert "SHASIGN" in rejected.evidence["body_excerpt"]


def test_plain_400_without_signature_words_stays_client_error(servers: Servers) -> None:
    server = servers(app({"/feedback": answer(400, b"bad request")}))
    summary = run_probe(server.url("/feedback"))
    assert "http.client_error" in codes(summary)
    assert "signature.rejected" not in codes(summary)
    # Every variant got the same answer: the fix says the answer does not tell whether the signature is
    # right, and names the unknown simulated order as a possible cause.
    client_error = finding(summary, "http.client_error")
    assert "--order-id" in client_error.fix and "does not tell whether the signature is right" in client_error.fix
    assert len(server.requests) <= 2 + 12                  # genuine, other method, at most 12 signature requests


def test_answer_naming_the_order_is_unknown_order_not_a_process_error(servers: Servers) -> None:
    server = servers(app({"/feedback": answer(400, b"order not found")}))
    summary = run_probe(server.url("/feedback"))
    unknown = finding(summary, "handler.unknown_order")
    assert unknown.severity is Severity.WARNING
    assert "http.client_error" not in codes(summary)
    assert "--order-id" in unknown.fix


def test_method_mismatch_names_the_method_that_works(servers: Servers) -> None:
    verifier = ShaOutVerifier(PASSPHRASE, method="GET")    # reads the query only; POST sees nothing
    server = servers(app({"/feedback": verifier}))
    summary = run_probe(server.url("/feedback"), method="POST")
    mismatch = finding(summary, "http.method_not_allowed")
    assert mismatch.evidence["other_method"] == "GET"
    assert mismatch.evidence["status_line"] == "HTTP/1.1 400 Bad Request"
    assert "GET" in mismatch.fix
    assert "http.client_error" not in codes(summary)


def test_405_other_method_tried_once(servers: Servers) -> None:
    server = servers(app({"/feedback": only_method("GET")}))
    summary = run_probe(server.url("/feedback"), method="POST")
    assert finding(summary, "http.method_not_allowed").evidence["other_method"] == "GET"
    assert [r.method for r in server.requests] == ["POST", "GET"]
    both = servers(app({"/feedback": only_method("PUT")}))
    summary = run_probe(both.url("/feedback"), method="POST")
    refused = finding(summary, "http.method_not_allowed")
    assert refused.evidence["allow"] == "PUT"
    assert "405" in refused.evidence["other_status_line"]
    # Switching the back office to GET would not help: the fix says to accept POST instead.
    assert refused.fix is not None and "accept POST" in refused.fix and "would not help" in refused.fix


@pytest.mark.parametrize(("route", "code"), [
    (answer(401, b"", {"WWW-Authenticate": 'Basic realm="admin"'}), "http.auth_required"),
    (answer(500, b"<h1>Fatal error: Uncaught PDOException</h1>"), "http.server_error"),
    (answer(503), "http.server_error"),
    (answer(418), "http.client_error"),
    (answer(204), "http.non_200_success"),
])
def test_status_classification(servers: Servers, route: object, code: str) -> None:
    server = servers(app({"/feedback": route}))  # type: ignore[dict-item]
    summary = run_probe(server.url("/feedback"))
    assert code in codes(summary)
    assert "http.ok" not in codes(summary)


def test_not_found(servers: Servers) -> None:
    server = servers(app({}))
    summary = run_probe(server.url("/wrong/path"))
    assert "http.not_found" in codes(summary)
    assert "/wrong/path" in finding(summary, "http.not_found").detail


def test_auth_required_carries_the_challenge(servers: Servers) -> None:
    server = servers(app({"/feedback": answer(401, b"", {"WWW-Authenticate": 'Basic realm="admin"'})}))
    summary = run_probe(server.url("/feedback"))
    assert finding(summary, "http.auth_required").evidence["challenge"] == 'Basic realm="admin"'


def test_forbidden_names_a_waf(servers: Servers) -> None:
    server = servers(app({"/feedback": waf_403()}))
    summary = run_probe(server.url("/feedback"))
    forbidden = finding(summary, "http.forbidden")
    assert any("Cloudflare" in m for m in forbidden.evidence["waf_markers"])
    assert "WAF" in forbidden.detail
    assert len(server.requests) == 1          # no re-signed requests into a WAF block
    plain = servers(app({"/feedback": answer(403, b"Forbidden")}))
    summary = run_probe(plain.url("/feedback"))
    assert finding(summary, "http.forbidden").evidence["waf_markers"] == []


@pytest.mark.parametrize(("location", "hint"), [
    ("https://127.0.0.1/feedback", "http->https"),
    ("/feedback/", "trailing slash"),
    ("/FEEDBACK", "another location"),
    ("http://www.127.0.0.1.example/feedback", "another location"),
])
def test_canonicalising_redirect_is_critical_and_gets_a_hint(servers: Servers, location: str, hint: str) -> None:
    server = servers(app({"/feedback": redirect(location)}))
    summary = run_probe(server.url("/feedback"))
    found = finding(summary, "http.redirect")
    assert found.severity is Severity.CRITICAL and found.evidence["kind"] == "before_handler"
    assert found.evidence["location"] == location
    assert hint in found.evidence["hint"]
    assert len(server.requests) == 1                     # never followed, nothing resent
    assert "drop the POST body" in found.detail           # run_probe sends POST
    assert "http.redirect_after_processing" not in codes(summary)


@pytest.mark.parametrize(("redirect_fails", "severity"), [
    (None, Severity.WARNING), (True, Severity.CRITICAL), (False, Severity.INFO)])
def test_redirect_to_another_page_is_after_processing_governed_by_the_platform(
        servers: Servers, redirect_fails: bool | None, severity: Severity) -> None:
    server = servers(app({"/feedback": redirect("/payment/status", status=303)}))
    platform = replace(load_platform(), redirect_fails=redirect_fails)
    summary = run_probe(server.url("/feedback"), platform=platform)
    found = finding(summary, "http.redirect_after_processing")
    assert found.severity is severity
    assert found.evidence["assumption"] == "http.redirect_fails"
    assert "http.redirect" not in codes(summary)
    assert "back office" not in found.fix.split("Keep the post-sale URL")[0]
    assert "/payment/status" not in found.fix             # never: enter the redirect target in the back office


def test_redirect_of_a_get_post_sale_does_not_talk_about_a_post_body(servers: Servers) -> None:
    server = servers(app({"/feedback": redirect("https://127.0.0.1/feedback")}))
    found = finding(run_probe(server.url("/feedback"), method="GET"), "http.redirect")
    assert "does not follow redirects." in found.detail and "POST" not in found.detail


def test_host_header_keeps_non_default_ports_and_brackets_ipv6() -> None:
    from feedback_check.probe.http import host_header

    assert host_header("https://shop.example/pf") == "shop.example"
    assert host_header("https://shop.example:8443/pf") == "shop.example:8443"
    assert host_header("http://[::1]:8080/pf") == "[::1]:8080"
    assert host_header("http://shop.example:80/pf") == "shop.example"


def test_www_redirect_hint() -> None:
    from feedback_check.probe.http import redirect_hint

    assert redirect_hint("https://shop.example/pf", "https://www.shop.example/pf")[1] == "www"
    assert redirect_hint("http://shop.example/pf", "https://www.shop.example/pf/")[1] == \
        "http->https, www, trailing slash"


def test_online_timing_flags_a_body_the_customer_would_see(servers: Servers) -> None:
    server = servers(app({"/feedback": answer(200, b"<html><body>Thank you!</body></html>",
                                              {"Content-Type": "text/html"})}))
    online = run_probe(server.url("/feedback"), timing="always_online", check_forgery=False)
    assert "http.online_body_shown" in codes(online)
    deferred = run_probe(server.url("/feedback"), timing="always_deferred", check_forgery=False)
    assert "http.online_body_shown" not in codes(deferred)
    failing = servers(app({"/feedback": answer(500, b"<h1>Error</h1>")}))
    assert "http.online_body_shown" not in codes(run_probe(failing.url("/feedback"), timing="always_online",
                                                             check_forgery=False))
    empty = servers(app({"/feedback": answer(200)}))
    assert "http.online_body_shown" not in codes(run_probe(empty.url("/feedback"), timing="online_then_deferred",
                                                           check_forgery=False))


def test_slow_answer_inside_the_budget(servers: Servers) -> None:
    platform = replace(load_platform(), slow_seconds=0.3)
    server = servers(app({"/feedback": answer(200, delay=0.8)}))
    summary = run_probe(server.url("/feedback"), platform=platform, budget=3, check_forgery=False)
    slow = finding(summary, "http.slow")
    assert slow.evidence["assumption"] == "timing.slow_seconds"
    assert "http.ok" in codes(summary) and "http.timeout" not in codes(summary)


def test_server_that_never_answers_times_out(servers: Servers) -> None:
    server = servers(never_answers)
    summary = run_probe(server.url("/feedback"), budget=1)
    timeout = finding(summary, "http.timeout")
    assert timeout.evidence["assumption"] == "timing.budget_seconds"
    assert timeout.evidence["budget_seconds"] == 1


def test_dripping_server_cannot_stretch_the_deadline(servers: Servers) -> None:
    server = servers(drips(0.05))
    summary = run_probe(server.url("/feedback"), budget=1.5)
    assert "http.timeout" in codes(summary)
    http = target_dict(summary)["addresses"][0]["http"]
    assert http["status"] == "timeout"
    assert http["seconds"]["total"] < 10          # ended by the deadline, not by the drip


@pytest.mark.parametrize(("behaviour", "code"), [
    (garbage, "http.protocol_error"), (truncated, "http.protocol_error"),
    (resets, "http.connection_reset"), (closes_silently, "http.connection_reset")])
def test_hostile_servers(servers: Servers, behaviour: object, code: str) -> None:
    server = servers(behaviour)  # type: ignore[arg-type]
    summary = run_probe(server.url("/feedback"))
    assert code in codes(summary), codes(summary)
    assert finding(summary, code).evidence["error"]


def test_body_read_is_bounded(servers: Servers) -> None:
    platform = replace(load_platform(), max_body_bytes=1000)
    server = servers(app({"/feedback": answer(500, b"E" * 500_000)}))
    summary = run_probe(server.url("/feedback"), platform=platform, check_forgery=False)
    http = target_dict(summary)["addresses"][0]["http"]
    assert http["body_bytes_read"] == 1000 and http["body_complete"] is False
    assert "http.server_error" in codes(summary)


def test_refused_port() -> None:
    port = refusing_port()
    summary = run_probe(f"http://127.0.0.1:{port}/feedback")
    refused = finding(summary, "connect.refused")
    assert refused.evidence["port"] == port
    assert target_dict(summary)["addresses"][0]["http"] is None


def test_connect_timeout_when_syns_are_dropped() -> None:
    with BlackholeServer() as blackhole:
        summary = run_probe(f"http://127.0.0.1:{blackhole.port}/feedback", budget=1)
    assert "connect.timeout" in codes(summary)


def test_connect_error_classification() -> None:
    import errno

    from feedback_check.probe.tcp import ConnectStatus, classify_os_error

    assert classify_os_error(ConnectionRefusedError(errno.ECONNREFUSED, "refused")) is ConnectStatus.REFUSED
    assert classify_os_error(OSError(errno.ENETUNREACH, "Network is unreachable")) is ConnectStatus.UNREACHABLE
    assert classify_os_error(OSError(errno.EHOSTUNREACH, "No route to host")) is ConnectStatus.UNREACHABLE
    assert classify_os_error(TimeoutError()) is ConnectStatus.TIMEOUT


def test_local_probe_is_reported(servers: Servers) -> None:
    server = servers(app({"/feedback": answer(200)}))
    summary = run_probe(server.url("/feedback"), check_forgery=False)
    local = finding(summary, "connect.local_probe")
    assert local.severity is Severity.INFO
    assert local.evidence["addresses"]["127.0.0.1"] == "loopback"


def test_unusable_url_stops_before_the_network() -> None:
    summary = run_probe("ftp://shop.example/feedback")
    assert codes(summary) == ["url.scheme"]
    assert "addresses" not in target_dict(summary)


def test_passphrase_never_in_logs_or_details(servers: Servers, caplog: pytest.LogCaptureFixture) -> None:
    import logging

    caplog.set_level(logging.DEBUG)
    handler = ShaOutVerifier("another passphrase", reject_body=b"bad signature")
    server = servers(app({"/feedback": handler, "/ok": answer(200)}))
    for path in ("/feedback", "/ok", "/missing"):
        summary = run_probe(server.url(path), test_passphrase="Test-Account-Passphrase-1")
        no_passphrase_anywhere(summary)
    assert PASSPHRASE not in caplog.text
    assert "Test-Account-Passphrase-1" not in caplog.text
