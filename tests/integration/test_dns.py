"""DNS phase against a real stub DNS server on 127.0.0.1: every dns.* outcome, CNAME chains, split views,
truncation to TCP, the hosts file, and a bounded timeout."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from feedback_check.findings import CATALOGUE, Severity
from feedback_check.probe.dns import Resolution, parse_resolver, resolve
from feedback_check.reporters import json as json_reporter
from tests.servers import dns_stub as dns_stub_plugin
from tests.servers.dns_stub import DnsStub, StubFactory

dns_stub = dns_stub_plugin.dns_stub   # the fixture, made visible to this module

TARGET = "https://shop.test/postfinance/feedback"
# Public-looking addresses: no packet is ever sent to them, they only travel inside DNS answers.
PUBLIC_V4 = ["185.199.108.10", "185.199.109.10"]   # sorted, as Resolution returns them
PUBLIC_V6 = ["2a02:1f8::10"]
# Generous guard so a broken implementation fails instead of hanging the test run; not a speed check.
GUARD_SECONDS = 30

ZONE = {
    "shop.test": {"A": PUBLIC_V4, "AAAA": PUBLIC_V6},
    "www.shop.test": {"CNAME": "edge.cdn.test"},
    "edge.cdn.test": {"CNAME": "shop.test"},
    "v6only.test": {"AAAA": PUBLIC_V6},
    "txtonly.test": {"TXT": ["v=spf1 -all"]},
    "leaf.branch.test": {"A": PUBLIC_V4[:1]},
    "gone.test": "NXDOMAIN",
    "dangling.test": {"CNAME": "nowhere.test"},
    "broken.test": "SERVFAIL",
    "refused.test": "REFUSED",
    "silent.test": "TIMEOUT",
    "loop1.test": {"CNAME": "loop2.test"},
    "loop2.test": {"CNAME": "loop1.test"},
    "internal.test": {"A": ["10.20.30.40"]},
    "mixed.test": {"A": ["192.168.1.10", PUBLIC_V4[0]]},
    "v6quiet.test": {"A": PUBLIC_V4[:1], "AAAA": "TIMEOUT"},
    "v6broken.test": {"A": PUBLIC_V4[:1], "AAAA": "SERVFAIL"},
    "big.test": {"A": [f"185.199.{i}.1" for i in range(60)]},
    "tc.test": {"A": PUBLIC_V4[:1], "truncate": True},
    "xn--bcher-kva.test": {"A": PUBLIC_V4[:1]},
}


def run(host: str, resolvers: list[str], timeout: float = 2.0, **kwargs: object) -> Resolution:
    async def go() -> Resolution:
        return await asyncio.wait_for(resolve(host, resolvers=resolvers, timeout=timeout, target=TARGET,
                                              **kwargs), GUARD_SECONDS)  # type: ignore[arg-type]
    return asyncio.run(go())


def codes(resolution: Resolution) -> list[str]:
    return [f.code for f in resolution.findings]


def finding(resolution: Resolution, code: str):
    matches = [f for f in resolution.findings if f.code == code]
    assert len(matches) == 1, codes(resolution)
    return matches[0]


@pytest.fixture
def stub(dns_stub: StubFactory) -> str:
    return dns_stub(ZONE)


def test_a_and_aaaa_are_both_asked_and_returned_ipv4_first(stub: str, dns_stub: StubFactory) -> None:
    r = run("shop.test", [stub])
    assert r.ipv4 == tuple(PUBLIC_V4) and r.ipv6 == tuple(PUBLIC_V6)
    assert r.addresses == tuple(PUBLIC_V4 + PUBLIC_V6)
    assert codes(r) == []
    assert r.cname_chain == ()
    assert r.seconds > 0
    assert r.resolver_note == stub
    assert r.views == {}
    asked = {(name, rdtype) for name, rdtype, _ in dns_stub.servers[stub].queries}
    assert asked == {("shop.test", "A"), ("shop.test", "AAAA")}


def test_host_is_case_insensitive_and_trailing_dot_is_dropped(stub: str) -> None:
    r = run("SHOP.Test.", [stub])
    assert r.host == "SHOP.Test"
    assert r.ipv4 == tuple(PUBLIC_V4)


def test_cname_chain_is_followed_and_recorded(stub: str) -> None:
    r = run("www.shop.test", [stub])
    assert r.cname_chain == ("edge.cdn.test", "shop.test")
    assert r.ipv4 == tuple(PUBLIC_V4)
    f = finding(r, "dns.cname_chain")
    assert f.severity is Severity.INFO
    assert f.evidence["chain"] == ["www.shop.test", "edge.cdn.test", "shop.test"]
    assert codes(r) == ["dns.cname_chain"]


def test_nxdomain(stub: str) -> None:
    for host in ("gone.test", "not-in-the-zone.test"):
        r = run(host, [stub])
        assert r.addresses == ()
        f = finding(r, "dns.nxdomain")
        assert f.severity is Severity.CRITICAL
        assert f.target == TARGET
        assert f.evidence["rcode"] == "NXDOMAIN"
        assert f.evidence["missing_name"] == host


def test_cname_to_a_missing_name_names_the_missing_target(stub: str) -> None:
    r = run("dangling.test", [stub])
    assert r.cname_chain == ("nowhere.test",)
    f = finding(r, "dns.nxdomain")
    assert f.evidence["missing_name"] == "nowhere.test"
    assert "nowhere.test" in f.fix
    assert "dns.cname_chain" in codes(r)


@pytest.mark.parametrize("host", ["txtonly.test", "branch.test"])
def test_no_address_when_the_name_exists_without_a_record(stub: str, host: str) -> None:
    r = run(host, [stub])
    assert r.addresses == ()
    f = finding(r, "dns.no_address")
    assert f.severity is Severity.CRITICAL
    assert codes(r) == ["dns.no_address"]


def test_ipv6_only(stub: str) -> None:
    r = run("v6only.test", [stub])
    assert r.ipv4 == () and r.ipv6 == tuple(PUBLIC_V6)
    f = finding(r, "dns.ipv6_only")
    assert f.severity is Severity.CRITICAL
    assert f.evidence["ipv6"] == PUBLIC_V6
    assert "dns.no_address" not in codes(r)


@pytest.mark.parametrize("host", ["broken.test", "refused.test", "loop1.test"])
def test_servfail(stub: str, host: str) -> None:
    r = run(host, [stub])
    f = finding(r, "dns.servfail")
    assert f.severity is Severity.CRITICAL
    assert r.addresses == ()
    assert stub in f.detail


def test_servfail_names_the_rcode(stub: str) -> None:
    assert "SERVFAIL" in finding(run("broken.test", [stub]), "dns.servfail").evidence["error"]
    assert "REFUSED" in finding(run("refused.test", [stub]), "dns.servfail").evidence["error"]


def test_timeout_when_the_server_never_answers_the_name(stub: str) -> None:
    r = run("silent.test", [stub], timeout=0.5)
    f = finding(r, "dns.timeout")
    assert f.severity is Severity.CRITICAL
    assert f.evidence["timeout_seconds"] == 0.5
    assert r.addresses == ()


@pytest.fixture
def black_hole() -> Iterator[str]:
    """A UDP socket that receives queries and never answers (and no TCP listener)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    try:
        yield f"127.0.0.1:{sock.getsockname()[1]}"
    finally:
        sock.close()


