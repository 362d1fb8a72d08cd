"""`feedback-check serve` against real shop servers on 127.0.0.1: what /probe answers, what it refuses,
the per-target cache, the scrape timeout, the firewall module, modules with targets, reload (HTTP and
SIGHUP) and the exporter's own /metrics. Every answer is parsed with prometheus_client's parser."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from feedback_check.exporter.probes import ProbeSettings
from feedback_check.exporter.server import Exporter, make_server
from feedback_check.platform import load_platform
from tests.servers.http_servers import LoopbackServer, ShaOutVerifier, app, never_answers

PASSPHRASE = "Exporter-Sha-Out-5c1d!"
ROOT = Path(__file__).resolve().parents[2]


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(text: str, name: str, **labels: str) -> float:
    got = samples(text)
    matching = [v for (n, ls), v in got.items() if n == name and all(dict(ls).get(k) == w for k, w in labels.items())]
    assert matching, f"no {name}{labels} in:\n{text}"
    return matching[0]


def get(url: str, headers: dict[str, str] | None = None, method: str = "GET") -> tuple[int, str]:
    request = urllib.request.Request(url, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def write_profile(folder: Path, shop_url: str, module_url: str, *, extra_shop: str = "") -> Path:
    path = folder / "exporter.yaml"
    rules = folder / "allowlist.txt"
    rules.write_text("185.139.244.0/22\n91.208.214.0/24\n185.8.52.0/22\n", encoding="utf-8")
    path.write_text(f"""version: 1
shops:
  - name: shop-ok
    feedback:
      urls: {{accepted: "{shop_url}"}}
    signature: {{passphrase_env: EXPORTER_SHA_OUT}}
    firewall:
      - {{type: plain, file: {rules}}}
{extra_shop}
modules:
  staging:
    targets: ["{module_url}"]
    role: rejected
    method: POST
    algorithm: SHA-512
    passphrase_env: EXPORTER_SHA_OUT
    lab: true
  broken-trust:
    targets: ["https://127.0.0.1:9/pf"]
    ca_bundle: missing-ca.pem
    lab: true
