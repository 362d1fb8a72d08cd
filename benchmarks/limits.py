"""Benchmark: peak memory against input size — `firewall` on large generated rule files, `check` on many shops.

Usage:  python benchmarks/limits.py [--sizes-mb 10,100,1000] [--shops 500,5000] [--cli feedback-check]
                                    [--workdir DIR]

- Rule files: iptables-save dumps of the given sizes, the shape of a large real one (a ban list of
  single `-s x/32 -j DROP` addresses broken every 200 lines by a LOG rule, so it is not one run;
  the published ranges admitted on 443 with 185.8.52.0/22 deliberately missing). Each is analysed by
  `feedback-check firewall FILE --type iptables --format json` in a fresh process, exactly as a user
  runs it.
- Shops: one profile of N shops, each with its own passphrase (an environment variable per shop: the
  report masks N secrets), each URL answered by a local asyncio server on 127.0.0.1 after 50 ms;
  `feedback-check check --lab --no-forgery-check --format json --output FILE`.

For each run: wall time, the CLI process's peak RSS (`os.wait4` rusage of that child: its own peak,
worker processes aside), the input's size and RSS / size. Only 127.0.0.1 is contacted.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

PUBLISHED_ADMITTED = ("185.139.244.0/22", "91.208.214.0/24")


def rule_file(path: Path, size_mb: int) -> int:
    """Write an iptables-save dump of about `size_mb` MB; the number of rules."""
    rng = random.Random(size_mb)
    target = size_mb * 1024 * 1024
    rules = 0
    with open(path, "w", encoding="ascii") as out:
        out.write("*filter\n:INPUT DROP [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n"
                  "-A INPUT -i lo -j ACCEPT\n-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n")
        out.writelines(f"-A INPUT -s {cidr} -p tcp -m tcp --dport 443 -j ACCEPT\n" for cidr in PUBLISHED_ADMITTED)
        written = out.tell()
        while written < target:
            block = []
            for _ in range(200):
                block.append(f"-A INPUT -s {rng.randint(1, 80)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}."
                             f"{rng.randint(1, 254)}/32 -j DROP\n")
            block.append('-A INPUT -m limit --limit 5/min -j LOG --log-prefix "ban: "\n')
            text = "".join(block)
            out.write(text)
            written += len(text)
            rules += len(block)
        out.write("COMMIT\n")
    return rules


def run(command: list[str], env: dict[str, str] | None = None) -> tuple[float, float, int]:
    """(wall seconds, peak RSS MB, exit code) of `command` in a fresh process."""
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    stderr = process.stderr.read().decode(errors="replace") if process.stderr else ""
    code = os.waitstatus_to_exitcode(status)
    if code not in (0, 1, 2):
        print(f"  exit {code}: {stderr.strip()[:300]}")
    return wall, usage.ru_maxrss / 1024, code


def profile_of(path: Path, port: int, shops: int) -> dict[str, str]:
    lines = ["version: 1", "shops:"]
    env = {}
    for i in range(shops):
        lines += [f"  - name: shop-{i:05d}",
                  f'    feedback: {{urls: {{accepted: "http://127.0.0.1:{port}/shop-{i:05d}/feedback"}}}}',
                  f"    signature: {{passphrase_env: BENCH_SHA_OUT_{i}}}"]
        env[f"BENCH_SHA_OUT_{i}"] = f"bench-passphrase-{i:05d}-{random.Random(i).getrandbits(64):x}"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return env


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes-mb", default="10,100,1000")
    parser.add_argument("--shops", default="500,5000")
    parser.add_argument("--cli", default=shutil.which("feedback-check") or "feedback-check")
    parser.add_argument("--workdir", default=None)
    args = parser.parse_args()
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="fc-limits-"))
    workdir.mkdir(parents=True, exist_ok=True)
    print(f"cli: {args.cli}; workdir: {workdir}")
    print("firewall (iptables-save):")
    for size in (int(s) for s in args.sizes_mb.split(",") if s):
        path = workdir / f"rules-{size}mb.v4"
        rules = rule_file(path, size)
        actual = path.stat().st_size / (1024 * 1024)
        wall, rss, code = run([args.cli, "firewall", str(path), "--type", "iptables", "--format", "json"])
        print(f"  {actual:7.1f} MB, {rules:>10,} rules: {wall:7.2f} s, peak RSS {rss:7.0f} MB "
              f"({rss / actual:5.2f}x the file), exit {code}")
        path.unlink()
    shop_counts = [int(s) for s in args.shops.split(",") if s]
    if not shop_counts:
        return 0
    from concurrency import DelayedServer  # type: ignore[attr-defined]  # (issue 10 rewrote concurrency.py)

    print("check (one passphrase per shop, 50 ms answers):")
    with DelayedServer(0.05) as server:
        for shops in shop_counts:
            profile = workdir / f"shops-{shops}.yaml"
            env = {**os.environ, **profile_of(profile, server.port, shops)}
            size = profile.stat().st_size / (1024 * 1024)
            wall, rss, code = run([args.cli, "check", "--config", str(profile), "--lab", "--no-forgery-check",
                                   "--format", "json", "--output", str(workdir / "report.json")], env=env)
            report = (workdir / "report.json").stat().st_size / (1024 * 1024)
            print(f"  {shops:>6} shops (profile {size:.2f} MB, report {report:.1f} MB): {wall:6.2f} s, "
                  f"peak RSS {rss:6.0f} MB, exit {code}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
