"""nftables rulesets whose ban-list-like runs are merged into one model rule (`Rule.lines`) decide
exactly as the same rulesets read one model rule per line: the same admitted set, the same deciding
line for every address, the same fix lines; in the text form and in the `nft -j` form.

Random rulesets over a small address universe (so lines sometimes overlap): an input chain and a chain it jumps
to, each a sequence of rule lines, mostly runs of `ip saddr A [tcp dport P] [counter ...] verdict`
long enough to be merged (some with `# handle N`), broken by other shapes (groups, negation, log,
return, a plain verdict).
"""

from __future__ import annotations

import json
from typing import Any
from unittest import mock

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from feedback_check.firewall import nftables
from feedback_check.firewall.evaluate import evaluate
from feedback_check.firewall.formats import ParseContext
from feedback_check.firewall.ipspace import AddressSet
from feedback_check.firewall.nftables import fastpath

PORT = 443
PUBLISHED = AddressSet.from_specs(["10.0.0.0/26", "2001:db8::/126"])
VERDICTS = ["accept", "drop", "reject", "return", "continue"]


@st.composite
def source(draw: st.DrawFn, family: str) -> str:
    if family == "ip6":
        return f"2001:db8::{draw(st.integers(0, 7)):x}"
    prefix = draw(st.sampled_from([32, 32, 32, 31, 30, 28, 26]))
    offset = draw(st.integers(0, 511)) >> (32 - prefix) << (32 - prefix)
    first = f"10.0.{offset >> 8}.{offset & 255}"
    if draw(st.integers(0, 9)) == 0:
        return f"{first}-10.0.{offset >> 8}.{(offset & 255) + draw(st.integers(0, 255 - (offset & 255)))}"
    return first + ("" if prefix == 32 else f"/{prefix}")


@st.composite
def run(draw: st.DrawFn, chain: str) -> list[tuple[str, list[dict[str, Any]]]]:
    """A run of same-shape lines (text, JSON expressions), long enough to be merged most of the time."""
    family = draw(st.sampled_from(["ip", "ip", "ip", "ip6"]))
    port = draw(st.sampled_from([None, None, 443, 80]))
    verdict = draw(st.sampled_from(VERDICTS if chain == "bans" else ["accept", "drop", "reject", "continue"]))
    counter = draw(st.booleans())
    lines = []
    for _ in range(draw(st.integers(1, 40))):
        address = draw(source(family))
        text = f"{family} saddr {address}" + (f" tcp dport {port}" if port else "") \
            + (" counter packets 0 bytes 0" if counter else "") + f" {verdict}"
        exprs: list[dict[str, Any]] = [_match(family, "saddr", address)]
        if port:
            exprs.append(_match("tcp", "dport", port))
        if counter:
            exprs.append({"counter": {"packets": 0, "bytes": 0}})
        exprs.append({verdict: None})
        lines.append((text, exprs))
    return lines


def _match(protocol: str, field: str, right: object) -> dict[str, Any]:
    if isinstance(right, str) and "/" in right:
        addr, _, length = right.partition("/")
        right = {"prefix": {"addr": addr, "len": int(length)}}
    elif isinstance(right, str) and "-" in right:
        right = {"range": right.split("-")}
    return {"match": {"op": "==", "left": {"payload": {"protocol": protocol, "field": field}}, "right": right}}


@st.composite
def other(draw: st.DrawFn) -> tuple[str, list[dict[str, Any]]]:
    """A line of another shape, which ends a run."""
    a, b = draw(source("ip")), draw(source("ip"))
    return draw(st.sampled_from([
        (f"ip saddr {{ {a}, {b} }} tcp dport {{ 80, 443 }} drop",
         [_match("ip", "saddr", {"set": [a, b]}), _match("tcp", "dport", {"set": [80, 443]}), {"drop": None}]),
        (f"ip saddr != {a} tcp dport 443 accept", [{"match": {"op": "!=", "left": {"payload": {
            "protocol": "ip", "field": "saddr"}}, "right": a}}, _match("tcp", "dport", 443), {"accept": None}]),
        (f'ip saddr {a} log prefix "x: "', [_match("ip", "saddr", a), {"log": {"prefix": "x: "}}]),
        ("tcp dport 443 accept", [_match("tcp", "dport", 443), {"accept": None}]),
    ]))


@st.composite
def chain_body(draw: st.DrawFn, chain: str) -> list[tuple[str, list[dict[str, Any]]]]:
    lines: list[tuple[str, list[dict[str, Any]]]] = []
    for _ in range(draw(st.integers(1, 4))):
        lines += draw(run(chain))
        if draw(st.booleans()):
            lines.append(draw(other()))
    return lines


@st.composite
def rulesets(draw: st.DrawFn) -> tuple[str, str]:
    """(text, JSON) of one ruleset."""
    policy = draw(st.sampled_from(["accept", "drop"]))
    handles = draw(st.booleans())
    late_chain = draw(st.booleans())     # JSON: the bans chain declared after some of its rules
    chains = {"input": draw(chain_body("input")), "bans": draw(chain_body("bans"))}
    position = draw(st.integers(0, len(chains["input"])))
    chains["input"].insert(position, ("jump bans", [{"jump": {"target": "bans"}}]))
    text = ["table inet t {"]
    objects: list[dict[str, Any]] = [{"table": {"family": "inet", "name": "t", "handle": 1}}]
    handle = 1
    for name, body in chains.items():
        text.append(f"\tchain {name} {{")
        chain: dict[str, Any] = {"family": "inet", "table": "t", "name": name}
        if name == "input":
            text.append(f"\t\ttype filter hook input priority filter; policy {policy};")
            chain.update(type="filter", hook="input", prio=0, policy=policy)
        declare_at = draw(st.integers(0, len(body))) if late_chain and name == "bans" else 0
        for index, (line, exprs) in enumerate(body):
            if index == declare_at:
                objects.append({"chain": chain})
            handle += 1
            text.append(f"\t\t{line}" + (f" # handle {handle}" if handles else ""))
            objects.append({"rule": {"family": "inet", "table": "t", "chain": name, "handle": handle,
                                     "expr": exprs}})
        if declare_at == len(body):
            objects.append({"chain": chain})
        text.append("\t}")
    text.append("}")
    return "\n".join(text) + "\n", json.dumps({"nftables": objects})


def _verdicts(text: str) -> tuple[AddressSet, list[tuple[Any, ...]], list[str]]:
    ruleset = nftables.parse(text, "rules.nft", ParseContext(PORT))
    result = evaluate(ruleset, PORT)
    deciding: list[tuple[Any, ...]] = [(d.addresses, d.action, d.origin, d.chain, d.by_policy)
                for d in result.deciding(AddressSet.everything())]
    missing = PUBLISHED - result.admitted
    fixes = nftables.fix_lines(ruleset, evaluate(ruleset, PORT, candidates=PUBLISHED), missing,
                               ParseContext(PORT, published=PUBLISHED))
    return result.admitted, deciding, fixes


# The reference reading: no run is merged, and no line or JSON object takes a fast path (every rule
# goes through the tokens or the decoded JSON and the general statement reader): every switch that
# fastpath lists, as it lists them.
REFERENCE: dict[str, Any] = dict(fastpath.OFF)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rulesets())
def test_merged_runs_decide_as_one_rule_per_line(forms: tuple[str, str]) -> None:
    for text in forms:
        merged = _verdicts(text)
        with mock.patch.multiple(fastpath, **REFERENCE):
            per_line = _verdicts(text)
        assert merged == per_line
    text_admitted, json_admitted = (_verdicts(text)[0] for text in forms)
    assert text_admitted == json_admitted
