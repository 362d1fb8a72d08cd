"""Benchmark: many shop URLs on 127.0.0.1, each answered after 200 ms by a separate server process;
feedback-check against its peers in the same run, as ratios.

Set-up from a fresh clone (non-editable install; the peers are Debian packages):

    apt-get -o DPkg::Lock::Timeout=900 install -y -qq curl prometheus-blackbox-exporter
    python3 -m venv /tmp/bench && /tmp/bench/bin/pip install '.[fast]'
    /tmp/bench/bin/python benchmarks/concurrency.py [--shops 500] [--growth 50,500,2000,5000] [--rounds 3]

The target (benchmarks/delayed_server.py) runs in its own process and answers every request 200 ms
after reading it. Every measured program runs in a fresh process; its CPU time (user + sys) comes from
its own rusage (wait4, in a small intermediate process: see SPAWN), its peak RSS from ru_maxrss; blackbox_exporter is a server, so its CPU is read
from /proc before and after the probes, and the driver that sends its /probe requests is counted
apart. Only 127.0.0.1 is contacted. A child that fails stops the benchmark with its stderr.

Part 1, `--shops` URLs (rounds interleaved, medians): feedback-check `check` default (forged-signature
check on: two requests per URL) and `--no-forgery-check`; `curl --parallel --parallel-max N` (one POST
per URL); blackbox_exporter (one POST per /probe, its config written by this script); the minimal
asyncio client of benchmarks/minimal_client.py (the same exchange as the probe, nothing else).
Part 2, growth (default run at each size, once each; the largest last): CPU per URL, peak RSS, and false
findings - http.slow / http.timeout against a server that answers in 200 ms, and forged-signature checks
lost (the server accepts everything, so every URL must get signature.forgery_accepted).
Part 1 also runs `--no-forgery-check` on a tenth of the shops in every round: the difference of the two
runs' CPU over the difference of their URL counts is the marginal CPU per URL (start-up, imports and the
fixed part of rendering cancel out, as blackbox_exporter's start-up is not in its figure either).
Part 3, cold start: `feedback-check --version` against `python -c pass`, and one HTTPS `probe` against
one `curl` POST to a local HTTPS server (certificate generated here) and against the imports alone that
any HTTPS probe in this stack needs (IMPORT_FLOOR), and against the runtime floor of any asyncio HTTPS
client in CPython (ASYNCIO_FLOOR: `import asyncio, ssl`, nothing of the tool).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
PASSPHRASE_ENV = "BENCH_SHA_OUT"
BODY = ("orderID=FBCHECK-1&amount=1&currency=CHF&PM=CreditCard&ACCEPTANCE=TEST&STATUS=9&PAYID=5999375453"
        "&NCERROR=0&BRAND=VISA&SHASIGN=" + "A" * 128)


def fail(what: str, result: subprocess.CompletedProcess[bytes] | None = None, stderr: bytes = b"") -> None:
    err = stderr or (result.stderr if result is not None and result.stderr else b"")
    raise SystemExit(f"benchmark failed: {what}\n--- child stderr ---\n{err.decode(errors='replace')[-4000:]}")


@dataclass
class Measured:
    wall: float
    cpu: float
    rss_mb: float
    stdout: bytes


#: Started (without site-packages) between the benchmark and each measured program: it forks and execs
#: the program and reports the program's wall, CPU and peak RSS. Linux carries a process's peak RSS over
#: exec, and a child started from this benchmark (vfork or fork) would inherit the benchmark's own peak
#: (tens of MB once it has read the big runs' output) as its floor; a grandchild forked from this small
#: process inherits about 10 MB instead, well under the smallest program measured.
SPAWN = r"""
import os, sys, time
fd, argv = int(sys.argv[1]), sys.argv[2:]
start = time.perf_counter()
pid = os.fork()
if pid == 0:
    try:
        os.execvp(argv[0], argv)
    finally:
        os._exit(127)
