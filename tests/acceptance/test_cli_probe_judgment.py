"""`probe` judgment through the real command line against real servers on 127.0.0.1 and a stub DNS
server: a resolver this machine cannot reach is UNKNOWN (exit 3), not the shop's DNS fault; command-line
typos are usage errors; the timing spellings of the profile are accepted."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.acceptance.test_cli_check import assert_no_traceback, run_cli
from tests.servers import dns_stub as dns_stub_plugin
from tests.servers.dns_stub import StubFactory

dns_stub = dns_stub_plugin.dns_stub
URL = "https://shop.example.ch/postfinance/feedback"


def closed_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def dns_codes(report: dict) -> list[str]:
    return [f["code"] for f in report["findings"] if f["code"].startswith("dns.")]


@pytest.mark.parametrize("resolver", ["127.0.0.1:1", "closed"])
def test_a_refused_resolver_is_unknown_exit_3_not_a_dns_critical(resolver: str) -> None:
    if resolver == "closed":
        resolver = f"127.0.0.1:{closed_udp_port()}"
    result = run_cli("probe", URL, "--resolver", resolver, "--format", "json")
    assert_no_traceback(result)
    assert result.returncode == 3, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["verdict"] == "UNKNOWN"
    assert dns_codes(report) == []
    assert f"cannot reach resolver {resolver} from this machine: connection refused" in report["answer"]
    assert report["targets"][0]["verdict"] == "UNKNOWN"
    assert report["targets"][0]["unknown"].startswith(f"cannot reach resolver {resolver}")


def test_a_refused_resolver_in_nagios_format_is_unknown(tmp_path: Path) -> None:
    result = run_cli("probe", URL, "--resolver", "127.0.0.1:1", "--format", "nagios")
    assert result.returncode == 3
    assert result.stdout.startswith("FEEDBACK-CHECK UNKNOWN - ")
    assert "cannot reach resolver 127.0.0.1:1" in result.stdout


def test_a_reachable_resolver_that_does_not_answer_stays_a_dns_timeout(dns_stub: StubFactory) -> None:
    resolver = dns_stub({"shop.example.ch": "TIMEOUT"})
    result = run_cli("probe", URL, "--resolver", resolver, "--format", "json")
    assert result.returncode == 2, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert dns_codes(report) == ["dns.timeout"]
    assert "unknown" not in report["targets"][0]


def test_a_resolver_answering_servfail_stays_the_zones_problem(dns_stub: StubFactory) -> None:
    resolver = dns_stub({"shop.example.ch": "SERVFAIL"})
    result = run_cli("probe", URL, "--resolver", resolver, "--format", "json")
    assert result.returncode == 2
    assert dns_codes(json.loads(result.stdout)) == ["dns.servfail"]


def _in_empty_netns(*args: str) -> subprocess.CompletedProcess[str]:
    """The CLI in a new network namespace with only `lo` (down): no packet can leave."""
    if sys.platform != "linux" or shutil.which("unshare") is None:
        pytest.skip("needs Linux and unshare")
    trial = subprocess.run(["unshare", "-rn", "true"], capture_output=True, check=False)
    if trial.returncode != 0:
        pytest.skip(f"cannot make a network namespace here: {trial.stderr.decode(errors='replace').strip()}")
    return subprocess.run(["unshare", "-rn", sys.executable, "-m", "feedback_check", *args], capture_output=True,
                          text=True, timeout=60, check=False)


def test_network_unreachable_resolver_is_unknown_exit_3() -> None:
    # 10.255.255.53: any address would do, nothing is routed in the namespace (ENETUNREACH).
    result = _in_empty_netns("probe", URL, "--resolver", "10.255.255.53", "--format", "json")
    assert_no_traceback(result)
    assert result.returncode == 3, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert dns_codes(report) == []
    assert "cannot reach resolver 10.255.255.53 from this machine: network is unreachable" in report["answer"]


# -- item 7: typos on the command line are usage errors ------------------------------------------------
@pytest.mark.parametrize("url, says", [
    ("notaurl", "has no scheme"), ("shop.example.ch/postfinance/feedback", "enter it as https://shop.example.ch"),
    ("https://", "no host name"), ("https:///postfinance/feedback", "no host name"),
    ("http://a..b/feedback", "not a valid name"), ("ftp://shop.example.ch/x", "scheme is 'ftp'"),
    ("https://shop.example.ch:99999/x", "port"),
])
@pytest.mark.parametrize("output_format", ["text", "nagios"])
def test_probe_with_an_unusable_url_is_one_line_exit_3(url: str, says: str, output_format: str) -> None:
    result = run_cli("probe", url, "--lab", "--format", output_format)
    assert_no_traceback(result)
    assert result.returncode == 3, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("feedback-check: error: URL ") and says in lines[0]
    if output_format == "nagios":
        assert result.stdout.startswith("FEEDBACK-CHECK UNKNOWN - URL ")
    else:
        assert result.stdout == ""


def test_probe_url_with_credentials_in_a_usage_error_is_masked() -> None:
    result = run_cli("probe", "https://user:s3cr3t-pw@:99/x", "--lab")
    assert result.returncode == 3
    assert "s3cr3t-pw" not in result.stderr + result.stdout


def test_an_unusable_url_in_a_profile_stays_a_finding(tmp_path: Path) -> None:
    from tests.acceptance.test_cli_check import write_profile
    profile = write_profile(tmp_path, "notaurl")
    result = run_cli("check", "--config", str(profile), "--lab", "--format", "json",
                     env={"ACCEPTANCE_SHA_OUT": "x"})
    assert result.returncode == 2, result.stdout + result.stderr
    assert "url.invalid" in [f["code"] for f in json.loads(result.stdout)["findings"]]


@pytest.mark.parametrize("bundle, says", [("missing", "file not found"), ("directory", "directory"),
                                          ("fifo", "named pipe"), ("empty", "no PEM certificate")])
@pytest.mark.parametrize("command", ["probe", "check"])
def test_an_unusable_ca_bundle_is_a_usage_error_even_for_an_http_url(tmp_path: Path, bundle: str, says: str,
                                                                     command: str) -> None:
    import os

    from tests.servers.http_servers import LoopbackServer, answer, app
    path = tmp_path / "bundle.pem"
    if bundle == "directory":
        path.mkdir()
    elif bundle == "fifo":
        os.mkfifo(path)
    elif bundle == "empty":
        path.write_text("not a certificate\n", encoding="utf-8")
    with LoopbackServer(app({"/x": answer(200, b"OK")})) as server:
        url = f"http://127.0.0.1:{server.port}/x"
        if command == "probe":
            args = ["probe", url]
        else:
            from tests.acceptance.test_cli_check import write_profile
            args = ["check", "--config", str(write_profile(tmp_path, url))]
        result = run_cli(*args, "--lab", "--ca-bundle", str(path), env={"ACCEPTANCE_SHA_OUT": "x"}, timeout=30)
        assert_no_traceback(result)
        assert result.returncode == 3, result.stdout + result.stderr
        assert "--ca-bundle" in result.stderr and says in result.stderr
        assert server.requests == []            # refused before any request


# -- item 24: the profile's timing spellings ---------------------------------------------------------
@pytest.mark.parametrize("spelling, online", [
    ("deferred", False), ("always_deferred", False), ("online", True), ("always_online", True),
    ("online-then-deferred", True), ("online_then_deferred", True), ("ALWAYS_ONLINE", True)])
def test_probe_timing_accepts_the_short_and_the_profile_spellings(spelling: str, online: bool) -> None:
    from tests.servers.http_servers import LoopbackServer, answer, app
    # An HTML body is a warning in online timing only (http.online_body_shown).
    with LoopbackServer(app({"/x": answer(200, b"<html><body>Thanks</body></html>",
                                          {"Content-Type": "text/html"})})) as server:
        result = run_cli("probe", f"http://127.0.0.1:{server.port}/x", "--lab", "--timing", spelling,
                         "--format", "json")
    assert result.returncode in (0, 1), result.stdout + result.stderr
    codes = [f["code"] for f in json.loads(result.stdout)["findings"]]
    assert ("http.online_body_shown" in codes) is online


# -- item 4: one suggested URL for url.plain_http and http.redirect --------------------------------------
def _fixes(report: dict) -> dict[str, str]:
    return {f["code"]: f["fix"] for f in report["findings"]}


def test_plain_http_and_trailing_slash_redirect_suggest_the_same_path_with_the_paramvar() -> None:
    from tests.servers.http_servers import LoopbackServer, app, redirect
    with LoopbackServer(app({"/postfinance/feedback": redirect("/postfinance/feedback/?shop=ch")})) as server:
        url = f"http://127.0.0.1:{server.port}/postfinance/feedback?shop=<PARAMVAR>"
        result = run_cli("probe", url, "--paramvar", "ch", "--lab", "--format", "json")
    assert result.returncode == 2, result.stdout + result.stderr
    fixes = _fixes(json.loads(result.stdout))
    assert fixes["http.redirect"] == (f"Enter the final URL http://127.0.0.1:{server.port}/postfinance/feedback/"
                                      "?shop=<PARAMVAR> in the back office.")
    assert fixes["url.plain_http"] == (f"Serve the handler over HTTPS (on port 443: port {server.port} serves plain "
                                       "HTTP) and enter https://127.0.0.1/postfinance/feedback/?shop=<PARAMVAR> in "
                                       "the back office.")


def test_plain_http_redirected_to_https_names_the_redirects_final_url(tmp_path: Path) -> None:
    from tests.servers.http_servers import LoopbackServer, app, redirect
    with LoopbackServer(app({"/fb": redirect("https://127.0.0.1/fb")})) as server:
        result = run_cli("probe", f"http://127.0.0.1:{server.port}/fb?shop=<PARAMVAR>", "--lab", "--format", "json")
    fixes = _fixes(json.loads(result.stdout))
    final = "https://127.0.0.1/fb?shop=<PARAMVAR>"
    assert fixes["http.redirect"] == f"Enter the final URL {final} in the back office."
    assert fixes["url.plain_http"] == f"Enter the final URL {final} in the back office: the server already " \
                                      "redirects there over HTTPS."


def test_get_redirect_fix_never_carries_the_post_sale_parameters() -> None:
    from tests.servers.http_servers import LoopbackServer, app, redirect
    # A GET carries the post-sale (SHASIGN, orderID) in the query; the server echoes it in Location.
    with LoopbackServer(app({"/fb": lambda request: redirect("/fb/?" + request.query)(request)})) \
            as server:
        result = run_cli("probe", f"http://127.0.0.1:{server.port}/fb", "--method", "GET", "--lab", "--format", "json")
    fixes = _fixes(json.loads(result.stdout))
    assert fixes["http.redirect"] == f"Enter the final URL http://127.0.0.1:{server.port}/fb/ in the back office."
    assert "SHASIGN" not in fixes["url.plain_http"] and fixes["url.plain_http"].endswith(
        "enter https://127.0.0.1/fb/ in the back office.")


def test_state_does_not_resolve_the_findings_of_a_url_that_could_not_be_checked(tmp_path: Path,
                                                                                dns_stub: StubFactory) -> None:
    from tests.acceptance.test_cli_check import write_profile
    from tests.servers.http_servers import LoopbackServer, answer, app
    resolver = dns_stub({"shop.test": {"A": ["127.0.0.1"]}})
    state = tmp_path / "state.json"
    with LoopbackServer(app({"/fb": answer(500, b"boom")})) as server:
        profile = write_profile(tmp_path, f"http://shop.test:{server.port}/fb")
        common = ["check", "--config", str(profile), "--lab", "--state", str(state), "--format", "json"]
        env = {"ACCEPTANCE_SHA_OUT": "x"}
        first = run_cli(*common, "--resolver", resolver, env=env)
        assert first.returncode == 2, first.stdout + first.stderr
        second = run_cli(*common, "--resolver", "127.0.0.1:1", env=env)
    assert second.returncode == 3, second.stdout + second.stderr
    changes = json.loads(second.stdout)["changes"]
    assert changes["resolved"] == []
    third = json.loads(state.read_text(encoding="utf-8"))
    remembered = [e for e in third["entries"] if e.get("role") == "accepted"]
    assert remembered and "http.server_error" in remembered[0]["findings"]
