"""The merchant profile: what loads, and that every mistake names file, line and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from feedback_check.errors import ConfigError
from feedback_check.platform import load_platform
from feedback_check.profile import load_profile
from feedback_check.reporters import json as json_reporter

EXAMPLES = Path(__file__).parents[2] / "examples" / "profiles"
ENV = {"SHOP_CH_SHA_OUT": "s3cret-ch", "VELO_BERN_SHA_OUT": "v", "KAFFEE_SHA_OUT": "k",
       "BUCHLADEN_SHA_OUT": "b"}


@pytest.fixture(scope="module")
def platform():  # type: ignore[no-untyped-def]
    return load_platform()


def test_shipped_examples_load(platform) -> None:  # type: ignore[no-untyped-def]
    shop = load_profile(EXAMPLES / "shop-ch.yaml", platform, environ=ENV).shops[0]
    assert shop.name == "shop-ch" and shop.method == "POST" and shop.paramvar == "ch"
    assert [u.role for u in shop.urls] == ["accepted", "rejected", "status_change"]
    assert shop.signature.passphrase is not None and shop.signature.passphrase.reveal() == "s3cret-ch"
    agency = load_profile(EXAMPLES / "agency.yaml", platform, environ=ENV)
    assert [s.name for s in agency.shops] == ["velo-bern", "kaffee-zuerich", "buchladen-basel"]
    assert agency.shops[1].signature.encoding == "ISO-8859-1" and agency.shops[1].check_forgery is False
    # defaults come from the platform profile
    assert agency.shops[2].method == "POST" and agency.shops[2].signature.algorithm == "SHA-512"


def test_secret_never_shows_its_value(platform) -> None:  # type: ignore[no-untyped-def]
    profile = load_profile(EXAMPLES / "shop-ch.yaml", platform, environ=ENV)
    assert "s3cret-ch" not in repr(profile) and "s3cret-ch" not in str(profile.shops[0].signature)


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "profile.yaml"
    path.write_text(text, encoding="utf-8")
    return path


BASE = """version: 1
shops:
  - name: a
    feedback:
      method: {method}
      urls:
        accepted: https://shop.example/fb
    signature:
      {secret}