_, status, usage = os.wait4(pid, 0)
wall = time.perf_counter() - start
os.write(fd, f"{wall} {usage.ru_utime + usage.ru_stime} {usage.ru_maxrss}".encode())
code = os.waitstatus_to_exitcode(status)
os._exit(code if code >= 0 else 128 - code)
"""


def measure(argv: list[str], *, env: dict[str, str] | None = None, ok: tuple[int, ...] = (0,),
            cwd: str | None = None) -> Measured:
    """Run `argv` in a fresh process (through SPAWN): its wall, own CPU (user+sys) and peak RSS; fails loudly."""
    read, write = os.pipe()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        try:
            process = subprocess.Popen([sys.executable, "-S", "-c", SPAWN, str(write), *argv], stdout=out,
                                       stderr=err, env=env, cwd=cwd, pass_fds=(write,))
        finally:
            os.close(write)
        with os.fdopen(read, "rb") as report:
            figures = report.read().split()
        code = process.wait()
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if code not in ok or len(figures) != 3:
        fail(f"{' '.join(argv[:4])}... exited {code}", stderr=stderr)
    wall, cpu, maxrss_kb = (float(f) for f in figures)
    return Measured(wall, cpu, maxrss_kb / 1024, stdout)


class Server:
    """benchmarks/delayed_server.py in its own process."""

    def __init__(self, delay: float, cert: Path | None = None, key: Path | None = None) -> None:
        argv = [sys.executable, str(HERE / "delayed_server.py"), "--delay", str(delay)]
        if cert and key:
            argv += ["--cert", str(cert), "--key", str(key)]
        self.process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert self.process.stdout is not None
        line = self.process.stdout.readline().decode()
        if not line.startswith("PORT "):
            self.process.kill()
            fail("the target server did not start", stderr=self.process.stderr.read() if self.process.stderr else b"")
        self.port = int(line.split()[1])

    def requests(self) -> int:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/__requests", timeout=10) as answer:
            return int(answer.read())

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


def tool(name: str) -> str:
    """A console script of this interpreter's environment (the installed feedback-check)."""
    path = Path(sys.executable).with_name(name)
    if not path.exists():
        raise SystemExit(f"{path} not found: install feedback-check into this interpreter's environment first")
    return str(path)


def write_profile(folder: Path, port: int, shops: int, scheme: str = "http") -> Path:
    lines = ["version: 1", "shops:"]
    for i in range(shops):
        lines += [f"  - name: shop-{i:04d}", "    feedback:", "      timing: always_deferred", "      method: POST",
                  "      urls:", f"        accepted: {scheme}://127.0.0.1:{port}/shop-{i:04d}/feedback",
                  "    signature:", "      algorithm: SHA-512", f"      passphrase_env: {PASSPHRASE_ENV}"]
    path = folder / f"bench-{shops}.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


@dataclass
class CheckRun:
    measured: Measured
    urls: int
    slow: int
    timeouts: int
    forgery_found: int
    median_total: float | None
    lag_notes: int


def run_check(profile: Path, urls: int, *extra: str) -> CheckRun:
    env = {**os.environ, PASSPHRASE_ENV: "benchmark-passphrase"}
    argv = [tool("feedback-check"), "check", "--config", str(profile), "--lab", "--format", "json", *extra]
    measured = measure(argv, env=env, ok=(0, 1, 2))
    report = json.loads(measured.stdout)
    codes = [f["code"] for f in report["findings"]]
    totals = sorted(t["timings"]["total"] for t in report["targets"] if t["timings"].get("total") is not None)
    return CheckRun(measured, urls, codes.count("http.slow"), codes.count("http.timeout"),
                    codes.count("signature.forgery_accepted"), statistics.median(totals) if totals else None,
                    sum("lagged" in note for note in report["notes"]))


def run_curl(folder: Path, port: int, urls: int) -> Measured:
    config = folder / f"curl-{urls}.cfg"
    config.write_text("".join(f'url = "http://127.0.0.1:{port}/shop-{i:04d}/feedback"\ndata = "{BODY}"\n'
                              f'output = "/dev/null"\n' for i in range(urls)))
    return measure(["curl", "--silent", "--show-error", "--fail", "--parallel", "--parallel-max", str(urls),
                    "--config", str(config)])


def blackbox_config(folder: Path) -> Path:
    path = folder / "blackbox.yml"
    path.write_text(json.dumps({"modules": {"post_sale": {"prober": "http", "timeout": "10s", "http": {
        "method": "POST", "headers": {"Content-Type": "application/x-www-form-urlencoded"}, "body": BODY,
        "valid_status_codes": [200], "preferred_ip_protocol": "ip4", "ip_protocol_fallback": False}}}}))
    return path


def _proc_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


