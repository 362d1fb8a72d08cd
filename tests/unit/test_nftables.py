"""The nftables parser (text and `nft -j` JSON), its evaluation and its fix lines, on the shipped
examples and on small rulesets that each exercise one construct."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from feedback_check.errors import ConfigError
from feedback_check.firewall import nftables
from feedback_check.firewall.evaluate import evaluate
from feedback_check.firewall.formats import ParseContext
from feedback_check.firewall.ipspace import AddressSet
from feedback_check.firewall.model import Action
from feedback_check.platform import load_platform

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "firewall" / "nftables"
PLATFORM = load_platform()
PUBLISHED = PLATFORM.ranges.addresses
LEGACY = AddressSet.from_specs(PLATFORM.legacy_ranges)


def analyse(text: str, port: int = 443, file: str = "rules.nft"):
    ruleset = nftables.parse(text, file, ParseContext(port))
    return ruleset, evaluate(ruleset, port)


def admitted(text: str, port: int = 443) -> AddressSet:
    return analyse(text, port)[1].admitted


def example(name: str) -> str:
    return (EXAMPLES / name).read_text(encoding="utf-8")


def apply_fix(text: str, lines: list[str]) -> str:
    """Apply `nft add element` / `nft insert|add rule` lines to a text ruleset (as nft would)."""
    for line in lines:
        if line.startswith("#"):
            continue
        words = line.split()
        assert words[0] == "nft"
        text += "\n" + " ".join(words[1:]) + "\n"
    return text


# -- examples ----------------------------------------------------------------------------------------


def test_detect_recognises_every_example_and_rejects_other_formats() -> None:
    for path in EXAMPLES.iterdir():
        assert nftables.detect(path.read_text(encoding="utf-8")), path.name
    assert not nftables.detect("*filter\n:INPUT DROP [0:0]\n-A INPUT -s 1.2.3.4 -j ACCEPT\nCOMMIT\n")
    assert not nftables.detect("server {\n  allow 185.8.52.0/22;\n  deny all;\n}\n")
    assert not nftables.detect('{"SecurityGroups": []}')


def test_debian_conf_misses_one_range_and_a_blocklisted_host() -> None:
    ruleset, result = analyse(example("debian-nftables.conf"), 443, "nftables.conf")
    blocked = PUBLISHED - result.admitted
    # 185.139.244.0/22 is not in the set; 185.8.53.99 sits in the fail2ban-style blocklist in front.
    assert blocked == AddressSet.from_specs(["185.139.244.0/22", "185.8.53.99"])
    assert ruleset.entry == ("inet filter input",)
    assert not ruleset.unparsed
    [decision] = [d for d in result.decisions if d.addresses & AddressSet.parse("185.8.53.99")]
    assert decision.action is Action.DROP and decision.origin is not None and decision.origin.line == 30
    policy = [d for d in result.decisions if d.by_policy]
    assert policy and AddressSet.parse("185.139.244.0/22").issubset(policy[0].addresses)
    # Port 80 is open to everyone further down (ACME), so only the blocklisted host is blocked there.
    assert PUBLISHED - admitted(example("debian-nftables.conf"), 80) == AddressSet.parse("185.8.53.99")


def test_debian_conf_fix_adds_to_the_named_set_and_inserts_before_the_blocklist() -> None:
    ruleset, result = analyse(example("debian-nftables.conf"))
    missing = PUBLISHED - result.admitted
    lines = nftables.fix_lines(ruleset, result, missing, ParseContext(443))
    commands = [ln for ln in lines if not ln.startswith("#")]
    assert commands == ["nft add element inet filter postfinance { 185.139.244.0/22 }",
                        "nft insert rule inet filter input ip saddr 185.8.52.0/22 tcp dport 443 accept"]
    assert any("rules.nft:30: ip saddr @blocklist" in ln for ln in lines)


def test_firewalld_ruleset_admits_every_published_range_on_443_only() -> None:
    ruleset, result = analyse(example("firewalld.nft"))
    assert PUBLISHED.issubset(result.admitted)
    # The prerouting filter chains are entries too, ordered by hook then priority.
    assert ruleset.entry == ("inet firewalld mangle_PREROUTING", "inet firewalld filter_PREROUTING",
                             "inet firewalld filter_INPUT")
    assert not [a for _, a in result.uncertain if a & PUBLISHED]
    assert not (admitted(example("firewalld.nft"), 80) & PUBLISHED)
    assert any("nat_PREROUTING" in note for note in ruleset.notes)


def test_docker_host_misses_one_range_and_notes_iptables_nft() -> None:
    ruleset, result = analyse(example("docker-host.nft"))
    assert PUBLISHED - result.admitted == AddressSet.parse("91.208.214.0/24")
    assert ruleset.entry == ("ip filter INPUT", "ip6 filter INPUT")
    assert any("iptables-nft" in note for note in ruleset.notes)
    # The rate-limited LOG rule cannot change the verdict: it must not make the result uncertain.
    assert not result.uncertain


def test_legacy_2019_allowlist_admits_only_the_old_hosts() -> None:
    result = admitted(example("legacy-2019.nft"))
    assert result & PUBLISHED == AddressSet.from_specs(["185.8.52.254", "185.8.53.254", "185.8.54.254"])
    assert (result & LEGACY) == LEGACY
    lines = nftables.fix_lines(*analyse(example("legacy-2019.nft")), PUBLISHED - result, ParseContext(443))
    assert lines[-1] == ("nft insert rule ip filter ogone-log ip saddr { 91.208.214.0/24, 185.8.52.0/22, "
                         "185.139.244.0/22 } tcp dport 443 accept")


def test_json_and_handles_text_of_the_same_ruleset_agree() -> None:
    text_rules, text_result = analyse(example("shop-handles.nft"))
    json_rules, json_result = analyse(example("shop-nft-j.json"), file="shop.json")
    assert text_result.admitted == json_result.admitted
    assert PUBLISHED - text_result.admitted == AddressSet.parse("91.208.214.0/24")
    assert text_rules.entry == json_rules.entry == ("inet shop input",)
    for port in (80, 443, 22, 8080):
        assert admitted(example("shop-handles.nft"), port) == admitted(example("shop-nft-j.json"), port)


@pytest.mark.parametrize("name", ["shop-handles.nft", "shop-nft-j.json"])
def test_fix_uses_the_named_set_and_the_handle_of_the_blocking_rule(name: str) -> None:
    ruleset, result = analyse(example(name), file=name)
    lines = nftables.fix_lines(ruleset, result, PUBLISHED - result.admitted, ParseContext(443))
    commands = [ln for ln in lines if not ln.startswith("#")]
    assert commands == [
        "nft add element inet shop postfinance { 91.208.214.0/24 }",
        # 91.208.214.17 is in the fail2ban set, rejected by the rule with handle 8 before the set is used.
        "nft insert rule inet shop input position 8 ip saddr 91.208.214.17/32 tcp dport 443 accept",
    ]


def test_fix_lines_when_already_admitted_are_empty() -> None:
    ruleset, result = analyse(example("firewalld.nft"))
    assert nftables.fix_lines(ruleset, result, PUBLISHED - result.admitted, ParseContext(443)) == []


def test_applied_fix_admits_everything_published() -> None:
    for name in ("debian-nftables.conf", "legacy-2019.nft", "docker-host.nft"):
        text = example(name)
        ruleset, result = analyse(text)
        lines = nftables.fix_lines(ruleset, result, PUBLISHED - result.admitted, ParseContext(443))
        fixed = apply_fix(text, lines)
        assert PUBLISHED.issubset(admitted(fixed)), name


# -- constructs ----------------------------------------------------------------------------------------

BASE = """table inet t {{
  chain input {{
    type filter hook input priority 0; policy {policy};
{rules}
  }}
{extra}
}}
"""


def rules(body: str, policy: str = "drop", extra: str = "") -> str:
    return BASE.format(policy=policy, rules=body, extra=extra)


def test_negation_ranges_and_port_sets() -> None:
    text = rules("""
    ip saddr != 10.0.0.0/8 tcp dport { 80, 443 } drop
    ip saddr 10.1.2.3-10.1.2.9 tcp dport 400-500 accept
    ip saddr 10.0.0.0/8 th dport 443 accept