""", encoding="utf-8")
    return path


class Running:
    def __init__(self, exporter: Exporter, base: str) -> None:
        self.exporter = exporter
        self.base = base

    def get(self, path: str, **kwargs: object) -> tuple[int, str]:
        return get(self.base + path, **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def shop() -> Iterator[LoopbackServer]:
    with LoopbackServer(app({"/fb": ShaOutVerifier(PASSPHRASE), "/staging": ShaOutVerifier(PASSPHRASE)})) as server:
        yield server


def start(profile: Path, *, min_interval: float = 60.0) -> tuple[Running, object]:
    os.environ["EXPORTER_SHA_OUT"] = PASSPHRASE
    exporter = Exporter([str(profile)], load_platform, ProbeSettings(lab=True, min_interval=min_interval))
    server = make_server(exporter, "127.0.0.1:0")
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    host, port = server.server_address[:2]
    return Running(exporter, f"http://{host!s}:{port}"), server


@pytest.fixture
def running(tmp_path: Path, shop: LoopbackServer) -> Iterator[Running]:
    profile = write_profile(tmp_path, shop.url("/fb"), shop.url("/staging"))
    exporter, server = start(profile)
    yield exporter
    server.shutdown()  # type: ignore[attr-defined]
    server.server_close()  # type: ignore[attr-defined]
    os.environ.pop("EXPORTER_SHA_OUT", None)


def test_probe_shop_answers_the_textfile_model(running: Running, shop: LoopbackServer) -> None:
    status, text = running.get("/probe?shop=shop-ok")
    assert status == 200
    assert value(text, "feedback_check_success", shop="shop-ok") == 1
    assert value(text, "feedback_check_http_status_code", shop="shop-ok", address="127.0.0.1") == 200
    assert value(text, "feedback_check_result_age_seconds") < 5
    assert not any(n == "feedback_check_published_addresses" for n, _ in samples(text)), \
        "the firewall is its own module"
    assert any(r.path == "/fb" for r in shop.requests)
    assert PASSPHRASE not in text


def test_results_are_cached_for_the_minimum_interval(running: Running, shop: LoopbackServer) -> None:
    running.get("/probe?shop=shop-ok")
    count = len(shop.requests)
    status, _text = running.get("/probe?shop=shop-ok")
    assert status == 200 and len(shop.requests) == count, "a second scrape inside the interval posts nothing"
    own = running.get("/metrics")[1]
    assert value(own, "feedback_check_exporter_probes_total", result="cached") == 1
    assert value(own, "feedback_check_exporter_probes_total", result="run") == 1


def test_concurrent_scrapes_of_one_target_run_one_probe(running: Running, shop: LoopbackServer) -> None:
    results: list[int] = []
    threads = [threading.Thread(target=lambda: results.append(running.get("/probe?shop=shop-ok")[0]))
               for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [200] * 5
    own = running.get("/metrics")[1]
    assert value(own, "feedback_check_exporter_probes_total", result="run") == 1


@pytest.mark.parametrize(("path", "status", "says"), [
    ("/probe?shop=nope", 404, "unknown shop"),
    ("/probe?target=http://127.0.0.1:9/anything&module=staging", 404, "not configured"),
    ("/probe?target=http://127.0.0.1:9/x&module=nope", 400, "unknown module"),
    ("/probe?target=http://127.0.0.1:9/x", 400, "needs module"),
    ("/probe?shop=shop-ok&passphrase=secret", 400, "unknown parameter 'passphrase'"),
    ("/probe?shop=shop-ok&module=staging", 400, "unknown module"),
    ("/probe?shop=shop-ok&shop=other", 400, "twice"),
    ("/probe", 400, "give shop"),
    ("/nothing", 404, "not found"),
])
def test_only_configured_shops_and_targets_are_probed(running: Running, shop: LoopbackServer, path: str,
                                                      status: int, says: str) -> None:
    got, text = running.get(path)
    assert (got, says in text) == (status, True), text
    assert not shop.requests, "nothing was sent for a refused probe"


def test_module_probes_a_listed_target_with_its_settings(running: Running, shop: LoopbackServer) -> None:
    status, text = running.get(f"/probe?module=staging&target={shop.url('/staging')}")
    assert status == 200, text
    assert value(text, "feedback_check_success") == 1
    assert value(text, "feedback_check_verdict", role="rejected") <= 1
    staging = [r for r in shop.requests if r.path == "/staging"]
    assert staging and staging[0].method == "POST"
    assert "STATUS=1" in staging[0].body.decode() or "STATUS=2" in staging[0].body.decode()   # rejected


def test_a_probe_that_cannot_run_answers_up_zero_with_the_reason(running: Running) -> None:
    status, text = running.get("/probe?module=broken-trust&target=https://127.0.0.1:9/pf")
    assert status == 200, text
    assert value(text, "feedback_check_up") == 0
    assert "missing-ca.pem" in next(dict(k[1])["reason"] for k in samples(text) if k[0] == "feedback_check_up")
    assert value(text, "feedback_check_run_verdict") == 3


def test_firewall_is_its_own_module(running: Running, shop: LoopbackServer) -> None:
    status, text = running.get("/probe?shop=shop-ok&module=firewall")
    assert status == 200, text
    assert value(text, "feedback_check_published_addresses_blocked", shop="shop-ok") == 0
    assert value(text, "feedback_check_published_addresses", shop="shop-ok") > 0
    assert not shop.requests, "the firewall module sends no post-sale"


def test_scrape_timeout_header_bounds_the_probe(tmp_path: Path) -> None:
    with LoopbackServer(never_answers) as hanging:
        profile = write_profile(tmp_path, hanging.url("/fb"), hanging.url("/x"))
        running, server = start(profile)
        try:
            started = time.monotonic()
            status, text = running.get("/probe?shop=shop-ok", headers={"X-Prometheus-Scrape-Timeout-Seconds": "2"})
            took = time.monotonic() - started
            bad = running.get("/probe?shop=shop-ok", headers={"X-Prometheus-Scrape-Timeout-Seconds": "soon"})
        finally:
            server.shutdown()  # type: ignore[attr-defined]
            server.server_close()  # type: ignore[attr-defined]
    assert status == 200 and took < 2.5, took
    assert value(text, "feedback_check_up", shop="shop-ok") == 0
    assert value(text, "feedback_check_success", shop="shop-ok") == 0
    assert bad[0] == 400


def test_reload_keeps_the_old_profiles_when_the_new_ones_are_bad(tmp_path: Path, shop: LoopbackServer) -> None:
    profile = write_profile(tmp_path, shop.url("/fb"), shop.url("/staging"))
    running, server = start(profile)
    try:
        good = profile.read_text()
        profile.write_text("version: 1\nshops: [\n")
        status, text = running.get("/-/reload", method="POST")
        assert status == 500 and "not valid YAML" in text
        own = running.get("/metrics")[1]
        assert value(own, "feedback_check_exporter_config_last_reload_successful") == 0
        assert running.get("/probe?shop=shop-ok")[0] == 200, "the loaded profiles stay"
        profile.write_text(good.replace("name: shop-ok", "name: shop-new"))
        assert running.get("/-/reload", method="POST")[0] == 200
        own = running.get("/metrics")[1]
        assert value(own, "feedback_check_exporter_config_last_reload_successful") == 1
        assert value(own, "feedback_check_exporter_config_last_reload_success_timestamp_seconds") > time.time() - 60
        assert running.get("/probe?shop=shop-new")[0] == 200
        assert running.get("/probe?shop=shop-ok")[0] == 404
    finally:
        server.shutdown()  # type: ignore[attr-defined]
        server.server_close()  # type: ignore[attr-defined]


def test_own_metrics(running: Running) -> None:
    running.get("/probe?shop=shop-ok")
    text = running.get("/metrics")[1]
    assert value(text, "feedback_check_exporter_build_info") == 1
    assert value(text, "feedback_check_exporter_probes_in_flight") == 0
    assert value(text, "feedback_check_exporter_probe_duration_seconds_count", module="postsale") == 1
    assert value(text, "process_cpu_seconds_total") > 0


def test_serve_command_reloads_on_sighup_and_reads_a_systemd_credential(tmp_path: Path, shop: LoopbackServer) -> None:
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / "shop-sha-out").write_text(PASSPHRASE + "\n")
    (credentials / "shop-sha-out").chmod(0o400)
    profile = tmp_path / "serve.yaml"
    body = f"""version: 1
