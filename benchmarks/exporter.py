"""The exporter answering a real Prometheus's scrapes of 500 shops, against blackbox_exporter probing the
same 500 local endpoints. Loopback only.

    .venv/bin/python benchmarks/exporter.py --shops 500 --interval 30 --duration 180

What runs: one HTTP server (a subprocess, asyncio) answering 200 on 127.0.0.1 for 500 shop paths;
`feedback-check serve` with a 500-shop profile (--min-interval 0: every scrape probes; --lab because the
shops are on loopback; no forgery check, so one signed POST per probe plus the probe's own phases);
prometheus-blackbox-exporter with an http POST module on the same 500 URLs; a real Prometheus scraping
both (one job each, 500 targets, blackbox-style relabelling) and both exporters' own metrics. After
`--duration` seconds the script reads every scrape's `scrape_duration_seconds` and `up` from Prometheus's
HTTP API and each exporter's CPU time from /proc (user + system, all threads) over the same window.

Prints one JSON document (and a table): scrapes, failed scrapes, scrape duration median / p95 / max, CPU
seconds per probe, for both. Needs prometheus and prometheus-blackbox-exporter (Debian packages).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PASSPHRASE = "Benchmark-Sha-Out-3e7c!"


def serve_shops(port: int) -> None:
    """The shops: any request gets `200 OK` with a short body (Connection: close)."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            if length:
                await reader.readexactly(length)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nOK")
            await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError, ValueError):
            pass
        finally:
            writer.close()

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=1024)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_http(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"{url} did not answer within {timeout} s")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks      # utime + stime, all threads


