"""`passphrase_credential: NAME`: the passphrase from a systemd credential ($CREDENTIALS_DIRECTORY/NAME),
readable under DynamicUser= while the source file stays root-only."""

from __future__ import annotations

from pathlib import Path

import pytest

from feedback_check.errors import ConfigError
from feedback_check.platform import load_platform
from feedback_check.profile import build_profile
from feedback_check.yamlfile import load_yaml_text

PROFILE = """version: 1
shops:
  - name: a
    feedback: {urls: {accepted: "https://shop.example/fb"}}
    signature: {passphrase_credential: VALUE}
"""


def load(value: str, environ: dict[str, str], folder: Path) -> object:
    text = PROFILE.replace("VALUE", value)
    return build_profile(load_yaml_text(text, file="p.yaml"), "p.yaml", load_platform(), base_dir=folder,
                         environ=environ)


def test_reads_the_credential_file(tmp_path: Path) -> None:
    (tmp_path / "sha-out").write_text("Credential-Secret-1!\n")
    (tmp_path / "sha-out").chmod(0o400)
    profile = load("sha-out", {"CREDENTIALS_DIRECTORY": str(tmp_path)}, tmp_path)
    secret = profile.shops[0].signature.passphrase  # type: ignore[attr-defined]
    assert secret.reveal() == "Credential-Secret-1!"
    assert "Credential-Secret-1!" not in repr(secret) and "sha-out" in repr(secret)


def test_without_credentials_directory_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"p.yaml:5: shops\[0\]\.signature\.passphrase_credential: "
                                          r"\$CREDENTIALS_DIRECTORY is not set \(run under systemd with LoadCredential="):
        load("sha-out", {}, tmp_path)


def test_a_path_is_not_a_credential_name(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="must be a credential name, not a path"):
        load("../etc/shadow", {"CREDENTIALS_DIRECTORY": str(tmp_path)}, tmp_path)