"""


@pytest.mark.parametrize(("text", "line", "field", "problem"), [
    (BASE.format(method="PUT", secret="passphrase_env: X"), 5, "shops[0].feedback.method", "is not one of"),
    (BASE.format(method="POST", secret="passphrase_env: MISSING_VAR"), 9, "shops[0].signature.passphrase_env",
     "MISSING_VAR is not set"),
    (BASE.format(method="POST", secret="algorithm: MD5"), 9, "shops[0].signature.algorithm", "unknown hash"),
    (BASE.format(method="POST", secret="passphrase_file: nowhere.txt"), 9,
     "shops[0].signature.passphrase_file", "cannot read passphrase file"),
    (BASE.format(method="POST", secret="encoding: ISO-8859-1\n      passphrase_env: EURO"), 10,
     "shops[0].signature.passphrase_env", "the passphrase contains a character that ISO-8859-1 cannot encode"),
    ("version: 1\nshops: []\n", 2, "shops", "non-empty list"),
    ("version: 2\nshops: []\n", 1, "version", "unsupported profile version"),
    ("version: 1\nshops:\n  - name: a\n    feedbak: {}\n", 4, "shops[0].feedbak", "unknown field"),
    ("version: 1\nshops:\n  - name: a\n    feedback:\n      urls: {}\n", 5, "shops[0].feedback.urls",
     "no post-sale URL"),
    ("shops: [\n", 2, None, "not valid YAML"),
])
def test_errors_name_file_line_and_field(tmp_path: Path, platform, text: str, line: int,  # type: ignore[no-untyped-def]
                                         field: str | None, problem: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_profile(path, platform, environ={"X": "x", "EURO": "pass-€-word"})
    error = caught.value
    assert "pass-" not in str(error) and "€" not in str(error)
    assert error.file == str(path)
    assert error.line == line
    assert error.field == field
    assert problem in str(error)
    assert "\n" not in str(error)


def test_inline_secret_and_loose_file_permissions_are_warnings(tmp_path: Path, platform) -> None:  # type: ignore[no-untyped-def]
    inline = _write(tmp_path, BASE.format(method="POST", secret="passphrase: inline-value"))
    profile = load_profile(inline, platform, environ={})
    assert [f.code for f in profile.findings] == ["config.inline_secret"]
    assert "inline-value" not in str(json_reporter.finding_dict(profile.findings[0]))
    secret = tmp_path / "sha-out.txt"
    secret.write_text("from-file\n", encoding="utf-8")
    secret.chmod(0o644)
    loose = _write(tmp_path, BASE.format(method="POST", secret=f"passphrase_file: {secret}"))
    profile = load_profile(loose, platform, environ={})
    assert profile.shops[0].signature.passphrase.reveal() == "from-file"  # type: ignore[union-attr]
    assert [f.code for f in profile.findings] == ["config.secret_file_permissions"]
    secret.chmod(0o600)
    assert load_profile(loose, platform, environ={}).findings == ()


def test_firewall_layer_paths_are_relative_to_the_profile(tmp_path: Path, platform) -> None:  # type: ignore[no-untyped-def]
    text = BASE.format(method="POST", secret="passphrase_env: X") + \
        "    firewall:\n      - {type: iptables, file: rules.v4, port: 8443}\n"
    profile = load_profile(_write(tmp_path, text), platform, environ={"X": "x"})
    layer = profile.shops[0].firewall[0]
    assert layer.file == str(tmp_path / "rules.v4") and layer.port == 8443 and layer.type == "iptables"


LOGS = BASE.format(method="POST", secret="passphrase_env: X") + "    logs:\n{entries}"


@pytest.mark.parametrize(("entries", "line", "field", "problem"), [
    ("      - 42\n", 11, "shops[0].logs[0]", "each entry must be a file name or a mapping"),
    ("      - {files: []}\n", 11, "shops[0].logs[0].files", "must name one or more log files"),
    ("      - {file: a.log, trusted_proxies: {a: 1}}\n", 11, "shops[0].logs[0].trusted_proxies",
     "must be a list of CIDRs or presets"),
    ("      - {file: a.log, trusted_proxies: [300.1.1.1/8]}\n", 11, "shops[0].logs[0].trusted_proxies", "300.1.1.1"),
    ("      - {file: a.log, expect_every: soon}\n", 11, "shops[0].logs[0].expect_every", "soon"),
    ("      - {file: a.log, format: '$nothing'}\n", 11, "shops[0].logs[0].format", "log format"),
])
def test_logs_entries_errors_name_their_line_and_field(tmp_path: Path, platform, entries: str, line: int,  # type: ignore[no-untyped-def]
                                                       field: str, problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_profile(_write(tmp_path, LOGS.format(entries=entries)), platform, environ={"X": "x"})
    assert (caught.value.line, caught.value.field) == (line, field)
    assert problem in str(caught.value)


def test_logs_entries_plain_and_with_settings(tmp_path: Path, platform) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "fmt.conf").write_text("$remote_addr [$time_local] \"$request\" $status\n")
    entries = ("      - access.log\n      - {files: [/var/log/a.log, b.log], format: fmt.conf,"
               " trusted_proxies: 10.0.0.0/8, expect_every: 6h}\n")
    logs = load_profile(_write(tmp_path, LOGS.format(entries=entries)), platform, environ={"X": "x"}).shops[0].logs
    assert (logs[0].files, logs[0].format, logs[0].trusted_proxies, logs[0].expect_every) == \
        ((str(tmp_path / "access.log"),), None, (), None)
    assert (logs[1].files, logs[1].format, logs[1].trusted_proxies, logs[1].expect_every) == \
        (("/var/log/a.log", str(tmp_path / "b.log")), str(tmp_path / "fmt.conf"), ("10.0.0.0/8",), "6h")
