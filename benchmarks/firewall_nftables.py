"""Benchmark: analyse an `nft list ruleset` of N rules plus a named set of N networks.

Usage:  .venv/bin/python benchmarks/firewall_nftables.py [--rules 100000] [--networks 100000] [--repeat 3]
        add --json to analyse the same ruleset in `nft -j list ruleset` form instead (both forms are
        written here from the same generated rules; no nft binary is needed).

The ruleset looks like a busy real host: an inet table whose input chain accepts established traffic
and loopback, drops sources in a `blocklist` interval set of N networks, jumps to a `bans` chain of
N rules (single-address drops in runs broken by per-port accepts, LOG rules, `return`s and anonymous
sets, so the evaluator cannot merge it all into one step) and admits the published ranges on 443.
Each measurement runs `feedback-check`'s analysis (read, parse, evaluate, summarise) in a fresh
process, reporting wall time and that process's peak RSS; it also runs N/10 to show how cost grows.
Targets (issue 3): < 1 s and < 150 MB for 100,000 rules + 100,000 networks; 10x rules <= 12x time.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from firewall_harness import address, measure, report


def _saddr(value: object) -> dict[str, object]:
    return {"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "saddr"}}, "right": value}}


def _dport(value: object) -> dict[str, object]:
    return {"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": value}}


# The input chain: each rule as nft prints it and as `nft -j` writes its expressions.
INPUT_RULES: list[tuple[str, list[dict[str, object]]]] = [
    ("ct state established,related accept",
     [{"match": {"op": "in", "left": {"ct": {"key": "state"}}, "right": {"set": ["established", "related"]}}},
      {"accept": None}]),
    ('iif "lo" accept', [{"match": {"op": "==", "left": {"meta": {"key": "iif"}}, "right": '"lo"'}},
                         {"accept": None}]),
    ("ip saddr @blocklist counter packets 0 bytes 0 drop", [_saddr("@blocklist"), {"drop": None}]),
    ("meta l4proto tcp jump bans", [{"match": {"op": "==", "left": {"meta": {"key": "l4proto"}}, "right": "tcp"}},
                                    {"jump": {"target": "bans"}}]),
    ("ip saddr { 185.139.244.0/22, 91.208.214.0/24 } tcp dport 443 accept",
     [_saddr({"set": ["185.139.244.0/22", "91.208.214.0/24"]}), _dport(443), {"accept": None}]),
    ("tcp dport 22 accept", [_dport(22), {"accept": None}]),
    ("reject with icmpx admin-prohibited", [{"reject": None}]),
]


def _ban_rules(count: int, rng: random.Random) -> Iterator[tuple[str, list[dict[str, object]]]]:
    """The `bans` chain: single-address drops in runs broken by other rule shapes."""
    for i in range(count):
        if i % 500 == 499:
            source = address(rng)
            yield f"ip saddr {source} tcp dport 22 accept", [_saddr(source), _dport(22), {"accept": None}]
        elif i % 1000 == 250:
            source = address(rng)
            yield f'ip saddr {source} log prefix "ban: "', [_saddr(source), {"continue": None}]
        elif i % 2000 == 1000:
            network = f"{address(rng).rsplit('.', 1)[0]}.0/24"
            yield f"ip saddr {network} return", [_saddr(network), {"return": None}]
        elif i % 3000 == 1500:
            pair = [address(rng), address(rng)]
            yield (f"ip saddr {{ {pair[0]}, {pair[1]} }} tcp dport {{ 80, 443 }} reject",
                   [_saddr({"set": pair}), _dport({"set": ["80", "443"]}), {"reject": None}])
        else:
            source = address(rng)
            yield f"ip saddr {source} counter packets 0 bytes 0 drop", [_saddr(source), {"drop": None}]


def generate(rules: int, networks: int, folder: Path, seed: int = 7, form: str = "text") -> Path:
    """The ruleset as `nft list ruleset` prints it (form "text") or as `nft -j list ruleset` (form "json",
    written here from the same rules, so no nft binary is needed)."""
    rng = random.Random(seed)
    blocklist = sorted({f"{address(rng).rsplit('.', 1)[0]}.0/{rng.choice((24, 28, 32))}"
                        for _ in range(networks)})
    bans = list(_ban_rules(rules - 7, rng))
    if form == "json":
        return _write_json(blocklist, bans, folder / f"ruleset-{rules}.json")
    lines = ["table inet filter {", "\tset blocklist {", "\t\ttype ipv4_addr", "\t\tflags interval",
             "\t\tauto-merge", "\t\telements = { " + ",\n\t\t\t     ".join(blocklist) + " }", "\t}", "",
             "\tchain input {", "\t\ttype filter hook input priority filter; policy drop;",
             *(f"\t\t{text}" for text, _ in INPUT_RULES), "\t}", "", "\tchain bans {",
             *(f"\t\t{text}" for text, _ in bans), "\t}", "}"]
    ruleset = folder / f"ruleset-{rules}.nft"
    ruleset.write_text("\n".join(lines) + "\n")
    return ruleset


def _write_json(blocklist: list[str], bans: list[tuple[str, list[dict[str, object]]]], path: Path) -> Path:
    table = {"family": "inet", "table": "filter"}
    elements = []
    for network in blocklist:
        addr, _, length = network.partition("/")
        elements.append({"prefix": {"addr": addr, "len": int(length)}})
    objects: list[dict[str, object]] = [
        {"metainfo": {"json_schema_version": 1}},
        {"table": {"family": "inet", "name": "filter", "handle": 1}},
        {"set": {**table, "name": "blocklist", "type": "ipv4_addr", "flags": ["interval"], "elem": elements}},
        {"chain": {**table, "name": "input", "type": "filter", "hook": "input", "prio": 0, "policy": "drop"}},
    ]
    handle = 0
    for chain, rules in (("input", INPUT_RULES), ("bans", bans)):
        if chain == "bans":
            objects.append({"chain": {**table, "name": "bans"}})
        for _, exprs in rules:
            handle += 1
            objects.append({"rule": {**table, "chain": chain, "handle": handle, "expr": exprs}})
    path.write_text(json.dumps({"nftables": objects}))
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rules", type=int, default=100_000)
    parser.add_argument("--networks", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="analyse the nft -j form of the ruleset")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        form = "json" if args.json else "text"
        small_file = generate(args.rules // 10, args.networks // 10, folder, form=form)
        large_file = generate(args.rules, args.networks, folder, form=form)
        small = measure(small_file, "nftables", args.repeat)
        large = measure(large_file, "nftables", args.repeat)
    shown = "nft -j JSON" if args.json else "nft text"
    return report(f"{shown}: ", args.rules, args.networks, small, large)

if __name__ == "__main__":
    sys.exit(main())
