"""The interval evaluator against a brute-force reference that walks single addresses through the rules.

Random rulesets: an entry chain with a random policy (sometimes two entry chains, one per family),
user chains reached by jump/goto (acyclic), RETURN, CONTINUE, negated sources, port sets, protocols,
rules that only match established traffic, and rules under an assumption that does not hold. Runs of
same-action rules are common so the merged-run path of the evaluator is exercised, and the rule the
evaluator names as deciding must be the one the reference stops at.
"""

from __future__ import annotations

import ipaddress

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from feedback_check.firewall.evaluate import evaluate
from feedback_check.firewall.ipspace import AddressSet
from feedback_check.firewall.model import Action, Chain, Origin, PortSet, Rule, Ruleset

BASE4 = int(ipaddress.IPv4Address("10.0.0.0"))
BASE6 = int(ipaddress.IPv6Address("2001:db8::"))
PORT = 443


@st.composite
def sources(draw: st.DrawFn) -> AddressSet:
    kind = draw(st.sampled_from(["any", "cidr", "cidr", "cidr", "negated", "v6", "range"]))
    if kind == "any":
        return AddressSet.everything()
    if kind == "v6":
        prefix = draw(st.integers(120, 128))
        start = BASE6 + (draw(st.integers(0, 255)) >> (128 - prefix) << (128 - prefix))
        return AddressSet.from_intervals(v6=[(start, start + (1 << (128 - prefix)) - 1)])
    if kind == "range":
        a = draw(st.integers(0, 255))
        b = draw(st.integers(a, 255))
        return AddressSet.from_intervals([(BASE4 + a, BASE4 + b)])
    prefix = draw(st.integers(24, 32))          # a small universe: overlapping rules are common
    offset = draw(st.integers(0, 255)) >> (32 - prefix) << (32 - prefix)
    cidr = AddressSet.from_intervals([(BASE4 + offset, BASE4 + offset + (1 << (32 - prefix)) - 1)])
    return cidr.complement() if kind == "negated" else cidr


@st.composite
def rules_for(draw: st.DrawFn, chain_index: int, chain_count: int, line_base: int) -> tuple[Rule, ...]:
    count = draw(st.integers(0, 8))
    out = []
    for i in range(count):
        targets = [f"C{j}" for j in range(chain_index + 1, chain_count)]
        actions = [Action.ACCEPT, Action.DROP, Action.REJECT, Action.RETURN, Action.CONTINUE]
        if targets:
            actions += [Action.JUMP, Action.GOTO]
        previous = out[-1].action if out else None
        if previous is not None and previous not in (Action.JUMP, Action.GOTO) and draw(st.booleans()):
            action = previous          # runs of same-action rules are what the evaluator merges
        else:
            action = draw(st.sampled_from(actions))
        target = draw(st.sampled_from(targets)) if action in (Action.JUMP, Action.GOTO) else None
        ports = draw(st.sampled_from([None, None, PortSet.of(443), PortSet.of(80), PortSet.of((1, 1024)),
                                      PortSet.of(22, (8000, 9000))]))
        protocols = draw(st.sampled_from([None, None, frozenset({"tcp"}), frozenset({"udp"})]))
        assumed = draw(st.sampled_from(["", "", "", "rate-limit: test"]))
        out.append(Rule(action=action, origin=Origin("r", line_base + i), source=draw(sources()),
                        protocols=protocols, ports=ports, target=target,
                        new_connections=draw(st.booleans()) or draw(st.booleans()),
                        assumption=assumed, assumed_match=draw(st.booleans()) if assumed else True))
    return tuple(out)


@st.composite
def rulesets(draw: st.DrawFn) -> Ruleset:
    chain_count = draw(st.integers(1, 4))
    chains: dict[str, Chain] = {}
    for index in range(1, chain_count):
        chains[f"C{index}"] = Chain(f"C{index}", draw(rules_for(index, chain_count, index * 100)))
    entry = ["INPUT"]
    chains["INPUT"] = Chain("INPUT", draw(rules_for(0, chain_count, 1000)),
                            draw(st.sampled_from([Action.ACCEPT, Action.DROP])), Origin("r", 1, "policy"),
                            family=draw(st.sampled_from([None, 4])))
    if draw(st.booleans()):
        chains["INPUT6"] = Chain("INPUT6", draw(rules_for(0, chain_count, 2000)),
                                 draw(st.sampled_from([Action.ACCEPT, Action.DROP])), Origin("r", 2, "policy6"),
                                 family=6)
        entry.append("INPUT6")
    return Ruleset("test", "r", chains, tuple(entry))