""")
    assert admitted(text) == AddressSet.parse("10.0.0.0/8")
    assert admitted(text, 450) == AddressSet.parse("10.1.2.3-10.1.2.9")
    # IPv6 does not match `ip saddr != ...` (the rule needs an IPv4 packet), and nothing accepts it.
    assert not admitted(text).v6


def test_policy_accept_and_port_comparison() -> None:
    text = rules("tcp dport < 1024 ip saddr 192.0.2.0/24 drop", policy="accept")
    assert admitted(text, 443) == AddressSet.everything() - AddressSet.parse("192.0.2.0/24")
    assert admitted(text, 8443) == AddressSet.everything()


def test_ct_state_rules_cannot_admit_new_connections() -> None:
    text = rules("""
    ct state established,related accept
    ct state { established, related, new } ip saddr 1.2.3.4 accept
    ct state != new ip saddr 5.6.7.8 accept
""")
    assert admitted(text) == AddressSet.parse("1.2.3.4")
    ruleset, _ = analyse(text)
    first = ruleset.chains["inet t input"].rules[0]
    assert first.new_connections is False


def test_jump_goto_return_and_continue() -> None:
    text = rules("""
    tcp dport 443 jump allow
    ip saddr 3.3.3.0/24 accept
""", extra="""
  chain allow {
    ip saddr 1.1.1.0/24 accept
    ip saddr 2.2.2.0/24 goto deeper
    ip saddr 3.3.3.0/24 return
    counter continue
    drop
  }
  chain deeper {
    ip saddr 2.2.2.128/25 return
    accept
  }
