"""Benchmark: two installs of feedback-check side by side on the firewall benchmarks' 100,000-rule inputs.

Usage:  .venv/bin/python benchmarks/firewall_compare.py --before OLD/bin/python --after NEW/bin/python
            [--rounds 5] [--rules 100000] [--networks 100000] [--cases iptables,nft-text,nft-json]

On a shared machine the wall time of one run swings by 2-3x with the other tenants' load; a change
that should not move the figures (a refactoring) is judged here instead: the same inputs (written
once by firewall_iptables.py and firewall_nftables.py's generators), each analysis in a fresh process
of either install, the two installs interleaved round by round, comparing the process's own CPU time
(user+sys, less sensitive to load than wall time) as well as wall time. Prints min and median of both.
Run it from a directory that holds no `feedback_check` package (or the source tree shadows an install).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import firewall_iptables
import firewall_nftables

CHILD = r"""
import json, sys, time
from feedback_check.firewall.analysis import LayerSource, analyse_layers
from feedback_check.platform import load_platform
wall, cpu = time.perf_counter(), time.process_time()
summary = analyse_layers([LayerSource(sys.argv[1], sys.argv[2])], load_platform(), port=443,
                         ipsets=[LayerSource(path) for path in sys.argv[3:]])
hwm = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(json.dumps([time.perf_counter() - wall, time.process_time() - cpu, hwm / 1024, summary.blocked_addresses]))
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", required=True, help="the python of the install to compare against")
    parser.add_argument("--after", required=True, help="the python of the install being judged")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--rules", type=int, default=100_000)
    parser.add_argument("--networks", type=int, default=100_000)
    parser.add_argument("--cases", default="iptables,nft-text,nft-json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        dump, sets = firewall_iptables.generate(args.rules, args.networks, folder)
        cases = {
            "iptables": [str(dump), "auto", str(sets)],
            "nft-text": [str(firewall_nftables.generate(args.rules, args.networks, folder)), "nftables"],
            "nft-json": [str(firewall_nftables.generate(args.rules, args.networks, folder, form="json")),
                         "nftables"],
        }
        chosen = args.cases.split(",")
        pythons = {"before": args.before, "after": args.after}
        runs: dict[tuple[str, str], list[list[float]]] = {(c, v): [] for c in chosen for v in pythons}
        for _ in range(args.rounds):
            for case in chosen:
                for version, python in pythons.items():
                    out = subprocess.run([python, "-c", CHILD, *cases[case]], capture_output=True, text=True,
                                         check=True, cwd=tmp)
                    runs[(case, version)].append(json.loads(out.stdout))
    for case in chosen:
        for version in pythons:
            found = runs[(case, version)]
            wall, cpu = [r[0] for r in found], [r[1] for r in found]
            print(f"{case:9} {version:6} CPU min {min(cpu):.3f} s median {statistics.median(cpu):.3f} s | "
                  f"wall min {min(wall):.3f} s median {statistics.median(wall):.3f} s | "
                  f"peak RSS {max(r[2] for r in found):.0f} MB | blocked {found[0][3]:.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
