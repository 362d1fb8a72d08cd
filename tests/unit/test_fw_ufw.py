"""ufw: `status verbose`, `status numbered` and user.rules, on the examples in examples/firewall/ufw."""

from __future__ import annotations

import pytest

from feedback_check.firewall import ufw
from feedback_check.firewall.analysis import detect_format
from feedback_check.firewall.formats import ParseContext
from feedback_check.firewall.ipspace import AddressSet
from feedback_check.firewall.model import Action
from tests.unit.fw_formats_helpers import (
    PUBLISHED,
    admitted,
    analyse,
    blocked,
    deciding_lines,
    detected_formats,
    example,
    missing,
)


def test_status_verbose_default_policy_and_a_deny_rule_before_the_allows() -> None:
    ruleset, evaluation, ctx = analyse(ufw, "ufw/status-verbose.txt")
    assert ruleset.chains["input"].policy is Action.DROP
    assert admitted(evaluation) == ["185.8.52.0/24", "185.8.54.0/23", "185.139.244.0/22"]
    assert blocked(evaluation) == ["91.208.214.0/24", "185.8.53.0/24"]
    assert deciding_lines(evaluation, "185.8.53.0/24") == [9]          # Anywhere DENY IN 185.8.53.0/24
    assert deciding_lines(evaluation, "91.208.214.0/24") == [3]        # Default: deny (incoming)
    assert deciding_lines(evaluation, "185.8.52.0/24") == [11]
    assert ruleset.unparsed == ()
    assert not any("assumed" in note for note in ruleset.notes)
    assert ufw.fix_lines(ruleset, evaluation, missing(evaluation), ctx)[1:] == [
        "ufw insert 2 allow from 91.208.214.0/24 to any port 443 proto tcp",
        "ufw insert 2 allow from 185.8.53.0/24 to any port 443 proto tcp",
    ]


def test_status_verbose_limit_rule_is_uncertain_not_silently_accepted() -> None:
    _ruleset, evaluation, _ = analyse(ufw, "ufw/status-verbose.txt", port=22)
    assert admitted(evaluation) == PUBLISHED.cidrs()           # LIMIT (line 8) comes before the deny
    # LIMIT admits under the stated rate-limit assumption, reported where it decides (never silently).
    assert [rule.origin.line for rule, _ in evaluation.assumed] == [8, 15]
    assert all(str(rule.assumption) == f"rate-limit: {ufw.LIMIT_NOTE}" for rule, _ in evaluation.assumed)
    assert evaluation.uncertain == ()


def test_multiport_and_udp_rules() -> None:
    _ruleset, evaluation, _ = analyse(ufw, "ufw/status-verbose.txt", port=80)
    # Only the office is admitted on 80; the published ranges fall to the default policy or the deny rule.
    assert admitted(evaluation) == []
    assert "203.0.113.9" in evaluation.admitted
    _, udp_port, _ = analyse(ufw, "ufw/status-verbose.txt", port=60500)
    assert udp_port.admitted.ipv4().size() == 0           # 60000:61000/udp admits no TCP


def test_status_numbered_without_default_assumes_deny_and_uses_rule_numbers() -> None:
    ruleset, evaluation, ctx = analyse(ufw, "ufw/status-numbered.txt")
    assert any("deny incoming" in note for note in ruleset.notes)
    assert ruleset.chains["input"].policy is Action.DROP
    assert admitted(evaluation) == ["185.8.52.0/22", "185.139.244.0/22"]
    assert blocked(evaluation) == ["91.208.214.0/24"]
    assert deciding_lines(evaluation, "91.208.214.0/24") == [5]
    assert ufw.fix_lines(ruleset, evaluation, missing(evaluation), ctx) == [
        "# before the rule that refuses them: " + example("ufw/status-numbered.txt").as_posix()
        + ":5 [ 1] Anywhere                   DENY IN     91.208.214.0/24",
        "ufw insert 1 allow from 91.208.214.0/24 to any port 443 proto tcp",
    ]
    # The v6 twin of Nginx Full admits IPv6 sources, the v4 rule IPv4 sources.
    assert "2001:db8::1" in evaluation.admitted and "8.8.8.8" in evaluation.admitted


def test_unknown_application_profile_is_unsupported_and_does_not_admit() -> None:
    _ruleset, evaluation, _ = analyse(ufw, "ufw/status-numbered.txt", port=8443)
    assert admitted(evaluation) == []
    assert [rule.origin.line for rule, _ in evaluation.uncertain] == [8]
    assert "Plesk" in evaluation.uncertain[0][0].unsupported[0]


