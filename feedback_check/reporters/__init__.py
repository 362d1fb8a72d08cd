"""Reporters turn a Report into a string. The registry also feeds the `--format` choice."""

from __future__ import annotations

import importlib
from typing import Any

#: format name -> module with `render(report, *, color: bool) -> str`; imported when used.
REPORTER_MODULES: dict[str, str] = {
    "text": "feedback_check.reporters.text",
    "json": "feedback_check.reporters.json",
    "nagios": "feedback_check.reporters.nagios",
    "prometheus": "feedback_check.reporters.prometheus",
    "junit": "feedback_check.reporters.junit",
}
FORMATS = tuple(REPORTER_MODULES)


def render(report: Any, format_name: str, *, color: bool = False) -> str:
    module = importlib.import_module(REPORTER_MODULES[format_name])
    result: str = module.render(report, color=color)
    return result
