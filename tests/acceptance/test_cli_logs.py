"""`logs` end to end through the real command line, and the `logs:` entries of a profile inside `check`:
exit codes, every reporter, one-line errors (exit 3) for bad input."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import pytest

from feedback_check.errors import ConfigError
from feedback_check.platform import load_platform
from feedback_check.profile import load_profile
from tests.acceptance.test_cli_check import PASSPHRASE, assert_no_traceback, run_cli, write_profile
from tests.servers.http_servers import LoopbackServer, answer, app


def line(client: str, day: int, status: int = 200, path: str = "/postfinance/feedback") -> str:
    return f'{client} - - [{day:02d}/Nov/2026:14:02:11 +0100] "POST {path} HTTP/1.1" {status} 2 "-" "Java/1.8"'


@pytest.fixture
def logs_dir(tmp_path: Path) -> Path:
    (tmp_path / "access.log.2.gz").write_bytes(gzip.compress((line("185.8.53.17", 10, 500) + "\n").encode()))
    (tmp_path / "access.log.1").write_text(line("185.8.53.17", 11, 500) + "\n")
    (tmp_path / "access.log").write_text(line("185.139.244.5", 12, 500) + "\n" + line("8.8.8.8", 13, 200, "/") + "\n")
    return tmp_path


def test_logs_glob_of_rotated_files_is_critical_with_file_and_line(logs_dir: Path) -> None:
    result = run_cli("logs", *sorted(str(p) for p in logs_dir.glob("access.log*")),
                     "--url", "https://shop.example/postfinance/feedback", "--width", "1000")
    assert_no_traceback(result)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "logs.postsale_failed" in result.stdout and "3× 500" in result.stdout
    assert f"{logs_dir / 'access.log.2.gz'}:1" in result.stdout
    assert result.stdout.index("Access logs") < result.stdout.index("logs.postsale_failed")


@pytest.mark.parametrize("output_format", ["json", "nagios", "prometheus", "junit"])
def test_logs_every_reporter(logs_dir: Path, output_format: str) -> None:
    result = run_cli("logs", str(logs_dir / "access.log"), "--path", "/postfinance/feedback",
                     "--format", output_format)
    assert_no_traceback(result)
    assert result.returncode == 2
    assert ("got error answers" if output_format == "nagios" else "postsale_failed") in result.stdout
    if output_format == "json":
        document = json.loads(result.stdout)
        assert document["verdict"] == "CRITICAL" and document["logs"][0]["paths"][0]["postfinance"]["count"] == 1


def test_logs_from_stdin(logs_dir: Path) -> None:
    import subprocess
    import sys

    text = (logs_dir / "access.log").read_text()
    result = subprocess.run([sys.executable, "-m", "feedback_check", "logs", "-", "--path", "/postfinance/feedback",
                             "--format", "json"], input=text, capture_output=True, text=True, timeout=60,
                            check=False)
    assert result.returncode == 2 and json.loads(result.stdout)["logs"][0]["files"][0]["file"] == "-"


@pytest.mark.parametrize("args,message", [
    (["{dir}"], "is a directory"),
    (["{dir}/fifo"], "not a regular file"),
    (["{dir}/missing.log"], "file not found"),
    (["{dir}/access.log", "--log-format", "nothing here"], "--log-format"),
    (["{dir}/access.log", "--trusted-proxy", "akamai-x"], "preset"),
    (["{dir}/access.log", "--since", "last tuesday"], "--since"),
    (["{dir}/access.log", "--path", "no-slash"], "--path"),
])
def test_logs_bad_input_is_one_line_exit_3(logs_dir: Path, args: list[str], message: str) -> None:
    os.mkfifo(logs_dir / "fifo")
    result = run_cli("logs", *[a.format(dir=logs_dir) for a in args])
    assert_no_traceback(result)
    assert result.returncode == 3, result.stdout + result.stderr
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert result.stdout == ""


def test_check_reads_the_profiles_logs(tmp_path: Path, logs_dir: Path) -> None:
    with LoopbackServer(app({"/postfinance/feedback": answer(200, b"")})) as server:
        extra = f"""    logs:
      - {logs_dir}/access.log*
      - files: [{logs_dir}/access.log]
        format: combined
        trusted_proxies: [loopback]
        expect_every: 2d
