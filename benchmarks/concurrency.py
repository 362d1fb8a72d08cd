"""Benchmark: 500 shop URLs on 127.0.0.1, each answered after 200 ms, checked in one run.

Usage:  .venv/bin/python benchmarks/concurrency.py [--shops 500] [--delay 0.2] [--sequential-sample 25]
                                                    [--full-sequential] [--concurrency 500]

An asyncio server in this process listens on 127.0.0.1 and answers every request 200 ms after reading
it (500 connections at once are fine for it). A profile with one shop per URL (accepted URL only,
paths /shop-NNN/feedback) is checked by `feedback-check check` in a fresh process, exactly as a user
runs it, with --lab (loopback) and --format json; the script reports that process's wall time, the
run's own duration (Report.duration_seconds), the CPU time and the peak RSS of that process (its own
wait4 rusage). CPU time hardly depends on other load on the machine; wall time does.

Runs:
- concurrent, with the default --concurrency and with --concurrency equal to the number of URLs,
  each with --no-forgery-check (one request per URL: the limit is one 200 ms wait plus overhead) and
  once with the forged-signature check on (two requests per URL, one after the other: two waits);
- one by one (--concurrency 1): a sample of `--sequential-sample` shops, extrapolated to all of them,
  or every shop with --full-sequential (about shops × 0.2 s).
Targets (issue 4): the concurrent run under 1.5 s wall, peak RSS under 200 MB. Only 127.0.0.1 is contacted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

WALL_TARGET = 1.5
RSS_TARGET_MB = 200.0
PASSPHRASE_ENV = "BENCH_SHA_OUT"


class DelayedServer:
    """HTTP/1.1 on 127.0.0.1: read one request, wait `delay` seconds, answer 200 with an empty body."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.requests = 0
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> DelayedServer:  # noqa: PYI034 - Python 3.11 target, concrete class
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(
            asyncio.start_server(self._handle, "127.0.0.1", 0, backlog=4096))
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()
        server.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value.strip() or 0)
                if length:
                    await reader.readexactly(length)
                self.requests += 1
                await asyncio.sleep(self.delay)
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                await writer.drain()
                break
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()


