"""Evaluate a Ruleset for new TCP connections to one port: the exact admitted source set.

First-match semantics over address-interval sets: the set of sources still undecided flows through
the rules; each rule takes the part it matches. Jumps evaluate the target chain on the matched part;
what returns continues after the jump (or, for GOTO, returns from the calling chain). Nothing is
sampled: the result is exact for every IPv4 and IPv6 address.

Cost: consecutive rules with the same terminal action (or RETURN) and no unsupported or assumed
condition form one step. A small flow (the published addresses) is intersected with each of the
step's rules by bisection; a large one with the step's sources merged in a single normalise pass,
built once. Which rule of such a run decides an address is worked out only when asked
(`LayerEvaluation.deciding`), so a 100,000-rule ban list costs one merge, not 100,000 set operations;
parsers may also merge a run of lines into one rule (`Rule.lines`), split the same way on demand.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field

from feedback_check.firewall.ipspace import AddressSet, Interval
from feedback_check.firewall.model import Action, Chain, Origin, Rule, Ruleset

MAX_CHAIN_DEPTH = 64
_INF = 1 << 129
_ALL = AddressSet.everything()


@dataclass(frozen=True)
class Decision:
    """`addresses` are decided by `action` at `origin` (a rule, or a chain's default policy).

    When `rules` is set, the decision is a run of consecutive rules with the same action: `origin` is
    the first of them and `LayerEvaluation.deciding` splits it into one decision per deciding rule (and
    a rule that merges several lines, `Rule.lines`, into one decision per deciding line)."""

    addresses: AddressSet
    action: Action
    origin: Origin | None
    chain: str
    by_policy: bool = False
    rules: tuple[Rule, ...] = ()


@dataclass
class _Flow:
    """What running the chains has found so far: the sources accepted, the decisions, and the matches
    that rest on unsupported conditions or on assumptions."""

    accepted: AddressSet = field(default_factory=AddressSet.empty)
    decisions: list[Decision] = field(default_factory=list)
    uncertain: list[tuple[Rule, AddressSet]] = field(default_factory=list)
    assumed: list[tuple[Rule, AddressSet]] = field(default_factory=list)

    def matches(self, step: _Step, matched: AddressSet) -> bool:
        """Note what a single rule's match of `matched` rests on (unsupported conditions, assumptions);
        False when the rule is assumed not to match (e.g. `--hashlimit-above`: one request stays under)."""
        rule = step.single
        if rule is None:
            return True
        if rule.unsupported:
            self.uncertain.append((rule, matched))
        if rule.assumption and rule.action is not Action.CONTINUE:
            self.assumed.append((rule, matched))
            return rule.assumed_match
        return True

    def decide(self, step: _Step, matched: AddressSet, chain_name: str) -> None:
        """`matched` is decided by the step's terminal action (a merged run keeps its rules, to be split
        per deciding rule or line)."""
        origin = step.rules[0].origin
        split = len(step.rules) > 1 or step.rules[0].lines is not None
        self.decisions.append(Decision(matched, step.action, origin, chain_name, rules=step.rules if split else ()))
        if step.action is Action.ACCEPT:
            self.accepted = self.accepted | matched


@dataclass(frozen=True)
class LayerEvaluation:
    """The result for one ruleset and port."""

    admitted: AddressSet
    decisions: tuple[Decision, ...]
    # Rules with unsupported matches that touch sources still undecided when reached, with those sources.
    uncertain: tuple[tuple[Rule, AddressSet], ...]
    # Rules decided under an assumption (Rule.assumption) that touch undecided sources, with those sources.
    assumed: tuple[tuple[Rule, AddressSet], ...] = ()

    def deciding(self, addresses: AddressSet) -> list[Decision]:
        """The decisions that cover (part of) `addresses`, each restricted to that part, one per rule."""
        out: list[Decision] = []
        for d in self.decisions:
            part = d.addresses & addresses
            if not part:
                continue
            if not d.rules:
                out.append(Decision(part, d.action, d.origin, d.chain, d.by_policy))
                continue
            for rule in d.rules:
                taken = part & rule.source
                if not taken:
                    continue
                if rule.lines is None:
                    out.append(Decision(taken, d.action, rule.origin, d.chain))
                else:
                    out.extend(Decision(piece, d.action, origin, d.chain) for origin, piece in rule.lines.split(taken))
                part = part - taken
                if not part:
                    break
        return out


class ChainLoopError(ValueError):
    """The ruleset jumps in a loop or to a chain that does not exist."""


# -- set operations for a large flow against a small rule set --------------------------------------
# The flow of undecided sources can hold 100,000 intervals (after a big ipset or ban list) while one
# step touches a few hundred: these work in O(small x log large) plus C-level slicing, instead of a
# full merge per step. Results are identical to AddressSet's own operations.

_LOPSIDED = 16


def _and_intervals(large: tuple[Interval, ...], small: tuple[Interval, ...]) -> tuple[Interval, ...]:
    out: list[Interval] = []
    for start, end in small:
        i = bisect_right(large, (start, _INF)) - 1
        if i < 0 or large[i][1] < start:
            i += 1
        n = len(large)
        while i < n and large[i][0] <= end:
            lo, hi = large[i]
            out.append((max(lo, start), min(hi, end)))
            i += 1
    return tuple(out)


def _minus_intervals(large: tuple[Interval, ...], small: tuple[Interval, ...]) -> tuple[Interval, ...]:
    remainders: dict[int, list[Interval]] = {}
    for start, end in small:
        i = bisect_right(large, (start, _INF)) - 1
        if i < 0 or large[i][1] < start:
            i += 1
        n = len(large)
        while i < n and large[i][0] <= end:
            pieces = remainders.get(i)
            if pieces is None:
                pieces = remainders[i] = [large[i]]
            kept: list[Interval] = []
            for lo, hi in pieces:
                if hi < start or lo > end:
                    kept.append((lo, hi))
                    continue
                if lo < start:
                    kept.append((lo, start - 1))
                if hi > end:
                    kept.append((end + 1, hi))
            remainders[i] = kept
            i += 1
    if not remainders:
        return large
    out: list[Interval] = []
    previous = 0
    for index in sorted(remainders):
        out.extend(large[previous:index])
        out.extend(remainders[index])
        previous = index + 1
    out.extend(large[previous:])
    return tuple(out)


def _lopsided(a: tuple[Interval, ...], b: tuple[Interval, ...]) -> bool:
    return len(a) > _LOPSIDED * (len(b) + 1)


def _and_family(a: tuple[Interval, ...], b: tuple[Interval, ...], everything: tuple[Interval, ...]) \
        -> tuple[Interval, ...]:
    if not a or not b:
        return ()
    if a == everything:
        return b
    if b == everything:
        return a
    if _lopsided(a, b):
        return _and_intervals(a, b)
    if _lopsided(b, a):
        return _and_intervals(b, a)
    return (AddressSet(v4=a) & AddressSet(v4=b)).v4


def _and(flow: AddressSet, rule: AddressSet) -> AddressSet:
    return AddressSet(_and_family(flow.v4, rule.v4, _ALL.v4), _and_family(flow.v6, rule.v6, _ALL.v6))


def _minus(flow: AddressSet, part: AddressSet) -> AddressSet:
    v4 = _minus_intervals(flow.v4, part.v4) if _lopsided(flow.v4, part.v4) else \
        (AddressSet(v4=flow.v4) - AddressSet(v4=part.v4)).v4
    v6 = _minus_intervals(flow.v6, part.v6) if _lopsided(flow.v6, part.v6) else \
        (AddressSet(v6=flow.v6) - AddressSet(v6=part.v6)).v6
    return AddressSet(v4, v6)


#: A flow of at most this many intervals is intersected with each rule of a run on its own (by
#: bisection) rather than with the run's merged sources, which are then never built.
_SMALL_FLOW = 64


@dataclass
class _Step:
    """One rule, or a run of same-action rules whose sources are merged into one set when needed."""

    action: Action
    rules: tuple[Rule, ...]
    merged: AddressSet | None = None

    @property
    def single(self) -> Rule | None:
        return self.rules[0] if len(self.rules) == 1 else None

    def matched(self, flow: AddressSet) -> AddressSet:
        """The part of `flow` that one of the step's rules matches."""
        if len(self.rules) == 1:
            return _and(flow, self.rules[0].source)
        if self.merged is None and len(flow.v4) + len(flow.v6) <= _SMALL_FLOW:
            parts = [part for part in (_and(flow, rule.source) for rule in self.rules) if part]
            if len(parts) < 2:
                return parts[0] if parts else AddressSet.empty()
            return AddressSet.from_intervals([i for p in parts for i in p.v4], [i for p in parts for i in p.v6])
        if self.merged is None:
            self.merged = AddressSet.from_intervals([i for r in self.rules for i in r.source.v4],
                                                    [i for r in self.rules for i in r.source.v6])
        return _and(flow, self.merged)


