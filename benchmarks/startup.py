"""Benchmark: cold start of `feedback-check --version` and `--help` against a bare `python -c pass`.

Usage:  .venv/bin/python benchmarks/startup.py [--runs 30] [--importtime]

Each command runs `--runs` times in a fresh process (after two warm-up runs, so the files are in the
page cache as they are on a machine that runs the tool every few minutes); the table shows the
median and the fastest run, and how much slower than `python -c pass` each command is.
Target (issue 4): `--version` and `--help` within 150 ms of `python -c pass`.
`--importtime` adds the ten slowest imports of `--help` (python -X importtime).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

TARGET_MS = 150.0


def time_runs(commands: dict[str, list[str]], runs: int) -> dict[str, list[float]]:
    """Run every command `runs` times, interleaved (one of each per round), so a change in machine load
    during the benchmark affects them all alike."""
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": ""}
    for argv in commands.values():
        for _ in range(2):
            subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    seconds: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, argv in commands.items():
            start = time.perf_counter()
            subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
            seconds[name].append(time.perf_counter() - start)
    return seconds


def slowest_imports(python: str, count: int = 10) -> list[tuple[float, str]]:
    result = subprocess.run([python, "-X", "importtime", "-m", "feedback_check", "--help"], check=True,
                            capture_output=True, text=True)
    rows = []
    for line in result.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _self_us, cumulative_us, name = line.split(":", 1)[1].split("|")
        rows.append((int(cumulative_us) / 1000, name.rstrip()[1:]))   # one space after the bar
    top_level = [(ms, name) for ms, name in rows if not name.startswith(" ")]
    return sorted(top_level, reverse=True)[:count]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--importtime", action="store_true")
    args = parser.parse_args()

    python = sys.executable
    script = str(Path(python).with_name("feedback-check"))
    commands = {
        "python -c pass": [python, "-c", "pass"],
        "feedback-check --version": [script, "--version"],
        "feedback-check --help": [script, "--help"],
        "python -m feedback_check --help": [python, "-m", "feedback_check", "--help"],
    }
    results = time_runs(commands, args.runs)
    base = statistics.median(results["python -c pass"])
    print(f"Python {sys.version.split()[0]} on {os.uname().sysname} {os.uname().machine}, "
          f"{args.runs} interleaved runs each (after 2 warm-up runs); load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs\n")
    print("| command | median ms | fastest ms | median − python -c pass | target |")
    print("|---|---:|---:|---:|---|")
    failed = False
    for name, seconds in results.items():
        median = statistics.median(seconds)
        extra = (median - base) * 1000
        verdict = ""
        if name.startswith("feedback-check"):
            ok = extra <= TARGET_MS
            failed |= not ok
            verdict = f"≤ {TARGET_MS:.0f} ms: {'met' if ok else 'MISSED'}"
        print(f"| `{name}` | {median * 1000:.1f} | {min(seconds) * 1000:.1f} | "
              f"{'' if name == 'python -c pass' else f'+{extra:.1f} ms'} | {verdict} |")
    if args.importtime:
        print("\nSlowest top-level imports of `python -m feedback_check --help` (cumulative ms):")
        for ms, name in slowest_imports(python):
            print(f"  {ms:7.1f}  {name}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
