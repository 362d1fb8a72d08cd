"""Real log lines from a real nginx: Debian's nginx runs (non-daemon, its own config and log_format with
$request_time, everything in a temporary folder) in the server namespace of the kernel lab; requests come
from addresses in PostFinance's published ranges, a 2019 sender and strangers (one forging
X-Forwarded-For) in the client namespace; then `feedback-check logs` reads what nginx wrote.

Skips (with the reason) without root, network namespaces or nginx.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from feedback_check.findings import Severity
from feedback_check.logs.evidence import FeedbackPath, LogQuery
from feedback_check.logs.judgement import check_logs
from feedback_check.logs.serverconf import formats_from_config
from feedback_check.platform import load_platform
from tests.kernel.netns import SERVER4, Lab, run, unavailable_reason

pytestmark = pytest.mark.kernel

PORT = 8080
PUBLISHED = ["185.8.52.10", "185.8.55.250", "185.139.244.1", "185.139.247.254", "91.208.214.77"]
LEGACY = "212.23.45.97"
STRANGER = "198.51.100.7"
FORGER = "203.0.113.66"
LOG_FORMAT = ('$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent '
              '"$http_referer" "$http_user_agent" "$http_x_forwarded_for" $request_time')

NGINX_CONF = """
master_process off;
daemon off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log info;
events {{ worker_connections 64; }}
http {{
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    log_format timed '{log_format}';
    access_log {dir}/access.log timed;
    server {{
        listen {server}:{port};
        location = /postfinance/feedback {{ return 200 "OK"; }}
        location = /postfinance/broken {{ return 500; }}
        location = /postfinance/moved {{ return 301 https://shop.example/postfinance/feedback; }}
        location / {{ return 404; }}
    }}
}}
"""

CLIENT = r"""
import http.client, json, sys
plan = json.loads(sys.argv[1])
for source, method, path, headers in plan:
    connection = http.client.HTTPConnection(sys.argv[2], int(sys.argv[3]), timeout=5, source_address=(source, 0))
    body = "orderID=FBCHECK-1&STATUS=9&SHASIGN=00" if method == "POST" else None
    connection.request(method, path, body=body, headers={"Content-Type": "application/x-www-form-urlencoded",
                                                         "User-Agent": "Java/1.8", **headers})
    response = connection.getresponse()
    response.read()
    print(source, path, response.status)
    connection.close()
"""


@pytest.fixture(scope="module")
def nginx_log(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    reason = unavailable_reason()
    if reason:
        pytest.skip(f"nginx log test not run: {reason}")
    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if nginx is None:
        pytest.skip("nginx log test not run: nginx is not installed (Debian: nginx-light)")
    folder = tmp_path_factory.mktemp("nginx")
    conf = folder / "nginx.conf"
    conf.write_text(NGINX_CONF.format(dir=folder, log_format=LOG_FORMAT, server=SERVER4, port=PORT))
    with Lab() as lab:
        lab.add_sources([*PUBLISHED, LEGACY, STRANGER, FORGER])
        server = subprocess.Popen(["ip", "netns", "exec", lab.server, nginx, "-p", str(folder), "-c", str(conf)],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 10
            while not (folder / "nginx.pid").exists():
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"nginx did not start: {server.stderr.read() if server.stderr else ''}")
                time.sleep(0.05)
            plan = [(s, "POST", "/postfinance/feedback", {}) for s in PUBLISHED]
            plan += [(PUBLISHED[0], "POST", "/postfinance/broken", {}),
                     (PUBLISHED[1], "POST", "/postfinance/broken", {}),
                     (PUBLISHED[2], "GET", "/postfinance/feedback", {}),
                     (PUBLISHED[3], "POST", "/postfinance/moved", {}),
                     (PUBLISHED[4], "POST", "/wrong/feedback", {}),
                     (LEGACY, "POST", "/postfinance/feedback", {}),
                     (STRANGER, "POST", "/postfinance/feedback", {}),
                     (FORGER, "POST", "/postfinance/feedback", {"X-Forwarded-For": PUBLISHED[0]})]
            result = run(["ip", "netns", "exec", lab.client, sys.executable, "-c", CLIENT, json.dumps(plan),
                          SERVER4, str(PORT)])
            assert result.stdout.count("\n") == len(plan), result.stdout
        finally:
            server.terminate()
            server.wait(timeout=10)
            for stream in (server.stdout, server.stderr):
                if stream is not None:
                    stream.close()
    yield folder


def test_nginx_log_read_with_its_own_log_format(nginx_log: Path) -> None:
    log = nginx_log / "access.log"
    lines = log.read_text().splitlines()
    assert len(lines) == 13 and lines[0].startswith(PUBLISHED[0] + " - - [")      # nginx really wrote them
    query = LogQuery(paths=(FeedbackPath("/postfinance/feedback", "https://shop.example/postfinance/feedback"),
                            FeedbackPath("/postfinance/broken"), FeedbackPath("/postfinance/moved")),
                     formats=tuple(formats_from_config(str(nginx_log / "nginx.conf"))), method="POST")
    summary = check_logs([str(log)], load_platform(), query)
    evidence = summary.evidence
    assert evidence.unreadable == 0 and evidence.logs_seconds
    feedback, broken, moved = evidence.paths
    assert feedback.published.count == 6 and set(feedback.published.addresses) == set(PUBLISHED)
    assert feedback.published.statuses == {200: 6}
    assert feedback.timing is not None and feedback.timing.count == 7 and feedback.timing.maximum < 1   # with the 2019 sender
    assert broken.published.statuses == {500: 2}
    assert moved.published.redirect_kinds == {"before_handler": 1}
    assert feedback.legacy.count == 1 and feedback.legacy.first.client == LEGACY
    assert feedback.foreign.count == 2 and feedback.foreign.claimed_count == 1
    assert feedback.foreign.claimed[0].client == FORGER and feedback.foreign.claimed[0].claimed == PUBLISHED[0]
    severities = {(f.code, f.target): f.severity for f in summary.findings}
    assert severities[("logs.postsale_failed", "/postfinance/broken")] is Severity.CRITICAL
    assert severities[("logs.postsale_redirected", "/postfinance/moved")] is Severity.CRITICAL
    assert severities[("logs.method_mismatch", "https://shop.example/postfinance/feedback")] is Severity.WARNING
    assert severities[("logs.foreign_sources", "https://shop.example/postfinance/feedback")] is Severity.WARNING
    other = next(f for f in summary.findings if f.code == "logs.other_paths")
    assert "/wrong/feedback" in other.detail
    failed = next(f for f in summary.findings if f.code == "logs.postsale_failed")
    assert f"{log}:6" in failed.detail                              # first failure with file:line


def test_nginx_log_through_the_cli(nginx_log: Path) -> None:
    log = nginx_log / "access.log"
    result = subprocess.run([sys.executable, "-m", "feedback_check", "logs", str(log), "--log-format", LOG_FORMAT,
                             "--url", "https://shop.example/postfinance/feedback", "--format", "json"],
                            capture_output=True, text=True, timeout=60, check=False)
    report = json.loads(result.stdout)
    assert result.returncode == 1, result.stderr                  # warnings only on the configured URL
    assert {f["code"] for f in report["findings"]} >= {"logs.postsale_ok", "logs.foreign_sources",
                                                       "logs.other_paths", "logs.legacy_sources"}
    assert report["logs"][0]["paths"][0]["postfinance"]["count"] == 6