def range_samples(base: str, promql: str) -> list[list[float]]:
    url = f"{base}/api/v1/query?{urllib.parse.urlencode({'query': promql})}"
    with urllib.request.urlopen(url, timeout=60) as response:
        document = json.load(response)
    return [[float(v) for _, v in series["values"]] for series in document["data"]["result"]]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shops", type=int, default=500)
    parser.add_argument("--interval", type=int, default=30, help="scrape interval, seconds")
    parser.add_argument("--duration", type=int, default=180, help="measured window, seconds")
    parser.add_argument("--serve-shops", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_shops is not None:
        serve_shops(args.serve_shops)
        return
    prometheus = shutil.which("prometheus")
    blackbox = shutil.which("prometheus-blackbox-exporter") or shutil.which("blackbox_exporter")
    if not prometheus or not blackbox:
        raise SystemExit("needs prometheus and prometheus-blackbox-exporter (apt-get install prometheus "
                         "prometheus-blackbox-exporter)")
    folder = Path(tempfile.mkdtemp(prefix="fbc-exporter-bench-"))
    shop_port, fc_port, bb_port, prom_port = free_port(), free_port(), free_port(), free_port()
    names = [f"shop-{i:04d}" for i in range(args.shops)]
    urls = [f"http://127.0.0.1:{shop_port}/{name}/postfinance/feedback" for name in names]
    profile = folder / "shops.yaml"
    profile.write_text("version: 1\nshops:\n" + "".join(
        f"  - name: {name}\n    feedback: {{urls: {{accepted: \"{url}\"}}}}\n"
        f"    signature: {{passphrase_env: BENCH_SHA_OUT}}\n    check_forgery: false\n"
        for name, url in zip(names, urls, strict=True)))
    (folder / "blackbox.yml").write_text("""modules:
  http_post_2xx:
    prober: http
    timeout: 10s
    http:
      method: POST
      valid_status_codes: [200]
      preferred_ip_protocol: ip4
      body: "orderID=FBCHECK-1&STATUS=9&SHASIGN=00"
""")
    timeout = min(args.interval - 1, 20)
    (folder / "prometheus.yml").write_text(f"""global:
  scrape_interval: {args.interval}s
  scrape_timeout: {timeout}s
scrape_configs:
  - job_name: feedback-check
    metrics_path: /probe
    static_configs:
      - targets: {json.dumps(names)}
    relabel_configs:
      - {{source_labels: [__address__], target_label: __param_shop}}
      - {{source_labels: [__param_shop], target_label: instance}}
      - {{target_label: __address__, replacement: "127.0.0.1:{fc_port}"}}
  - job_name: blackbox
    metrics_path: /probe
    params: {{module: [http_post_2xx]}}
    static_configs:
      - targets: {json.dumps(urls)}
    relabel_configs:
      - {{source_labels: [__address__], target_label: __param_target}}
      - {{source_labels: [__param_target], target_label: instance}}
      - {{target_label: __address__, replacement: "127.0.0.1:{bb_port}"}}
  - job_name: exporters
    static_configs:
      - targets: ["127.0.0.1:{fc_port}", "127.0.0.1:{bb_port}"]
""")
    env = {k: v for k, v in os.environ.items() if "PROXY" not in k.upper()}
    env["BENCH_SHA_OUT"] = PASSPHRASE
    logs = {name: open(folder / f"{name}.log", "w") for name in ("shops", "serve", "blackbox", "prometheus")}  # noqa: SIM115
    processes = {
        "shops": subprocess.Popen([sys.executable, __file__, "--serve-shops", str(shop_port)],
                                  stdout=logs["shops"], stderr=subprocess.STDOUT),
        "serve": subprocess.Popen([sys.executable, "-m", "feedback_check", "serve", "--config", str(profile), "--lab",
                                   "--listen", f"127.0.0.1:{fc_port}", "--min-interval", "0"], cwd=ROOT, env=env,
                                  stdout=logs["serve"], stderr=subprocess.STDOUT),
        "blackbox": subprocess.Popen([blackbox, f"--config.file={folder / 'blackbox.yml'}",
                                      f"--web.listen-address=127.0.0.1:{bb_port}"],
                                     stdout=logs["blackbox"], stderr=subprocess.STDOUT),
    }
    try:
        wait_http(f"http://127.0.0.1:{fc_port}/metrics")
        wait_http(f"http://127.0.0.1:{bb_port}/metrics")
        processes["prometheus"] = subprocess.Popen(
            [prometheus, f"--config.file={folder / 'prometheus.yml'}", f"--storage.tsdb.path={folder / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{prom_port}"], stdout=logs["prometheus"], stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{prom_port}"
        wait_http(f"{base}/-/ready")
        time.sleep(args.interval)                      # the first round spreads the targets over the interval
        cpu_start = {name: cpu_seconds(processes[name].pid) for name in ("serve", "blackbox")}
        time.sleep(args.duration)
        cpu = {name: cpu_seconds(processes[name].pid) - cpu_start[name] for name in ("serve", "blackbox")}
        window = f"{args.duration}s"
        results = {}
        for job, process in (("feedback-check", "serve"), ("blackbox", "blackbox")):
            durations = [v for series in range_samples(base, f'scrape_duration_seconds{{job="{job}"}}[{window}]')
                         for v in series]
            ups = [v for series in range_samples(base, f'up{{job="{job}"}}[{window}]') for v in series]
            success = [v for series in range_samples(
                base, f'{"feedback_check_success" if job == "feedback-check" else "probe_success"}'
                      f'{{job="{job}"}}[{window}]') for v in series]
            scrapes = len(ups)
            results[job] = {
                "scrapes": scrapes, "failed_scrapes": sum(1 for v in ups if v != 1),
                "probe_success_ratio": round(sum(success) / len(success), 4) if success else None,
                "scrape_seconds_median": round(statistics.median(durations), 4) if durations else None,
                "scrape_seconds_p95": round(percentile(durations, 0.95), 4) if durations else None,
                "scrape_seconds_max": round(max(durations), 4) if durations else None,
                "cpu_seconds": round(cpu[process], 2),
                "cpu_ms_per_probe": round(1000 * cpu[process] / scrapes, 2) if scrapes else None,
            }
        fc, bb = results["feedback-check"], results["blackbox"]
        results["ratio_cpu_per_probe"] = round(fc["cpu_ms_per_probe"] / bb["cpu_ms_per_probe"], 1) \
            if fc["cpu_ms_per_probe"] and bb["cpu_ms_per_probe"] else None
        results["settings"] = {"shops": args.shops, "interval_s": args.interval, "duration_s": args.duration,
                               "load_average": os.getloadavg()}
        print(json.dumps(results, indent=2))
        print("\n| exporter | scrapes | failed | success | median | p95 | max | CPU ms/probe |")
        print("|---|---|---|---|---|---|---|---|")
        for job in ("feedback-check", "blackbox"):
            r = results[job]
            print(f"| {job} | {r['scrapes']} | {r['failed_scrapes']} | {r['probe_success_ratio']} | "
                  f"{r['scrape_seconds_median']} s | {r['scrape_seconds_p95']} s | {r['scrape_seconds_max']} s | "
                  f"{r['cpu_ms_per_probe']} |")
    finally:
        for process in processes.values():
            process.terminate()
        for process in processes.values():
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
        for handle in logs.values():
            handle.close()
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
