"""examples/integrations/: every shipped file parses, uses only real options of `feedback-check check`,
and its command lines work as shipped against a local post-sale endpoint on 127.0.0.1."""

from __future__ import annotations

import configparser
import http.server
import os
import re
import shlex
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
import yaml
from click.testing import CliRunner
from prometheus_client.parser import text_string_to_metric_families

from feedback_check.cli import cli
from feedback_check.reporters import render
from feedback_check.reporters.prometheus import render_failure
from tests.unit.test_reporters_nagios import parse as parse_nagios
from tests.unit.test_reporters_samples import critical_report, unknown_report

ROOT = Path(__file__).resolve().parents[2]
FOLDER = ROOT / "examples" / "integrations"
PROFILE = "/etc/feedback-check/feedback-check.yaml"
TEXTFILE = "/var/lib/prometheus/node-exporter/feedback_check.prom"        # Debian's textfile directory
UNIT_TEXTFILE = "/var/lib/feedback-check/feedback_check.prom"             # the textfile unit's own copy
STATE = "/var/lib/feedback-check/state.json"
PASSPHRASE = "Integration-Secret-7f3a!"


def check_command() -> click.Command:
    command = cli.get_command(click.Context(cli), "check")
    assert command is not None
    return command


def check_options() -> set[str]:
    return {opt for param in check_command().params for opt in param.opts}


def command_lines() -> list[tuple[str, list[str]]]:
    """(file, argv after `check`) of every `feedback-check check ...` command line in the shipped files."""
    found: list[tuple[str, list[str]]] = []
    for path in sorted(FOLDER.iterdir()):
        if path.name in ("README.md", "prometheus-alerts.yml", "prometheus-alerts.test.yml",
                         "prometheus-scrape.yml", "feedback-check-exporter.service"):   # checked separately
            continue
        for line in path.read_text().splitlines():
            line = line.strip()
            if line.startswith("#") or "feedback-check check" not in line:
                continue
            command = line[line.index("feedback-check check") + len("feedback-check check"):]
            command = command.split("||")[0].replace("$ARG1$", PROFILE).replace("$ARG2$", "shop-ch")
            command = command.replace("$ARG3$", "3").replace("$ARG4$", "10").replace("$ARG5$", "30,14")
            found.append((path.name, shlex.split(command)))
    return found


def test_every_file_is_described_in_the_readme() -> None:
    readme = (FOLDER / "README.md").read_text()
    for path in FOLDER.iterdir():
        if path.name != "README.md":
            assert f"`{path.name}`" in readme or f"`{path.stem}`" in readme or path.stem.split(".")[0] in readme


def test_yaml_files_parse() -> None:
    for path in FOLDER.glob("*.yml"):
        assert isinstance(yaml.safe_load(path.read_text()), dict), path.name


def test_command_lines_use_real_options_with_valid_values() -> None:
    lines = command_lines()
    files = {name for name, _ in lines}
    assert {"crontab", "feedback-check.service", "feedback-check-textfile.service", "nagios-commands.cfg",
            "gitlab-ci.yml"} <= files
    help_text = CliRunner().invoke(cli, ["check", "--help"]).output
    known = check_options()
    for name, argv in lines:
        for token in argv:
            if token.startswith("-") and not token.lstrip("-").isdigit():
                assert token in known and token in help_text, f"{name}: {token} is not an option of check"
        # click parses the whole line: option values of the wrong type or choice fail here.
        check_command().make_context("check", list(argv))


def test_icinga_check_command_has_every_plugin_option_of_check() -> None:
    text = (FOLDER / "icinga2-feedback-check.conf").read_text()
    assert 'command = [ "/usr/local/bin/feedback-check", "check" ]' in text
    keys = set(re.findall(r'"(--[a-z-]+)" = \{', text))
    long_options = {opt for param in check_command().params for opt in param.opts if opt.startswith("--")}
    # Everything but what would break a plugin answer (--quiet, --output), is fixed (--format nagios) or
    # shapes only the text report (--width).
    assert keys == long_options - {"--quiet", "--output", "--help", "--width"}, keys ^ long_options
    defaults = dict(re.findall(r"vars\.feedback_check_(\w+) = \"?([\w.]+)\"?", text))
    argv = ["--config", PROFILE, "--shop", "shop-ch", "--format", "nagios",
            "--max-runtime", defaults["max_runtime"], "--fail-on", defaults["fail_on"], "--warning-time", "3",
            "--critical-time", "10", "--certificate", "30,14"]
    check_command().make_context("check", argv)
    assert "apply Service \"postfinance-feedback-\" for (shop => config in host.vars.postfinance_shops)" in text
    assert "vars.feedback_check_shop = shop" in text
    assert text.count("{") == text.count("}")


