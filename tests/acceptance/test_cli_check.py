"""`check`, `probe`, `demo`, `init`, `ranges` end to end through the real command line (a subprocess),
against real servers on 127.0.0.1: exit codes, JSON shape, one-line errors, the passphrase never shown."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.servers.certs import HOST, TestPki
from tests.servers.http_servers import LoopbackServer, ShaOutVerifier, answer, app, refusing_port

PASSPHRASE = "Acceptance-Sha-Out-7f3b!"
EXAMPLES = Path(__file__).parents[2] / "examples"


def run_cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None,
            timeout: float = 60) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if "PROXY" not in k.upper()}
    environment.update(env or {})
    return subprocess.run([sys.executable, "-m", "feedback_check", *args], capture_output=True, text=True,
                          env=environment, cwd=cwd, timeout=timeout, check=False)


def assert_no_traceback(result: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout


@pytest.fixture
def healthy_https(pki: TestPki) -> Iterator[LoopbackServer]:
    handler = ShaOutVerifier(PASSPHRASE)
    with LoopbackServer(app({"/postfinance/feedback": handler}),
                        tls=pki.leaf("valid").server_context()) as server:
        yield server


def write_profile(folder: Path, url: str, *, extra: str = "", method: str = "POST") -> Path:
    path = folder / "feedback-check.yaml"
    path.write_text(f"""version: 1
shops:
  - name: acceptance-shop
    feedback:
      timing: always_deferred
      method: {method}
      urls:
        accepted: {url}
    signature:
      algorithm: SHA-512
      encoding: UTF-8
      passphrase_env: ACCEPTANCE_SHA_OUT
{extra}""", encoding="utf-8")
    return path


def test_check_healthy_https_shop_is_ok_and_quiet_prints_nothing(tmp_path: Path, pki: TestPki,
                                                                  healthy_https: LoopbackServer, dns_stub) -> None:  # type: ignore[no-untyped-def]
    resolver = dns_stub({HOST: {"A": ["127.0.0.1"]}})
    profile = write_profile(tmp_path, healthy_https.url("/postfinance/feedback", host=HOST))
    common = ["check", "--config", str(profile), "--lab", "--resolver", resolver, "--ca-bundle", str(pki.ca_bundle),
              "--timeout", "5"]
    env = {"ACCEPTANCE_SHA_OUT": PASSPHRASE}
    result = run_cli(*common, "--format", "json", env=env)
    assert_no_traceback(result)
    document = json.loads(result.stdout)
    assert result.returncode == 0, document["findings"]
    assert document["verdict"] == "OK" and document["schema_version"] == 1 and document["lab_mode"] is True
    codes = {f["code"] for f in document["findings"]}
    assert "http.ok" in codes and {f["severity"] for f in document["findings"]} == {"info"}
    assert document["targets"][0]["role"] == "accepted"
    assert PASSPHRASE not in result.stdout + result.stderr
    quiet = run_cli(*common, "--quiet", env=env)
    assert (quiet.returncode, quiet.stdout, quiet.stderr) == (0, "", "")


def test_check_failing_shop_is_critical_with_evidence(tmp_path: Path) -> None:
    with LoopbackServer(app({"/fb": answer(500, b"<h1>Internal Server Error</h1>")})) as server:
        profile = write_profile(tmp_path, server.url("/fb"))
        result = run_cli("check", "--config", str(profile), "--lab", "--format", "json",
                         env={"ACCEPTANCE_SHA_OUT": PASSPHRASE})
    assert_no_traceback(result)
    assert result.returncode == 2
    document = json.loads(result.stdout)
    assert document["verdict"] == "CRITICAL"
    error = next(f for f in document["findings"] if f["code"] == "http.server_error")
    assert error["severity"] == "critical" and error["fix"] and "500" in json.dumps(error["evidence"])
    assert document["answer"].startswith("PostFinance would report a process error")
    assert PASSPHRASE not in result.stdout + result.stderr


def echoing_routes(passphrase: str) -> dict[str, Any]:
    """A handler that dumps its SHA-OUT setting: in an error page, a header and a redirect's Location."""
    echoed = passphrase.encode()
    return {"/fb": answer(500, b"<pre>Fatal: SHASIGN mismatch, shaOut='" + echoed + b"'</pre>",
                          {"X-Debug": passphrase, "Server": "php " + passphrase}),
            "/moved": answer(302, b"", {"Location": "https://127.0.0.1/fb?k=" + passphrase})}


