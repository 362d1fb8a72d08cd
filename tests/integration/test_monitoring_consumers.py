"""The real consumers of feedback-check's monitoring output, run for real on loopback: Prometheus scrapes
`feedback-check serve` (blackbox-style relabelling) and node_exporter's textfile collector, and the
series are read back from Prometheus's HTTP API; promtool checks the metric names and the shipped rules
and runs their tests; Icinga 2 validates the shipped CheckCommand and apply rule; systemd-analyze scores
the shipped units. Where a tool is missing the test skips and says which package brings it (.ci/run
installs them)."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from feedback_check.platform import load_platform
from feedback_check.reporters import render
from feedback_check.reporters.prometheus import render_failure
from tests.servers.http_servers import LoopbackServer, ShaOutVerifier, answer, app
from tests.unit.test_reporters_samples import SAMPLES

ROOT = Path(__file__).resolve().parents[2]
FOLDER = ROOT / "examples" / "integrations"
PASSPHRASE = "Consumers-Sha-Out-9e2a!"


def tool(name: str, package: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed (Debian package {package}; .ci/run installs it)")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def promtool_check_metrics(text: str) -> None:
    result = subprocess.run([tool("promtool", "prometheus"), "check", "metrics"], input=text, text=True,
                            capture_output=True, timeout=60, check=False)
    assert result.returncode == 0 and not result.stdout.strip() and not result.stderr.strip(), \
        result.stdout + result.stderr


# --- promtool ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("sample", sorted(SAMPLES))
def test_promtool_accepts_the_metric_names_of_every_report(sample: str) -> None:
    promtool_check_metrics(render(SAMPLES[sample](), "prometheus"))


def test_promtool_accepts_the_failed_run_file() -> None:
    promtool_check_metrics(render_failure('profile.yaml:3: "shops" missing\nsecond line'))


def test_promtool_checks_and_tests_the_shipped_rules() -> None:
    promtool = tool("promtool", "prometheus")
    checked = subprocess.run([promtool, "check", "rules", str(FOLDER / "prometheus-alerts.yml")],
                             capture_output=True, text=True, timeout=60, check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = subprocess.run([promtool, "test", "rules", "prometheus-alerts.test.yml"], cwd=FOLDER,
                            capture_output=True, text=True, timeout=120, check=False)
    assert tested.returncode == 0 and "SUCCESS" in tested.stdout, tested.stdout + tested.stderr
    config = subprocess.run([promtool, "check", "config", "--syntax-only", "prometheus-scrape.yml"], cwd=FOLDER,
                            capture_output=True, text=True, timeout=60, check=False)
    assert config.returncode == 0, config.stdout + config.stderr


def test_rule_thresholds_are_the_platform_profiles() -> None:
    platform = load_platform()
    rules = (FOLDER / "prometheus-alerts.yml").read_text()
    assert f"/ 86400 <= {platform.cert_warning_days} > {platform.cert_critical_days}" in rules
    assert f"/ 86400 <= {platform.cert_critical_days}\n" in rules
    tests = (FOLDER / "prometheus-alerts.test.yml").read_text()
    assert f"{(platform.cert_warning_days - 1) * 86400}x" in tests and f"{(platform.cert_warning_days + 1) * 86400}x" in tests


def _user() -> str:
    import pwd
    return pwd.getpwuid(os.getuid()).pw_name


def _group() -> str:
    import grp
    return grp.getgrgid(os.getgid()).gr_name


# --- Icinga 2 ----------------------------------------------------------------------------------------

def test_icinga2_validates_the_check_command_and_makes_one_service_per_shop(tmp_path: Path) -> None:
    icinga2 = tool("icinga2", "icinga2-bin")
    cache = tmp_path / "cache"
    cache.mkdir()
    # icinga2 drops to its own user for the object cache; stay the user running the test instead.
    user = ["-DRunAsUser=" + _user(), "-DRunAsGroup=" + _group()]
    config = tmp_path / "icinga2.conf"
    config.write_text(f"""include <itl>
