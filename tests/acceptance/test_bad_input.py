"""Bad input through the real CLI: one clear line naming file, line and problem, exit 3, no traceback.

Each case here once produced a traceback-free but useless "internal error: TypeError: ..." line, a
multi-line usage block, or an error without the line it was about. Nothing here touches the network:
profiles point at 127.0.0.1 and every run fails before a probe is sent.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
FIREWALL = EXAMPLES / "firewall"
SHIPPED_PLATFORM = Path(__file__).resolve().parents[2] / "config" / "postfinance.yaml"

PROFILE = """version: 1
shops:
  - name: s1
    feedback:
      urls:
        accepted: http://127.0.0.1:9/fb
    signature:
      passphrase: abcdefghijklmnopqrstu
"""


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "feedback_check", *args], capture_output=True, text=True,
                          timeout=60, check=False)


def assert_one_line_error(done: subprocess.CompletedProcess[str], *fragments: str) -> str:
    """Exit 3, nothing on stdout, exactly one stderr line holding every fragment; returns the line."""
    message = done.stderr.strip()
    assert done.returncode == 3, (done.returncode, done.stderr, done.stdout[:300])
    assert "Traceback" not in done.stderr and "internal error" not in message, message
    assert len(message.splitlines()) == 1, message
    assert message.startswith("feedback-check: error: "), message
    for fragment in fragments:
        assert fragment in message, (fragment, message)
    return message


# -- merchant profiles --------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "text", "expected"), [
    ("control-char", PROFILE.replace("name: s1", "name: s\x071"), ":3: not valid YAML: control character U+0007"),
    ("nul-escape-in-path", PROFILE.replace("passphrase: abcdefghijklmnopqrstu", 'passphrase_file: "/tmp/a\\0b"'),
     ":8: a NUL character"),
    ("list-as-key", PROFILE + "    ? [a, b]\n    : 1\n", ":9: a list or mapping cannot be a key"),
    ("mapping-as-key", "{a: 1}: 2\n", ":1: a list or mapping cannot be a key"),
    ("huge-number", PROFILE.replace("version: 1", "version: " + "9" * 5000), ":1: cannot read the value on this line as a YAML int"),
    ("impossible-date", PROFILE.replace("name: s1", "name: 2020-13-45"), ":3: cannot read the value on this line as a YAML timestamp"),
])
def test_profile_yaml_problems_name_the_line(tmp_path: Path, name: str, text: str, expected: str) -> None:
    profile = tmp_path / f"{name}.yaml"
    profile.write_text(text, encoding="utf-8")
    assert_one_line_error(run("check", "--config", str(profile), "--resolver", "127.0.0.1:9"), f"{profile}{expected}")


def test_firewall_layer_path_with_nul_escape_is_refused_before_any_probe(tmp_path: Path) -> None:
    profile = tmp_path / "shop.yaml"
    profile.write_text(PROFILE + '    firewall: [{file: "rules\\0.v4"}]\n', encoding="utf-8")
    done = run("check", "--config", str(profile), "--resolver", "127.0.0.1:9")
    assert_one_line_error(done, f"{profile}:9: a NUL character")


# -- usage errors: one line too ---------------------------------------------------------------------


@pytest.mark.parametrize(("args", "expected"), [
    (("check", "--config", "/"), ("Invalid value for '--config': File '/' is a directory. "
                           "(see 'feedback-check check --help')")),
    (("ranges", "--platform", "/"), "'--platform': File '/' is a directory"),
    (("firewall", "x.rules", "--port", "0"), "'--port': 0 is not in the range"),
    (("probe", "http://127.0.0.1:9/", "--status", "x"), "'--status': 'x' is not a valid integer"),
    (("sign", "--no-such-option"), "No such option '--no-such-option'"),
])
def test_usage_errors_are_one_line(args: tuple[str, ...], expected: str) -> None:
    assert_one_line_error(run(*args), expected)


def test_bare_command_still_shows_the_help() -> None:
    done = run()
    assert done.returncode == 3 and "Commands:" in done.stdout + done.stderr


# -- platform profile and range lists ----------------------------------------------------------------


@pytest.mark.parametrize(("old", "new", "expected"), [
    ("max_age_days: 365", "max_age_days: lots", ": ranges.max_age_days: 'lots' is not a number of days"),
    ("encodings: [UTF-8, ISO-8859-1]", "encodings: [UTF-8, EBCDIC]", "malformed platform profile (unknown character encoding"),
    ("cidrs: [185.8.52.254/32,", "cidrs: [999.1.1.1,", "malformed platform profile ('999.1.1.1' is not"),
])
def test_platform_values_checked_when_loaded(tmp_path: Path, old: str, new: str, expected: str) -> None:
    text = SHIPPED_PLATFORM.read_text(encoding="utf-8")
    assert old in text
    platform = tmp_path / "platform.yaml"
    platform.write_text(text.replace(old, new), encoding="utf-8")
    for args in (("ranges",), ("firewall", str(FIREWALL / "iptables" / "debian-rules.v4"))):
        assert_one_line_error(run(*args, "--platform", str(platform)), str(platform), expected)


def test_range_list_max_age_must_be_days(tmp_path: Path) -> None:
    ranges = tmp_path / "ranges.yaml"
    ranges.write_text("ranges:\n  published: [185.139.244.0/22]\n  max_age_days: [1]\n", encoding="utf-8")
    assert_one_line_error(run("ranges", "--ranges", str(ranges)), f"{ranges}:3: ranges.max_age_days: [1] is not")


def test_plain_range_list_with_a_bad_ipv6_network_names_the_line(tmp_path: Path) -> None:
    ranges = tmp_path / "ranges.txt"
    ranges.write_text("# ours\n2001:db8::/32\n2001:db8::/129\n", encoding="utf-8")
    assert_one_line_error(run("ranges", "--ranges", str(ranges)), f"{ranges}:3: '2001:db8::/129' is not")


# -- firewall rule files ---------------------------------------------------------------------------


def _mutated_json(source: Path, target: Path, *path: str | int, value: object) -> Path:
    data = json.loads(source.read_text(encoding="utf-8"))
    node = data
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    target.write_text(json.dumps(data, indent=2), encoding="utf-8")
    return target


@pytest.mark.parametrize(("source", "path", "value", "kind"), [
    ("aws/describe-security-groups.json", ("SecurityGroups", 0, "IpPermissions", 0, "ToPort"), {}, "aws-sg"),
    ("aws/describe-security-groups.json", ("SecurityGroups", 0, "IpPermissions", 0, "IpRanges"), 5, "aws-sg"),
    ("aws/terraform-state.json", ("values", "root_module", "resources", 0, "values", "ingress", 0), "x", "aws-sg"),
    ("azure/nsg-rule-list.json", (0, "destinationPortRanges"), 5, "azure-nsg"),
    ("azure/nsg-show.json", ("securityRules", 1, "sourceAddressPrefixes"), True, "azure-nsg"),
    ("gcp/firewall-rules-list.json", (1, "allowed"), -5, "gcp-firewall"),
])
def test_cloud_json_of_the_wrong_shape_names_the_file(tmp_path: Path, source: str, path: tuple[str | int, ...],
                                                      value: object, kind: str) -> None:
    rules = _mutated_json(FIREWALL / source, tmp_path / Path(source).name, *path, value=value)
    for args in ((str(rules),), (str(rules), "--type", kind)):
        assert_one_line_error(run("firewall", *args), f"{rules}: not the JSON structure {kind} expects")


def test_ipset_with_an_unbalanced_quote_names_the_line(tmp_path: Path) -> None:
    ipset = tmp_path / "sets.ipset"
    ipset.write_text('create s hash:net\nadd s 185.139.244.0/22 comment "PostFinance\n', encoding="utf-8")
    done = run("firewall", str(FIREWALL / "iptables" / "ipset-allowlist.rules"), "--ipset", str(ipset))
    assert_one_line_error(done, f"{ipset}:2: cannot split the line into words")


@pytest.mark.parametrize(("kind", "text"), [
    ("nginx", ("server {{\n listen 443;\n include /{long};\n include {long}*;\n"
              " location / {{ allow 185.139.244.0/22; deny all; }}\n}}\n")),
    ("apache", ("<VirtualHost *:443>\nInclude /{long}\nIncludeOptional {long}*\n<Location />\n"
               "Require ip 185.139.244.0/22\n</Location>\n</VirtualHost>\n")),
])
def test_include_of_a_name_too_long_for_the_os_is_an_unresolved_include(tmp_path: Path, kind: str,
                                                                       text: str) -> None:
    site = tmp_path / "site.conf"
    site.write_text(text.format(long="x" * 5000), encoding="utf-8")
    done = run("firewall", "--type", kind, str(site), "--format", "json")
    assert done.returncode in (0, 1, 2) and not done.stderr, done.stderr
    assert json.loads(done.stdout)["command"] == "firewall"


# -- explain ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("query", ["STATUS=" + "9" * 5000, "STATUS=²", "NCERROR=²"])
def test_explain_odd_numbers_are_not_documented(query: str) -> None:
    done = run("explain", query)
    assert done.returncode == 3, done.stderr
    assert "not documented" in done.stdout or "is not in the documented" in done.stdout, done.stdout
    assert "internal error" not in done.stderr and "Traceback" not in done.stderr


def test_an_unreadable_inline_passphrase_is_not_echoed(tmp_path: Path) -> None:
    path = tmp_path / "profile.yaml"
    path.write_text('version: 1\nshops:\n  - name: a\n    feedback: {urls: {accepted: "http://127.0.0.1:9/"}}\n'
                    "    signature: {passphrase: 2020-13-45}\n", encoding="utf-8")
    result = subprocess.run([sys.executable, "-m", "feedback_check", "check", "--config", str(path)],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 3 and ":5: cannot read the value" in result.stderr
    assert "2020-13-45" not in result.stderr + result.stdout
