"""The probe's TLS phase against real TLS servers on 127.0.0.1 with certificates generated at test time."""

from __future__ import annotations

import datetime as dt
import json
import ssl

import pytest
from cryptography import x509

from feedback_check.findings import Severity
from feedback_check.probe.tls import CertProblem, classify_chain, covers_host
from feedback_check.reporters.json import target_dict
from tests.servers.certs import HOST, TestPki, make_ca, make_leaf
from tests.servers.dns_stub import StubFactory
from tests.servers.http_servers import (
    PASSPHRASE,
    Servers,
    ShaOutVerifier,
    answer,
    app,
    codes,
    finding,
    never_answers,
    run_probe,
    servers_fixture,  # noqa: F401 - the `servers` fixture
    tls_versions_available,
    weak_cipher_available,
)

TLS_CODES = {"tls.handshake_failed", "tls.protocol_too_old", "tls.weak_cipher_only", "tls.cert_expired",
             "tls.cert_not_yet_valid", "tls.cert_untrusted", "tls.chain_incomplete", "tls.hostname_mismatch",
             "tls.cert_expiring", "tls.sni_required"}


def tls_codes(summary: object) -> set[str]:
    return {c for c in codes(summary) if c.startswith("tls.")}


def https_server(servers: Servers, pki: TestPki, kind: str, route: object = None, **context: object):  # type: ignore[no-untyped-def]
    tls = pki.leaf(kind).server_context(**context)  # type: ignore[arg-type]
    return servers(app({"/feedback": route or ShaOutVerifier(PASSPHRASE)}), tls=tls)  # type: ignore[dict-item]


def test_valid_chain_with_intermediate(servers: Servers, pki: TestPki) -> None:
    server = https_server(servers, pki, "valid")
    summary = run_probe(server.url("/feedback"), ca_bundle=str(pki.ca_bundle))
    assert tls_codes(summary) == set()
    assert "http.ok" in codes(summary)
    address = target_dict(summary)["addresses"][0]
    assert address["http"]["verified"] is True
    assert address["tls"]["version"] in ("TLSv1.2", "TLSv1.3")
    assert [c["subject"] for c in address["tls"]["certificates"]][1].endswith("Issuing CA 1,O=feedback-check tests")
    assert summary.cert_not_after == pki.leaf("valid").cert.not_valid_after_utc
    assert summary.timings["tls"] is not None
    assert PASSPHRASE not in json.dumps(target_dict(summary), default=str)


@pytest.mark.parametrize(("kind", "code"), [
    ("expired", "tls.cert_expired"),
    ("not_yet_valid", "tls.cert_not_yet_valid"),
    ("wrong_host", "tls.hostname_mismatch"),
    ("self_signed", "tls.cert_untrusted"),
    ("private_ca", "tls.cert_untrusted"),
    ("missing_intermediate", "tls.chain_incomplete"),
])
def test_each_certificate_problem_is_told_apart(servers: Servers, pki: TestPki, kind: str, code: str) -> None:
    server = https_server(servers, pki, kind)
    summary = run_probe(server.url("/feedback"), ca_bundle=str(pki.ca_bundle))
    assert tls_codes(summary) == {code}, codes(summary)
    found = finding(summary, code)
    assert found.severity is Severity.CRITICAL
    assert found.evidence["subject"] and found.evidence["issuer"] and found.evidence["not_after"]
    # the merchant still learns what the endpoint would answer: sent unverified, reported as context
    http = target_dict(summary)["addresses"][0]["http"]
    assert http["verified"] is False and http["status_code"] == 200
    assert "without certificate verification" in finding(summary, "http.ok").detail


@pytest.mark.parametrize(("kind", "code", "flag"), [
    ("self_signed", "tls.cert_untrusted", "tls_public_ca_required"),
    ("missing_intermediate", "tls.chain_incomplete", "tls_intermediates_required"),
    ("wrong_host", "tls.hostname_mismatch", "tls_hostname_must_match"),
])
def test_each_tls_assumption_key_governs_its_finding(servers: Servers, pki: TestPki, kind: str, code: str,
                                                     flag: str) -> None:
    from dataclasses import replace

    from feedback_check.findings import Verdict, apply_lab_mode, verdict_of
    from feedback_check.platform import load_platform

    server = https_server(servers, pki, kind)
    strict = run_probe(server.url("/feedback"), ca_bundle=str(pki.ca_bundle))
    assert finding(strict, code).severity is Severity.CRITICAL
    assert verdict_of(apply_lab_mode(strict.findings)) is Verdict.CRITICAL
    relaxed = run_probe(server.url("/feedback"), ca_bundle=str(pki.ca_bundle),
                        platform=replace(load_platform(), **{flag: False}))
    found = finding(relaxed, code)
    assert found.severity is Severity.INFO and found.evidence["assumption"] == f"tls.{flag[4:]}"
    assert verdict_of(apply_lab_mode(relaxed.findings)) is not Verdict.CRITICAL