def echoing_shop_profile(folder: Path, server: LoopbackServer, passphrase_env: str) -> Path:
    """A profile of one shop whose accepted and rejected URLs are `echoing_routes`."""
    profile = folder / "profile.yaml"
    profile.write_text(f"""version: 1
shops:
  - name: echoing-shop
    feedback:
      urls: {{accepted: "{server.url('/fb')}", rejected: "{server.url('/moved')}"}}
    signature: {{passphrase_env: {passphrase_env}}}
""", encoding="utf-8")
    return profile


def test_a_shop_answer_echoing_the_passphrase_is_masked_in_every_format_and_file(tmp_path: Path) -> None:
    # A handler's error page, header or redirect that dumps its SHA-OUT setting must not carry the passphrase
    # into reports (cron mail, CI artifacts, textfiles) nor into the --state file.
    with LoopbackServer(app(echoing_routes(PASSPHRASE))) as server:
        profile = echoing_shop_profile(tmp_path, server, "ACCEPTANCE_SHA_OUT")
        for output_format in ("text", "json", "nagios", "prometheus", "junit"):
            written = tmp_path / f"report.{output_format}"
            for extra in ((), ("--output", str(written), "--state", str(tmp_path / "state.json"))):
                result = run_cli("check", "--config", str(profile), "--lab", "--format", output_format, *extra,
                                 env={"ACCEPTANCE_SHA_OUT": PASSPHRASE, "FEEDBACK_CHECK_DEBUG": "1"})
                assert_no_traceback(result)
                assert result.returncode == 2, result.stderr
                assert PASSPHRASE not in result.stdout + result.stderr
            assert PASSPHRASE not in written.read_text(encoding="utf-8")
        assert PASSPHRASE not in (tmp_path / "state.json").read_text(encoding="utf-8")
        text = run_cli("probe", server.url("/fb"), "--lab", "--passphrase-env", "PF_SECRET",
                       env={"PF_SECRET": PASSPHRASE})
    assert PASSPHRASE not in text.stdout + text.stderr
    assert "shaOut='********'" in text.stdout


def test_check_text_report_says_what_failed_and_where_the_probe_left_from(tmp_path: Path) -> None:
    port = refusing_port()
    profile = write_profile(tmp_path, f"http://127.0.0.1:{port}/fb")
    result = run_cli("check", "--config", str(profile), "--lab", env={"ACCEPTANCE_SHA_OUT": PASSPHRASE})
    assert_no_traceback(result)
    assert result.returncode == 2
    assert result.stdout.startswith("CRITICAL")
    assert "connect.refused" in result.stdout
    assert "not from PostFinance" in result.stdout
    assert PASSPHRASE not in result.stdout + result.stderr


def test_fail_on_critical_lets_warnings_exit_zero(tmp_path: Path) -> None:
    with LoopbackServer(app({"/fb": ShaOutVerifier(PASSPHRASE)})) as server:
        profile = write_profile(tmp_path, server.url("/fb"))
        env = {"ACCEPTANCE_SHA_OUT": PASSPHRASE}
        warned = run_cli("check", "--config", str(profile), "--lab", env=env)
        relaxed = run_cli("check", "--config", str(profile), "--lab", "--fail-on", "critical", env=env)
    assert warned.returncode == 1 and "url.plain_http" in warned.stdout
    assert relaxed.returncode == 0


