"""The iptables parser: each construct on small dumps, the shipped examples, and errors with file:line."""

from __future__ import annotations

from pathlib import Path

import pytest

from feedback_check.errors import ConfigError
from feedback_check.firewall import ipset, iptables
from feedback_check.firewall.evaluate import LayerEvaluation, evaluate
from feedback_check.firewall.formats import ParseContext
from feedback_check.firewall.ipspace import AddressSet

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "firewall"
PF = AddressSet.from_specs(["185.139.244.0/22", "91.208.214.0/24", "185.8.52.0/22"])


def save(*rules: str, policy: str = "DROP", chains: tuple[str, ...] = (), extra: str = "") -> str:
    head = ["*filter", f":INPUT {policy} [0:0]", ":FORWARD DROP [0:0]", ":OUTPUT ACCEPT [0:0]"]
    head += [f":{c} - [0:0]" for c in chains]
    return "\n".join(head + list(rules) + ["COMMIT", extra]) + "\n"


def run(text: str, port: int = 443, sets: str = "") -> tuple[LayerEvaluation, iptables.Ruleset]:
    ipsets = ipset.parse(sets, "sets") if sets else {}
    rs = iptables.parse(text, "rules.v4", ParseContext(port=port, ipsets=ipsets))
    return evaluate(rs, port), rs


def admitted(text: str, port: int = 443, sets: str = "") -> AddressSet:
    return run(text, port, sets)[0].admitted


def test_sources_negation_lists_and_ports() -> None:
    text = save("-A INPUT -s 91.208.214.0/24,185.8.52.0/22 -p tcp -m tcp --dport 443 -j ACCEPT",
                "-A INPUT ! -s 185.139.244.0/22 -p tcp -m multiport --dports 80,8000:8100 -j ACCEPT",
                "-A INPUT -s 185.139.244.0/22 -p tcp -m tcp --dport 400:500 -j ACCEPT")
    assert (admitted(text, 443) & PF) == PF
    on_80 = admitted(text, 80)
    assert "185.139.244.1" not in on_80 and "91.208.214.1" in on_80 and "8.8.8.8" in on_80
    assert "8.8.8.8" in admitted(text, 8050) and "8.8.8.8" not in admitted(text, 22)


def test_old_negation_syntax_and_counters() -> None:
    text = save("[10:600] -A INPUT -s ! 185.139.244.0/22 -j DROP", "[0:0] -A INPUT -j ACCEPT")
    assert admitted(text).ipv4() == AddressSet.parse("185.139.244.0/22")


def test_loopback_and_bridge_interfaces_never_carry_postfinance_traffic() -> None:
    text = save("-A INPUT -i lo -j ACCEPT", "-A INPUT -i docker0 -j ACCEPT", "-A INPUT -i br-5f0a1c2e -j ACCEPT")
    assert admitted(text).ipv4() == AddressSet.empty()
    result, _ = run(save("-A INPUT -i eth0 -p tcp --dport 443 -j ACCEPT"))
    assert result.admitted.is_everything_ipv4()
    assert [str(r.assumption) for r, _ in result.assumed] == ["interface: arrives on interface eth0"]
    assert admitted(save("-A INPUT ! -i lo -j ACCEPT")).is_everything_ipv4()


@pytest.mark.parametrize("rule, admits", [
    ("-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT", False),
    ("-A INPUT -m state --state ESTABLISHED -j ACCEPT", False),
    ("-A INPUT -m conntrack --ctstate NEW -j ACCEPT", True),
    ("-A INPUT -m conntrack ! --ctstate NEW -j ACCEPT", False),
    ("-A INPUT -m conntrack --ctstate NEW,ESTABLISHED -j ACCEPT", True),
    ("-A INPUT -p tcp --syn -j ACCEPT", True),
    ("-A INPUT -p tcp ! --syn -j ACCEPT", False),
    ("-A INPUT -p tcp -m tcp --tcp-flags FIN,SYN,RST,ACK SYN -j ACCEPT", True),
    ("-A INPUT -p tcp -m tcp --tcp-flags ALL NONE -j ACCEPT", False),
    ("-A INPUT -p udp -j ACCEPT", False),
    ("-A INPUT ! -p udp -j ACCEPT", True),
    ("-A INPUT -p 6 -j ACCEPT", True),
    ("-A INPUT -d 127.0.0.0/8 -j ACCEPT", False),
    ("-A INPUT -d 203.0.113.5/32 -j ACCEPT", True),
    ("-A INPUT -m addrtype --dst-type LOCAL -j ACCEPT", True),
    ("-A INPUT -m addrtype --dst-type BROADCAST -j ACCEPT", False),
    ("-A INPUT -m pkttype --pkt-type multicast -j ACCEPT", False),
    ("-A INPUT -f -j ACCEPT", False),
    ("-A INPUT -p tcp -j LOG --log-prefix \"in: \"", False),
    ("-A INPUT -m comment --comment \"counts only\"", False),
    ("-A INPUT -m iprange --src-range 185.139.244.0-185.139.247.255 -j ACCEPT", True),
])
def test_matches_on_a_new_connection(rule: str, admits: bool) -> None:
    assert ("185.139.245.10" in admitted(save(rule))) is admits


