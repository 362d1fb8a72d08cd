"""feedback_check.exporter.config: a module's settings, each checked, a problem naming its line and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from feedback_check.errors import ConfigError
from feedback_check.exporter.config import load_config
from feedback_check.platform import load_platform

PLATFORM = load_platform()
SHOPS = """version: 1
shops:
  - name: a
    feedback:
      urls: {accepted: "https://shop.example/pf"}
    signature: {passphrase_env: X}
modules:
  staging:
"""


def write(tmp_path: Path, settings: str) -> str:
    path = tmp_path / "exporter.yaml"
    path.write_text(SHOPS + settings, encoding="utf-8")
    return str(path)


def test_a_module_with_every_setting(tmp_path: Path) -> None:
    path = write(tmp_path, '    targets: [" https://staging.example/pf "]\n    role: rejected\n    method: get\n'
                           "    algorithm: sha-256\n    encoding: UTF-8\n    parameters: [orderID, STATUS]\n"
                           "    ca_bundle: ca/staging.pem\n    lab: true\n    check_forgery: false\n"
                           "    passphrase_env: X\n")
    module = load_config([path], PLATFORM, environ={"X": "staging-passphrase"}).modules["staging"]
    assert module.targets == ("https://staging.example/pf",) and module.lab
    assert module.ca_bundle == str(tmp_path / "ca" / "staging.pem")
    shop = module.shop
    assert (shop.method, shop.urls[0].role, shop.parameters, shop.check_forgery) == \
        ("GET", "rejected", ("orderID", "STATUS"), False)
    assert shop.signature.algorithm == "SHA-256"


@pytest.mark.parametrize(("settings", "line", "field", "problem"), [
    ("    targets: []\n", 9, "modules.staging.targets", "non-empty list of the URLs"),
    ('    targets: ["https://s.example/pf"]\n    role: refund\n', 10, "modules.staging.role", "is not one of"),
    ('    targets: ["https://s.example/pf"]\n    method: PUT\n', 10, "modules.staging.method", "is not one of"),
    ('    targets: ["https://s.example/pf"]\n    algorithm: MD5\n', 10, "modules.staging.algorithm", "MD5"),
    ('    targets: ["https://s.example/pf"]\n    encoding: EBCDIC\n', 10, "modules.staging.encoding", "EBCDIC"),
    ('    targets: ["https://s.example/pf"]\n    parameters: orderID\n', 10, "modules.staging.parameters",
     "must be a list of parameter names"),
    ('    targets: ["https://s.example/pf"]\n    lab: yes please\n', 10, "modules.staging.lab", "must be true or false"),
    ('    targets: ["https://s.example/pf"]\n    ca_bundle: [a]\n', 10, "modules.staging.ca_bundle",
     "must be a file name"),
    ('    targets: ["https://s.example/pf"]\n    colour: red\n', 10, "modules.staging.colour", "unknown field"),
    ("    - not a mapping\n", 8, "modules.staging", "must be a mapping of settings"),
])
def test_module_errors_name_line_and_field(tmp_path: Path, settings: str, line: int, field: str, problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config([write(tmp_path, settings)], PLATFORM, environ={"X": "x"})
    assert (caught.value.line, caught.value.field) == (line, field)
    assert problem in str(caught.value)


def test_a_missing_rule_file_fails_the_load_at_its_line_but_a_missing_log_does_not(tmp_path: Path) -> None:
    """`serve` reads firewall rule files, not access logs: a rule file that is not there fails the start
    (and a reload, which then keeps the loaded profiles) at the profile's line, as `check` does before
    any traffic; a `logs:` entry is the `check`/`logs` commands' business."""
    rules = tmp_path / "rules.v4"
    profile = tmp_path / "exporter.yaml"
    profile.write_text("version: 1\nshops:\n  - name: a\n    feedback:\n"
                       '      urls: {accepted: "https://shop.example/pf"}\n'
                       "    signature: {passphrase_env: X}\n"
                       f"    firewall:\n      - {{type: iptables, file: {rules}}}\n"
                       f"    logs: [{tmp_path / 'access.log'}]\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config([str(profile)], PLATFORM, environ={"X": "p"})
    assert caught.value.line == 8 and "file not found" in str(caught.value)
    rules.write_text("*filter\n:INPUT ACCEPT [0:0]\nCOMMIT\n", encoding="utf-8")
    assert load_config([str(profile)], PLATFORM, environ={"X": "p"}).shop_names == ["a"]