@pytest.mark.parametrize(("content", "expected"), [
    ("version: 1\nshops:\n  - name: a\n    feedback:\n      method: PUT\n", ":5: shops[0].feedback.method"),
    ("version: 1\nshops: [\n", "not valid YAML"),
])
def test_bad_profile_is_one_line_exit_3(tmp_path: Path, content: str, expected: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(content, encoding="utf-8")
    result = run_cli("check", "--config", str(path))
    assert_no_traceback(result)
    assert result.returncode == 3
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and str(path) in lines[0] and expected in lines[0]


def test_missing_default_profile_and_unset_passphrase_variable(tmp_path: Path) -> None:
    missing = run_cli("check", cwd=tmp_path)
    assert missing.returncode == 3 and "feedback-check.yaml: file not found" in missing.stderr
    profile = write_profile(tmp_path, "https://shop.example/fb")
    environment = {k: v for k, v in os.environ.items() if k != "ACCEPTANCE_SHA_OUT"}
    result = subprocess.run([sys.executable, "-m", "feedback_check", "check", "--config", str(profile)],
                            capture_output=True, text=True, env=environment, timeout=60, check=False)
    assert result.returncode == 3 and "ACCEPTANCE_SHA_OUT is not set" in result.stderr
    assert_no_traceback(result)


def test_unknown_option_and_bad_timeout_are_usage_errors_exit_3() -> None:
    assert run_cli("check", "--no-such-option").returncode == 3
    assert run_cli("probe", "https://shop.example/", "--timeout", "-1").returncode == 3


def test_probe_signs_with_the_given_passphrase_and_the_endpoint_verifies_it(tmp_path: Path) -> None:
    verifier = ShaOutVerifier(PASSPHRASE, algorithm="sha256", method="GET")
    with LoopbackServer(app({"/fb": verifier})) as server:
        result = run_cli("probe", server.url("/fb"), "--method", "GET", "--algorithm", "SHA-256",
                         "--passphrase-env", "PF_SECRET", "--lab", "--format", "json", "--no-forgery-check",
                         env={"PF_SECRET": PASSPHRASE})
    assert_no_traceback(result)
    document = json.loads(result.stdout)
    assert verifier.verdicts and all(verifier.verdicts), "the endpoint's own SHA-OUT check must pass"
    received = dict(verifier.received[0])
    assert received["STATUS"] in {"5", "9"} and received["orderID"].startswith("FBCHECK-")
    assert "http.ok" in {f["code"] for f in document["findings"]}
    assert PASSPHRASE not in result.stdout + result.stderr


def test_probe_imports_only_what_a_probe_needs() -> None:
    """A probe's report (JSON, text) needs neither the firewall readers, the access-log reader nor the
    signature doctor's catalogue (only a refused answer calls for the re-signed variants): each costs
    cold-start time of every monitoring run (issue 10)."""
    accepted = app({"/fb": answer(200)})
    with LoopbackServer(accepted) as server:
        code = ("import sys\nfrom feedback_check.cli import main\n"
                f"for fmt in ('json', 'text'):\n"
                f"    try:\n        main(['probe', {server.url('/fb')!r}, '--lab', '--format', fmt, '-q'])\n"
                "    except SystemExit as e:\n        assert e.code in (0, 1), e.code\n"
                "loaded = [m for m in ('feedback_check.logs', 'feedback_check.firewall.verdict',\n"
                "          'feedback_check.firewall.analysis', 'feedback_check.signature.doctor') if m in sys.modules]\n"
                "print('LOADED', loaded)\n")
        result = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True,
                                timeout=120,
                                env={**os.environ, "NO_COLOR": "1"})
    assert "LOADED []" in result.stdout, result.stdout[-500:] + result.stderr[-2000:]


def test_probe_without_passphrase_says_so(tmp_path: Path) -> None:
    with LoopbackServer(app({"/fb": answer(200)})) as server:
        result = run_cli("probe", server.url("/fb"), "--lab")
    assert "throwaway passphrase" in result.stdout
    assert result.returncode == 1   # plain http: a warning


def test_demo_runs_and_reports_each_sample_problem() -> None:
    result = run_cli("demo", "--format", "json")
    assert_no_traceback(result)
    assert result.returncode == 0
    document = json.loads(result.stdout)
    codes = {f["code"] for f in document["findings"]}
    assert {"http.server_error", "http.redirect", "http.slow", "firewall.legacy_allowlist",
            "firewall.range_blocked", "http.ok"} <= codes
    verdicts = {s["name"]: s["verdict"] for s in document["shops"]}
    assert verdicts == {"healthy-shop": "OK", "crashing-shop": "CRITICAL", "moved-shop": "CRITICAL",
                        "slow-shop": "WARNING"}