def test_drop_rules_that_cannot_match_do_not_block() -> None:
    text = save("-A INPUT -m conntrack --ctstate INVALID -j DROP", "-A INPUT ! -p tcp -j DROP",
                "-A INPUT -p tcp --dport 22 -j DROP", "-A INPUT -j ACCEPT")
    assert (admitted(text) & PF) == PF


def test_user_chains_jump_goto_return_fail2ban() -> None:
    text = (EXAMPLES / "iptables" / "fail2ban.rules").read_text()
    result, _ = run(text)
    assert (PF - result.admitted).cidrs() == ["185.139.245.17/32"]
    [decision] = result.deciding(PF - result.admitted)
    assert decision.origin is not None and decision.origin.line == 14 and decision.chain == "f2b-nginx-http-auth"
    assert "218.92.0.112" in result.admitted          # banned for ssh only


def test_goto_returns_from_the_calling_chain() -> None:
    text = save("-A INPUT -p tcp -j SUB", "-A INPUT -j ACCEPT", "-A SUB -s 10.0.0.0/8 -g LEAF", "-A SUB -j DROP",
                "-A LEAF -s 10.1.0.0/16 -j DROP", chains=("SUB", "LEAF"))
    result = admitted(text)
    assert "10.2.0.1" in result and "10.1.0.1" not in result and "192.0.2.1" not in result


def test_ipset_hash_net_nomatch_and_negation() -> None:
    sets = (EXAMPLES / "ipset" / "psp-feedback.ipset").read_text()
    text = (EXAMPLES / "iptables" / "ipset-allowlist.rules").read_text()
    result = admitted(text, sets=sets)
    assert (PF - result).cidrs() == ["91.208.214.128/25", "185.8.54.0/24"]
    negated = save("-A INPUT -m set ! --match-set psp-feedback src -j DROP", "-A INPUT -j ACCEPT")
    assert (admitted(negated, sets=sets).ipv4()).cidrs() == ["91.208.214.0/24", "185.8.52.0/23",
                                                            "185.8.55.0/24", "185.139.244.0/22"]


def test_ipset_port_sets_list_sets_and_ipset_list_format() -> None:
    sets = ("create web hash:net,port family inet\nadd web 185.139.244.0/22,tcp:443\nadd web 91.208.214.0/24,tcp:80-90\n"
            "add web 185.8.52.0/22,udp:443\ncreate single hash:ip family inet\nadd single 185.8.52.10\n"
            "create both list:set size 8\nadd both web\nadd both single\n")
    text = save("-A INPUT -m set --match-set both src,dst -j ACCEPT")
    assert (admitted(text, 443, sets) & PF).cidrs() == ["185.8.52.10/32", "185.139.244.0/22"]
    assert (admitted(text, 80, sets) & PF).cidrs() == ["91.208.214.0/24", "185.8.52.10/32"]
    listing = "Name: web\nType: hash:net\nRevision: 7\nHeader: family inet hashsize 1024\nMembers:\n185.139.244.0/22\n" \
              "185.139.245.0/24 nomatch\n"
    assert ipset.detect(listing)
    [parsed] = ipset.parse(listing, "l").values()
    assert parsed.sources(["src"], 443, "tcp", {})[0].cidrs() == ["185.139.244.0/24", "185.139.246.0/23"]


