"""Address classes, local names and this machine's addresses."""

from __future__ import annotations

import ipaddress

import pytest

from feedback_check.probe.addresses import address_class, is_local_name, parse_address, this_machine_addresses


@pytest.mark.parametrize("ip, reason", [
    ("127.0.0.1", "loopback"), ("127.8.9.10", "loopback"), ("::1", "loopback"),
    ("10.0.0.1", "private (RFC 1918)"), ("172.16.0.1", "private (RFC 1918)"),
    ("172.31.255.254", "private (RFC 1918)"), ("192.168.100.1", "private (RFC 1918)"),
    ("100.64.0.1", "CGNAT (RFC 6598)"), ("100.127.255.254", "CGNAT (RFC 6598)"),
    ("169.254.169.254", "link-local"), ("fe80::1", "link-local"), ("fe80::1%eth0", "link-local"),
    ("fd00::2", "unique local (IPv6)"), ("fc00::1", "unique local (IPv6)"),
    ("192.0.2.44", "documentation"), ("198.51.100.7", "documentation"), ("203.0.113.9", "documentation"),
    ("2001:db8::10", "documentation"),
    ("224.0.0.251", "multicast"), ("ff02::1", "multicast"),
    ("0.0.0.0", "unspecified"), ("::", "unspecified"),
    ("240.0.0.1", "reserved"), ("255.255.255.255", "broadcast"),
    ("198.18.0.1", "benchmarking (RFC 2544)"),
    ("[::1]", "loopback"),
])
def test_non_public_addresses_are_named(ip: str, reason: str) -> None:
    assert address_class(ip) == reason


@pytest.mark.parametrize("ip", ["185.139.244.1", "91.208.214.200", "8.8.8.8", "172.32.0.1", "100.128.0.1",
                                "2a00:1450:4001:80b::200e", "::ffff:185.8.52.254", "64:ff9b::808:808"])
def test_public_addresses_are_none(ip: str) -> None:
    assert address_class(ip) is None


def test_embedded_ipv4_is_judged_by_the_inner_address() -> None:
    assert address_class("::ffff:10.0.0.1") == "private (RFC 1918), embedded IPv4 10.0.0.1"
    assert address_class("2002:c0a8:0101::1") == "private (RFC 1918), embedded IPv4 192.168.1.1"
    assert address_class("64:ff9b::7f00:1") == "loopback, via NAT64"


@pytest.mark.parametrize("ip, reason", [("192.0.0.8", "reserved (IETF protocol assignments, RFC 6890)"),
                                        ("2001:2::1", "benchmarking (RFC 5180)"),
                                        ("100::1", "discard-only (RFC 6666)"), ("fec0::1", "site-local (deprecated)"),
                                        ("2001:10::1", "reserved")])
def test_special_purpose_ranges_get_a_reason(ip: str, reason: str) -> None:
    # 2001:10::/28 (ORCHID) is in no table of ours: the fallback on the IANA registries names it.
    assert address_class(ip) == reason


@pytest.mark.parametrize("text", ["shop.example", "", "300.1.1.1", "::g"])
def test_non_addresses_raise(text: str) -> None:
    with pytest.raises(ValueError, match="not an IP address"):
        address_class(text)


def test_parse_address_strips_brackets_and_zone() -> None:
    assert str(parse_address("[fe80::1%25eth0]".replace("%25", "%"))) == "fe80::1"


@pytest.mark.parametrize("name", ["localhost", "LOCALHOST", "localhost.", "api.localhost", "shop.local",
                                  "db.internal", "router.lan", "nas.home.arpa", "shop", "intranet.corp",
                                  "box.localdomain"])
def test_local_names(name: str) -> None:
    assert is_local_name(name)


@pytest.mark.parametrize("name", ["shop.example.ch", "local.ch", "localhost.example.com", "lan.example",
                                  "127.0.0.1", "::1", "", "internal-shop.example"])
def test_public_names(name: str) -> None:
    assert not is_local_name(name)


def test_this_machine_addresses_include_loopback_and_are_normalised() -> None:
    found = this_machine_addresses()
    assert {"127.0.0.1", "::1"} <= found
    for address in found:
        assert str(ipaddress.ip_address(address)) == address


def test_this_machine_addresses_include_an_address_the_machine_can_bind() -> None:
    import socket

    found = this_machine_addresses()
    bindable = []
    for address in found:
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        if address.startswith("fe80:"):
            continue  # needs a scope id
        with socket.socket(family, socket.SOCK_DGRAM) as sock:
            try:
                sock.bind((address, 0))
                bindable.append(address)
            except OSError:
                pass
    assert "127.0.0.1" in bindable
