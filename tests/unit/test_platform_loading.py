"""The shipped platform profile is read on every run, beside the module in an installed package, through
importlib.resources elsewhere (an editable install): the same text either way."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pytest

from feedback_check import platform as platform_module
from feedback_check.platform import SHIPPED_PROFILE, load_platform


def _resource_text() -> str:
    return resources.files("feedback_check.config").joinpath(SHIPPED_PROFILE).read_text(encoding="utf-8")


def test_shipped_text_is_the_package_resource() -> None:
    assert platform_module._shipped_text() == _resource_text()


def test_installed_layout_reads_the_file_beside_the_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "config").mkdir()
    edited = _resource_text() + "\n# edited after install\n"
    (tmp_path / "config" / SHIPPED_PROFILE).write_text(edited, encoding="utf-8")
    monkeypatch.setattr(platform_module, "__file__", str(tmp_path / "platform.py"))
    assert platform_module._shipped_text() == edited          # read now: never a stale copy
    assert load_platform().name == load_platform().name


def test_without_the_file_beside_importlib_resources_answers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(platform_module, "__file__", str(tmp_path / "platform.py"))
    assert platform_module._shipped_text() == _resource_text()