""")
    # 2.2.2.128/25 returns from `deeper` to the caller of `allow` (goto), then hits the policy.
    assert admitted(text) == AddressSet.from_specs(["1.1.1.0/24", "2.2.2.0/25", "3.3.3.0/24"])


def test_concatenations_use_the_part_for_the_feedback_port() -> None:
    text = rules("""
    ip saddr . tcp dport { 1.2.3.4 . 443, 1.2.3.5 . 80, 9.9.9.0/24 . 400-500 } accept
    ip saddr . tcp dport @pairs accept
    meta l4proto . th dport { tcp . 443, udp . 53 } ip saddr 7.7.7.7 accept
""", extra="""
  set pairs { type ipv4_addr . inet_service; flags interval; elements = { 5.5.5.0/24 . 443, 6.6.6.6 . 22 } }
""")
    assert admitted(text, 443) == AddressSet.from_specs(["1.2.3.4", "5.5.5.0/24", "7.7.7.7", "9.9.9.0/24"])
    assert admitted(text, 80) == AddressSet.parse("1.2.3.5")
    assert admitted(text, 22) == AddressSet.parse("6.6.6.6")


def test_verdict_maps_inline_and_named() -> None:
    text = rules("""
    ip saddr vmap { 1.0.0.0/8 : drop, 1.2.0.0/16 : accept }
    tcp dport vmap { 443 : jump web, 22 : drop }
    ip saddr vmap @verdicts
""", extra="""
  map verdicts { type ipv4_addr : verdict; flags interval; elements = { 4.4.4.0/24 : accept } }
  chain web {
    ip saddr 3.3.3.3 accept
  }