def test_ipset_source_port_dimension_and_missing_data_are_unsupported() -> None:
    sets = "create web hash:ip,port family inet\nadd web 185.139.244.1,tcp:443\n"
    result, _ = run(save("-A INPUT -m set --match-set web src,src -j ACCEPT"), sets=sets)
    assert result.uncertain and "source port" in result.uncertain[0][0].unsupported[0]
    result, _ = run(save("-A INPUT -m set --match-set f2b-sshd src -j REJECT", "-A INPUT -j ACCEPT"))
    assert "no ipset data for f2b-sshd" in result.uncertain[0][0].unsupported[0]


def test_ipset_errors_name_the_line() -> None:
    with pytest.raises(ConfigError, match=r"sets:2: .*before it is created"):
        ipset.parse("create a hash:ip\nadd b 1.2.3.4\n", "sets")
    with pytest.raises(ConfigError, match=r"sets:2: set a: .*not an IP"):
        ipset.parse("create a hash:net\nadd a 1.2.3.400/24\n", "sets")


def test_unsupported_matches_are_uncertain_and_log_rules_are_not() -> None:
    text = save("-A INPUT -p tcp --dport 443 -m geoip --src-cc CN,RU -j DROP",
                "-A INPUT -p tcp --dport 443 -m geoip --src-cc CN -j LOG",
                "-A INPUT -p tcp --dport 443 -m recent --name web --set",
                "-A INPUT -p tcp --dport 443 -m recent --name web --update --seconds 60 --hitcount 20 -j DROP",
                "-A INPUT -p tcp --dport 22 -m string --string foo --algo bm -j DROP",
                "-A INPUT -j ACCEPT")
    result, _ = run(text)
    # The geoip DROP is read as matching, so every address reaching it is uncertain; the recent rule
    # after it is then never reached (the uncertain set is already all of them).
    assert [(r.origin.line, a.is_everything_ipv4()) for r, a in result.uncertain] == [(5, True)]
    assert "-m geoip --src-cc CN,RU" in result.uncertain[0][0].unsupported
    result, _ = run(save(*text.splitlines()[5:10]))
    assert [r.origin.line for r, _ in result.uncertain] == [7]
    assert "depends on earlier connections" in result.uncertain[0][0].unsupported[0]


def test_rate_limits_are_evaluated_under_the_stated_assumption() -> None:
    text = save("-A INPUT -p tcp --dport 443 -m hashlimit --hashlimit-above 20/sec --hashlimit-mode srcip "
                "--hashlimit-name web -j DROP",
                "-A INPUT -p tcp --dport 443 -m connlimit --connlimit-above 50 --connlimit-mask 32 -j REJECT",
                "-A INPUT -p tcp --dport 443 -m limit --limit 100/sec --limit-burst 200 -j ACCEPT")
    result, _ = run(text)
    assert result.admitted.is_everything_ipv4()
    assert [r.assumption.kind.value for r, _ in result.assumed if r.assumption] == ["rate-limit"] * 3
    assert [r.assumed_match for r, _ in result.assumed] == [False, False, True]


def test_ipv4_and_ipv6_sections_in_one_file_and_iptables_s_output() -> None:
    v6 = ("# Generated by ip6tables-save v1.8.9 on Mon\n*filter\n:INPUT DROP [0:0]\n"
          "-A INPUT -s 2001:db8::/32 -p tcp --dport 443 -j ACCEPT\nCOMMIT\n")
    result, rs = run(save("-A INPUT -s 185.139.244.0/22 -j ACCEPT") + v6)
    assert result.admitted == AddressSet.from_specs(["185.139.244.0/22", "2001:db8::/32"])
    assert rs.entry == ("INPUT", "ip6:INPUT")
    listing = "-P INPUT DROP\n-P FORWARD DROP\n-N web\n-A INPUT -p tcp -j web\n-A web -s 91.208.214.0/24 -j ACCEPT\n" \
              "-P INPUT ACCEPT\n-A INPUT -s ::1/128 -j ACCEPT\n"
    assert iptables.detect(listing)
    result, rs = run(listing)
    assert result.admitted == AddressSet.parse("91.208.214.0/24") | AddressSet.all_ipv6()
    _, rs = run(save("-A INPUT -j ACCEPT"))
    assert any("IPv6 is not analysed" in n for n in rs.notes)