template Service "generic-service" {{ max_check_attempts = 3 }}
object Host "shop-web-1" {{
  check_command = "dummy"
  vars.postfinance_shops["shop-ch"] = {{ feedback_check_config = [ "/etc/feedback-check/feedback-check.yaml" ] }}
  vars.postfinance_shops["shop-de"] = {{ feedback_check_warning_time = 3, feedback_check_certificate = "30,14" }}
}}
object Host "no-shop" {{ check_command = "dummy" }}
include "{FOLDER / 'icinga2-feedback-check.conf'}"
""")
    validated = subprocess.run([icinga2, "daemon", "-C", "-c", str(config), f"-DCacheDir={cache}", *user],
                               capture_output=True, text=True, timeout=120, check=False)
    assert validated.returncode == 0, validated.stdout + validated.stderr
    assert "Instantiated 2 Services" in validated.stdout
    listed = subprocess.run([icinga2, "object", "list", "--type", "Service", f"-DCacheDir={cache}", *user],
                            capture_output=True, text=True, timeout=60, check=False)
    assert listed.returncode == 0, listed.stderr
    assert "Object 'shop-web-1!postfinance-feedback-shop-ch'" in listed.stdout
    assert 'feedback_check_shop = "shop-de"' in listed.stdout and 'feedback_check_certificate = "30,14"' in listed.stdout


# --- systemd -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("unit", ["feedback-check.service", "feedback-check-textfile.service",
                                  "feedback-check-exporter.service"])
def test_systemd_units_score_below_two(unit: str, tmp_path: Path) -> None:
    analyze = tool("systemd-analyze", "systemd")
    program = Path(sys.executable).with_name("feedback-check")
    text = (FOLDER / unit).read_text().replace("/usr/local/bin/feedback-check", str(program))
    (tmp_path / unit).write_text(text)
    result = subprocess.run([analyze, "security", "--offline=yes", str(tmp_path / unit)], capture_output=True,
                            text=True, timeout=60, check=False)
    match = re.search(r"Overall exposure level for \S+: ([0-9.]+)", result.stdout)
    assert match, result.stdout + result.stderr
    assert float(match.group(1)) < 2.0, result.stdout
    verified = subprocess.run([analyze, "verify", str(tmp_path / unit)], capture_output=True, text=True,
                              timeout=60, check=False)
    complaints = [line for line in (verified.stdout + verified.stderr).splitlines()
                  if line.strip() and "Failed to connect to bus" not in line]
    assert verified.returncode == 0 and not complaints, complaints


# --- Prometheus scraping serve and the textfile ------------------------------------------------------

class Process:
    def __init__(self, argv: list[str], env: dict[str, str] | None = None, log: Path | None = None) -> None:
        self.log = log
        self.handle = open(log, "w") if log else subprocess.DEVNULL  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(argv, stdout=self.handle, stderr=subprocess.STDOUT, env=env)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        if self.log:
            self.handle.close()  # type: ignore[union-attr]


def wait_http(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"{url} did not answer within {timeout} s")


def query(base: str, promql: str) -> list[dict[str, object]]:
    url = f"{base}/api/v1/query?{urllib.parse.urlencode({'query': promql})}"
    with urllib.request.urlopen(url, timeout=10) as response:
        document = json.load(response)
    assert document["status"] == "success", document
    result: list[dict[str, object]] = document["data"]["result"]
    return result


def wait_query(base: str, promql: str, timeout: float = 60) -> list[dict[str, object]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = query(base, promql)
        if result:
            return result
        time.sleep(0.5)
    raise AssertionError(f"no result for {promql} within {timeout} s")


@pytest.fixture
def shops() -> Iterator[tuple[LoopbackServer, LoopbackServer]]:
    with LoopbackServer(app({"/fb": ShaOutVerifier(PASSPHRASE)})) as good, \
            LoopbackServer(app({"/fb": answer(500, b"boom")})) as bad:
        yield good, bad


def test_prometheus_scrapes_the_exporter_and_the_textfile(tmp_path: Path,
                                                         shops: tuple[LoopbackServer, LoopbackServer]) -> None:
    prometheus = tool("prometheus", "prometheus")
    node_exporter = shutil.which("prometheus-node-exporter") or shutil.which("node_exporter")
    if node_exporter is None:
        pytest.skip("prometheus-node-exporter is not installed (Debian package prometheus-node-exporter)")
    good, bad = shops
    profile = tmp_path / "profile.yaml"
    profile.write_text(f"""version: 1
shops:
  - name: shop-ok
    feedback: {{urls: {{accepted: "{good.url('/fb')}"}}}}
    signature: {{passphrase_env: CONSUMERS_SHA_OUT}}
  - name: shop-broken
    feedback: {{urls: {{accepted: "{bad.url('/fb')}"}}}}
    signature: {{passphrase_env: CONSUMERS_SHA_OUT}}