DRIVER = r"""
import asyncio, sys, time
port, target_port, urls = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
async def probe(i):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    target = f"http://127.0.0.1:{target_port}/shop-{i:04d}/feedback"
    writer.write(f"GET /probe?module=post_sale&target={target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    data = await reader.read()
    writer.close()
    return b"probe_success 1" in data
async def main():
    return sum(await asyncio.gather(*(probe(i) for i in range(urls))))
print(asyncio.run(main()))
"""


def run_blackbox(folder: Path, port: int, urls: int) -> tuple[float, float, float, int]:
    """(wall, exporter CPU, driver CPU, successful probes) of `urls` concurrent /probe requests."""
    exporter = shutil.which("prometheus-blackbox-exporter") or shutil.which("blackbox_exporter")
    if exporter is None:
        raise SystemExit("blackbox_exporter not installed: apt-get -o DPkg::Lock::Timeout=900 install -y -qq "
                         "prometheus-blackbox-exporter")
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        listen = s.getsockname()[1]
    process = subprocess.Popen([exporter, f"--config.file={blackbox_config(folder)}",
                                f"--web.listen-address=127.0.0.1:{listen}", "--log.level=error"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{listen}/metrics", timeout=1).close()
                break
            except OSError:
                if process.poll() is not None:
                    fail("blackbox_exporter exited", stderr=process.stderr.read() if process.stderr else b"")
                time.sleep(0.1)
        before = _proc_cpu(process.pid)
        driver = measure([sys.executable, "-c", DRIVER, str(listen), str(port), str(urls)])
        exporter_cpu = _proc_cpu(process.pid) - before
    finally:
        process.terminate()
        process.wait(10)
    return driver.wall, exporter_cpu, driver.cpu, int(driver.stdout)


def run_minimal(port: int, urls: int, *extra: str) -> Measured:
    return measure([sys.executable, str(HERE / "minimal_client.py"), "--port", str(port), "--shops", str(urls),
                    "--concurrency", str(urls), *extra])


def median(values: list[float]) -> float:
    return statistics.median(values)


def self_signed(folder: Path) -> tuple[Path, Path]:
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=90))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