def mergeable(rule: Rule) -> bool:
    """Whether first-match over consecutive rules with this rule's action and conditions is simply the
    union of their sources (a terminal action or RETURN, nothing unsupported or assumed)."""
    return (rule.action.terminal or rule.action is Action.RETURN) and not rule.unsupported \
        and not rule.assumption


def _steps(chain: Chain, port: int, protocol: str) -> list[_Step]:
    """The chain's rules that can match a new connection to `port`, consecutive same-action runs merged."""
    steps: list[_Step] = []
    run: list[Rule] = []

    def flush() -> None:
        if not run:
            return
        steps.append(_Step(run[0].action, tuple(run)))
        run.clear()

    for rule in chain.rules:
        if not rule.applies_to(port, protocol):
            continue
        if rule.action is Action.CONTINUE and not rule.unsupported and not rule.assumption:
            continue        # LOG, counters: never decide, and first-match order is unaffected
        if mergeable(rule):
            if run and run[0].action is not rule.action:
                flush()
            run.append(rule)
            continue
        flush()
        steps.append(_Step(rule.action, (rule,)))
    flush()
    return steps


def evaluate(ruleset: Ruleset, port: int, protocol: str = "tcp",
             candidates: AddressSet | None = None) -> LayerEvaluation:
    """The sources (within `candidates`, default: every address) admitted to `port` by `ruleset`."""
    start = AddressSet.everything() if candidates is None else candidates
    flow = _Flow()
    admitted = start
    cache: dict[str, list[_Step]] = {}
    for chain_name in ruleset.entry:
        chain = ruleset.chains.get(chain_name)
        if chain is None:
            raise ChainLoopError(f"entry chain {chain_name!r} does not exist")
        seen, bypass = admitted, AddressSet.empty()
        if chain.family == 4:
            seen, bypass = admitted.ipv4(), admitted.ipv6()
        elif chain.family == 6:
            seen, bypass = admitted.ipv6(), admitted.ipv4()
        chain_flow = _Flow()
        returned = _run_chain(ruleset, chain_name, seen, port, protocol, chain_flow, 0, cache)
        policy = chain.policy or Action.ACCEPT
        if returned:
            chain_flow.decisions.append(Decision(returned, policy, chain.origin, chain_name, by_policy=True))
            if policy is Action.ACCEPT:
                chain_flow.accepted = chain_flow.accepted | returned
        flow.decisions.extend(chain_flow.decisions)
        flow.uncertain.extend(chain_flow.uncertain)
        flow.assumed.extend(chain_flow.assumed)
        admitted = chain_flow.accepted | bypass
    return LayerEvaluation(admitted, tuple(flow.decisions), tuple(flow.uncertain), tuple(flow.assumed))