""")
    # Map keys never overlap in nftables; here 1.2.0.0/16 is inside 1.0.0.0/8 only in appearance: each
    # key is its own element, evaluated as written.
    result = admitted(text, 443)
    assert AddressSet.parse("3.3.3.3").issubset(result)
    assert AddressSet.parse("4.4.4.0/24").issubset(result)
    assert not result & AddressSet.parse("9.0.0.0/8")
    assert admitted(text, 22) & AddressSet.parse("4.4.4.0/24") == AddressSet.empty()


def test_ct_state_vmap_gives_new_connections_nothing() -> None:
    text = rules("ct state vmap { established : accept, related : accept, invalid : drop }\n"
                 "ip saddr 1.1.1.1 accept")
    assert admitted(text) == AddressSet.parse("1.1.1.1")


def test_inet_nfproto_and_ip6() -> None:
    text = rules("""
    meta nfproto ipv4 ip saddr 1.1.1.0/24 accept
    ip6 saddr 2001:db8::/32 tcp dport https accept
    meta nfproto ipv6 accept
""")
    assert admitted(text) == AddressSet.from_specs(["1.1.1.0/24", "::/0"])


def test_ip_table_does_not_see_ipv6_and_several_base_chains_must_all_accept() -> None:
    text = """
table ip four {
  chain in { type filter hook input priority 10; policy drop; ip saddr 1.0.0.0/8 accept; }
}
table inet both {
  chain early { type filter hook input priority -5; policy accept; ip saddr 1.2.0.0/16 drop; }
}
"""
    ruleset, result = analyse(text)
    assert ruleset.entry == ("inet both early", "ip four in")
    assert result.admitted == AddressSet.from_specs(["1.0.0.0/8", "::/0"]) - AddressSet.parse("1.2.0.0/16")


def test_loopback_rules_never_match_and_other_interfaces_are_assumed() -> None:
    ruleset, result = analyse(rules('iif "lo" accept\niifname "eth0" ip saddr 1.1.1.1 accept\n'
                                    'iifname != "lo" ip saddr 2.2.2.2 accept'))
    assert result.admitted == AddressSet.from_specs(["1.1.1.1", "2.2.2.2"])
    chain = ruleset.chains["inet t input"]
    assert "loopback" in chain.rules[0].note and chain.rules[1].interface == "eth0"
    assert str(chain.rules[1].assumption) == "interface: arrives on interface eth0"
    # Docker's and other internal bridges never carry PostFinance's traffic either.
    assert admitted(rules('iifname "docker0" accept\niifname "br-*" accept')) == AddressSet.empty()


def test_unsupported_matches_are_kept_on_the_rule() -> None:
    ruleset, result = analyse(rules("tcp dport 8443 tcp sport 1024-65535 accept\n"
                                    "meta mark 0x1 ip saddr 1.1.1.1 drop\n"
                                    "tcp dport 443 limit rate 10/second accept\n"
                                    "ip saddr 3.3.3.3 limit rate over 10/second burst 20 packets drop"))
    chain = ruleset.chains["inet t input"].rules
    assert chain[0].unsupported == ("tcp sport 1024-65535",)
    assert chain[1].unsupported and "meta mark" in chain[1].unsupported[0]
    assert result.uncertain
    # Rate limits are evaluated under the stated assumption that one post-sale request stays under them.
    assert not chain[2].unsupported and str(chain[2].assumption) == "rate-limit: limit rate 10/second"
    assert chain[2].assumed_match
    assert str(chain[3].assumption) == "rate-limit: limit rate over 10/second burst 20 packets"
    assert not chain[3].assumed_match
    assert AddressSet.parse("3.3.3.3").issubset(result.admitted)
    assert any(rule is chain[2] for rule, _ in result.assumed)


def test_defines_and_nft_f_commands() -> None:
    text = """#!/usr/sbin/nft -f
flush ruleset
define PF = { 185.8.52.0/22, 91.208.214.0/24 }
define FEEDBACK = 443
add table inet f
add chain inet f input { type filter hook input priority 0; policy drop; }
add set inet f extra { type ipv4_addr; flags interval; }
add element inet f extra { 185.139.244.0/22 }
add rule inet f input ip saddr $PF tcp dport $FEEDBACK accept
add rule inet f input ip saddr @extra tcp dport $FEEDBACK accept
insert rule inet f input ip saddr 185.8.52.1 drop
"""
    assert admitted(text) == PUBLISHED - AddressSet.parse("185.8.52.1")


def test_dormant_and_netdev_tables_are_ignored_with_a_note() -> None:
    text = """
