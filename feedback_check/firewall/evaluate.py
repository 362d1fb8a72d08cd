"""Evaluate a Ruleset for new TCP connections to one port: the exact admitted source set.

First-match semantics over address-interval sets: the set of sources still undecided flows through
the rules; each rule takes the part it matches. Jumps evaluate the target chain on the matched part;
what returns continues after the jump (or, for GOTO, returns from the calling chain). Nothing is
sampled: the result is exact for every IPv4 and IPv6 address.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from feedback_check.firewall.ipspace import AddressSet
from feedback_check.firewall.model import Action, Origin, Ruleset, Rule

MAX_CHAIN_DEPTH = 64


@dataclass(frozen=True)
class Decision:
    """`addresses` are decided by `action` at `origin` (a rule, or a chain's default policy)."""

    addresses: AddressSet
    action: Action
    origin: Origin | None
    chain: str
    by_policy: bool = False


@dataclass
class _Flow:
    accepted: AddressSet = field(default_factory=AddressSet.empty)
    decisions: list[Decision] = field(default_factory=list)
    uncertain: list[tuple[Rule, AddressSet]] = field(default_factory=list)


@dataclass(frozen=True)
class LayerEvaluation:
    """The result for one ruleset and port."""

    admitted: AddressSet
    decisions: tuple[Decision, ...]
    # Rules with unsupported matches that touch sources still undecided when reached, with those sources.
    uncertain: tuple[tuple[Rule, AddressSet], ...]

    def deciding(self, addresses: AddressSet) -> list[Decision]:
        """The decisions that cover (part of) `addresses`."""
        return [d for d in self.decisions if d.addresses & addresses]


class ChainLoopError(ValueError):
    """The ruleset jumps in a loop or to a chain that does not exist."""


def evaluate(ruleset: Ruleset, port: int, protocol: str = "tcp",
             candidates: AddressSet | None = None) -> LayerEvaluation:
    """The sources (within `candidates`, default: every address) admitted to `port` by `ruleset`."""
    start = AddressSet.everything() if candidates is None else candidates
    flow = _Flow()
    admitted = start
    for chain_name in ruleset.entry:
        chain_flow = _Flow()
        returned = _run_chain(ruleset, chain_name, admitted, port, protocol, chain_flow, depth=0)
        chain = ruleset.chains[chain_name]
        policy = chain.policy or Action.ACCEPT
        if returned:
            chain_flow.decisions.append(Decision(returned, policy, chain.origin, chain_name, by_policy=True))
            if policy is Action.ACCEPT:
                chain_flow.accepted = chain_flow.accepted | returned
        flow.decisions.extend(chain_flow.decisions)
        flow.uncertain.extend(chain_flow.uncertain)
        admitted = chain_flow.accepted
    return LayerEvaluation(admitted, tuple(flow.decisions), tuple(flow.uncertain))


def _run_chain(ruleset: Ruleset, chain_name: str, incoming: AddressSet, port: int, protocol: str,
               flow: _Flow, depth: int) -> AddressSet:
    """Run `incoming` through a chain; returns the part that falls off the end or hits RETURN."""
    if depth > MAX_CHAIN_DEPTH:
        raise ChainLoopError(f"chain {chain_name!r}: jumps nest deeper than {MAX_CHAIN_DEPTH} (a loop?)")
    chain = ruleset.chains.get(chain_name)
    if chain is None:
        raise ChainLoopError(f"chain {chain_name!r} does not exist")
    undecided = incoming
    returned = AddressSet.empty()
    for rule in chain.rules:
        if not undecided:
            break
        if not rule.applies_to(port, protocol):
            continue
        matched = undecided & rule.source
        if not matched:
            continue
        if rule.unsupported:
            flow.uncertain.append((rule, matched))
        if rule.action is Action.CONTINUE:
            continue
        undecided = undecided - matched
        if rule.action.terminal:
            flow.decisions.append(Decision(matched, rule.action, rule.origin, chain_name))
            if rule.action is Action.ACCEPT:
                flow.accepted = flow.accepted | matched
        elif rule.action is Action.RETURN:
            returned = returned | matched
        elif rule.action in (Action.JUMP, Action.GOTO):
            if rule.target is None:
                raise ChainLoopError(f"{rule.origin}: jump without a target chain")
            back = _run_chain(ruleset, rule.target, matched, port, protocol, flow, depth + 1)
            if rule.action is Action.JUMP:
                undecided = undecided | back
            else:
                returned = returned | back
    return returned | undecided