def test_expired_certificate_says_when(servers: Servers, pki: TestPki) -> None:
    server = https_server(servers, pki, "expired")
    summary = run_probe(server.url("/feedback"), ca_bundle=str(pki.ca_bundle))
    expired = finding(summary, "tls.cert_expired")
    assert expired.evidence["days_left"] < 0
    assert pki.leaf("expired").cert.not_valid_after_utc.strftime("%Y-%m-%d") in expired.detail


def test_chain_incomplete_names_the_missing_intermediate(servers: Servers, pki: TestPki) -> None:
    server = https_server(servers, pki, "missing_intermediate")
    summary = run_probe(server.url("/feedback"), ca_bundle=str(pki.ca_bundle))
    incomplete = finding(summary, "tls.chain_incomplete")
    assert "Issuing CA 1" in incomplete.detail
    assert incomplete.evidence["sent_chain"] == [pki.leaf("missing_intermediate").cert.subject.rfc4514_string()]
    assert incomplete.evidence["assumption"] == "tls.intermediates_required"


@pytest.mark.parametrize(("kind", "severity"), [("expiring", Severity.CRITICAL),
                                                ("expiring_warning", Severity.WARNING)])
def test_expiring_certificate(servers: Servers, pki: TestPki, kind: str, severity: Severity) -> None:
    server = https_server(servers, pki, kind)
    summary = run_probe(server.url("/feedback"), ca_bundle=str(pki.ca_bundle))
    assert tls_codes(summary) == {"tls.cert_expiring"}
    expiring = finding(summary, "tls.cert_expiring")
    assert expiring.severity is severity
    assert 0 < expiring.evidence["days_left"] <= 21
    assert target_dict(summary)["addresses"][0]["http"]["verified"] is True


def test_public_bundle_does_not_trust_the_test_ca(servers: Servers, pki: TestPki) -> None:
    server = https_server(servers, pki, "valid")
    summary = run_probe(server.url("/feedback"))          # ca_bundle None: certifi
    assert tls_codes(summary) == {"tls.cert_untrusted"}


def test_unreadable_ca_bundle_is_a_config_error(servers: Servers, pki: TestPki, tmp_path: object) -> None:
    from feedback_check.errors import ConfigError

    server = https_server(servers, pki, "valid")
    with pytest.raises(ConfigError, match="ca.pem: file not found"):
        run_probe(server.url("/feedback"), ca_bundle="/nonexistent/ca.pem")


@pytest.mark.skipif(not tls_versions_available(ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1),
                    reason="this OpenSSL cannot serve TLS 1.0/1.1 even at security level 0")
def test_server_speaking_only_tls_1_1(servers: Servers, pki: TestPki) -> None:
    server = https_server(servers, pki, "valid", minimum=ssl.TLSVersion.TLSv1, maximum=ssl.TLSVersion.TLSv1_1,
                          ciphers="ALL:@SECLEVEL=0")
    summary = run_probe(server.url("/feedback"), ca_bundle=str(pki.ca_bundle))
    too_old = finding(summary, "tls.protocol_too_old")
    assert too_old.evidence["negotiated"] == "TLSv1.1"
    assert too_old.evidence["required"] == "TLSv1.2"
    # what the endpoint would answer over TLS 1.2, reported as context
    assert target_dict(summary)["addresses"][0]["http"]["status_code"] == 200


@pytest.mark.skipif(weak_cipher_available() is None, reason="this OpenSSL has no 3DES/NULL cipher left to serve")
def test_server_offering_only_a_weak_cipher(servers: Servers, pki: TestPki) -> None:
    cipher = weak_cipher_available()
    server = https_server(servers, pki, "valid", minimum=ssl.TLSVersion.TLSv1_2, maximum=ssl.TLSVersion.TLSv1_2,
                          ciphers=f"{cipher}:@SECLEVEL=0")
    summary = run_probe(server.url("/feedback"), ca_bundle=str(pki.ca_bundle))
    weak = finding(summary, "tls.weak_cipher_only")
    assert weak.evidence["cipher"] == cipher
    assert weak.evidence["negotiated"] == "TLSv1.2"


def test_https_url_on_a_plain_http_port(servers: Servers) -> None:
    server = servers(app({"/feedback": answer(200)}))
    summary = run_probe(server.url("/feedback", scheme="https"))
    failed = finding(summary, "tls.handshake_failed")
    assert "plain HTTP" in failed.detail
    assert target_dict(summary)["addresses"][0]["http"] is None