def test_a_server_that_never_answers_is_bounded_by_the_timeout(black_hole: str) -> None:
    r = run("shop.test", [black_hole], timeout=0.3)
    assert codes(r) == ["dns.timeout"]
    assert r.addresses == ()


def test_aaaa_timeout_alone_is_a_warning_and_keeps_the_ipv4_answer(stub: str) -> None:
    r = run("v6quiet.test", [stub], timeout=0.5)
    assert r.ipv4 == tuple(PUBLIC_V4[:1])
    f = finding(r, "dns.timeout")
    assert f.severity is Severity.WARNING
    assert f.evidence["query"] == "AAAA"


def test_aaaa_servfail_alone_is_a_warning(stub: str) -> None:
    r = run("v6broken.test", [stub])
    assert r.ipv4 == tuple(PUBLIC_V4[:1])
    f = finding(r, "dns.servfail")
    assert f.severity is Severity.WARNING
    assert f.evidence["query"] == "AAAA"


def test_private_address(stub: str) -> None:
    r = run("internal.test", [stub])
    assert r.ipv4 == ("10.20.30.40",)
    f = finding(r, "dns.private_address")
    assert f.severity is Severity.CRITICAL
    assert f.evidence["addresses"] == {"10.20.30.40": "private (RFC 1918)"}
    assert f.evidence["public_addresses"] == []


