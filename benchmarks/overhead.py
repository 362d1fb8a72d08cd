"""Benchmark: one full probe of a local HTTPS endpoint by feedback-check, against curl doing the same request.

Usage:  .venv/bin/python benchmarks/overhead.py [--rounds 15]

The endpoint is the demo's healthy post-sale handler (feedback_check.demo: HTTPS on 127.0.0.1 with a
throwaway CA, checks the SHA-OUT signature, answers 200), started in this process. Each round runs,
one after the other (interleaved, so changing machine load hits all alike):

- `feedback-check probe URL --ca-bundle CA --lab --passphrase-env ... --format json --no-forgery-check`
  (one post-sale request, like curl's);
- the same without --no-forgery-check (the default: a second request with a wrong SHASIGN);
- `curl --cacert CA -X POST --data-binary BODY URL` with the very parameters the probe sent (so the
  handler answers 200 to curl too), timings from curl's --write-out.

Reported: median wall time of each process and the ratio to curl; then where feedback-check's time goes:
interpreter start and imports (measured separately), the report's own duration, and the phases of the
report (dns, connect, tls, ttfb, total) next to curl's (namelookup, connect, appconnect, starttransfer,
total). Only 127.0.0.1 is contacted.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode

PASSPHRASE_ENV = "BENCH_SHA_OUT"
CURL_FORMAT = "%{http_code} %{time_namelookup} %{time_connect} %{time_appconnect} %{time_starttransfer} %{time_total}"
IMPORTS = "import feedback_check.cli.check, feedback_check.runner, feedback_check.probe.probe, " \
          "feedback_check.reporters.json"


def timed(argv: list[str], env: dict[str, str]) -> tuple[float, str]:
    start = time.perf_counter()
    result = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    elapsed = time.perf_counter() - start
    if result.returncode not in (0, 1, 2):
        raise SystemExit(f"{argv[0]} failed ({result.returncode}): {result.stderr[-2000:]}")
    return elapsed, result.stdout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    curl = shutil.which("curl")
    if curl is None:
        raise SystemExit("curl is not installed")

    from feedback_check.demo import DEMO_PASSPHRASE, _demo_tls, _serve
    from feedback_check.platform import load_platform

    env = {**os.environ, PASSPHRASE_ENV: DEMO_PASSPHRASE}
    script = str(Path(sys.executable).with_name("feedback-check"))
    with tempfile.TemporaryDirectory() as folder, _serve(load_platform(), _demo_tls(Path(folder))[0]) as port:
        ca = str(Path(folder) / "demo-ca.pem")
        url = f"https://127.0.0.1:{port}/postfinance/feedback"
        probe = [script, "probe", url, "--ca-bundle", ca, "--lab", "--passphrase-env", PASSPHRASE_ENV,
                 "--format", "json"]
        # The parameters the probe sends, so curl sends a request the handler accepts too.
        _, first = timed([*probe, "--no-forgery-check"], env)
        sent = json.loads(first)["targets"][0]["request"]["parameters"]
        body = Path(folder) / "body.txt"
        body.write_text(urlencode([(k, v) for k, v in sent]))
        curl_argv = [curl, "-sS", "-o", "/dev/null", "--cacert", ca, "-X", "POST",
                     "-H", "Content-Type: application/x-www-form-urlencoded", "--data-binary", f"@{body}",
                     "-w", CURL_FORMAT, url]
        commands = {
            "feedback-check probe --no-forgery-check": [*probe, "--no-forgery-check"],
            "feedback-check probe (default: + forged SHASIGN request)": probe,
            "curl": curl_argv,
            "python -c 'import <probe modules>'": [sys.executable, "-c", IMPORTS],
            "python -c pass": [sys.executable, "-c", "pass"],
        }
        walls: dict[str, list[float]] = {name: [] for name in commands}
        outputs: dict[str, list[str]] = {name: [] for name in commands}
        for _ in range(args.rounds):
            for name, argv in commands.items():
                elapsed, out = timed(argv, env)
                walls[name].append(elapsed)
                outputs[name].append(out)

    median = {name: statistics.median(values) for name, values in walls.items()}
    curl_wall = median["curl"]
    print(f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; "
          f"{args.rounds} interleaved rounds; endpoint {url.replace(str(port), 'PORT')}\n")
    print("| command | median wall ms | fastest ms | ratio to curl |")
    print("|---|---:|---:|---:|")
    for name, values in walls.items():
        print(f"| {name} | {median[name] * 1000:.1f} | {min(values) * 1000:.1f} | {median[name] / curl_wall:.1f}× |")

    reports = [json.loads(out) for out in outputs["feedback-check probe --no-forgery-check"]]
    statuses = {r["targets"][0]["verdict"] for r in reports}
    phases = ("dns", "connect", "tls", "ttfb", "total")
    ours = {p: statistics.median([r["targets"][0]["timings"].get(p) or 0.0 for r in reports]) for p in phases}
    duration = statistics.median([r["duration_seconds"] for r in reports])
    curl_fields = [out.split() for out in outputs["curl"]]
    assert all(f[0] == "200" for f in curl_fields), "curl's request must be accepted like the probe's"
    curl_t = [statistics.median(float(f[i]) for f in curl_fields) for i in range(1, 6)]
    print(f"\nVerdicts of the probe: {', '.join(sorted(statuses))}; curl: HTTP 200 every time.")
    print("\nWhere feedback-check's time goes (medians, ms; --no-forgery-check):")
    imports = median["python -c 'import <probe modules>'"]
    probe_wall = median["feedback-check probe --no-forgery-check"]
    print(f"  process wall {probe_wall * 1000:.1f} = interpreter + imports ≈ {imports * 1000:.1f} "
          f"(of which bare interpreter {median['python -c pass'] * 1000:.1f}) + run (Report.duration) "
          f"{duration * 1000:.1f} + the rest (profile/platform load, rendering, exit) "
          f"{(probe_wall - imports - duration) * 1000:.1f}")
    print("  phases (ours: one connection; connect and tls per phase, ttfb and total from the connect;")
    print("  curl: one connection, times are cumulative from the start):")
    print(f"    ours : dns {ours['dns'] * 1000:.1f} · connect {ours['connect'] * 1000:.1f} · tls {ours['tls'] * 1000:.1f}"
          f" · ttfb {ours['ttfb'] * 1000:.1f} · total {ours['total'] * 1000:.1f}")
    print(f"    curl : namelookup {curl_t[0] * 1000:.1f} · connect {curl_t[1] * 1000:.1f} · appconnect "
          f"{curl_t[2] * 1000:.1f} · starttransfer {curl_t[3] * 1000:.1f} · total {curl_t[4] * 1000:.1f}")
    print("\nCommands (PORT and CA are the local endpoint's):")
    for name, argv in commands.items():
        shown = " ".join(a.replace(str(port), "PORT").replace(ca, "CA").replace(str(body), "BODY") for a in argv)
        print(f"  {name}: {shown.replace(script, 'feedback-check').replace(sys.executable, 'python')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