def test_plain_http_url_on_a_tls_port(servers: Servers, pki: TestPki) -> None:
    server = https_server(servers, pki, "valid")
    summary = run_probe(server.url("/feedback", scheme="http"), ca_bundle=str(pki.ca_bundle))
    wrong = finding(summary, "http.protocol_error")
    assert wrong.evidence["port_speaks"] in ("TLSv1.2", "TLSv1.3")
    assert "https://" in wrong.fix
    assert "http.connection_reset" not in codes(summary)


def test_tls_port_that_never_handshakes(servers: Servers) -> None:
    server = servers(never_answers)
    summary = run_probe(server.url("/feedback", scheme="https"), budget=1)
    failed = finding(summary, "tls.handshake_failed")
    assert "no handshake answer" in failed.detail


def _sni_only_context(pki: TestPki) -> ssl.SSLContext:
    context = pki.leaf("valid").server_context()

    def require_sni(ssl_object: ssl.SSLObject, name: str | None, ctx: ssl.SSLContext) -> int | None:
        return ssl.ALERT_DESCRIPTION_UNRECOGNIZED_NAME if name is None else None

    context.sni_callback = require_sni
    return context


def test_host_name_via_dns_sni_required_and_host_header(servers: Servers, pki: TestPki,
                                                        dns_stub: StubFactory) -> None:
    verifier = ShaOutVerifier(PASSPHRASE)
    server = servers(app({"/feedback": verifier}), tls=_sni_only_context(pki))
    resolver = dns_stub({HOST: {"A": ["127.0.0.1"]}})
    summary = run_probe(server.url("/feedback", host=HOST), ca_bundle=str(pki.ca_bundle), resolvers=(resolver,))
    assert tls_codes(summary) == {"tls.sni_required"}
    assert finding(summary, "tls.sni_required").severity is Severity.INFO
    assert "http.ok" in codes(summary)
    assert server.requests[0].headers["host"] == f"{HOST}:{server.port}"
    assert target_dict(summary)["addresses"][0]["http"]["verified"] is True
    assert verifier.verdicts[0] is True


def test_wrong_host_by_name(servers: Servers, pki: TestPki, dns_stub: StubFactory) -> None:
    server = https_server(servers, pki, "wrong_host")
    resolver = dns_stub({HOST: {"A": ["127.0.0.1"]}})
    summary = run_probe(server.url("/feedback", host=HOST), ca_bundle=str(pki.ca_bundle), resolvers=(resolver,))
    mismatch = finding(summary, "tls.hostname_mismatch")
    assert mismatch.evidence["names"] == ["other.test"]
    assert HOST in mismatch.detail
    assert "tls.sni_required" not in codes(summary)


def test_wildcard_covers_one_label_only(pki: TestPki) -> None:
    cert = pki.leaf("valid").cert
    assert covers_host(cert, "www.shop.test") and covers_host(cert, "SHOP.TEST.")
    assert not covers_host(cert, "a.b.shop.test") and not covers_host(cert, "evilshop.test")
    assert covers_host(cert, "127.0.0.1") and not covers_host(cert, "127.0.0.2")


def test_classify_chain_reports_every_problem_at_once(pki: TestPki) -> None:
    now = dt.datetime.now(dt.UTC)
    leaf = make_leaf(None, ("elsewhere.test",), not_before=now - dt.timedelta(days=30),
                     not_after=now - dt.timedelta(days=1))
    check = classify_chain([leaf.cert], HOST, [pki.root.cert], now)
    assert set(check.problems) == {CertProblem.EXPIRED, CertProblem.UNTRUSTED, CertProblem.HOSTNAME_MISMATCH}
    assert check.days_left is not None and check.days_left < 0


def test_classify_chain_trusts_a_full_chain_and_judges_expiry_apart(pki: TestPki) -> None:
    expired = pki.leaf("expired").cert
    chain = [expired, pki.intermediate.cert]
    check = classify_chain(chain, HOST, [pki.root.cert])
    assert check.problems == (CertProblem.EXPIRED,)
    other_root = make_ca("Another Root", now=dt.datetime.now(dt.UTC))
    assert CertProblem.UNTRUSTED in classify_chain([pki.leaf("valid").cert, pki.intermediate.cert], HOST,
                                                   [other_root.cert]).problems
    assert isinstance(pki.leaf("valid").cert, x509.Certificate)


def test_unparseable_certificate_is_untrusted_not_a_crash(pki: TestPki) -> None:
    from cryptography.hazmat.primitives.serialization import Encoding

    from feedback_check.probe.tls import _parse_chain

    good = pki.leaf("valid").cert.public_bytes(Encoding.DER)
    chain, problem = _parse_chain([good, b"\x30\x03\x02\x01\x00"])
    assert len(chain) == 1 and "certificate 2" in problem
    chain, problem = _parse_chain([b"not DER at all"])
    assert chain == [] and "cannot be parsed" in problem