""")
    env = {k: v for k, v in os.environ.items() if "PROXY" not in k.upper()}
    env["CONSUMERS_SHA_OUT"] = PASSPHRASE
    textfiles = tmp_path / "textfile"
    textfiles.mkdir()
    written = subprocess.run([sys.executable, "-m", "feedback_check", "check", "--config", str(profile), "--lab",
                              "--format", "prometheus", "--output", str(textfiles / "feedback_check.prom")],
                             env=env, capture_output=True, text=True, timeout=120, check=False)
    assert written.returncode == 2, written.stderr
    failed = subprocess.run([sys.executable, "-m", "feedback_check", "check", "--config", str(tmp_path / "nope.yaml"),
                             "--format", "prometheus", "--output", str(textfiles / "feedback_check_failed.prom")],
                            env=env, capture_output=True, text=True, timeout=120, check=False)
    assert failed.returncode == 3
    exporter_port, node_port, prometheus_port = free_port(), free_port(), free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(f"""global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files: [{FOLDER / 'prometheus-alerts.yml'}]
scrape_configs:
  - job_name: feedback-check
    metrics_path: /probe
    static_configs:
      - targets: [shop-ok, shop-broken]
    relabel_configs:
      - source_labels: [__address__]
        target_label: __param_shop
      - source_labels: [__param_shop]
        target_label: instance
      - target_label: __address__
        replacement: 127.0.0.1:{exporter_port}
  - job_name: feedback-check-exporter
    static_configs:
      - targets: [127.0.0.1:{exporter_port}]
  - job_name: node
    static_configs:
      - targets: [127.0.0.1:{node_port}]
""")
    processes = [
        Process([sys.executable, "-m", "feedback_check", "serve", "--config", str(profile), "--lab",
                 "--listen", f"127.0.0.1:{exporter_port}", "--min-interval", "5"], env=env, log=tmp_path / "serve.log"),
        Process([node_exporter, "--collector.disable-defaults", "--collector.textfile",
                 f"--collector.textfile.directory={textfiles}", f"--web.listen-address=127.0.0.1:{node_port}"],
                log=tmp_path / "node.log"),
        Process([prometheus, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                 f"--web.listen-address=127.0.0.1:{prometheus_port}"], log=tmp_path / "prometheus.log"),
    ]
    base = f"http://127.0.0.1:{prometheus_port}"
    try:
        wait_http(f"{base}/-/ready")
        ok = wait_query(base, 'feedback_check_success{job="feedback-check",instance="shop-ok"}')
        assert ok[0]["value"][1] == "1"   # type: ignore[index]
        broken = wait_query(base, 'feedback_check_success{job="feedback-check",instance="shop-broken"}')
        assert broken[0]["value"][1] == "0"   # type: ignore[index]
        status = wait_query(base, 'feedback_check_http_status_code{job="feedback-check",shop="shop-broken"}')
        assert status[0]["value"][1] == "500"   # type: ignore[index]
        textfile = wait_query(base, 'feedback_check_verdict{job="node",shop="shop-broken"}')
        assert textfile[0]["value"][1] == "2"   # type: ignore[index]
        down = wait_query(base, 'feedback_check_up{job="node"} == 0')
        assert "nope.yaml" in down[0]["metric"]["reason"]   # type: ignore[index]
        assert query(base, 'up{job="feedback-check"} == 0') == [], "every probe scrape succeeded"
        own = wait_query(base, 'feedback_check_exporter_probe_duration_seconds_count{job="feedback-check-exporter"}')
        assert float(own[0]["value"][1]) >= 1   # type: ignore[index]
        with urllib.request.urlopen(f"{base}/api/v1/rules", timeout=10) as response:
            rules = json.load(response)
        names = {r["name"] for g in rules["data"]["groups"] for r in g["rules"]}
        assert {"PostFinanceFeedbackWouldFail", "FeedbackCheckUnknown", "FeedbackCheckNotRunning"} <= names
        assert all(r["health"] == "ok" for g in rules["data"]["groups"] for r in g["rules"]), rules
    finally:
        for process in reversed(processes):
            process.stop()
    assert PASSPHRASE not in (tmp_path / "serve.log").read_text()
