"""Benchmark: analyse an `nft list ruleset` of N rules plus a named set of N networks.

Usage:  .venv/bin/python benchmarks/firewall_nftables.py [--rules 100000] [--networks 100000] [--repeat 3]
        add --json to analyse the same ruleset in `nft -j list ruleset` form instead.

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
import subprocess
import sys
import tempfile
from pathlib import Path

MEASURE = r"""
import json, sys, time
start = time.perf_counter()
from feedback_check.firewall.analysis import LayerSource, analyse_layers
from feedback_check.platform import load_platform
imported = time.perf_counter()
summary = analyse_layers([LayerSource(sys.argv[1], "nftables")], load_platform(), port=443)
done = time.perf_counter()
# VmHWM is this process's own peak RSS (ru_maxrss would carry the parent's peak across exec).
hwm = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(json.dumps({"seconds": done - imported, "import_seconds": imported - start,
                  "peak_rss_mb": hwm / 1024,
                  "blocked": summary.blocked_addresses, "findings": [f.code for f in summary.findings]}))
"""


def address(rng: random.Random) -> str:
    # Public-looking addresses outside the published ranges (so the verdict stays the same at every size).
    return f"{rng.randint(1, 80)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"


def generate(rules: int, networks: int, folder: Path, seed: int = 7) -> Path:
    rng = random.Random(seed)
    blocklist = sorted({f"{address(rng).rsplit('.', 1)[0]}.0/{rng.choice((24, 28, 32))}"
                        for _ in range(networks)})
    lines = ["table inet filter {", "\tset blocklist {", "\t\ttype ipv4_addr", "\t\tflags interval",
             "\t\tauto-merge", "\t\telements = { " + ",\n\t\t\t     ".join(blocklist) + " }", "\t}", "",
             "\tchain input {", "\t\ttype filter hook input priority filter; policy drop;",
             "\t\tct state established,related accept", '\t\tiif "lo" accept',
             "\t\tip saddr @blocklist counter packets 0 bytes 0 drop", "\t\tmeta l4proto tcp jump bans",
             "\t\tip saddr { 185.139.244.0/22, 91.208.214.0/24 } tcp dport 443 accept",
             "\t\ttcp dport 22 accept", "\t\treject with icmpx admin-prohibited", "\t}", "", "\tchain bans {"]
    for i in range(rules - 7):
        if i % 500 == 499:
            lines.append(f"\t\tip saddr {address(rng)} tcp dport 22 accept")
        elif i % 1000 == 250:
            lines.append(f'\t\tip saddr {address(rng)} log prefix "ban: "')
        elif i % 2000 == 1000:
            lines.append(f"\t\tip saddr {address(rng).rsplit('.', 1)[0]}.0/24 return")
        elif i % 3000 == 1500:
            lines.append(f"\t\tip saddr {{ {address(rng)}, {address(rng)} }} tcp dport {{ 80, 443 }} reject")
        else:
            lines.append(f"\t\tip saddr {address(rng)} counter packets 0 bytes 0 drop")
    lines += ["\t}", "}"]
    ruleset = folder / f"ruleset-{rules}.nft"
    ruleset.write_text("\n".join(lines) + "\n")
    return ruleset


def to_json(ruleset: Path) -> Path:
    """The same ruleset as `nft -j list ruleset` writes it (built here, so no nft binary is needed)."""
    from feedback_check.firewall import nftables  # the reader of the text form, used only to walk it

    reading = nftables._TextReader(ruleset.read_text(), str(ruleset)).read()
    objects: list[dict[str, object]] = [{"metainfo": {"json_schema_version": 1}}]
    handle = 0
    for (family, name), table in reading.tables.items():
        objects.append({"table": {"family": family, "name": name, "handle": 1}})
        for set_name, declared in table.sets.items():
            elements: list[object] = []
            for (atom,) in declared.elements:
                addr, _, length = atom.partition("/")
                elements.append({"prefix": {"addr": addr, "len": int(length)}} if length else addr)
            objects.append({"set": {"family": family, "table": name, "name": set_name, "type": "ipv4_addr",
                                    "flags": ["interval"], "elem": elements}})
        for chain_name, chain in table.chains.items():
            body: dict[str, object] = {"family": family, "table": name, "name": chain_name}
            if chain.hook:
                body.update(type=chain.type, hook=chain.hook, prio=chain.priority, policy=chain.policy)
            objects.append({"chain": body})
            for rule in chain.rules:
                handle += 1
                objects.append({"rule": {"family": family, "table": name, "chain": chain_name,
                                         "handle": handle, "expr": _rule_exprs(rule)}})
    path = ruleset.with_suffix(".json")
    path.write_text(json.dumps({"nftables": objects}))
    return path


def _rule_exprs(rule: object) -> list[dict[str, object]]:
    from feedback_check.firewall import nftables

    simple = getattr(rule, "simple", None)
    if simple is None:
        return [_json_expr(s) for s in getattr(rule, "statements", ())]
    statements: list[object] = []
    if simple.sources is not None:
        key = "ip saddr" if simple.version == 4 else "ip6 saddr"
        statements.append(nftables.Match((key,), "!=" if simple.negated else "==",
                                         tuple((a,) for a in simple.sources)))
    if simple.ports is not None:
        statements.append(nftables.Match(("tcp dport",), "==", tuple((p,) for p in simple.ports)))
    return [_json_expr(s) for s in (*statements, simple.verdict)]


def _json_expr(statement: object) -> dict[str, object]:
    from feedback_check.firewall import nftables

    if isinstance(statement, nftables.Verdict):
        return {statement.kind: {"target": statement.target} if statement.target else None}
    if isinstance(statement, nftables.Match):
        proto, _, field = statement.keys[0].partition(" ")
        left: dict[str, object] = {"payload": {"protocol": proto, "field": field}} if field else \
            {"meta": {"key": proto}}
        if proto == "ct":
            left = {"ct": {"key": field}}
        elif proto == "meta":
            left = {"meta": {"key": field}}
        values = [e[0] for e in statement.elements]
        right: object = "@" + statement.ref if statement.ref else (
            values[0] if len(values) == 1 else {"set": values})
        if isinstance(right, str) and right.isdigit():
            right = int(right)
        return {"match": {"op": "in" if proto == "ct" else statement.op, "left": left, "right": right}}
    return {"counter": None}


def measure(ruleset: Path, repeat: int) -> dict[str, object]:
    runs = []
    for _ in range(repeat):
        out = subprocess.run([sys.executable, "-c", MEASURE, str(ruleset)], capture_output=True, text=True,
                             check=True)
        runs.append(json.loads(out.stdout))
    best = min(runs, key=lambda r: r["seconds"])  # type: ignore[arg-type,return-value]
    return {**best, "peak_rss_mb": max(r["peak_rss_mb"] for r in runs)}  # type: ignore[type-var]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rules", type=int, default=100_000)
    parser.add_argument("--networks", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="analyse the nft -j form of the ruleset")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        small_file = generate(args.rules // 10, args.networks // 10, folder)
        large_file = generate(args.rules, args.networks, folder)
        if args.json:
            small_file, large_file = to_json(small_file), to_json(large_file)
        small = measure(small_file, args.repeat)
        large = measure(large_file, args.repeat)
    ratio = large["seconds"] / small["seconds"]  # type: ignore[operator]
    form = "nft -j JSON" if args.json else "nft text"
    print(f"{form}: {args.rules // 10:>7} rules + {args.networks // 10:>7} networks: {small['seconds']:.3f} s, "
          f"peak RSS {small['peak_rss_mb']:.0f} MB")
    print(f"{form}: {args.rules:>7} rules + {args.networks:>7} networks: {large['seconds']:.3f} s, "
          f"peak RSS {large['peak_rss_mb']:.0f} MB (imports {large['import_seconds']:.3f} s, not counted)")
    print(f"growth for 10x the input: {ratio:.1f}x the time (target <= 12x)")
    print(f"verdict: blocked={large['blocked']} findings={large['findings']}")
    ok = large["seconds"] < 1.0 and large["peak_rss_mb"] < 150 and ratio <= 12  # type: ignore[operator]
    print("targets met" if ok else "TARGETS MISSED (< 1 s, < 150 MB, <= 12x)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
