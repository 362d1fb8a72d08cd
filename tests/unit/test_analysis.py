"""analyse_layers: per-range verdicts, deciding rules, findings, layers in path order, and fix lines that work."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import replace
from pathlib import Path

import pytest

from feedback_check.errors import ConfigError
from feedback_check.firewall.analysis import LayerSource, analyse_layers, detect_format
from feedback_check.firewall.live import read_live
from feedback_check.platform import PublishedRange, load_platform

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "firewall"
IPT = EXAMPLES / "iptables"
PLATFORM = load_platform()
HEAD = "*filter\n:INPUT DROP [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n"


def codes(summary) -> list[str]:  # type: ignore[no-untyped-def]
    return [f.code for f in summary.findings]


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def apply_fixes(text: str, lines: list[str]) -> str:
    """Apply `iptables -I CHAIN N ...` / `iptables -A CHAIN ...` to an iptables-save dump (filter table)."""
    out = text.splitlines()
    for line in lines:
        ufw = re.match(r"^ufw insert (\d+) allow proto tcp from (\S+) to any port (\d+)$", line)
        if ufw:   # what ufw itself writes for that command: a rule at that position of ufw-user-input
            number, cidr, port = ufw.groups()
            line = f"iptables -I ufw-user-input {number} -p tcp -s {cidr} --dport {port} -j ACCEPT"
        match = re.match(r"^iptables -(I|A) (\S+) (?:(\d+) )?(.*)$", line)
        if not match:
            continue
        op, chain, number, spec = match.groups()
        rule = f"-A {chain} {spec}"
        filter_start = out.index("*filter")
        commit = out.index("COMMIT", filter_start)
        positions = [i for i in range(filter_start, commit) if out[i].startswith(f"-A {chain} ")]
        if op == "I" and int(number) <= len(positions):
            out.insert(positions[int(number) - 1], rule)
        else:
            out.insert((positions[-1] + 1) if positions else commit, rule)
    return "\n".join(out) + "\n"


@pytest.mark.parametrize("name, blocked_codes", [
    ("debian-rules.v4", ["firewall.range_blocked"]),
    ("legacy-2019.rules", ["firewall.legacy_allowlist"] + ["firewall.range_blocked"] * 3),
    ("fail2ban.rules", ["firewall.range_blocked"]),
    ("docker-host.rules", ["firewall.range_blocked"] * 2),
    ("ufw-host.rules", ["firewall.range_blocked"]),     # ufw's own chains in an iptables-save dump
])
def test_examples_are_blocked_and_their_fix_lines_admit_everything(tmp_path: Path, name: str,
                                                                   blocked_codes: list[str]) -> None:
    text = (IPT / name).read_text()
    summary = analyse_layers([LayerSource(str(IPT / name))], PLATFORM, port=443)
    assert codes(summary) == blocked_codes
    assert summary.verdict.name == "CRITICAL"
    fixed = write(tmp_path, name, apply_fixes(text, list(summary.analysis.fix_lines)))
    after = analyse_layers([LayerSource(fixed)], PLATFORM, port=443)
    assert after.blocked_addresses == 0 and not [c for c in codes(after) if c.startswith("firewall.range")]


def test_partly_blocked_range_names_cidrs_and_the_deciding_rule() -> None:
    summary = analyse_layers([LayerSource(str(IPT / "debian-rules.v4"))], PLATFORM, port=443)
    [blocked] = summary.findings
    assert blocked.target == "185.139.244.0/22"
    assert blocked.evidence["blocked"] == ["185.139.246.0/23"]
    assert blocked.evidence["admitted"] == ["185.139.244.0/23"]
    [deciding] = blocked.evidence["deciding"]
    assert deciding["rule"].endswith("debian-rules.v4:14") and deciding["action"] == "reject"
    assert "iptables -I INPUT 9 -p tcp -s 185.139.244.0/22 --dport 443 -j ACCEPT" in blocked.fix
    ranges = {r.cidr: r.state for r in summary.analysis.ranges}
    assert ranges == {"185.139.244.0/22": "partly blocked", "91.208.214.0/24": "admitted",
                      "185.8.52.0/22": "admitted"}
    assert summary.published_addresses == 2304 and summary.blocked_addresses == 512


def test_port_80_of_the_same_file(tmp_path: Path) -> None:
    summary = analyse_layers([LayerSource(str(IPT / "debian-rules.v4"))], PLATFORM, port=80)
    assert summary.blocked_addresses == 512 and summary.port == 80


def test_port_closed_and_open_to_world(tmp_path: Path) -> None:
    closed = write(tmp_path, "closed.rules", HEAD + "-A INPUT -p tcp --dport 22 -j ACCEPT\nCOMMIT\n")
    summary = analyse_layers([LayerSource(closed)], PLATFORM, port=443)
    assert codes(summary)[0] == "firewall.port_closed" and codes(summary).count("firewall.range_blocked") == 3
    opened = write(tmp_path, "open.rules", HEAD + "-A INPUT -p tcp --dport 443 -j ACCEPT\nCOMMIT\n")
    summary = analyse_layers([LayerSource(opened)], PLATFORM, port=443)
    assert codes(summary) == ["firewall.open_to_world"] and summary.verdict.name == "OK"


def test_port_closed_by_a_web_server_says_it_answers_403_not_that_tcp_fails(tmp_path: Path) -> None:
    """Audit 19: nginx `deny all` lets the TCP connection open and answers 403; only a packet filter
    makes "cannot open a TCP connection" true."""
    nginx = write(tmp_path, "shop.conf", "server {\n  listen 443 ssl;\n  server_name shop.example.ch;\n"
                                         "  location / {\n    deny all;\n  }\n}\n")
    opened = write(tmp_path, "open.rules", HEAD + "-A INPUT -p tcp --dport 443 -j ACCEPT\nCOMMIT\n")
    summary = analyse_layers([LayerSource(opened, "iptables"), LayerSource(nginx, "nginx")], PLATFORM, port=443,
                             path="/postfinance/feedback", host="shop.example.ch")
    closed = summary.findings[0]
    assert closed.code == "firewall.port_closed"
    assert closed.title == "nginx answers 403 to every published address"
    assert "TCP connection to port 443 opens" in closed.detail and "cannot open" not in closed.detail
    packet_filter = write(tmp_path, "closed.rules", HEAD + "-A INPUT -p tcp --dport 22 -j ACCEPT\nCOMMIT\n")
    summary = analyse_layers([LayerSource(packet_filter, "iptables"), LayerSource(nginx, "nginx")], PLATFORM,
                             port=443, path="/postfinance/feedback", host="shop.example.ch")
    closed = summary.findings[0]
    assert closed.title == "Feedback port closed to every published source"
    assert "No published PostFinance address can open a TCP connection to port 443" in closed.detail


def test_layers_intersect_in_path_order_and_each_blocking_layer_gets_fixes(tmp_path: Path) -> None:
    outer = write(tmp_path, "outer.rules", HEAD + "-A INPUT -s 185.139.244.0/22,91.208.214.0/24 -j ACCEPT\nCOMMIT\n")
    inner = write(tmp_path, "inner.rules", HEAD + "-A INPUT -s 185.8.52.0/22,185.139.244.0/22 -j ACCEPT\nCOMMIT\n")
    summary = analyse_layers([LayerSource(outer, "iptables", "edge"), LayerSource(inner, "auto", "host")],
                             PLATFORM, port=443)
    assert list(summary.analysis.admitted) == ["185.139.244.0/22"]
    by_range = {r.cidr: r for r in summary.analysis.ranges}
    assert [d.layer for d in by_range["91.208.214.0/24"].deciding] == ["host"]
    assert [d.layer for d in by_range["185.8.52.0/22"].deciding] == ["edge"]
    assert [layer.name for layer in summary.analysis.layers] == ["edge", "host"]


def test_legacy_allowlist_only_when_the_newer_ranges_are_all_blocked(tmp_path: Path) -> None:
    summary = analyse_layers([LayerSource(str(IPT / "legacy-2019.rules"))], PLATFORM, port=443)
    legacy = summary.findings[0]
    assert legacy.code == "firewall.legacy_allowlist"
    assert legacy.evidence["missing"] == ["185.139.244.0/22", "91.208.214.0/24"]
    partly = write(tmp_path, "p.rules", HEAD + "-A INPUT -s 212.23.45.96/28,185.139.244.0/22 -j ACCEPT\nCOMMIT\n")
    assert "firewall.legacy_allowlist" not in codes(analyse_layers([LayerSource(partly)], PLATFORM, port=443))


def test_unsupported_match_makes_the_verdict_uncertain_never_ok(tmp_path: Path) -> None:
    text = HEAD + "-A INPUT -p tcp --dport 443 -m geoip --src-cc CH -j ACCEPT\nCOMMIT\n"
    summary = analyse_layers([LayerSource(write(tmp_path, "geo.rules", text))], PLATFORM, port=443)
    assert codes(summary) == ["firewall.unsupported_match"]
    assert summary.uncertain and summary.verdict.name == "WARNING"
    assert {r.state for r in summary.analysis.ranges} == {"admitted"}
    text = HEAD + "-A INPUT -p tcp --dport 443 -m geoip ! --src-cc CH -j DROP\n-A INPUT -j ACCEPT\nCOMMIT\n"
    summary = analyse_layers([LayerSource(write(tmp_path, "geo2.rules", text))], PLATFORM, port=443)
    assert codes(summary) == ["firewall.unsupported_match"]
    assert {r.state for r in summary.analysis.ranges} == {"uncertain"}
    assert "read as blocked" in summary.findings[0].detail


def test_ipset_given_among_the_files_or_separately() -> None:
    layers = [LayerSource(str(IPT / "ipset-allowlist.rules")), LayerSource(str(EXAMPLES / "ipset" / "psp-feedback.ipset"))]
    summary = analyse_layers(layers, PLATFORM, port=443)
    assert list(summary.analysis.blocked) == ["91.208.214.128/25", "185.8.54.0/24"]
    assert not summary.uncertain
    alone = analyse_layers(layers[:1], PLATFORM, port=443)
    assert alone.uncertain and "firewall.unsupported_match" in codes(alone)
    assert "firewall.range_blocked" not in codes(alone)      # blocked only where uncertain: not critical


def test_rate_limit_and_unparsed_findings(tmp_path: Path) -> None:
    text = HEAD + ("-A INPUT -p tcp --dport 443 -m limit --limit 10/sec -j ACCEPT\nnonsense here\nCOMMIT\n")
    summary = analyse_layers([LayerSource(write(tmp_path, "r.rules", text))], PLATFORM, port=443)
    assert codes(summary) == ["firewall.open_to_world", "firewall.unparsed", "firewall.rate_limited"]
    assert summary.findings[1].evidence["lines"] == [f"{tmp_path / 'r.rules'}:6: nonsense here"]
    assert summary.uncertain


def test_stale_and_custom_ranges() -> None:
    old = replace(PLATFORM.ranges, retrieved=dt.date(2019, 1, 1))
    summary = analyse_layers([LayerSource(str(IPT / "debian-rules.v4"))], PLATFORM, port=443, ranges=old)
    assert "ranges.stale" in codes(summary)
    custom = replace(PLATFORM.ranges, ranges=(PublishedRange("185.139.244.0/23", "user"),), custom=True,
                     origin_file="mine.txt")
    summary = analyse_layers([LayerSource(str(IPT / "debian-rules.v4"))], PLATFORM, port=443, ranges=custom,
                             shop="shop-ch")
    assert codes(summary) == ["ranges.custom"] and summary.verdict.name == "OK"
    assert {f.shop for f in summary.findings} == {"shop-ch"}


def test_input_errors_are_config_errors_naming_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="missing.rules: file not found"):
        analyse_layers([LayerSource(str(tmp_path / "missing.rules"))], PLATFORM, port=443)
    odd = write(tmp_path, "odd.txt", "what is this\n")
    with pytest.raises(ConfigError, match="cannot tell which firewall format"):
        analyse_layers([LayerSource(odd)], PLATFORM, port=443)
    loop = write(tmp_path, "loop.rules", HEAD.replace("*filter\n", "*filter\n:A - [0:0]\n")
                 + "-A INPUT -j A\n-A A -j A\nCOMMIT\n")
    with pytest.raises(ConfigError, match="loop.rules: .*loop"):
        analyse_layers([LayerSource(loop)], PLATFORM, port=443)


def test_detect_format_prefers_ipset_and_iptables() -> None:
    assert detect_format((IPT / "debian-rules.v4").read_text()) == "iptables"
    assert detect_format((EXAMPLES / "ipset" / "psp-feedback.ipset").read_text()) == "ipset"


def test_live_reading_explains_what_it_cannot_read() -> None:
    not_root = read_live(euid=1000)
    assert not not_root.layers and "not running as root" in not_root.problems[0]
    missing = read_live(euid=0, which=lambda tool: None)
    assert any("iptables-save: not installed" in p for p in missing.problems)
    outputs = {"iptables-save": (0, (IPT / "debian-rules.v4").read_text(), ""),
               "ip6tables-save": (1, "", "ip6tables-save: Permission denied (you must be root)\n"),
               "nft": (0, '{"nftables": [{"table": {"family": "ip", "name": "filter", "handle": 1}}]}', ""),
               "ipset": (0, "", "")}
    found = read_live(euid=0, which=lambda tool: f"/usr/sbin/{tool}",
                      runner=lambda argv: outputs[Path(argv[0]).name])
    assert [layer.type for layer in found.layers] == ["iptables"]
    assert any("Permission denied" in p for p in found.problems)
    assert any("iptables' own" in n for n in found.notes)
    summary = analyse_layers(found.layers, PLATFORM, port=443, ipsets=found.ipsets)
    assert summary.blocked_addresses == 512


def test_ufw_managed_dump_is_fixed_through_ufw() -> None:
    summary = analyse_layers([LayerSource(str(IPT / "ufw-host.rules"))], PLATFORM, port=443)
    fixes = list(summary.analysis.fix_lines)
    assert "ufw insert 1 allow proto tcp from 185.8.52.0/22 to any port 443" in fixes
    assert not [line for line in fixes if line.startswith("iptables ")]


def test_combined_fix_is_grouped_by_layer_so_each_header_stays_above_its_lines() -> None:
    # Security group, iptables and nginx each block some range: the nginx header comment ("# in location
    # …, before `deny all;`") must stand above every nginx line, not only above the first range's.
    layers = [LayerSource(str(EXAMPLES / "aws" / "describe-security-groups.json"), "auto"),
              LayerSource(str(IPT / "debian-rules.v4"), "auto"),
              LayerSource(str(EXAMPLES / "nginx" / "debian" / "sites-enabled" / "shop.example.ch"), "auto")]
    summary = analyse_layers(layers, PLATFORM, port=443, path="/postfinance/feedback", host="shop.example.ch")
    fix = list(summary.analysis.fix_lines)
    kinds = ["aws" if line.startswith("aws ") else "nginx" if line.startswith(("allow ", "# in location"))
             else "iptables" for line in fix]
    assert kinds == sorted(kinds, key=["aws", "iptables", "nginx"].index), fix
    nginx = [line for line, kind in zip(fix, kinds, strict=True) if kind == "nginx"]
    assert nginx[0].startswith("# in location") and len(nginx) == 4
    assert all(line.startswith("allow ") for line in nginx[1:])
