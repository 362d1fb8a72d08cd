"""iptables-save text, parsed and evaluated, against a reference interpreter of the same text.

The parser merges runs of same-shape lines (ban lists, allowlists) into one model rule and names the
deciding line on demand; this test writes random dumps rich in such runs (plus port rules, jumps, gotos,
RETURN and negation), then walks every address of a small universe through the TEXT with a tiny
independent interpreter, and requires the same verdict and the same deciding line for each address.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from feedback_check.firewall import iptables
from feedback_check.firewall.evaluate import evaluate
from feedback_check.firewall.formats import ParseContext
from feedback_check.firewall.ipspace import AddressSet

BASE = int(ipaddress.IPv4Address("10.0.0.0"))
UNIVERSE = range(BASE, BASE + 256)
PORT = 443


@dataclass(frozen=True)
class Line:
    chain: str
    source: tuple[int, int] | None      # inclusive interval; None: any source
    negated: bool
    port: int | None
    target: str                         # ACCEPT DROP REJECT RETURN or a chain; "g:" prefix for goto

    def text(self) -> str:
        parts = [f"-A {self.chain}"]
        if self.source is not None:
            first, last = self.source
            size = last - first + 1
            prefix = 32 - (size.bit_length() - 1)
            parts.append(("! " if self.negated else "") + f"-s {ipaddress.IPv4Address(first)}/{prefix}")
        if self.port is not None:
            parts.append(f"-p tcp -m tcp --dport {self.port}")
        parts.append(f"-g {self.target[2:]}" if self.target.startswith("g:") else f"-j {self.target}")
        return " ".join(parts)

    def matches(self, address: int) -> bool:
        if self.port is not None and self.port != PORT:
            return False
        if self.source is None:
            return True
        inside = self.source[0] <= address <= self.source[1]
        return inside != self.negated


@st.composite
def source(draw: st.DrawFn) -> tuple[int, int]:
    prefix = draw(st.integers(24, 32))
    offset = draw(st.integers(0, 255)) >> (32 - prefix) << (32 - prefix)
    return BASE + offset, BASE + offset + (1 << (32 - prefix)) - 1


@st.composite
def chain_lines(draw: st.DrawFn, chain: str, later: list[str]) -> list[Line]:
    lines: list[Line] = []
    for _ in range(draw(st.integers(0, 5))):
        if draw(st.integers(0, 2)) == 0:
            # a run of plain `-s X -j VERDICT` lines: what the parser merges
            verdict = draw(st.sampled_from(["ACCEPT", "DROP", "REJECT", "RETURN"]))
            for _ in range(draw(st.integers(2, 30))):
                lines.append(Line(chain, draw(source()), False, None, verdict))
        else:
            targets = ["ACCEPT", "DROP", "REJECT", "RETURN"] + later + [f"g:{c}" for c in later]
            lines.append(Line(chain, draw(st.none() | source()), draw(st.booleans()),
                              draw(st.sampled_from([None, None, 443, 80])), draw(st.sampled_from(targets))))
    return lines


@st.composite
def dumps(draw: st.DrawFn) -> tuple[str, dict[str, list[Line]], str, dict[int, Line]]:
    user = [f"C{i}" for i in range(draw(st.integers(0, 3)))]
    policy = draw(st.sampled_from(["ACCEPT", "DROP"]))
    chains = {"INPUT": draw(chain_lines("INPUT", user))}
    for i, name in enumerate(user):
        chains[name] = draw(chain_lines(name, user[i + 1:]))
    text = ["*filter", f":INPUT {policy} [0:0]", ":FORWARD DROP [0:0]", ":OUTPUT ACCEPT [0:0]"]
    text += [f":{name} - [0:0]" for name in user]
    by_number: dict[int, Line] = {}
    for lines in chains.values():
        for line in lines:
            text.append(line.text())
            by_number[len(text)] = line
    text.append("COMMIT")
    return "\n".join(text) + "\n", chains, policy, by_number


def reference(chains: dict[str, list[Line]], policy: str, by_number: dict[int, Line],
              address: int) -> tuple[str, int | None]:
    """(verdict, deciding line number or None for the INPUT policy) for one address, from the text."""
    number_of = {id(line): number for number, line in by_number.items()}

    def run(chain: str) -> tuple[str, int | None] | None:    # None: fell off the end / RETURN
        for line in chains[chain]:
            if not line.matches(address):
                continue
            if line.target in ("ACCEPT", "DROP", "REJECT"):
                return line.target, number_of[id(line)]
            if line.target == "RETURN":
                return None
            outcome = run(line.target.removeprefix("g:"))
            if line.target.startswith("g:"):
                return outcome
            if outcome is not None:
                return outcome
        return None

    outcome = run("INPUT")
    return outcome if outcome is not None else (policy, None)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(dumps())
def test_parsed_and_merged_rules_decide_like_the_text(dump: tuple[str, dict[str, list[Line]], str, dict[int, Line]]) -> None:
    text, chains, policy, by_number = dump
    ruleset = iptables.parse(text, "rules.v4", ParseContext(PORT))
    evaluation = evaluate(ruleset, PORT, candidates=AddressSet.from_intervals([(UNIVERSE[0], UNIVERSE[-1])]))
    for address in UNIVERSE:
        verdict, line = reference(chains, policy, by_number, address)
        single = AddressSet.from_intervals([(address, address)])
        assert (single.issubset(evaluation.admitted)) == (verdict == "ACCEPT"), (ipaddress.IPv4Address(address), text)
        decisions = evaluation.deciding(single)
        assert len(decisions) == 1, (ipaddress.IPv4Address(address), decisions, text)
        decision = decisions[0]
        assert decision.action.value == verdict.lower(), (ipaddress.IPv4Address(address), decision, text)
        if line is None:
            assert decision.by_policy, (ipaddress.IPv4Address(address), decision, text)
        else:
            assert decision.origin is not None and decision.origin.line == line, \
                (ipaddress.IPv4Address(address), decision.origin, line, text)