def test_docker_published_port_is_analysed_on_the_forward_path() -> None:
    result, rs = run((EXAMPLES / "iptables" / "docker-host.rules").read_text())
    assert rs.entry == ("FORWARD",)
    assert any("DNATs port 443 to 172.18.0.2:443" in n for n in rs.notes)
    assert (result.admitted & PF).cidrs() == ["185.139.244.0/22"]
    # port 22 is not published: INPUT decides, and it admits 22 for everyone
    assert run((EXAMPLES / "iptables" / "docker-host.rules").read_text(), port=22)[1].entry == ("INPUT",)


def test_docker_forward_path_uses_the_dnat_destination_and_port() -> None:
    text = ("*nat\n:PREROUTING ACCEPT [0:0]\n:DOCKER - [0:0]\n-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER\n"
            "-A DOCKER -i docker0 -j RETURN\n-A DOCKER ! -i docker0 -p tcp -m tcp --dport 443 -j DNAT "
            "--to-destination 172.17.0.3:8443\nCOMMIT\n") + save(
        "-A FORWARD -d 172.17.0.2/32 -p tcp --dport 8443 -j ACCEPT",
        "-A FORWARD -d 172.17.0.3/32 -s 91.208.214.0/24 -p tcp --dport 443 -j ACCEPT",
        "-A FORWARD -d 172.17.0.3/32 -s 185.8.52.0/22 -p tcp --dport 8443 -j ACCEPT")
    result, rs = run(text)
    assert (result.admitted & PF).cidrs() == ["185.8.52.0/22"]
    assert rs.fix_context(iptables.IptablesFix).match_ports == {4: 8443}


def test_redirect_changes_the_port_input_sees() -> None:
    text = ("*nat\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -p tcp --dport 443 -j REDIRECT --to-ports 8443\n"
            "COMMIT\n") + save("-A INPUT -p tcp --dport 8443 -j ACCEPT")
    assert admitted(text).is_everything_ipv4()


def test_docker_chains_without_nat_table_are_noted() -> None:
    _, rs = run(save("-A INPUT -j ACCEPT", chains=("DOCKER", "DOCKER-USER")))
    assert any("no nat table" in n for n in rs.notes)


def test_unknown_chain_target_is_uncertain_unknown_extension_too() -> None:
    result, _ = run(save("-A INPUT -j nowhere", "-A INPUT -j SOMETHINGNEW", "-A INPUT -j ACCEPT"))
    texts = [u for r, _ in result.uncertain for u in r.unsupported]
    assert any("does not define" in t for t in texts) and any("not known" in t for t in texts)


def test_errors_name_file_and_line_and_garbage_is_unparsed() -> None:
    with pytest.raises(ConfigError, match=r"rules.v4:5: .*'185.139.244.0/33'"):
        iptables.parse(save("-A INPUT -s 185.139.244.0/33 -j ACCEPT"), "rules.v4", ParseContext(port=443))
    with pytest.raises(ConfigError, match=r"rules.v4:2: chain policy"):
        iptables.parse("*filter\n:INPUT MAYBE [0:0]\nCOMMIT\n", "rules.v4", ParseContext(port=443))
    with pytest.raises(ConfigError, match="no filter table"):
        iptables.parse("*nat\n:PREROUTING ACCEPT [0:0]\nCOMMIT\n", "rules.v4", ParseContext(port=443))
    _, rs = run(save("-A INPUT -j ACCEPT", "this is not a rule", "-A INPUT -p tcp --dport"))
    assert [o.line for o in rs.unparsed] == [6, 7]


def test_detect() -> None:
    for path in (EXAMPLES / "iptables").iterdir():
        assert iptables.detect(path.read_text()), path
    assert not iptables.detect("server {\n  listen 443;\n  allow 185.139.244.0/22;\n}\n")
    assert not iptables.detect("table inet filter {\n chain input {\n }\n}\n")


def test_fix_lines_insert_before_the_blocking_rule() -> None:
    text = (EXAMPLES / "iptables" / "debian-rules.v4").read_text()
    result, rs = run(text)
    context = ParseContext(port=443, published=PF)
    lines = iptables.fix_lines(rs, result, PF - result.admitted, context)
    assert lines[0] == "iptables -I INPUT 9 -p tcp -s 185.139.244.0/22 --dport 443 -j ACCEPT"
    assert "before line 14" in lines[1]