def test_init_writes_a_profile_that_check_accepts(tmp_path: Path) -> None:
    result = run_cli("init", cwd=tmp_path)
    assert result.returncode == 0 and (tmp_path / "feedback-check.yaml").exists()
    again = run_cli("init", cwd=tmp_path)
    assert again.returncode == 3 and "already exists" in again.stderr
    # The starter profile validates (the check itself would need the network: --max-runtime keeps it short,
    # and the shop.example names are not resolvable here, so only the profile loading is asserted).
    from feedback_check.platform import load_platform
    from feedback_check.profile import load_profile
    profile = load_profile(tmp_path / "feedback-check.yaml", load_platform(), environ={"MY_SHOP_SHA_OUT": "x"})
    assert profile.shops[0].name == "my-shop"


def test_ranges_shows_the_shipped_list_and_a_custom_one(tmp_path: Path) -> None:
    shipped = run_cli("ranges", "--format", "json")
    assert shipped.returncode == 0
    assert [r["cidr"] for r in json.loads(shipped.stdout)["ranges"]] == [
        "185.139.244.0/22", "91.208.214.0/24", "185.8.52.0/22"]
    custom = tmp_path / "ranges.txt"
    custom.write_text("185.139.244.0/22\nnot-an-address\n", encoding="utf-8")
    bad = run_cli("ranges", "--ranges", str(custom))
    assert bad.returncode == 3 and f"{custom}:2:" in bad.stderr


def test_version_and_help() -> None:
    assert run_cli("--version").stdout.startswith("feedback-check, version")
    for command in ("check", "probe", "firewall", "ranges", "explain", "sign", "verify", "demo", "init"):
        result = run_cli(command, "--help")
        assert result.returncode == 0, (command, result.stderr)


def write_agency(folder: Path, shops: dict[str, str]) -> Path:
    lines = ["version: 1", "shops:"]
    for name, url in shops.items():
        lines += [f"  - name: {name}", "    feedback:", "      urls:", f"        accepted: {url}",
                  "    signature: {passphrase_env: ACCEPTANCE_SHA_OUT}", "    check_forgery: false"]
    path = folder / f"agency-{len(shops)}.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_a_hanging_shop_never_delays_the_others_past_the_run_deadline(tmp_path: Path) -> None:
    from tests.servers.http_servers import never_answers

    with LoopbackServer(never_answers) as hanging, LoopbackServer(app({"/fb": answer(200)})) as healthy:
        profile = write_agency(tmp_path, {"hanging-shop": hanging.url("/fb"), "healthy-shop": healthy.url("/fb")})
        result = run_cli("check", "--config", str(profile), "--lab", "--timeout", "30", "--max-runtime", "2",
                         "--format", "json", env={"ACCEPTANCE_SHA_OUT": PASSPHRASE})
    assert_no_traceback(result)
    document = json.loads(result.stdout)
    shops = {s["name"]: s for s in document["shops"]}
    assert shops["hanging-shop"]["verdict"] == "UNKNOWN" and "--max-runtime" in shops["hanging-shop"]["error"]
    assert shops["healthy-shop"]["verdict"] == "WARNING"       # plain http: reported despite the other one
    assert document["verdict"] == "UNKNOWN" and result.returncode == 3
    assert document["duration_seconds"] < 30                   # the 30 s budget was never waited for


