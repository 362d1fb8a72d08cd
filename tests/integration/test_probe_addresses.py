"""Every resolved address is probed separately: partial failures, IPv6, local probes, DNS outcomes."""

from __future__ import annotations

import socket

import pytest

from feedback_check.findings import Severity, apply_lab_mode, verdict_of
from feedback_check.reporters.json import target_dict
from tests.servers.dns_stub import StubFactory
from tests.servers.http_servers import (
    PASSPHRASE,
    LoopbackServer,
    Servers,
    ShaOutVerifier,
    app,
    codes,
    finding,
    run_probe,
    servers_fixture,  # noqa: F401 - the `servers` fixture
)


def ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as sock:
            sock.bind(("::1", 0))
        return True
    except OSError:
        return False


def test_one_failing_address_of_two_is_partial(servers: Servers, dns_stub: StubFactory) -> None:
    verifier = ShaOutVerifier(PASSPHRASE)
    server = servers(app({"/feedback": verifier}))               # listens on 127.0.0.1 only
    resolver = dns_stub({"shop.test": {"A": ["127.0.0.1", "127.0.0.2"]}})
    summary = run_probe(server.url("/feedback", host="shop.test"), resolvers=(resolver,))
    partial = finding(summary, "connect.partial")
    assert partial.severity is Severity.WARNING
    assert partial.evidence["working"] == ["127.0.0.1"] and partial.evidence["failing"] == ["127.0.0.2"]
    refused = finding(summary, "connect.refused")
    assert refused.evidence["address"] == "127.0.0.2"
    assert "http.ok" in codes(summary)                           # the bad address did not stop the good one
    assert [a["address"] for a in target_dict(summary)["addresses"]] == ["127.0.0.1", "127.0.0.2"]
    assert server.requests[0].headers["host"] == f"shop.test:{server.port}"


@pytest.mark.skipif(not ipv6_loopback(), reason="no IPv6 loopback (::1) in this environment")
def test_ipv6_address_failing_while_ipv4_works(servers: Servers, dns_stub: StubFactory) -> None:
    server = servers(app({"/feedback": ShaOutVerifier(PASSPHRASE)}))
    resolver = dns_stub({"shop.test": {"A": ["127.0.0.1"], "AAAA": ["::1"]}})
    summary = run_probe(server.url("/feedback", host="shop.test"), resolvers=(resolver,))
    assert finding(summary, "connect.ipv6_failed").evidence["failing_ipv6"] == ["::1"]
    v6_refused = finding(summary, "connect.refused")
    assert v6_refused.evidence["address"] == "::1"
    assert v6_refused.severity is Severity.WARNING                # the platform sends over IPv4
    assert "connect.partial" not in codes(summary)
    # in lab mode (loopback is fine), the only thing left is the IPv6 warning
    assert verdict_of(apply_lab_mode(summary.findings)).name == "WARNING"


@pytest.mark.skipif(not ipv6_loopback(), reason="no IPv6 loopback (::1) in this environment")
def test_ipv6_only_server_is_probed_over_ipv6(dns_stub: StubFactory) -> None:
    verifier = ShaOutVerifier(PASSPHRASE)
    with LoopbackServer(app({"/feedback": verifier}), host="::1") as server:
        resolver = dns_stub({"shop.test": {"AAAA": ["::1"]}})
        summary = run_probe(server.url("/feedback", host="shop.test"), resolvers=(resolver,))
    assert "dns.ipv6_only" in codes(summary)
    assert "http.ok" in codes(summary)
    assert verifier.verdicts[0] is True
    assert finding(summary, "connect.local_probe").evidence["addresses"]["::1"] == "loopback"


def test_name_that_does_not_resolve_stops_before_connecting(dns_stub: StubFactory) -> None:
    resolver = dns_stub({"gone.test": "NXDOMAIN"})
    summary = run_probe("https://gone.test/feedback", resolvers=(resolver,))
    assert "dns.nxdomain" in codes(summary)
    assert not [c for c in codes(summary) if c.split(".")[0] in ("connect", "tls", "http")]
    assert summary.timings["dns"] is not None and summary.timings["connect"] is None


def test_malformed_resolver_is_a_usage_error() -> None:
    from feedback_check.errors import UsageError

    with pytest.raises(UsageError):
        run_probe("https://shop.test/feedback", resolvers=("not an address",))


def test_lab_mode_leaves_a_healthy_loopback_endpoint_ok(servers: Servers) -> None:
    server = servers(app({"/feedback": ShaOutVerifier(PASSPHRASE)}))
    summary = run_probe(server.url("/feedback"))
    lab = apply_lab_mode(summary.findings)
    # plain HTTP stays a warning; everything loopback-related is information
    assert verdict_of(lab).name == "WARNING"
    assert {f.code for f in lab if f.severity is not Severity.INFO} == {"url.plain_http"}