shops:
  - name: NAME
    feedback: {{urls: {{accepted: "{shop.url('/fb')}"}}}}
    signature: {{passphrase_credential: shop-sha-out}}
"""
    profile.write_text(body.replace("NAME", "first"))
    env = {k: v for k, v in os.environ.items() if "PROXY" not in k.upper()}
    env["CREDENTIALS_DIRECTORY"] = str(credentials)
    process = subprocess.Popen([sys.executable, "-m", "feedback_check", "serve", "--config", str(profile),
                                "--listen", "127.0.0.1:0", "--lab"], stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert process.stderr is not None
        line = process.stderr.readline()
        assert "listening on http://" in line, line
        base = line.strip().rsplit(" ", 1)[-1].rstrip("/")
        status, text = get(base + "/probe?shop=first")
        assert status == 200 and value(text, "feedback_check_success", shop="first") == 1, text
        profile.write_text(body.replace("NAME", "second"))
        process.send_signal(signal.SIGHUP)
        for _ in range(50):
            if get(base + "/probe?shop=second")[0] == 200:
                break
            time.sleep(0.1)
        assert get(base + "/probe?shop=second")[0] == 200
        assert PASSPHRASE not in get(base + "/probe?shop=second")[1]
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=10)
        if process.stderr is not None:
            process.stderr.close()
    assert process.returncode == 0