def _run_chain(ruleset: Ruleset, chain_name: str, incoming: AddressSet, port: int, protocol: str,
               flow: _Flow, depth: int, cache: dict[str, list[_Step]]) -> AddressSet:
    """Run `incoming` through a chain; returns the part that falls off the end or hits RETURN."""
    if depth > MAX_CHAIN_DEPTH:
        raise ChainLoopError(f"chain {chain_name!r}: jumps nest deeper than {MAX_CHAIN_DEPTH} (a loop?)")
    chain = ruleset.chains.get(chain_name)
    if chain is None:
        raise ChainLoopError(f"chain {chain_name!r} does not exist")
    steps = cache.get(chain_name)
    if steps is None:
        steps = cache[chain_name] = _steps(chain, port, protocol)
    undecided = incoming
    returned = AddressSet.empty()
    for step in steps:
        if not undecided:
            break
        matched = step.matched(undecided)
        if not matched or not flow.matches(step, matched):
            continue
        action = step.action
        if action is Action.CONTINUE:
            continue
        undecided = _minus(undecided, matched)
        if action.terminal:
            flow.decide(step, matched, chain_name)
        elif action is Action.RETURN:
            returned = returned | matched
        else:                           # JUMP or GOTO: a single rule (never merged)
            rule = step.rules[0]
            if rule.target is None:
                raise ChainLoopError(f"{rule.origin}: jump without a target chain")
            back = _run_chain(ruleset, rule.target, matched, port, protocol, flow, depth + 1, cache)
            if action is Action.JUMP:
                undecided = undecided | back
            else:
                returned = returned | back
    return returned | undecided