def test_private_address_among_public_ones_is_still_critical(stub: str) -> None:
    r = run("mixed.test", [stub])
    f = finding(r, "dns.private_address")
    assert f.evidence["addresses"] == {"192.168.1.10": "private (RFC 1918)"}
    assert f.evidence["public_addresses"] == [PUBLIC_V4[0]]
    assert f.severity is Severity.CRITICAL


def test_split_horizon_between_an_internal_and_a_public_view(dns_stub: StubFactory) -> None:
    public = dns_stub({"shop.test": {"A": PUBLIC_V4}})
    internal = dns_stub({"shop.test": {"A": ["10.0.0.5"]}})
    r = run("shop.test", [public, internal])
    assert r.ipv4 == tuple(PUBLIC_V4)            # the first resolver is the probed view
    assert r.views == {public: tuple(sorted(PUBLIC_V4)), internal: ("10.0.0.5",)}
    f = finding(r, "dns.split_horizon")
    assert f.severity is Severity.WARNING
    assert f.evidence["views"] == {public: sorted(PUBLIC_V4), internal: ["10.0.0.5"]}
    assert f.evidence["probed"] == public
    assert "dns.private_address" not in codes(r)  # only the probed view is judged
    assert public in r.resolver_note and internal in r.resolver_note


def test_split_horizon_when_one_view_does_not_know_the_name(dns_stub: StubFactory) -> None:
    public = dns_stub({"other.test": {"A": PUBLIC_V4}})
    internal = dns_stub({"shop.test": {"A": ["10.0.0.5"]}})
    r = run("shop.test", [public, internal])
    assert "dns.nxdomain" in codes(r)
    assert finding(r, "dns.split_horizon").evidence["views"] == {public: "NXDOMAIN", internal: ["10.0.0.5"]}


def test_agreeing_resolvers_are_not_split_horizon(dns_stub: StubFactory) -> None:
    first = dns_stub({"shop.test": {"A": list(reversed(PUBLIC_V4))}})
    second = dns_stub({"shop.test": {"A": PUBLIC_V4}})
    r = run("shop.test", [first, second])
    assert codes(r) == []
    assert r.views == {first: tuple(PUBLIC_V4), second: tuple(PUBLIC_V4)}


def test_a_failing_second_resolver_is_not_a_disagreement(dns_stub: StubFactory, black_hole: str) -> None:
    first = dns_stub({"shop.test": {"A": PUBLIC_V4}})
    r = run("shop.test", [first, black_hole], timeout=0.3)
    assert codes(r) == []
    assert r.ipv4 == tuple(PUBLIC_V4)
    assert r.views[black_hole] == ()


def test_large_answer_is_truncated_over_udp_and_fetched_over_tcp(stub: str, dns_stub: StubFactory) -> None:
    r = run("big.test", [stub])
    assert len(r.ipv4) == 60
    assert ("big.test", "A", "tcp") in dns_stub.servers[stub].queries
    r = run("tc.test", [stub])
    assert r.ipv4 == tuple(PUBLIC_V4[:1])
    assert ("tc.test", "A", "tcp") in dns_stub.servers[stub].queries


def test_idn_host_in_either_form(stub: str) -> None:
    assert run("xn--bcher-kva.test", [stub]).ipv4 == tuple(PUBLIC_V4[:1])
    assert run("bücher.test", [stub]).ipv4 == tuple(PUBLIC_V4[:1])


@pytest.mark.parametrize("host, v4, v6", [("203.0.113.7", ("203.0.113.7",), ()),
                                          ("[2a02:1f8::10]", (), ("2a02:1f8::10",)),
                                          ("2a02:1f8::10", (), ("2a02:1f8::10",))])
def test_ip_literal_returns_itself_without_a_query(stub: str, dns_stub: StubFactory, host: str,
                                                  v4: tuple[str, ...], v6: tuple[str, ...]) -> None:
    r = run(host, [stub])
    assert (r.ipv4, r.ipv6) == (v4, v6)
    assert r.seconds == 0 and codes(r) == []
    assert dns_stub.servers[stub].queries == []