BREAKDOWN = r"""
import json, resource, sys, time
t0 = time.perf_counter()
from feedback_check.platform import load_platform
from feedback_check.profile import load_profile
from feedback_check.runner import CheckOptions, run_check
from feedback_check.reporters import render
t1 = time.perf_counter()
platform = load_platform()
profile = load_profile(sys.argv[1], platform)
t2 = time.perf_counter()
report = run_check([profile], platform, CheckOptions(lab=True, check_forgery=True))
t3 = time.perf_counter()
text = render(report, "json")
t4 = time.perf_counter()
print(json.dumps({"imports": t1 - t0, "profile": t2 - t1, "run": t3 - t2, "render_json": t4 - t3,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def breakdown(profile: Path) -> dict[str, float]:
    """Where the time of one default run goes, inside a fresh process. `-P` and a neutral working
    directory: the repository root on sys.path would hide the installed package (its feedback_check/
    has no config/ inside)."""
    env = {**os.environ, PASSPHRASE_ENV: "benchmark-passphrase"}
    with tempfile.TemporaryDirectory() as cwd:
        result = subprocess.run([sys.executable, "-P", "-c", BREAKDOWN, str(profile)], capture_output=True,
                                env=env, cwd=cwd, check=False)
    if result.returncode != 0:
        fail("breakdown", result)
    data: dict[str, float] = json.loads(result.stdout)
    return data


#: What any HTTPS probe must import whatever the tool does around it: the event loop, TLS, the command
#: line, the YAML platform profile's parser, the certificate parser the TLS findings need.
IMPORT_FLOOR = "import asyncio, ssl, click, yaml, cryptography.x509, cryptography.x509.verification"
#: What any asyncio HTTPS client in CPython starts with, whatever else it imports (issue 10 asks for an
#: asyncio probe, uvloop optional): the lowest wall a probe of this design can have.
ASYNCIO_FLOOR = "import asyncio, ssl"


def cold_start(folder: Path, rounds: int) -> dict[str, float]:
    """Medians: bare python, --version, one HTTPS probe, one curl POST (seconds)."""
    cert, key = self_signed(folder)
    server = Server(0.0, cert, key)
    url = f"https://127.0.0.1:{server.port}/feedback"
    env = {**os.environ, PASSPHRASE_ENV: "benchmark-passphrase"}
    times: dict[str, list[float]] = {"python": [], "asyncio": [], "floor": [], "version": [], "probe": [],
                                     "curl": []}
    try:
        for _ in range(rounds + 1):              # the first round warms the page cache and is dropped
            sample = {
                "python": measure([sys.executable, "-c", "pass"]).wall,
                "asyncio": measure([sys.executable, "-c", ASYNCIO_FLOOR]).wall,
                "floor": measure([sys.executable, "-c", IMPORT_FLOOR]).wall,
                "version": measure([tool("feedback-check"), "--version"]).wall,
                "probe": measure([tool("feedback-check"), "probe", url, "--ca-bundle", str(cert), "--lab",
                                  "--passphrase-env", PASSPHRASE_ENV, "--format", "json"], env=env,
                                 ok=(0, 1, 2)).wall,
                "curl": measure(["curl", "--silent", "--fail", "--cacert", str(cert), "--data", BODY, "--output",
                                 "/dev/null", url]).wall,
            }
            if _:
                for name, value in sample.items():
                    times[name].append(value)
    finally:
        server.stop()
    return {name: median(values) for name, values in times.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shops", type=int, default=500)
    parser.add_argument("--delay", type=float, default=0.2)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds of part 1 (medians)")
    parser.add_argument("--growth", default="50,500,2000,5000", help="shop counts of part 2 ('' to skip)")
    parser.add_argument("--cold-rounds", type=int, default=7)
    args = parser.parse_args()
    if shutil.which("curl") is None:
        raise SystemExit("curl not installed: apt-get -o DPkg::Lock::Timeout=900 install -y -qq curl")
    n = args.shops
    print(f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start; "
          f"server delay {args.delay * 1000:.0f} ms (separate process); {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    server = Server(args.delay)
    rows: dict[str, list[tuple[float, float]]] = {}
    extra: dict[str, list[float]] = {"blackbox_driver": [], "blackbox_ok": [], "no_forgery_small_cpu": []}
    checks: dict[str, list[CheckRun]] = {"default": [], "no_forgery": []}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            profile = write_profile(folder, server.port, n)
            small = max(1, n // 10)
            small_profile = write_profile(folder, server.port, small)
            for _ in range(args.rounds):
                for label, flags in (("default", ()), ("no_forgery", ("--no-forgery-check",))):
                    run = run_check(profile, n, *flags)
                    checks[label].append(run)
                    rows.setdefault(f"feedback-check check ({label.replace('_', ' ')})", []).append(
                        (run.measured.wall, run.measured.cpu))
                small_run = run_check(small_profile, small, "--no-forgery-check")
                extra["no_forgery_small_cpu"].append(small_run.measured.cpu)
                curl = run_curl(folder, server.port, n)
                rows.setdefault(f"curl --parallel --parallel-max {n} (1 POST per URL)", []).append((curl.wall, curl.cpu))
                wall, cpu, driver_cpu, ok = run_blackbox(folder, server.port, n)
                rows.setdefault("blackbox_exporter (1 POST per /probe; exporter CPU only)", []).append((wall, cpu))
                extra["blackbox_driver"].append(driver_cpu)
                extra["blackbox_ok"].append(ok)
                for label, flags in (("minimal asyncio client (signed + forged POST, 1 connection)", ()),
                                     ("minimal asyncio client, signed POST only", ("--no-forgery",))):
                    minimal = run_minimal(server.port, n, *flags)
                    rows.setdefault(label, []).append((minimal.wall, minimal.cpu))
            parts = breakdown(profile)
            growth: list[tuple[int, CheckRun]] = []
            for size in sorted(int(s) for s in args.growth.split(",") if s.strip()):
                growth.append((size, run_check(write_profile(folder, server.port, size), size)))
            cold = cold_start(folder, args.cold_rounds) if args.cold_rounds > 0 else None
    finally:
        server.stop()

    def med(label: str) -> tuple[float, float]:
        values = rows[label]
        return median([v[0] for v in values]), median([v[1] for v in values])

    print(f"\n## {n} shops, medians of {args.rounds} interleaved rounds\n")
    print("| run | wall s | CPU s | CPU ms per URL | CPU vs feedback-check --no-forgery-check |")
    print("|---|---:|---:|---:|---:|")
    ours = med("feedback-check check (no forgery)")[1]
    for label in rows:
        wall, cpu = med(label)
        print(f"| {label} | {wall:.2f} | {cpu:.2f} | {cpu / n * 1000:.2f} | {cpu / ours:.2f} |")
    print(f"\nblackbox_exporter: its driver used {median(extra['blackbox_driver']):.2f} s CPU more; "
          f"successful probes {min(extra['blackbox_ok']):.0f}/{n}.")
    default, bare = med("feedback-check check (default)"), med("feedback-check check (no forgery)")
    box = med("blackbox_exporter (1 POST per /probe; exporter CPU only)")
    curl = med(f"curl --parallel --parallel-max {n} (1 POST per URL)")
    minimal = med("minimal asyncio client (signed + forged POST, 1 connection)")
    print(f"Ratios (CPU): default / minimal client {default[1] / minimal[1]:.2f}; --no-forgery-check / "
          f"blackbox_exporter {bare[1] / box[1]:.2f}; --no-forgery-check / curl {bare[1] / curl[1]:.1f}. "
          f"Wall: default / minimal client {default[0] / minimal[0]:.2f}; --no-forgery-check / curl "
          f"{bare[0] / curl[0]:.2f}.")
    for label, runs in checks.items():
        print(f"feedback-check {label}: http.slow {max(r.slow for r in runs)}, http.timeout "
              f"{max(r.timeouts for r in runs)}, median request total "
              f"{median([r.median_total or 0 for r in runs]) * 1000:.0f} ms, peak RSS "
              f"{max(r.measured.rss_mb for r in runs):.0f} MB")
    print(f"Targets ({n} shops): default CPU <= 1.2 s: {default[1]:.2f} s; default wall <= 1.5 s: {default[0]:.2f} s; "
          f"--no-forgery-check CPU per URL <= blackbox_exporter's: {bare[1] / n * 1000:.2f} vs {box[1] / n * 1000:.2f} ms")
    small = max(1, n // 10)
    if n > small:
        marginal = (bare[1] - median(extra["no_forgery_small_cpu"])) / (n - small) * 1000
        print(f"Marginal CPU per URL of --no-forgery-check (its {n}-shop run minus its {small}-shop run, same rounds; "
              f"start-up, imports and the fixed part of rendering cancel out, as blackbox_exporter's start-up is "
              f"not counted): {marginal:.2f} ms vs blackbox_exporter {box[1] / n * 1000:.2f} ms "
              f"({marginal / (box[1] / n * 1000):.2f}x)")
    print(f"\nOne default run in-process: imports {parts['imports']:.2f} s · profile {parts['profile']:.2f} s · "
          f"run {parts['run']:.2f} s · render json {parts['render_json']:.2f} s · peak RSS {parts['peak_rss_mb']:.0f} MB")
    if growth:
        print("\n## Growth (default run, forged-signature check on)\n")
        print("| shops | wall s | CPU s | CPU ms per URL | peak RSS MB | RSS KB per URL over 50 shops | median total ms "
              "| http.slow | http.timeout | forgery checks lost | lag notes |")
        print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        base = growth[0]
        for size, run in growth:
            per_url_rss = (run.measured.rss_mb - base[1].measured.rss_mb) * 1024 / (size - base[0]) \
                if size != base[0] else 0.0
            print(f"| {size} | {run.measured.wall:.2f} | {run.measured.cpu:.2f} | {run.measured.cpu / size * 1000:.2f} "
                  f"| {run.measured.rss_mb:.0f} | {per_url_rss:.1f} | {(run.median_total or 0) * 1000:.0f} | {run.slow} "
                  f"| {run.timeouts} | {size - run.forgery_found} | {run.lag_notes} |")
    if cold is None:
        return 0
    print("\n## Cold start (medians)\n")
    print(f"`python -c pass` {cold['python'] * 1000:.0f} ms; `feedback-check --version` {cold['version'] * 1000:.0f} ms "
          f"(+{(cold['version'] - cold['python']) * 1000:.0f} ms); one HTTPS `probe` {cold['probe'] * 1000:.0f} ms vs "
          f"one `curl` POST {cold['curl'] * 1000:.0f} ms ({cold['probe'] / cold['curl']:.1f}×); the imports alone "
          f"(`python -c '{IMPORT_FLOOR}'`) {cold['floor'] * 1000:.0f} ms ({cold['floor'] / cold['curl']:.1f}× curl); "
          f"the asyncio runtime floor (`python -c '{ASYNCIO_FLOOR}'`) {cold['asyncio'] * 1000:.0f} ms "
          f"({cold['asyncio'] / cold['curl']:.1f}× curl)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