def test_nagios_definitions_are_balanced_and_complete() -> None:
    text = (FOLDER / "nagios-commands.cfg").read_text()
    blocks = re.findall(r"define (\w+) \{(.*?)\n\}", text, re.DOTALL)
    assert [kind for kind, _ in blocks] == ["command", "command", "service", "service"]
    commands = [dict(line.split(None, 1) for line in body.strip().splitlines()) for kind, body in blocks
                if kind == "command"]
    services = [dict(line.split(None, 1) for line in body.strip().splitlines()) for kind, body in blocks
                if kind == "service"]
    names = {c["command_name"]: c["command_line"] for c in commands}
    for service in services:
        name, *args = service["check_command"].split("!")
        assert name in names
        assert max((int(n) for n in re.findall(r"\$ARG(\d)\$", names[name])), default=0) == len(args)
    assert all("--format nagios" in line for line in names.values())


def unit_file(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(path.read_text())
    return parser


@pytest.mark.parametrize("name", ["feedback-check", "feedback-check-textfile"])
def test_systemd_units(name: str, tmp_path: Path) -> None:
    service = unit_file(FOLDER / f"{name}.service")
    timer = unit_file(FOLDER / f"{name}.timer")
    assert service["Service"]["Type"] == "oneshot"
    assert service["Service"]["ExecStart"].startswith("/usr/local/bin/feedback-check check ")
    assert service["Service"]["DynamicUser"] == "yes" and "LoadCredential" in service["Service"]
    assert timer["Timer"]["Unit"] == f"{name}.service"
    assert timer["Install"]["WantedBy"] == "timers.target"
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        return
    # systemd's own parser; the program path is pointed at this installation (the shipped one may not exist).
    program = Path(sys.executable).with_name("feedback-check")
    for suffix in (".service", ".timer"):
        text = (FOLDER / f"{name}{suffix}").read_text().replace("/usr/local/bin/feedback-check", str(program))
        (tmp_path / f"{name}{suffix}").write_text(text)
    result = subprocess.run([analyze, "verify", str(tmp_path / f"{name}.service"), str(tmp_path / f"{name}.timer")],
                            check=False, capture_output=True, text=True, timeout=60)
    complaints = [line for line in (result.stdout + result.stderr).splitlines()
                  if line.strip() and "Failed to connect to bus" not in line]
    assert result.returncode == 0 and not complaints, complaints


def test_crontab_lines_have_five_time_fields() -> None:
    field = r"(\*|\*/\d+|\d+(-\d+)?(,\d+(-\d+)?)*)"
    for line in (FOLDER / "crontab").read_text().splitlines():
        if not line.strip() or line.startswith("#") or re.match(r"^[A-Z_]+=", line):
            continue
        assert re.match(rf"^{field}( {field}){{4}} feedback-check check ", line), line


def test_alert_rules_use_metrics_the_reporter_writes() -> None:
    rules = yaml.safe_load((FOLDER / "prometheus-alerts.yml").read_text())
    exposed = set()
    for report in (critical_report(), unknown_report()):
        exposed |= {family.name for family in text_string_to_metric_families(render(report, "prometheus"))}
    exposed |= {family.name for family in text_string_to_metric_families(render_failure("bad profile"))}
    exposed |= {"feedback_check_exporter_config_last_reload_successful"}     # the exporter's own /metrics
    used = set()
    for group in rules["groups"]:
        for rule in group["rules"]:
            assert {"alert", "expr", "labels", "annotations"} <= set(rule)
            used |= set(re.findall(r"\bfeedback_check_[a-z_]+\b", rule["expr"]))
            for label in re.findall(r"\$labels\.(\w+)", str(rule["annotations"])):
                assert label in {"shop", "role", "url", "port", "address", "reason", "instance", "job"}
    assert used, "the rules use feedback-check metrics"
    mentioned = re.findall(r"(--[a-z][a-z-]+)", (FOLDER / "prometheus-alerts.yml").read_text()
                           + (FOLDER / "README.md").read_text())
    assert set(mentioned) <= check_options() | {"--help", "--collector"}, "options named in prose exist"
    assert used <= exposed, f"metrics the reporter never writes: {used - exposed}"


# --- the command lines, run as shipped against a local endpoint -------------------------------------------

class _Feedback(http.server.BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_POST

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def endpoint() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Feedback)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/postfinance/feedback"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def installed(tmp_path: Path, endpoint: str) -> dict[str, str]:
    """Paths standing in for the ones the files name, and a profile for the local endpoint."""
    profile = tmp_path / "feedback-check.yaml"
    profile.write_text(f"""version: 1
shops:
  - name: shop-ch
    feedback:
      timing: always_deferred
      method: POST
      urls:
        accepted: {endpoint}
    signature:
      algorithm: SHA-512
      passphrase_env: FBC_INTEGRATION_SHA_OUT
""")
    return {PROFILE: str(profile), TEXTFILE: str(tmp_path / "feedback_check.prom"),
            UNIT_TEXTFILE: str(tmp_path / "feedback_check.prom"), STATE: str(tmp_path / "state.json")}


def run_shipped(name: str, paths: dict[str, str], *extra: str) -> subprocess.CompletedProcess[str]:
    """Run the first command line of a shipped file with its paths replaced, plus `extra` (--lab for loopback)."""
    argv = next(argv for file, argv in command_lines() if file == name)
    argv = [paths.get(token, token) for token in argv]
    env = {**os.environ, "FBC_INTEGRATION_SHA_OUT": PASSPHRASE}
    return subprocess.run([sys.executable, "-m", "feedback_check", "check", *argv, *extra], check=False,
                          capture_output=True, text=True, timeout=120, env=env, cwd=ROOT)


def test_textfile_unit_writes_a_parseable_prom_file(installed: dict[str, str]) -> None:
    result = run_shipped("feedback-check-textfile.service", installed, "--lab")
    assert result.returncode in (0, 1, 2), result.stderr
    assert result.stdout == "", "with --output nothing goes to stdout"
    written = Path(installed[TEXTFILE]).read_text()
    families = {f.name: f for f in text_string_to_metric_families(written)}
    verdicts = families["feedback_check_verdict"].samples
    assert [s.labels["shop"] for s in verdicts] == ["shop-ch"]
    assert verdicts[0].value == result.returncode, "the file carries the verdict the exit code gives"
    assert "feedback_check_last_run_timestamp_seconds" in families
    assert PASSPHRASE not in written


def test_nagios_command_gives_a_plugin_answer(installed: dict[str, str]) -> None:
    result = run_shipped("nagios-commands.cfg", installed, "--lab")
    state, reason, perf, _ = parse_nagios(result.stdout)
    assert reason.strip()
    assert {"OK": 0, "WARNING": 1, "CRITICAL": 2, "UNKNOWN": 3}[state] == result.returncode
    assert perf["total"].uom == "s" and perf["urls_ok"].max == "1"
    assert PASSPHRASE not in result.stdout + result.stderr


def test_crontab_line_reports_problems_and_remembers_state(installed: dict[str, str]) -> None:
    first = run_shipped("crontab", installed, "--lab")
    # plain http on loopback: a WARNING at best, so --quiet still prints (cron mails it).
    assert first.returncode == 1, first.stdout + first.stderr
    assert first.stdout.startswith("WARNING")
    assert "Changes since the last run" in first.stdout and "first run with this state file" in first.stdout
    state = Path(installed[STATE]).read_text()
    assert '"shop-ch"' in state and PASSPHRASE not in state
    second = run_shipped("crontab", installed, "--lab")
    assert "previous run:" in second.stdout and "no change." in second.stdout
    assert PASSPHRASE not in first.stdout + first.stderr + second.stdout + second.stderr


def test_gitlab_job_writes_junit(installed: dict[str, str], tmp_path: Path) -> None:
    output = tmp_path / "feedback-check.xml"
    paths = {**installed, "ci/feedback-check.yaml": installed[PROFILE], "feedback-check.xml": str(output)}
    result = run_shipped("gitlab-ci.yml", paths)
    assert result.returncode in (1, 2), result.stderr
    import xml.etree.ElementTree as ET
    root = ET.fromstring(output.read_text())
    assert root.tag == "testsuites" and root.find(".//testcase[@classname='feedback-check.shop-ch.accepted']") is not None