def test_user_rules_legacy_hosts_then_reject() -> None:
    ruleset, evaluation, ctx = analyse(ufw, "ufw/user.rules")
    assert admitted(evaluation) == ["185.8.52.254/32", "185.8.53.254/32", "185.8.54.254/32"]
    assert set(deciding_lines(evaluation, "185.139.244.0/22")) == {50}   # reject tcp 443 ... in
    decision = evaluation.deciding(PUBLISHED)[-1]
    assert decision.action is Action.REJECT
    assert any("/etc/default/ufw" in note for note in ruleset.notes)
    # 25 fragments around the three old hosts become one /22: admitting them twice changes nothing.
    assert ufw.fix_lines(ruleset, evaluation, missing(evaluation), ctx)[1:] == [
        "ufw insert 10 allow from 91.208.214.0/24 to any port 443 proto tcp",
        "ufw insert 10 allow from 185.8.52.0/22 to any port 443 proto tcp",
        "ufw insert 10 allow from 185.139.244.0/22 to any port 443 proto tcp"]


def test_fix_per_published_range_as_the_analysis_asks_for_it() -> None:
    ruleset, evaluation, _ = analyse(ufw, "ufw/user.rules")
    ctx = ParseContext(port=443, published=PUBLISHED)
    one_range = AddressSet.parse("185.8.52.0/22") - evaluation.admitted
    assert ufw.fix_lines(ruleset, evaluation, one_range, ctx)[1:] == [
        "ufw insert 10 allow from 185.8.52.0/22 to any port 443 proto tcp"]


def test_user_rules_limit_is_an_assumption() -> None:
    _, evaluation, _ = analyse(ufw, "ufw/user.rules", port=22)
    assert [rule.origin.line for rule, _ in evaluation.assumed] == [20]
    assert blocked(evaluation) == []


def test_iptables_dump_of_a_ufw_host_is_not_claimed() -> None:
    dump = ("*filter\n:INPUT DROP [0:0]\n:ufw-user-input - [0:0]\n-A INPUT -j ufw-user-input\n"
            "-A ufw-user-input -p tcp --dport 443 -j ACCEPT\nCOMMIT\n")
    assert not ufw.detect(dump)


def test_interface_rules_are_assumed_to_see_the_traffic() -> None:
    text = "Status: active\n\nTo  Action  From\n--  ------  ----\n443/tcp on eth0  ALLOW IN  185.8.52.0/22\n"
    ruleset = ufw.parse(text, "s.txt", ParseContext(port=443))
    from feedback_check.firewall.evaluate import evaluate
    evaluation = evaluate(ruleset, 443)
    assert admitted(evaluation) == ["185.8.52.0/22"]
    assert str(evaluation.assumed[0][0].assumption) == "interface: arrives on interface eth0"


def test_user_rules_port_80_open_to_all_ipv4() -> None:
    _, evaluation, _ = analyse(ufw, "ufw/user.rules", port=80)
    assert blocked(evaluation) == []
    assert evaluation.admitted.is_everything_ipv4()


def test_inactive_ufw_admits_everything() -> None:
    ruleset, evaluation, _ = analyse(ufw, "ufw/status-inactive.txt")
    assert blocked(evaluation) == []
    assert any("inactive" in note for note in ruleset.notes)


def test_policy_only_block_appends_with_ufw_allow() -> None:
    text = ("Status: active\nDefault: reject (incoming), allow (outgoing)\n\nTo  Action  From\n"
            "--  ------  ----\n22  ALLOW IN  Anywhere\n")
    ctx = ParseContext(port=443)
    ruleset = ufw.parse(text, "status.txt", ctx)
    from feedback_check.firewall.evaluate import evaluate
    evaluation = evaluate(ruleset, 443)
    assert ruleset.chains["input"].policy is Action.REJECT
    assert ufw.fix_lines(ruleset, evaluation, missing(evaluation), ctx) == [
        f"ufw allow from {cidr} to any port 443 proto tcp" for cidr in PUBLISHED.cidrs()]


def test_unreadable_rule_lines_are_unparsed_with_line_numbers() -> None:
    text = "Status: active\n\nTo  Action  From\n--  ------  ----\n443/tcp  ALLOW IN  not-an-address!\n"
    ruleset = ufw.parse(text, "s.txt", ParseContext(port=443))
    assert [o.line for o in ruleset.unparsed] == [5]


@pytest.mark.parametrize("name", ["status-verbose.txt", "status-numbered.txt", "user.rules",
                                  "status-inactive.txt"])
def test_examples_are_detected_as_ufw_only(name: str) -> None:
    text = example(f"ufw/{name}").read_text(encoding="utf-8")
    assert detect_format(text) == "ufw"
    # user.rules is iptables-restore syntax as well: only the detection order (ufw first) separates them.
    assert [f for f in detected_formats(text) if f != "iptables"] == ["ufw"]
