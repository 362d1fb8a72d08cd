"""The evaluator on small hand-written rulesets whose answers are known."""

from __future__ import annotations

import pytest

from feedback_check.firewall.evaluate import ChainLoopError, evaluate
from feedback_check.firewall.ipspace import AddressSet
from feedback_check.firewall.model import Action, Chain, Origin, PortSet, Rule, Ruleset


def rule(action: Action, line: int, source: str | None = None, **kw: object) -> Rule:
    src = AddressSet.parse(source) if source else AddressSet.everything()
    return Rule(action=action, origin=Origin("f", line), source=src, **kw)  # type: ignore[arg-type]


def ruleset(chains: dict[str, tuple[list[Rule], Action | None]], entry: tuple[str, ...] = ("INPUT",),
            families: dict[str, int] | None = None) -> Ruleset:
    families = families or {}
    built = {name: Chain(name, tuple(rules), policy, Origin("f", 100 + i, "policy"), family=families.get(name))
             for i, (name, (rules, policy)) in enumerate(chains.items())}
    return Ruleset("test", "f", built, entry)


def test_first_match_and_policy() -> None:
    rs = ruleset({"INPUT": ([rule(Action.DROP, 1, "185.139.245.0/24"),
                             rule(Action.ACCEPT, 2, "185.139.244.0/22", ports=PortSet.of(443))], Action.DROP)})
    result = evaluate(rs, 443)
    assert (result.admitted & AddressSet.parse("185.139.244.0/22")).cidrs() == ["185.139.244.0/24",
                                                                               "185.139.246.0/23"]
    assert evaluate(rs, 80).admitted == AddressSet.empty()
    [decision] = result.deciding(AddressSet.parse("185.139.245.9"))
    assert decision.origin == Origin("f", 1) and decision.action is Action.DROP


def test_jump_return_continues_and_goto_returns_from_caller() -> None:
    rs = ruleset({
        "INPUT": ([rule(Action.JUMP, 1, target="SUB"), rule(Action.DROP, 2, "10.0.0.0/8")], Action.ACCEPT),
        "SUB": ([rule(Action.RETURN, 3, "10.1.0.0/16"), rule(Action.GOTO, 4, "10.2.0.0/16", target="LEAF"),
                 rule(Action.ACCEPT, 5, "10.0.0.0/8")], None),
        "LEAF": ([rule(Action.DROP, 6, "10.2.3.0/24")], None),
    })
    result = evaluate(rs, 443)
    assert "10.1.2.3" not in result.admitted          # RETURN, then dropped by INPUT rule 2
    assert "10.2.3.4" not in result.admitted          # dropped in LEAF
    assert "10.3.0.1" in result.admitted              # accepted in SUB
    assert "192.0.2.1" in result.admitted             # policy ACCEPT
    # LEAF falls off its end: the goto returns from SUB (rule 5 is skipped) to INPUT, whose rule 2 drops it
    assert "10.2.4.4" not in result.admitted
    [d] = result.deciding(AddressSet.parse("10.2.4.4"))
    assert d.origin == Origin("f", 2)


def test_goto_return_skips_rest_of_calling_chain() -> None:
    rs = ruleset({
        "INPUT": ([rule(Action.JUMP, 1, target="MID"), rule(Action.ACCEPT, 2)], Action.DROP),
        "MID": ([rule(Action.GOTO, 3, target="LEAF"), rule(Action.DROP, 4)], None),
        "LEAF": ([], None),
    })
    # LEAF falls off the end -> returns from MID (rule 4 skipped) -> INPUT rule 2 accepts
    assert evaluate(rs, 443).admitted == AddressSet.everything()


def test_family_chains_see_only_their_family() -> None:
    rs = ruleset({"INPUT": ([], Action.DROP), "ip6:INPUT": ([rule(Action.ACCEPT, 1)], Action.DROP)},
                 entry=("INPUT", "ip6:INPUT"), families={"INPUT": 4, "ip6:INPUT": 6})
    assert evaluate(rs, 443).admitted == AddressSet.all_ipv6()


def test_merged_runs_attribute_each_address_to_the_first_matching_rule() -> None:
    rs = ruleset({"INPUT": ([rule(Action.DROP, 1, "10.0.0.0/24"), rule(Action.DROP, 2, "10.0.0.5"),
                             rule(Action.DROP, 3, "10.0.1.0/24")], Action.ACCEPT)})
    result = evaluate(rs, 443)
    assert len([d for d in result.decisions if not d.by_policy]) == 1     # one merged step
    parts = {str(d.origin): d.addresses.cidrs() for d in result.deciding(AddressSet.parse("10.0.0.0/23"))}
    assert parts == {"f:1": ["10.0.0.0/24"], "f:3": ["10.0.1.0/24"]}


def test_unsupported_and_assumed_rules_are_reported() -> None:
    rs = ruleset({"INPUT": ([rule(Action.DROP, 1, "10.0.0.0/8", unsupported=("-m geoip",)),
                             rule(Action.DROP, 2, assumption="rate-limit: above", assumed_match=False),
                             rule(Action.ACCEPT, 3, assumption="rate-limit: upto")], Action.DROP)})
    result = evaluate(rs, 443)
    assert [(r.origin.line, a.cidrs()) for r, a in result.uncertain] == [(1, ["10.0.0.0/8"])]
    assert [r.origin.line for r, _ in result.assumed] == [2, 3]
    assert "192.0.2.1" in result.admitted and "10.1.1.1" not in result.admitted


def test_established_only_and_other_ports_never_decide() -> None:
    rs = ruleset({"INPUT": ([rule(Action.ACCEPT, 1, new_connections=False),
                             rule(Action.ACCEPT, 2, ports=PortSet.of((8000, 9000))),
                             rule(Action.ACCEPT, 3, protocols=frozenset({"udp"}))], Action.DROP)})
    assert evaluate(rs, 443).admitted == AddressSet.empty()


def test_loops_and_missing_chains_raise() -> None:
    loop = ruleset({"INPUT": ([rule(Action.JUMP, 1, target="A")], Action.DROP),
                    "A": ([rule(Action.JUMP, 2, target="A")], None)})
    with pytest.raises(ChainLoopError):
        evaluate(loop, 443)
    missing = ruleset({"INPUT": ([rule(Action.JUMP, 1, target="NOPE")], Action.DROP)})
    with pytest.raises(ChainLoopError, match="NOPE"):
        evaluate(missing, 443)
    no_target = ruleset({"INPUT": ([rule(Action.JUMP, 1)], Action.DROP)})
    with pytest.raises(ChainLoopError, match="f:1: jump without a target chain"):
        evaluate(no_target, 443)


def test_a_continuing_rule_is_uncertain_when_unsupported_but_never_an_assumption() -> None:
    rs = ruleset({"INPUT": ([rule(Action.CONTINUE, 1, "10.0.0.0/8", unsupported=("target FOO",)),
                             rule(Action.CONTINUE, 2, "10.0.0.0/8", assumption="rate-limit: upto"),
                             rule(Action.ACCEPT, 3, "10.0.0.0/16")], Action.DROP)})
    result = evaluate(rs, 443)
    assert [(r.origin.line, a.cidrs()) for r, a in result.uncertain] == [(1, ["10.0.0.0/8"])]
    assert result.assumed == ()
    assert result.admitted == AddressSet.parse("10.0.0.0/16")
    [decision] = result.deciding(AddressSet.parse("10.0.0.1"))
    assert decision.origin == Origin("f", 3)