def _reference_chain(ruleset: Ruleset, name: str, address: ipaddress._BaseAddress,
                     port: int) -> tuple[str, Origin | None]:
    for rule in ruleset.chains[name].rules:
        if not rule.applies_to(port) or address not in rule.source:
            continue
        if rule.assumption and not rule.assumed_match:
            continue
        if rule.action is Action.CONTINUE:
            continue
        if rule.action.terminal:
            return rule.action.value, rule.origin
        if rule.action is Action.RETURN:
            return "return", None
        assert rule.target is not None
        outcome = _reference_chain(ruleset, rule.target, address, port)
        if rule.action is Action.GOTO or outcome[0] != "return":
            return outcome
    return "return", None


def reference(ruleset: Ruleset, address: ipaddress._BaseAddress, port: int) -> tuple[bool, Origin | None]:
    """Admitted?, and the rule (or policy) that decided the last chain walked."""
    origin = None
    for name in ruleset.entry:
        chain = ruleset.chains[name]
        if chain.family is not None and chain.family != address.version:
            continue
        action, origin = _reference_chain(ruleset, name, address, port)
        if action == "return":
            action, origin = (chain.policy or Action.ACCEPT).value, chain.origin
        if action != "accept":
            return False, origin
    return True, origin


def _samples(ruleset: Ruleset, extra: list[int]) -> list[ipaddress._BaseAddress]:
    points: set[ipaddress._BaseAddress] = set()
    for chain in ruleset.chains.values():
        for rule in chain.rules:
            for start, end in rule.source.v4:
                for value in (start - 1, start, end, end + 1):
                    if 0 <= value < 1 << 32:
                        points.add(ipaddress.IPv4Address(value))
            for start, end in rule.source.v6:
                for value in (start - 1, start, end, end + 1):
                    if 0 <= value < 1 << 128:
                        points.add(ipaddress.IPv6Address(value))
    points.update(ipaddress.IPv4Address(BASE4 + e) for e in extra)
    points.update(ipaddress.IPv6Address(BASE6 + e) for e in extra)
    points.add(ipaddress.IPv4Address("185.139.244.1"))
    return sorted(points, key=lambda a: (a.version, int(a)))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rulesets(), st.lists(st.integers(0, 300), max_size=8), st.sampled_from([443, 80, 22, 8080]))
def test_evaluator_matches_brute_force(ruleset: Ruleset, extra: list[int], port: int) -> None:
    result = evaluate(ruleset, port)
    for address in _samples(ruleset, extra):
        admitted, origin = reference(ruleset, address, port)
        assert (address in result.admitted) == admitted, address
        decided = result.deciding(AddressSet.parse(str(address)))
        assert (decided[-1].origin if decided else None) == origin, address
        if not admitted:
            assert [d.origin for d in decided if d.action is not Action.ACCEPT] == [origin], address


@settings(max_examples=100, deadline=None)
@given(rulesets())
def test_candidates_restrict_without_changing_verdicts(ruleset: Ruleset) -> None:
    everything = evaluate(ruleset, PORT)
    window = AddressSet.from_intervals([(BASE4 + 40, BASE4 + 200)])
    restricted = evaluate(ruleset, PORT, candidates=window)
    assert restricted.admitted == everything.admitted & window


@st.composite
def interval_sets(draw: st.DrawFn, max_size: int) -> AddressSet:
    points = sorted(draw(st.sets(st.integers(0, 5000), max_size=max_size)))
    pairs = [(points[i], points[i + 1]) for i in range(0, len(points) - 1, 2)]
    return AddressSet.from_intervals([(BASE4 + a, BASE4 + b) for a, b in pairs],
                                     [(BASE6 + a, BASE6 + b) for a, b in pairs[::3]])


@settings(max_examples=300, deadline=None)
@given(interval_sets(600), interval_sets(12))
def test_lopsided_set_operations_equal_the_general_ones(large: AddressSet, small: AddressSet) -> None:
    from feedback_check.firewall.evaluate import _and, _minus

    assert _and(large, small) == large & small
    assert _minus(large, small) == large - small
    assert _minus(large, large & small) == large - small
