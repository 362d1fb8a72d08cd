"""What each iptables option of a rule line records on the rule as written (`iptables/rule.py`'s table of
option readers): every spelling, `!` before the option, and the options whose meaning depends on the
`-m` module before them."""

from __future__ import annotations

from typing import Any

import pytest

from feedback_check.errors import ConfigError
from feedback_check.firewall.ipspace import AddressSet
from feedback_check.firewall.iptables.rule import _parse_rule, _Unreadable


def _rule(options: str) -> Any:
    return _parse_rule(f"-A INPUT {options} -j ACCEPT", 7, "rules.v4")


def _set(*specs: str) -> AddressSet:
    return AddressSet.from_specs(list(specs))


@pytest.mark.parametrize(("options", "expected"), [
    ("-s 192.0.2.0/24", {"source": _set("192.0.2.0/24"), "source_negated": False}),
    ("! --source 192.0.2.1,198.51.100.0/24", {"source": _set("192.0.2.1/32", "198.51.100.0/24"),
                                             "source_negated": True}),
    ("--src 2001:db8::/32", {"source": _set("2001:db8::/32")}),
    ("-s ! 192.0.2.1", {"source": _set("192.0.2.1/32"), "source_negated": True}),
    ("--dst 127.0.0.1", {"destination": _set("127.0.0.1/32"), "destination_negated": False}),
    ("! -d 10.0.0.0/8", {"destination": _set("10.0.0.0/8"), "destination_negated": True}),
    ("-p TCP", {"protocol": "tcp", "protocol_negated": False}),
    ("! --protocol udp", {"protocol": "udp", "protocol_negated": True}),
    ("-m conntrack --ctproto 6", {"protocol": "6"}),
    ("--in-interface eth0", {"in_interface": "eth0", "in_negated": False}),
    ("! -i lo", {"in_interface": "lo", "in_negated": True}),
    ("-o lo", {"out_interface": "lo", "out_negated": False}),
    ("! --out-interface eth1", {"out_interface": "eth1", "out_negated": True}),
    ("-f", {"fragment": True}),
    ("! --fragment", {"fragment": False}),
    ("-p tcp --dport 443", {"dports": [(443, 443)], "dports_negated": False}),
    ("-p tcp ! --destination-port 1000:2000", {"dports": [(1000, 2000)], "dports_negated": True}),
    ("-p tcp -m multiport --dports :80,8000:", {"dports": [(0, 80), (8000, 65535)]}),
    ("-p tcp -m multiport --destination-ports 80,443", {"dports": [(80, 80), (443, 443)]}),
    ("-p tcp -m multiport --ports 443", {"either_ports": [(443, 443)], "unsupported": []}),
    ("-p tcp -m multiport ! --ports 443", {"either_ports": [(443, 443)],
                                           "unsupported": ["-m multiport ! --ports 443"]}),
    ("-p tcp --sport 1024:", {"unsupported": ["--sport 1024: (the source port is not known)"]}),
    ("-p tcp ! --source-ports 53", {"unsupported": ["! --source-ports 53 (the source port is not known)"]}),
    ("-p tcp --syn", {"first_packet": True}),
    ("-p tcp ! --syn", {"first_packet": False}),
    ("-p tcp --tcp-flags SYN,ACK SYN", {"first_packet": True}),
    ("-p tcp --tcp-flags ALL NONE", {"first_packet": False}),
    ("-p tcp --tcp-flags ALL ALL", {"first_packet": False}),
    ("-p tcp --tcp-flags FIN,RST NONE", {"first_packet": True}),
    ("-p tcp ! --tcp-flags SYN,ACK SYN", {"first_packet": False}),
    ("-m conntrack --ctstate new,ESTABLISHED", {"states": ({"NEW", "ESTABLISHED"}, False)}),
    ("-m state ! --state INVALID", {"states": ({"INVALID"}, True)}),
    ("-m conntrack --ctorigsrc 192.0.2.0/24", {"ipranges": [("--src-range", _set("192.0.2.0/24"), False)]}),
    ("-m conntrack --ctorigdstport 443", {"original_dports": ([(443, 443)], False)}),
    ("-m conntrack ! --ctorigdstport 80:90", {"original_dports": ([(80, 90)], True)}),
    ("-m conntrack --ctdir original", {"original_direction": True}),
    ("-m conntrack --ctdir REPLY", {"original_direction": False}),
    ("-m conntrack ! --ctdir ORIGINAL", {"original_direction": False}),
    ("-m conntrack --ctorigdst 203.0.113.5", {"unsupported": [], "destination": None}),
    ("-m set --match-set allow src", {"sets": [("allow", ["src"], False)]}),
    ("-m set ! --match-set pairs src,dst", {"sets": [("pairs", ["src", "dst"], True)]}),
    ("-m addrtype --dst-type local,UNICAST", {"addrtype": [("--dst-type", {"LOCAL", "UNICAST"}, False)]}),
    ("-m addrtype ! --src-type BROADCAST", {"addrtype": [("--src-type", {"BROADCAST"}, True)]}),
    ("-m iprange --src-range 192.0.2.1-192.0.2.9",
     {"ipranges": [("--src-range", AddressSet.parse("192.0.2.1-192.0.2.9"), False)]}),
    ("-m iprange ! --dst-range 10.0.0.1-10.0.0.2",
     {"ipranges": [("--dst-range", AddressSet.parse("10.0.0.1-10.0.0.2"), True)]}),
    ("-m policy --dir in --pol ipsec", {"policy_ipsec": True}),
    ("-m policy --dir in --pol none", {"policy_ipsec": False}),
    ("-m policy --dir in ! --pol ipsec", {"policy_ipsec": False}),
    ("-m pkttype --pkt-type UNICAST", {"pkttype": ("unicast", False)}),
    ("-m pkttype ! --pkt-type broadcast", {"pkttype": ("broadcast", True)}),
    ("-m limit --limit 5/min --limit-burst 10", {"rate": ("-m limit --limit 5/min", True)}),
    ("-m limit ! --limit 5/min", {"rate": ("-m limit --limit 5/min", False)}),
    ("-m hashlimit --hashlimit-upto 10/sec --hashlimit-name x",
     {"rate": ("-m hashlimit --hashlimit-upto 10/sec", True)}),
    ("-m hashlimit --hashlimit 10/sec", {"rate": ("-m hashlimit --hashlimit 10/sec", True)}),
    ("-m hashlimit --hashlimit-above 10/sec", {"rate": ("-m hashlimit --hashlimit-above 10/sec", False)}),
    ("-m hashlimit ! --hashlimit-above 10/sec", {"rate": ("-m hashlimit --hashlimit-above 10/sec", True)}),
    ("-m connlimit --connlimit-upto 20", {"rate": ("-m connlimit --connlimit-upto 20", True)}),
    ("-m connlimit --connlimit-above 20 --connlimit-mask 32",
     {"rate": ("-m connlimit --connlimit-above 20", False)}),
    ("-m comment --comment \"allow payments\"", {"comment": "allow payments", "unsupported": []}),
    ("-m recent --rcheck --seconds 60 --name ssh",
     {"unsupported": ["-m recent --rcheck (depends on earlier connections)"]}),
    ("-m recent --update --name ssh", {"unsupported": ["-m recent --update (depends on earlier connections)"]}),
    ("-m recent --set --name ssh", {"unsupported": []}),
    ("-m icmp --icmp-type 8 --update", {"unsupported": []}),
    ("-m geoip --src-cc CH", {"unsupported": ["-m geoip --src-cc CH"]}),
    ("-m geoip ! --src-cc CH,LI", {"unsupported": ["-m geoip ! --src-cc CH,LI"]}),
    ("-m string --limit 3", {"rate": None, "unsupported": ["-m string --limit 3"]}),
])
def test_an_option_records_its_meaning_on_the_rule(options: str, expected: dict[str, Any]) -> None:
    rule = _rule(options)
    assert rule.target == "ACCEPT"
    assert {name: getattr(rule, name) for name in expected} == expected


def test_an_option_before_any_module_is_named_with_a_question_mark() -> None:
    assert _rule("--weird 1").unsupported == ["-m ? --weird 1"]


def test_a_word_that_is_no_option_makes_the_line_unreadable() -> None:
    with pytest.raises(_Unreadable):
        _rule("-p tcp stray")


def test_an_address_range_iptables_rejects_names_file_and_line() -> None:
    with pytest.raises(ConfigError) as caught:
        _rule("-m iprange --src-range 192.0.2.9-192.0.2")
    assert (caught.value.file, caught.value.line) == ("rules.v4", 7)