def test_shop_selection_several_profiles_and_stable_order(tmp_path: Path) -> None:
    with LoopbackServer(app({"/fb": answer(200)})) as server:
        first = write_agency(tmp_path, {f"shop-{i:02d}": server.url("/fb") for i in range(6)})
        second_dir = tmp_path / "second"
        second_dir.mkdir()
        second = write_agency(second_dir, {"other-shop": server.url("/fb")})
        env = {"ACCEPTANCE_SHA_OUT": PASSPHRASE}
        everything = run_cli("check", "--config", str(first), "--config", str(second), "--lab", "--format", "json", env=env)
        selected = run_cli("check", "--config", str(first), "--config", str(second), "--lab", "--format", "json",
                           "--shop", "other-shop", "--shop", "shop-03", env=env)
        unknown = run_cli("check", "--config", str(first), "--shop", "nope", env=env)
    names = [s["name"] for s in json.loads(everything.stdout)["shops"]]
    assert names == [f"shop-{i:02d}" for i in range(6)] + ["other-shop"]
    assert [t["shop"] for t in json.loads(everything.stdout)["targets"]] == names
    assert [s["name"] for s in json.loads(selected.stdout)["shops"]] == ["shop-03", "other-shop"]
    assert unknown.returncode == 3 and "no such shop" in unknown.stderr