"""
        profile = write_profile(tmp_path, server.url("/postfinance/feedback"), extra=extra)
        result = run_cli("check", "--config", str(profile), "--lab", "--format", "json", "--no-forgery-check",
                         env={"ACCEPTANCE_SHA_OUT": PASSPHRASE})
    assert_no_traceback(result)
    document = json.loads(result.stdout)
    assert result.returncode == 2
    failed = [f for f in document["findings"] if f["code"] == "logs.postsale_failed"]
    assert failed and failed[0]["shop"] == "acceptance-shop"
    assert document["logs"][0]["shop"] == "acceptance-shop"
    text = run_cli("check", "--config", str(profile), "--lab", "--no-forgery-check",
                   env={"ACCEPTANCE_SHA_OUT": PASSPHRASE})
    assert "Access logs · acceptance-shop" in text.stdout or "Access logs" in text.stdout


@pytest.mark.parametrize("entry,message", [
    ("logs: access.log", "must be a list"),
    ("logs: [{files: []}]", "files"),
    ("logs: [{files: [a.log], format: '%z only'}]", "format"),
    ("logs: [{files: [a.log], trusted_proxies: [nope-preset]}]", "preset"),
    ("logs: [{files: [a.log], expect_every: often}]", "duration"),
    ("logs: [{files: [a.log], colour: blue}]", "unknown field"),
])
def test_profile_logs_validation_names_file_and_line(tmp_path: Path, entry: str, message: str) -> None:
    profile = write_profile(tmp_path, "https://shop.example/postfinance/feedback", extra=f"    {entry}\n")
    with pytest.raises(ConfigError) as caught:
        load_profile(profile, load_platform(), environ={"ACCEPTANCE_SHA_OUT": PASSPHRASE})
    text = str(caught.value)
    assert message in text and f"{profile}:1" in text.replace(":14", ":1").replace(":15", ":1")


def test_readme_shows_the_real_output_of_the_shipped_example() -> None:
    root = Path(__file__).parents[2]
    readme = (root / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Access logs", 1)[1]
    shown = section.split("```text\n", 1)[1].split("```", 1)[0].splitlines()
    files = sorted(str(p.relative_to(root)) for p in (root / "examples" / "logs").glob("access.log*"))
    result = run_cli("logs", *files, cwd=root)
    actual = result.stdout.splitlines()
    assert result.returncode == 1
    # the run line names the time of the run
    def timeless(lines: list[str]) -> list[str]:
        return [line for line in lines if not line.startswith("feedback-check logs · ")]
    assert timeless(actual) == timeless(shown)


# -- audit item 5: the --since/--until window -------------------------------------------------------------

@pytest.mark.parametrize("since,until", [("2026-11-29", "2026-11-28"), ("2h", "3h")])
def test_logs_inverted_window_is_usage_error(logs_dir: Path, since: str, until: str) -> None:
    result = run_cli("logs", str(logs_dir / "access.log"), "--since", since, "--until", until)
    assert_no_traceback(result)
    assert result.returncode == 3, result.stdout + result.stderr
    assert result.stdout == "" and len(result.stderr.strip().splitlines()) == 1
    assert "--since" in result.stderr and "--until" in result.stderr and "after" in result.stderr


@pytest.mark.parametrize("window", [["--since", "2h"], ["--since", "2026-11-20", "--until", "2026-11-21"],
                                    ["--until", "2026-11-01T00:00:00+00:00"]])
def test_logs_window_outside_the_log_is_unknown_not_ok(logs_dir: Path, window: list[str]) -> None:
    """The log covers 10–13 Nov 2026: a window it does not reach read nothing, so nothing can be said
    (never OK with a negative coverage)."""
    files = sorted(str(p) for p in logs_dir.glob("access.log*"))
    result = run_cli("logs", *files, *window)
    assert_no_traceback(result)
    assert result.returncode == 3, result.stdout + result.stderr
    assert "no log line in the requested window" in result.stderr and "--since/--until" in result.stderr
    assert "2026-11-10 13:02 – 2026-11-13 13:02 UTC" in result.stderr      # what the logs do cover
    nagios = run_cli("logs", *files, *window, "--format", "nagios")
    assert nagios.returncode == 3
    assert nagios.stdout.startswith("FEEDBACK-CHECK UNKNOWN - --since/--until: no log line in the requested window")


def test_logs_window_inside_the_log_counts_only_it(logs_dir: Path) -> None:
    files = sorted(str(p) for p in logs_dir.glob("access.log*"))
    result = run_cli("logs", *files, "--path", "/postfinance/feedback", "--since", "2026-11-11T00:00:00+00:00",
                     "--until", "2026-11-12T00:00:00+00:00", "--format", "json")
    assert result.returncode == 2, result.stdout + result.stderr
    document = json.loads(result.stdout)
    log = document["logs"][0]
    assert log["paths"][0]["postfinance"]["count"] == 1 and log["coverage"]["hours"] == 24.0


def test_logs_window_after_the_log_but_overlapping_a_file_is_read(logs_dir: Path) -> None:
    """--since before the last line: partly covered, coverage never negative."""
    files = sorted(str(p) for p in logs_dir.glob("access.log*"))
    result = run_cli("logs", *files, "--path", "/postfinance/feedback", "--since", "2026-11-12T13:00:00+00:00",
                     "--format", "json")
    document = json.loads(result.stdout)
    assert document["logs"][0]["coverage"]["hours"] >= 0
    assert document["logs"][0]["paths"][0]["postfinance"]["count"] == 1


@pytest.mark.parametrize("option,value", [("--window", "0"), ("--window", "0m"), ("--expect-every", "soon")])
def test_logs_bad_duration_names_the_option(logs_dir: Path, option: str, value: str) -> None:
    result = run_cli("logs", str(logs_dir / "access.log"), "--at", "2026-11-12 14:00", option, value)
    assert_no_traceback(result)
    assert result.returncode == 3 and result.stderr.startswith(f"feedback-check: error: {option}: ")
    assert len(result.stderr.strip().splitlines()) == 1


# -- audit item 8: one `platform` shape for every command --------------------------------------------------

def test_logs_json_platform_block_has_the_shape_of_check(logs_dir: Path) -> None:
    from feedback_check.runner import platform_summary

    result = run_cli("logs", str(logs_dir / "access.log"), "--format", "json")
    platform = json.loads(result.stdout)["platform"]
    common = json.loads(json.dumps(platform_summary(load_platform())))        # what check/demo write
    assert {k: platform[k] for k in common} == common
    assert set(platform["ranges"]) >= {"cidrs", "source", "retrieved", "age_days"}
    assert isinstance(platform["ranges"]["age_days"], int)
    # the logs extras live under their own keys
    assert platform["legacy_ranges"]["cidrs"][0] == "185.8.52.254/32" and platform["legacy_ranges"]["source"]
    assert set(platform) - set(common) == {"legacy_ranges", "assumptions_used"}


def test_firewall_json_platform_block_has_the_same_shape(tmp_path: Path) -> None:
    from feedback_check.runner import platform_summary

    rules = tmp_path / "open.txt"
    rules.write_text("0.0.0.0/0\n")
    result = run_cli("firewall", str(rules), "--type", "plain", "--format", "json")
    platform = json.loads(result.stdout)["platform"]
    common = json.loads(json.dumps(platform_summary(load_platform())))
    assert {k: platform[k] for k in common} == common


# -- audit item 17: a truncated gzip ----------------------------------------------------------------------

def test_logs_truncated_gzip_shows_its_times_and_a_fix_about_the_file(tmp_path: Path) -> None:
    rows = [line("185.8.53.17" if n % 10 == 0 else "8.8.4.4", 10 + n // 50, 200, "/postfinance/feedback"
                 if n % 10 == 0 else "/") for n in range(150)]
    data = gzip.compress(("\n".join(rows) + "\n").encode(), compresslevel=9)
    cut = tmp_path / "access.log.2.gz"
    cut.write_bytes(data[: len(data) * 2 // 3])
    result = run_cli("logs", str(cut), "--path", "/postfinance/feedback", "--width", "1000")
    assert_no_traceback(result)
    assert result.returncode == 1, result.stdout + result.stderr
    [file_line] = [ln for ln in result.stdout.splitlines() if ln.startswith(f"  {cut}:")]
    assert "no times" not in file_line and "2026-11-10 13:02 – " in file_line and "truncated after line" in file_line
    assert "1 unreadable" in result.stdout and "1 lines" not in result.stdout
    assert "does not have the combined shape" not in result.stdout          # the cut piece is no "line"
    document = json.loads(run_cli("logs", str(cut), "--path", "/postfinance/feedback", "--format", "json").stdout)
    [unreadable] = [f for f in document["findings"] if f["code"] == "logs.unreadable"]
    assert "--log-format" not in unreadable["fix"] and "copy it again" in unreadable["fix"]
    assert "is truncated after line" in unreadable["detail"] and unreadable["evidence"]["kinds"] == {"truncated": 1}
    assert document["logs"][0]["files"][0]["last"] is not None


def test_logs_one_unreadable_line_is_singular_and_keeps_the_format_fix(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    log.write_text(line("185.8.53.17", 10) + "\n" + "185.8.53.17 garbage that is no log line\n")
    document = json.loads(run_cli("logs", str(log), "--path", "/postfinance/feedback", "--format", "json").stdout)
    [unreadable] = [f for f in document["findings"] if f["code"] == "logs.unreadable"]
    assert unreadable["detail"].startswith("1 line could not be read; first ")
    assert "--log-format" in unreadable["fix"]


# -- audit item 23: the logs in Nagios and Prometheus ------------------------------------------------------

NGINX_TIMED = ('$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" '
               '"$http_user_agent" $request_time')


@pytest.fixture
def timed_log(tmp_path: Path) -> Path:
    """Post-sales with answer times: two 2xx, one 500 (the latest: still failing), one from a 2019
    sender, one stranger; and one line that cannot be read."""
    rows = [line("185.8.53.17", 10) + " 0.120", line("185.139.244.5", 11) + " 0.300",
            line("185.8.53.17", 12, 500) + " 4.500", line("212.23.45.97", 12) + " 0.200",
            line("8.8.8.8", 12) + " 0.010", "185.8.53.17 not a log line"]
    log = tmp_path / "access.log"
    log.write_text("\n".join(rows) + "\n")
    return log


def perfdata(status_line: str) -> dict[str, str]:
    data = status_line.split(" | ", 1)[1]
    return {item.split("=", 1)[0].strip("'"): item.split("=", 1)[1] for item in data.split(" ")}


def test_logs_nagios_has_perfdata_and_names_the_main_logs_finding(timed_log: Path) -> None:
    result = run_cli("logs", str(timed_log), "--path", "/postfinance/feedback", "--log-format", NGINX_TIMED,
                     "--format", "nagios")
    assert_no_traceback(result)
    assert result.returncode == 2, result.stdout + result.stderr
    first, *rest = result.stdout.splitlines()
    assert first.startswith("FEEDBACK-CHECK CRITICAL - Post-sales from PostFinance's addresses got error answers "
                            "(/postfinance/feedback)")
    assert "3 post-sales from PostFinance in the logs, 1 failed, last failure 2026-11-12 13:02 UTC" in first
    values = perfdata(first)
    assert values["log_postsales"] == "3;;;0" and values["log_postsales_failed"] == "1;;;0;3"
    assert values["log_legacy_requests"] == "1;;;0" and values["log_foreign_requests"] == "1;;;0"
    assert values["log_unreadable_lines"] == "1;;;0"
    assert values["log_answer_p95"] == "4.5s;5;20;0" and values["log_answer_max"] == "4.5s;5;20;0"
    assert "Profile and platform:" not in result.stdout
    assert rest[0] == "CRITICAL access logs:" and "logs.postsale_failed" in rest[1]


def test_logs_nagios_warning_names_the_warning_not_a_probe_verdict(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    log.write_text(line("185.8.53.17", 10) + "\n" + line("8.8.8.8", 10) + "\n")
    result = run_cli("logs", str(log), "--path", "/postfinance/feedback", "--format", "nagios")
    assert result.returncode == 1
    first = result.stdout.splitlines()[0]
    assert first.startswith("FEEDBACK-CHECK WARNING - Requests to the feedback path from outside PostFinance's "
                            "ranges (/postfinance/feedback); 1 post-sale from PostFinance in the logs, 0 failed |")
    assert "would still get through" not in first and "log_answer_p95" not in first     # no times logged


def metric_samples(text: str) -> dict[str, float]:
    return {ln.rsplit(" ", 1)[0]: float(ln.rsplit(" ", 1)[1]) for ln in text.splitlines()
            if ln and not ln.startswith("#")}


def test_logs_prometheus_has_postsale_series(timed_log: Path) -> None:
    result = run_cli("logs", str(timed_log), "--path", "/postfinance/feedback", "--log-format", NGINX_TIMED,
                     "--format", "prometheus")
    assert_no_traceback(result)
    samples = metric_samples(result.stdout)
    at = 'shop="",path="/postfinance/feedback"'
    assert samples[f'feedback_check_log_postsales{{{at},class="2xx"}}'] == 2
    assert samples[f'feedback_check_log_postsales{{{at},class="5xx"}}'] == 1
    assert samples[f'feedback_check_log_postsales{{{at},class="4xx"}}'] == 0
    assert samples[f"feedback_check_log_legacy_requests{{{at}}}"] == 1
    assert samples[f"feedback_check_log_foreign_requests{{{at}}}"] == 1
    assert samples[f"feedback_check_log_last_success_timestamp_seconds{{{at}}}"] == \
        dt_timestamp("2026-11-11T13:02:11+00:00")
    assert samples[f"feedback_check_log_last_failure_timestamp_seconds{{{at}}}"] == \
        dt_timestamp("2026-11-12T13:02:11+00:00")
    assert samples[f'feedback_check_log_answer_seconds{{{at},quantile="1"}}'] == 4.5
    # answer times of every PostFinance sender (the 2019 one too), not of the stranger
    assert samples[f"feedback_check_log_answer_seconds_count{{{at}}}"] == 4
    assert samples[f"feedback_check_log_answer_seconds_sum{{{at}}}"] == pytest.approx(5.12)
    assert samples['feedback_check_log_unreadable_lines{shop=""}'] == 1
    assert samples['feedback_check_findings{shop="",role="logs",url="/postfinance/feedback",'
                   'code="logs.postsale_failed",severity="critical"}'] == 1
    assert "# TYPE feedback_check_log_answer_seconds summary" in result.stdout
    # the same up/success pair as every other run (blackbox_exporter's probe_success): the latest
    # post-sale failed, so PostFinance's requests do not get through
    assert samples['feedback_check_up{shop=""}'] == 1 and samples['feedback_check_success{shop=""}'] == 0
    assert samples['feedback_check_shop_verdict{shop=""}'] == 2


def dt_timestamp(text: str) -> float:
    import datetime as dt
    return dt.datetime.fromisoformat(text).timestamp()


@pytest.mark.parametrize("timed", [True, False])
def test_promtool_accepts_the_logs_metrics(timed_log: Path, timed: bool) -> None:
    import shutil
    import subprocess

    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (Debian package prometheus; .ci/run installs it)")
    args = ["--log-format", NGINX_TIMED] if timed else []
    result = run_cli("logs", str(timed_log), "--path", "/postfinance/feedback", *args, "--format", "prometheus")
    assert ("feedback_check_log_answer_seconds_count" in result.stdout) is timed
    checked = subprocess.run([promtool, "check", "metrics"], input=result.stdout, text=True, capture_output=True,
                             timeout=60, check=False)
    assert checked.returncode == 0 and not (checked.stdout + checked.stderr).strip(), checked.stdout + checked.stderr


def test_check_with_profile_logs_labels_the_logs_series_with_the_shop(tmp_path: Path, logs_dir: Path) -> None:
    with LoopbackServer(app({"/postfinance/feedback": answer(200, b"")})) as server:
        profile = write_profile(tmp_path, server.url("/postfinance/feedback"),
                                extra=f"    logs:\n      - {logs_dir}/access.log*\n")
        env = {"ACCEPTANCE_SHA_OUT": PASSPHRASE}
        metrics = run_cli("check", "--config", str(profile), "--lab", "--no-forgery-check", "--format",
                          "prometheus", env=env)
        nagios = run_cli("check", "--config", str(profile), "--lab", "--no-forgery-check", "--format", "nagios",
                         env=env)
    samples = metric_samples(metrics.stdout)
    assert any(k.startswith('feedback_check_log_postsales{shop="acceptance-shop",') and k.endswith('class="5xx"}')
               and v == 3 for k, v in samples.items()), metrics.stdout
    assert any(k.startswith('feedback_check_findings{shop="acceptance-shop",role="logs",') and
               'code="logs.postsale_failed"' in k for k in samples)
    assert "'log_postsales_failed'=3;" in nagios.stdout.splitlines()[0]
    assert "CRITICAL access logs of acceptance-shop:" in nagios.stdout