BREAKDOWN = r"""
import json, os, resource, sys, time
t0 = time.perf_counter()
from feedback_check.platform import load_platform
from feedback_check.profile import load_profile
from feedback_check.runner import CheckOptions, run_check
from feedback_check.reporters import render
t1 = time.perf_counter()
platform = load_platform()
profile = load_profile(sys.argv[1], platform)
t2 = time.perf_counter()
report = run_check([profile], platform, CheckOptions(lab=True, concurrency=int(sys.argv[2]), check_forgery=False))
t3 = time.perf_counter()
text = render(report, "json")
t4 = time.perf_counter()
print(json.dumps({"imports": t1 - t0, "profile": t2 - t1, "run": t3 - t2, "render_json": t4 - t3,
                  "report_duration": report.duration_seconds,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def breakdown(profile: Path, concurrency: int) -> dict[str, float]:
    """Where the wall time of one concurrent run goes, measured inside a fresh process."""
    env = {**os.environ, PASSPHRASE_ENV: "benchmark-passphrase"}
    result = subprocess.run([sys.executable, "-c", BREAKDOWN, str(profile), str(concurrency)], check=True,
                            capture_output=True, text=True, env=env)
    data: dict[str, float] = json.loads(result.stdout)
    return data


def write_profile(folder: Path, port: int, shops: int) -> Path:
    lines = ["version: 1", "shops:"]
    for i in range(shops):
        lines += [f"  - name: shop-{i:03d}", "    feedback:", "      timing: always_deferred", "      method: POST",
                  "      urls:", f"        accepted: http://127.0.0.1:{port}/shop-{i:03d}/feedback",
                  "    signature:", "      algorithm: SHA-512", f"      passphrase_env: {PASSPHRASE_ENV}"]
    path = folder / f"bench-{shops}.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


@dataclass
class Run:
    label: str
    command: str
    urls: int
    wall: float
    cpu: float
    duration: float
    peak_rss_mb: float
    requests: int
    verdicts: dict[str, int]


def run_check(server: DelayedServer, profile: Path, label: str, urls: int, *extra: str) -> Run:
    argv = [str(Path(sys.executable).with_name("feedback-check")), "check", "--config", str(profile), "--lab",
            "--format", "json", *extra]
    env = {**os.environ, PASSPHRASE_ENV: "benchmark-passphrase"}
    before = server.requests
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        process = subprocess.Popen(argv, stdout=out, stderr=err, env=env)
        _, status, usage = os.wait4(process.pid, 0)      # this child's own rusage
        wall = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    peak = usage.ru_maxrss / 1024
    if process.returncode not in (0, 1, 2):
        raise SystemExit(f"{label}: exit {process.returncode}: {stderr.decode()[-2000:]}")
    report = json.loads(stdout)
    verdicts: dict[str, int] = {}
    for target in report["targets"]:
        verdicts[target["verdict"]] = verdicts.get(target["verdict"], 0) + 1
    command = "feedback-check " + " ".join(a if a != str(profile) else profile.name for a in argv[1:])
    cpu = usage.ru_utime + usage.ru_stime
    return Run(label, command, urls, wall, cpu, report["duration_seconds"], peak, server.requests - before, verdicts)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shops", type=int, default=500)
    parser.add_argument("--delay", type=float, default=0.2)
    parser.add_argument("--concurrency", type=int, default=None, help="also run with this --concurrency")
    parser.add_argument("--sequential-sample", type=int, default=25,
                        help="shops checked one by one (--concurrency 1), extrapolated to all")
    parser.add_argument("--full-sequential", action="store_true", help="check all shops one by one (slow)")
    args = parser.parse_args()

    runs: list[Run] = []
    with DelayedServer(args.delay) as server, tempfile.TemporaryDirectory() as folder:
        profile = write_profile(Path(folder), server.port, args.shops)
        sequential_shops = args.shops if args.full_sequential else min(args.sequential_sample, args.shops)
        sample = write_profile(Path(folder), server.port, sequential_shops)
        runs.append(run_check(server, sample, f"one by one, {sequential_shops} shops", sequential_shops,
                              "--concurrency", "1", "--no-forgery-check"))
        runs.append(run_check(server, profile, "concurrent, default --concurrency", args.shops,
                              "--no-forgery-check"))
        runs.append(run_check(server, profile, f"concurrent, --concurrency {args.concurrency or args.shops}",
                              args.shops, "--concurrency", str(args.concurrency or args.shops), "--no-forgery-check"))
        runs.append(run_check(server, profile, f"concurrent, --concurrency {args.concurrency or args.shops}, "
                              "with the forged-signature check", args.shops,
                              "--concurrency", str(args.concurrency or args.shops)))
        start = time.perf_counter()
        parts = breakdown(profile, args.concurrency or args.shops)
        parts_wall = time.perf_counter() - start

    print(f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; "
          f"server delay {args.delay * 1000:.0f} ms; {args.shops} shops, one URL each\n")
    print("| run | URLs | requests served | wall s | CPU s (user+sys) | run duration s | peak RSS MB | verdicts |")
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    for run in runs:
        verdicts = ", ".join(f"{k} {v}" for k, v in sorted(run.verdicts.items()))
        print(f"| {run.label} | {run.urls} | {run.requests} | {run.wall:.2f} | {run.cpu:.2f} | {run.duration:.2f} | "
              f"{run.peak_rss_mb:.0f} | {verdicts} |")
    sequential = runs[0]
    per_url = sequential.wall / sequential.urls
    estimate = per_url * args.shops
    best = min(runs[1:3], key=lambda r: r.wall)
    print(f"\nOne by one: {per_url * 1000:.0f} ms per URL; all {args.shops} one by one: "
          f"{'measured' if args.full_sequential else 'estimated'} {estimate:.0f} s "
          f"→ concurrent ({best.label}) is {estimate / best.wall:.0f}× faster.")
    met_wall = best.wall < WALL_TARGET
    met_rss = max(r.peak_rss_mb for r in runs) < RSS_TARGET_MB
    print(f"Targets: wall < {WALL_TARGET} s: {'met' if met_wall else 'MISSED'} ({best.wall:.2f} s); "
          f"peak RSS < {RSS_TARGET_MB:.0f} MB: {'met' if met_rss else 'MISSED'} "
          f"({max(r.peak_rss_mb for r in runs):.0f} MB)")
    print(f"\nWhere the time of one concurrent run goes (--concurrency {args.concurrency or args.shops}, "
          f"no forgery check; in-process steps, {parts_wall:.2f} s wall in all):")
    print(f"  interpreter start + imports {parts['imports']:.2f} s · load profile ({args.shops} shops) "
          f"{parts['profile']:.2f} s · run {parts['run']:.2f} s (Report.duration_seconds "
          f"{parts['report_duration']:.2f}) · render json {parts['render_json']:.2f} s · "
          f"peak RSS {parts['peak_rss_mb']:.0f} MB")
    print("\nCommands:")
    for run in runs:
        print(f"  {run.label}: {run.command}")
    return 0 if met_wall and met_rss else 1


if __name__ == "__main__":
    sys.exit(main())