table netdev edge {
  chain ingress { type filter hook ingress device "eth0" priority -500; policy accept; ip saddr 1.1.1.1 drop; }
}
table inet sleeping {
  flags dormant
  chain input { type filter hook input priority 0; policy drop; }
}
"""
    ruleset, result = analyse(text)
    assert result.admitted == AddressSet.everything()
    assert any("netdev edge" in n for n in ruleset.notes) and any("dormant" in n for n in ruleset.notes)


def test_unknown_top_level_and_table_lines_are_unparsed_with_their_line() -> None:
    ruleset, _ = analyse("table inet t {\n  chain input { type filter hook input priority 0; }\n"
                         "  frobnicate everything\n}\nreplace something\n")
    assert [(o.line, o.text) for o in ruleset.unparsed] == [(3, "frobnicate everything"),
                                                            (5, "replace something")]


@pytest.mark.parametrize("text, line, words", [
    ("table inet t {\n  chain input {\n    type filter hook input priority 0;\n", 2, "never closed"),
    ("table inet t {\n}\n}\n", 3, "without a matching"),
    (rules("ip saddr 300.1.1.1 accept"), 4, "not an IPv4"),
    (rules("ip saddr $NOPE accept"), 4, "never defined"),
    (rules("tcp dport 443 jump nowhere"), 4, "does not have"),
    (rules("ip saddr @missing accept"), 4, "no such set"),
    (rules("tcp dport 70000 accept"), 4, "out of range"),
])
def test_errors_name_file_and_line(text: str, line: int, words: str) -> None:
    with pytest.raises(ConfigError) as caught:
        nftables.parse(text, "rules.nft", ParseContext(443))
    assert caught.value.file == "rules.nft"
    assert caught.value.line == line
    assert words in str(caught.value)


def test_json_errors_and_unreadable_rules() -> None:
    with pytest.raises(ConfigError) as caught:
        nftables.parse('{"nftables": [\n  {"table": }', "r.json", ParseContext(443))
    assert caught.value.line == 2
    with pytest.raises(ConfigError):
        nftables.parse('{"something": []}', "r.json", ParseContext(443))
    document = {"nftables": [
        {"table": {"family": "inet", "name": "t", "handle": 1}},
        {"chain": {"family": "inet", "table": "t", "name": "input", "handle": 1, "type": "filter",
                   "hook": "input", "prio": 0, "policy": "drop"}},
        {"rule": {"family": "inet", "table": "t", "chain": "nonexistent", "handle": 7, "expr": []}},
        {"rule": {"family": "inet", "table": "t", "chain": "input", "handle": 8, "expr": [
            {"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "saddr"}},
                       "right": {"range": ["1.1.1.1", "1.1.1.9"]}}},
            {"match": {"op": "==", "left": {"socket": {"key": "transparent"}}, "right": 1}},
            {"accept": None}]}},
    ]}
    ruleset, result = analyse(json.dumps(document), file="r.json")
    assert [o.text for o in ruleset.unparsed] and "handle 7" in ruleset.unparsed[0].text
    assert result.admitted == AddressSet.parse("1.1.1.1-1.1.1.9")
    rule = ruleset.chains["inet t input"].rules[0]
    assert rule.unsupported and "handle 8" in rule.origin.text


def test_policy_blocked_fix_appends_and_without_handles_inserts_at_the_top() -> None:
    text = rules("tcp dport 22 accept")
    ruleset, result = analyse(text)
    lines = nftables.fix_lines(ruleset, result, PUBLISHED, ParseContext(443))
    assert lines[-1] == ("nft add rule inet t input ip saddr { 91.208.214.0/24, 185.8.52.0/22, "
                         "185.139.244.0/22 } tcp dport 443 accept")
    assert PUBLISHED.issubset(admitted(apply_fix(text, lines)))
