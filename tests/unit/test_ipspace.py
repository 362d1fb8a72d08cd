from __future__ import annotations

import ipaddress

import pytest

from feedback_check.firewall.ipspace import AddressSet


def test_union_merges_adjacent_networks_into_minimal_cidrs() -> None:
    s = AddressSet.from_specs(["185.8.52.0/23", "185.8.54.0/23"])
    assert s.cidrs() == ["185.8.52.0/22"]


def test_difference_splits_into_minimal_cidrs() -> None:
    s = AddressSet.parse("185.139.244.0/22") - AddressSet.parse("185.139.245.17")
    assert s.size() == 1023
    assert "185.139.245.17" not in s and "185.139.245.16" in s
    assert s.cidrs() == ["185.139.244.0/24", "185.139.245.0/28", "185.139.245.16/32", "185.139.245.18/31",
                         "185.139.245.20/30", "185.139.245.24/29", "185.139.245.32/27",
                         "185.139.245.64/26", "185.139.245.128/25", "185.139.246.0/23"]


def test_complement_and_families_are_separate() -> None:
    v4 = AddressSet.all_ipv4()
    assert v4.complement() == AddressSet.all_ipv6()
    assert (AddressSet.everything() - v4).ipv4() == AddressSet.empty()


def test_ranges_and_host_bits() -> None:
    assert AddressSet.parse("10.0.0.5/8").cidrs() == ["10.0.0.0/8"]
    assert AddressSet.parse("10.0.0.1-10.0.0.6").cidrs() == ["10.0.0.1/32", "10.0.0.2/31", "10.0.0.4/31",
                                                           "10.0.0.6/32"]
    assert AddressSet.parse("2001:db8::/32") == AddressSet.from_intervals(
        v6=[(int(ipaddress.IPv6Address("2001:db8::")), int(ipaddress.IPv6Address("2001:db8:ffff:ffff:ffff:ffff:ffff:ffff")))])


@pytest.mark.parametrize("bad", ["", "300.1.1.1", "10.0.0.9-10.0.0.1", "1.2.3.4-::1", "example.com"])
def test_bad_specs_raise_value_error(bad: str) -> None:
    with pytest.raises(ValueError):
        AddressSet.parse(bad)