def test_explicit_resolvers_do_not_read_the_hosts_file(stub: str) -> None:
    assert "dns.nxdomain" in codes(run("localhost", [stub]))


def test_hosts_file_answers_without_resolvers(tmp_path: Path) -> None:
    hosts = tmp_path / "hosts"
    hosts.write_text("# comment\n10.1.2.3   shop.corp.test  shop   # internal\n"
                     "2a02:1f8::99 Shop.Corp.Test\n185.199.108.10 other.test\n", encoding="utf-8")
    r = run("shop.corp.test", [], hosts_file=str(hosts), resolv_conf=str(tmp_path / "missing"))
    assert r.ipv4 == ("10.1.2.3",) and r.ipv6 == ("2a02:1f8::99",)
    assert str(hosts) in r.resolver_note
    f = finding(r, "dns.private_address")
    assert str(hosts) in f.detail


def test_localhost_resolves_from_the_system_hosts_file() -> None:
    r = run("localhost", [])
    assert "127.0.0.1" in r.addresses or "::1" in r.addresses
    assert "hosts file" in r.resolver_note
    assert "dns.private_address" in codes(r)


def test_no_resolver_configuration_is_this_machines_problem_not_a_dns_finding(tmp_path: Path) -> None:
    r = run("shop.test", [], hosts_file=None, resolv_conf=str(tmp_path / "missing"))
    assert codes(r) == []
    assert "no usable resolver configuration" in r.unreachable and "--resolver" in r.unreachable


def test_system_resolver_configuration_is_used_and_named(tmp_path: Path, black_hole: str) -> None:
    # resolv.conf cannot name a port, so this points at port 53 on loopback, where nothing answers.
    conf = tmp_path / "resolv.conf"
    conf.write_text("nameserver 127.0.0.1\n", encoding="utf-8")
    r = run("shop.test", [], timeout=0.3, hosts_file=None, resolv_conf=str(conf))
    assert r.resolver_note == f"system resolver ({conf}: 127.0.0.1)"
    # Nothing listens on port 53 here (refused: this machine's problem), or something that does not answer.
    assert r.unreachable.startswith("cannot reach resolver 127.0.0.1 ") or codes(r)[0] in ("dns.timeout",
                                                                                         "dns.servfail")


def test_resolution_dict_is_json(stub: str, dns_stub: StubFactory) -> None:
    other = dns_stub({"www.shop.test": {"A": ["10.0.0.1"]}})
    data = json_reporter.resolution_dict(run("www.shop.test", [stub, other]))
    decoded = json.loads(json.dumps(data))
    assert decoded["addresses"] == PUBLIC_V4 + PUBLIC_V6
    assert decoded["cname_chain"] == ["edge.cdn.test", "shop.test"]
    assert set(decoded["findings"]) == {"dns.cname_chain", "dns.split_horizon"}
    assert decoded["views"][other] == ["10.0.0.1"]


def test_every_dns_code_is_emitted_catalogued_and_explained(stub: str, dns_stub: StubFactory) -> None:
    other = dns_stub({"shop.test": {"A": ["10.0.0.5"]}})
    seen = [f for host in ("www.shop.test", "gone.test", "txtonly.test", "v6only.test", "broken.test",
                           "internal.test") for f in run(host, [stub]).findings]
    seen += run("silent.test", [stub], timeout=0.3).findings
    seen += run("shop.test", [stub, other]).findings
    assert {f.code for f in seen} == {"dns.cname_chain", "dns.nxdomain", "dns.no_address", "dns.ipv6_only",
                                      "dns.servfail", "dns.timeout", "dns.private_address", "dns.split_horizon"}
    for f in seen:
        assert f.code in CATALOGUE and f.detail and f.target == TARGET
        assert f.severity is CATALOGUE[f.code].severity


@pytest.mark.parametrize("text, expected", [
    ("1.1.1.1", ("1.1.1.1", 53)), ("127.0.0.1:5353", ("127.0.0.1", 5353)), (" 9.9.9.9:53 ", ("9.9.9.9", 53)),
    ("[::1]:5353", ("::1", 5353)), ("[2001:db8::53]", ("2001:db8::53", 53)), ("2001:DB8::53", ("2001:db8::53", 53)),
])
def test_parse_resolver(text: str, expected: tuple[str, int]) -> None:
    assert parse_resolver(text) == expected


