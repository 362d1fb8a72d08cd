"""`feedback-check firewall` end to end, as a user runs it: exit codes, JSON document, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "firewall"
IPT = EXAMPLES / "iptables"
HEAD = "*filter\n:INPUT DROP [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n"


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "feedback_check", "firewall", *args], capture_output=True,
                          text=True, timeout=60, check=False)


def test_blocked_range_is_critical_with_json_details() -> None:
    done = cli(str(IPT / "debian-rules.v4"), "--format", "json")
    assert done.returncode == 2, done.stderr
    report = json.loads(done.stdout)
    assert report["verdict"] == "CRITICAL" and report["command"] == "firewall"
    [finding] = report["findings"]
    assert finding["code"] == "firewall.range_blocked" and finding["target"] == "185.139.244.0/22"
    [fw] = report["firewall"]
    assert fw["port"] == 443 and fw["blocked"] == ["185.139.246.0/23"]
    assert fw["fix_lines"][0] == "iptables -I INPUT 9 -p tcp -s 185.139.244.0/22 --dport 443 -j ACCEPT"
    assert report["platform"]["ranges"]["cidrs"] == ["185.139.244.0/22", "91.208.214.0/24", "185.8.52.0/22"]


def test_open_port_is_ok_and_quiet_prints_nothing(tmp_path: Path) -> None:
    rules = tmp_path / "open.rules"
    rules.write_text(HEAD + "-A INPUT -p tcp -m multiport --dports 80,443 -j ACCEPT\nCOMMIT\n")
    done = cli(str(rules), "--url", "http://shop.example/postfinance/feedback", "--format", "json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["firewall"][0]["port"] == 80 and report["verdict"] == "OK"
    quiet = cli(str(rules), "--quiet")
    assert quiet.returncode == 0 and quiet.stdout == ""


def test_uncertain_is_a_warning_and_fail_on_critical_exits_zero(tmp_path: Path) -> None:
    done = cli(str(IPT / "ipset-allowlist.rules"), "--format", "json")
    assert done.returncode == 1
    report = json.loads(done.stdout)
    assert report["firewall"][0]["uncertain"] is True
    assert cli(str(IPT / "ipset-allowlist.rules"), "--fail-on", "critical").returncode == 0


def test_ipset_option_and_ipset_file_among_files_agree() -> None:
    ipset_file = str(EXAMPLES / "ipset" / "psp-feedback.ipset")
    one = json.loads(cli(str(IPT / "ipset-allowlist.rules"), "--ipset", ipset_file, "--format", "json").stdout)
    two = json.loads(cli(str(IPT / "ipset-allowlist.rules"), ipset_file, "--format", "json").stdout)
    assert one["firewall"][0]["blocked"] == two["firewall"][0]["blocked"] == ["91.208.214.128/25", "185.8.54.0/24"]


def test_several_layers_and_types(tmp_path: Path) -> None:
    outer = tmp_path / "outer.txt"
    outer.write_text(HEAD + "-A INPUT -s 185.139.244.0/22 -j ACCEPT\nCOMMIT\n")
    done = cli(str(outer), str(IPT / "debian-rules.v4"), "--type", "iptables", "--format", "json")
    report = json.loads(done.stdout)
    assert report["firewall"][0]["admitted"] == ["185.139.244.0/23"]
    assert len(report["firewall"][0]["layers"]) == 2
    wrong = cli(str(outer), str(IPT / "debian-rules.v4"), "--type", "iptables", "--type", "auto", "--type", "nginx")
    assert wrong.returncode == 3 and "--type given 3 times for 2 files" in wrong.stderr


def test_ranges_file_replaces_the_published_list(tmp_path: Path) -> None:
    ranges = tmp_path / "ranges.txt"
    ranges.write_text("# pasted from PostFinance's page\n185.139.244.0/23\n")
    done = cli(str(IPT / "debian-rules.v4"), "--ranges", str(ranges), "--format", "json")
    report = json.loads(done.stdout)
    assert done.returncode == 0 and [f["code"] for f in report["findings"]] == ["ranges.custom"]


def test_errors_are_one_line_naming_file_and_line_exit_3(tmp_path: Path) -> None:
    bad = tmp_path / "bad.rules"
    bad.write_text(HEAD + "-A INPUT -s 185.139.244.0/33 -j ACCEPT\nCOMMIT\n")
    done = cli(str(bad))
    assert done.returncode == 3
    assert done.stderr.count("\n") == 1 and f"{bad}:5:" in done.stderr and "Traceback" not in done.stderr
    missing = cli(str(tmp_path / "nope.rules"))
    assert missing.returncode == 3 and "nope.rules: file not found" in missing.stderr
    conflict = cli(str(bad), "--port", "80", "--url", "https://shop.example/")
    assert conflict.returncode == 3 and "contradicts" in conflict.stderr
    assert cli().returncode == 3


def test_text_report_names_the_rule_and_the_fix() -> None:
    done = cli(str(IPT / "fail2ban.rules"))
    assert done.returncode == 2
    assert "185.139.245.17/32" in done.stdout and "fail2ban.rules:14" in done.stdout
    assert "fail2ban-client set nginx-http-auth unbanip" in done.stdout
