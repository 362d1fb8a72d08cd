"""Benchmark `feedback-check logs` on a large generated access log against GoAccess and `grep -c`.

    .venv/bin/python benchmarks/logs.py --size-gb 2 --json-size-gb 1

Generates (in /tmp, deleted afterwards) a combined log of the given size where 0.1 % of the lines come
from PostFinance's published ranges (to /postfinance/feedback, some failing), and a JSON-lines log (nginx
escape=json) of the same mix; then runs, each in a fresh process, measuring wall time, CPU time (user +
system) and peak RSS with GNU time (/usr/bin/time -f '%e %U %S %M'):

- feedback-check logs FILE --path /postfinance/feedback --format json
- goaccess FILE --log-format=COMBINED (or its JSON log format) -o /tmp/report.json
- grep -c 'POST /postfinance/feedback' FILE   (the floor: one pass over the bytes)

Targets: faster than GoAccess on the same file, peak RSS under 100 MB whatever the size.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
PF_SOURCES = ["185.8.52.17", "185.8.53.201", "185.139.244.9", "185.139.246.77", "91.208.214.12"]
PATHS = ["/", "/shop/cart", "/product/1234", "/static/app.js", "/img/logo.png", "/checkout", "/search?q=x"]
AGENTS = ['"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"',
          '"Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148"',
          '"curl/8.5.0"']
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _stranger(rng: random.Random) -> str:
    first = rng.choice([o for o in range(1, 224) if o not in (91, 185)])
    return f"{first}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"


def generate(path: Path, size: int, as_json: bool, seed: int = 1) -> int:
    """Write about `size` bytes; returns the number of PostFinance lines."""
    rng = random.Random(seed)
    start = time.time() - 30 * 86400
    written, pf_lines, line_no = 0, 0, 0
    with open(path, "w", encoding="ascii", buffering=1 << 20) as out:
        while written < size:
            block = []
            for _ in range(10000):
                line_no += 1
                stamp = time.gmtime(start + line_no * 0.25)
                local = (f"{stamp.tm_mday:02d}/{MONTHS[stamp.tm_mon - 1]}/{stamp.tm_year}:"
                         f"{stamp.tm_hour:02d}:{stamp.tm_min:02d}:{stamp.tm_sec:02d} +0000")
                if line_no % 1000 == 0:
                    pf_lines += 1
                    client, method, target = rng.choice(PF_SOURCES), "POST", "/postfinance/feedback"
                    status = 500 if rng.random() < 0.05 else 200
                    agent = '"Java/1.8.0"'
                else:
                    client, method, target = _stranger(rng), "GET", rng.choice(PATHS)
                    status = rng.choice((200, 200, 200, 304, 404))
                    agent = rng.choice(AGENTS)
                size_bytes = rng.randint(200, 90000)
                seconds = f"{rng.random() * 0.5:.3f}"
                if as_json:
                    block.append(json.dumps({
                        "time_local": local, "remote_addr": client, "request": f"{method} {target} HTTP/1.1",
                        "status": str(status), "body_bytes_sent": str(size_bytes), "request_time": seconds,
                        "http_referrer": "-", "http_user_agent": agent.strip('"')}, separators=(",", ":")))
                else:
                    block.append(f'{client} - - [{local}] "{method} {target} HTTP/1.1" {status} {size_bytes} '
                                 f'"-" {agent}')
            text = "\n".join(block) + "\n"
            out.write(text)
            written += len(text)
    return pf_lines


def run(command: list[str]) -> dict[str, Any]:
    """Wall, CPU (user+sys) and peak RSS of one fresh process, measured by GNU time (a fork of this Python
    process would carry Python's own peak RSS into the child's ru_maxrss)."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as timing:
        process = subprocess.run(["/usr/bin/time", "-f", "%e %U %S %M", "-o", timing.name, *command],
                                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=REPO, check=False)
        wall, user, system, rss_kb = timing.read().split()[-4:]
    return {"wall": float(wall), "cpu": float(user) + float(system), "rss_mb": int(rss_kb) / 1024,
            "status": process.returncode, "output": process.stdout.decode(errors="replace")}


def _goaccess_json_format() -> list[str]:
    return [('--log-format={"time_local": "%d:%t %^", "remote_addr": "%h", "request": "%r", "status": "%s", '
            '"body_bytes_sent": "%b", "request_time": "%T", "http_referrer": "%R", "http_user_agent": "%u"}'),
            "--date-format=%d/%b/%Y", "--time-format=%H:%M:%S"]


def bench(path: Path, as_json: bool, expected_pf: int, repeat: int) -> dict[str, dict[str, Any]]:
    feedback_check = [sys.executable, "-m", "feedback_check", "logs", str(path), "--path", "/postfinance/feedback",
                      "--format", "json"]
    goaccess = ["goaccess", str(path), "-o", "/tmp/fbk-goaccess-report.json", "--no-progress"]
    goaccess += _goaccess_json_format() if as_json else ["--log-format=COMBINED"]
    grep = ["grep", "-c", "/postfinance/feedback", str(path)]
    results: dict[str, dict[str, Any]] = {}
    for name, command in (("feedback-check", feedback_check), ("goaccess", goaccess), ("grep -c", grep)):
        if name == "goaccess" and shutil.which("goaccess") is None:
            continue
        runs = [run(command) for _ in range(repeat)]
        best = min(runs, key=lambda r: r["wall"])
        results[name] = {**best, "rss_mb": max(r["rss_mb"] for r in runs)}
    report = json.loads(results["feedback-check"].pop("output"))
    counted = sum(p["postfinance"]["count"] for entry in report["logs"] for p in entry["paths"])
    assert counted == expected_pf, f"feedback-check counted {counted} post-sales, the file has {expected_pf}"
    for other in results.values():
        other.pop("output", None)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-gb", type=float, default=2.0)
    parser.add_argument("--json-size-gb", type=float, default=1.0)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="keep the generated files in /tmp")
    args = parser.parse_args()
    ok = True
    for label, size, as_json in (("combined", args.size_gb, False), ("json", args.json_size_gb, True)):
        if size <= 0:
            continue
        path = Path(f"/tmp/fbk-bench-{label}.log")
        try:
            t0 = time.perf_counter()
            pf = generate(path, int(size * (1 << 30)), as_json)
            print(f"{label}: generated {path.stat().st_size / (1 << 30):.2f} GiB ({pf} PostFinance lines) "
                  f"in {time.perf_counter() - t0:.0f} s", flush=True)
            results = bench(path, as_json, pf, args.repeat)
        finally:
            if not args.keep:
                path.unlink(missing_ok=True)
        for name, r in results.items():
            print(f"  {name:15} wall {r['wall']:7.2f} s  cpu {r['cpu']:7.2f} s  peak RSS {r['rss_mb']:6.1f} MB"
                  f"  exit {r['status']:.0f}", flush=True)
        fc = results["feedback-check"]
        if "goaccess" in results:
            print(f"  feedback-check / goaccess wall: {fc['wall'] / results['goaccess']['wall']:.2f}")
            ok = ok and fc["wall"] < results["goaccess"]["wall"]
        ok = ok and fc["rss_mb"] < 100
    print("targets met" if ok else "TARGETS MISSED (faster than GoAccess, < 100 MB)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