def test_state_file_reports_what_changed_between_runs(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    routes = {"/fb": answer(200)}
    with LoopbackServer(app(routes)) as server:
        profile = write_agency(tmp_path, {"shop": server.url("/fb")})
        env = {"ACCEPTANCE_SHA_OUT": PASSPHRASE}
        first = run_cli("check", "--config", str(profile), "--lab", "--state", str(state), "--format", "json", env=env)
        routes["/fb"] = answer(503)
        second = run_cli("check", "--config", str(profile), "--lab", "--state", str(state), "--format", "json", env=env)
    assert first.returncode == 1 and second.returncode == 2
    changes = json.loads(second.stdout)["changes"]
    assert "http.server_error" in json.dumps(changes)


# --- test orders, replay, the redirect kinds (issue 8) -----------------------------------------------

def _odoo_like(orders: set[str]):  # type: ignore[no-untyped-def]
    from tests.servers.shop_handlers import Odoo
    return Odoo(PASSPHRASE, orders={o: ("49.90", "CHF") for o in orders})


def test_probe_with_a_test_order_the_shop_knows(tmp_path: Path) -> None:
    odoo = _odoo_like({"S0-77"})
    with LoopbackServer(app({odoo.path: odoo})) as server:
        result = run_cli("probe", server.url(odoo.path), "--lab", "--passphrase-env", "ACCEPTANCE_SHA_OUT",
                         "--order-id", "S0-77", "--amount", "49.90", "--currency", "CHF",
                         "--param", "PAYID=3012345678", "--format", "json",
                         env={"ACCEPTANCE_SHA_OUT": PASSPHRASE})
    assert_no_traceback(result)
    document = json.loads(result.stdout)
    codes = {f["code"] for f in document["findings"]}
    assert "http.redirect_after_processing" in codes and "handler.unknown_order" not in codes
    assert result.returncode == 1                          # a warning: the redirect's assumption, plain http
    request = document["targets"][0]["request"]
    sent = dict(odoo.received[0].params)
    assert (sent["orderID"], sent["amount"], sent["currency"], sent["PAYID"]) == ("S0-77", "49.90", "CHF",
                                                                                  "3012345678")
    assert odoo.processed == ["S0-77"]
    assert PASSPHRASE not in result.stdout
    assert request["order_source"] == "test order" and request["order_id"] == "S0-77"
    # Without the passphrase (a throwaway one), Odoo's 403 is not blamed on a WAF alone.
    with LoopbackServer(app({odoo.path: odoo})) as server:
        text = run_cli("probe", server.url(odoo.path), "--lab", "--order-id", "S0-77")
    assert "orderID=S0-77 (test order)" in text.stdout
    assert text.returncode == 2 and "cannot verify the SHASIGN" in text.stdout and "--passphrase-env" in text.stdout
    assert "Exempt the feedback path from the WAF" not in text.stdout


def test_probe_without_a_test_order_against_odoo_is_a_warning_not_a_process_error() -> None:
    odoo = _odoo_like(set())
    with LoopbackServer(app({odoo.path: odoo})) as server:
        result = run_cli("probe", server.url(odoo.path), "--lab", "--passphrase-env", "ACCEPTANCE_SHA_OUT",
                         env={"ACCEPTANCE_SHA_OUT": PASSPHRASE})
    assert_no_traceback(result)
    assert result.returncode == 1, result.stdout
    assert "handler.unknown_order" in result.stdout and "--order-id" in result.stdout


def test_probe_replay_resigns_a_captured_post_sale(tmp_path: Path) -> None:
    capture = tmp_path / "capture.txt"
    capture.write_text("orderID=S0-77&amount=49.90&currency=CHF&STATUS=9&PAYID=3012345678&PAYIDSUB=0"
                       "&SHASIGN=0123456789ABCDEF0123456789ABCDEF01234567\n", encoding="utf-8")
    odoo = _odoo_like({"S0-77"})
    with LoopbackServer(app({odoo.path: odoo})) as server:
        result = run_cli("probe", server.url(odoo.path), "--lab", "--passphrase-env", "ACCEPTANCE_SHA_OUT",
                         "--replay", str(capture), env={"ACCEPTANCE_SHA_OUT": PASSPHRASE})
    assert_no_traceback(result)
    assert result.returncode == 1 and odoo.processed == ["S0-77"]
    assert [n for n, _ in odoo.received[0].params][:6] == ["orderID", "amount", "currency", "STATUS", "PAYID",
                                                           "PAYIDSUB"]
    assert "replayed" in result.stdout


@pytest.mark.parametrize("arguments", [["--param", "PAYID"], ["--param", "=3"], ["--param", "SHASIGN=AB"],
                                       ["--order-id", "1", "--param", "orderID=2"],
                                       ["--replay", "/nonexistent/capture.txt"]])
def test_probe_bad_test_order_options_are_one_line_exit_3(arguments: list[str]) -> None:
    result = run_cli("probe", "http://127.0.0.1:9/fb", "--lab", *arguments)
    assert_no_traceback(result)
    assert result.returncode == 3
    assert len(result.stderr.strip().splitlines()) == 1


def test_check_uses_the_profiles_test_order(tmp_path: Path) -> None:
    odoo = _odoo_like({"S0-78"})
    with LoopbackServer(app({odoo.path: odoo})) as server:
        profile = write_profile(tmp_path, server.url(odoo.path),
                                extra='    test_order: {orderID: S0-78, amount: "49.90", currency: CHF}\n')
        result = run_cli("check", "--config", str(profile), "--lab", "--no-firewall", "--format", "json",
                         env={"ACCEPTANCE_SHA_OUT": PASSPHRASE})
    assert_no_traceback(result)
    assert result.returncode == 1, result.stdout
    assert odoo.processed == ["S0-78"]
    bad = write_profile(tmp_path, "https://shop.example/fb", extra="    test_order: [S0-78]\n")
    result = run_cli("check", "--config", str(bad), env={"ACCEPTANCE_SHA_OUT": PASSPHRASE})
    assert result.returncode == 3 and "test_order" in result.stderr and ":" in result.stderr


@pytest.mark.parametrize(("value", "exit_code", "severity"), [("null", 1, "warning"), ("true", 2, "critical"),
                                                              ("false", 1, "info")])
def test_platform_file_redirect_fails_decides_the_after_processing_redirect(tmp_path: Path, value: str,
                                                                            exit_code: int, severity: str) -> None:
    shipped = (Path(__file__).parents[2] / "config" / "postfinance.yaml").read_text(encoding="utf-8")
    assert "  redirect_fails: null\n" in shipped
    platform = tmp_path / "platform.yaml"
    platform.write_text(shipped.replace("  redirect_fails: null\n", f"  redirect_fails: {value}\n"), encoding="utf-8")
    odoo = _odoo_like({"S0-79"})
    with LoopbackServer(app({odoo.path: odoo})) as server:
        result = run_cli("probe", server.url(odoo.path), "--lab", "--platform", str(platform), "--order-id", "S0-79",
                         "--passphrase-env", "ACCEPTANCE_SHA_OUT", "--format", "json",
                         env={"ACCEPTANCE_SHA_OUT": PASSPHRASE})
    assert_no_traceback(result)
    assert result.returncode == exit_code, result.stdout
    found = [f for f in json.loads(result.stdout)["findings"] if f["code"] == "http.redirect_after_processing"]
    assert found and found[0]["severity"] == severity