@pytest.mark.parametrize("text", ["", "dns.google", "1.1.1.1:", "1.1.1.1:0", "1.1.1.1:70000", "1.1.1.1:x",
                                  "[::1]:", "[::1]x", "[1.2.3]:53", "300.1.1.1", "[::1"])
def test_parse_resolver_rejects_with_a_clear_message(text: str) -> None:
    with pytest.raises(ValueError, match="--resolver"):
        parse_resolver(text)


def test_resolve_rejects_a_malformed_resolver() -> None:
    with pytest.raises(ValueError, match="--resolver"):
        run("shop.test", ["not-an-address"])


def test_stub_stops_cleanly() -> None:
    with DnsStub({"a.test": {"A": PUBLIC_V4}}) as server:
        assert run("a.test", [server.address]).ipv4 == tuple(PUBLIC_V4)
    with pytest.raises(ValueError):
        DnsStub({"a.test": "WRONG"})


@pytest.mark.parametrize("zone_entry", ["GARBAGE", "MALFORMED"])
def test_hostile_answers_become_a_finding_not_an_exception(dns_stub: StubFactory, zone_entry: str) -> None:
    server = dns_stub({"shop.test": zone_entry})
    r = run("shop.test", [server], timeout=0.5)
    assert r.addresses == ()
    assert codes(r)[0] in ("dns.timeout", "dns.servfail")


def test_truncated_answer_whose_tcp_retry_never_answers_times_out(dns_stub: StubFactory) -> None:
    server = dns_stub({"shop.test": {"A": PUBLIC_V4, "truncate": "stall"}})
    r = run("shop.test", [server], timeout=0.5)
    assert "dns.timeout" in codes(r)
    assert r.ipv4 == ()


@pytest.mark.parametrize("host", ["", "a..b.test", "x" * 64 + ".test"])
def test_invalid_names_are_not_queried(stub: str, dns_stub: StubFactory, host: str) -> None:
    r = run(host, [stub])
    f = finding(r, "dns.nxdomain")
    assert "not a valid DNS name" in f.detail
    assert dns_stub.servers[stub].queries == []


def closed_udp_port() -> int:
    """A UDP port on 127.0.0.1 nothing listens on (bound, then closed): a query there gets ICMP port unreachable."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_refused_resolver_port_is_unreachable_not_a_dns_finding() -> None:
    resolver = f"127.0.0.1:{closed_udp_port()}"
    r = run("shop.test", [resolver], timeout=3.0)
    assert codes(r) == []                       # no dns.timeout / dns.servfail with a zone fix
    assert r.addresses == ()
    assert r.unreachable == (f"cannot reach resolver {resolver} from this machine: connection refused "
                             f"(nothing answers DNS on port {resolver.rsplit(':', 1)[1]})")
    assert json_reporter.resolution_dict(r)["unreachable"] == r.unreachable


def test_unreachable_resolver_port_1_as_in_the_audit() -> None:
    r = run("shop.test", ["127.0.0.1:1"], timeout=3.0)
    assert codes(r) == [] and "127.0.0.1:1 from this machine: connection refused" in r.unreachable


def test_a_reachable_resolver_that_does_not_answer_stays_a_timeout(black_hole: str, stub: str) -> None:
    assert codes(run("shop.test", [black_hole], timeout=0.3)) == ["dns.timeout"]
    silent = run("silent.test", [stub], timeout=0.3)
    assert codes(silent) == ["dns.timeout"] and silent.unreachable == ""
    broken = run("broken.test", [stub])
    assert codes(broken) == ["dns.servfail"] and broken.unreachable == ""


def test_an_unreachable_second_resolver_leaves_the_first_ones_answer(stub: str) -> None:
    r = run("shop.test", [stub, f"127.0.0.1:{closed_udp_port()}"], timeout=1.0)
    assert r.unreachable == "" and r.ipv4 == tuple(PUBLIC_V4) and codes(r) == []


def test_an_unreachable_first_resolver_is_reported_even_when_a_second_answers(stub: str) -> None:
    r = run("shop.test", [f"127.0.0.1:{closed_udp_port()}", stub], timeout=1.0)
    assert r.unreachable.startswith("cannot reach resolver 127.0.0.1:") and codes(r) == []
