"""Reporters turn a Report into a string. The registry also feeds the `--format` choice."""

from __future__ import annotations

import importlib
import inspect
from typing import Any

#: format name -> module with `render(report, *, color: bool) -> str`; imported when used. A module whose
#: `render` also takes `width` (the text report) gets the terminal's width.
REPORTER_MODULES: dict[str, str] = {
    "text": "feedback_check.reporters.text",
    "json": "feedback_check.reporters.json",
    "nagios": "feedback_check.reporters.nagios",
    "prometheus": "feedback_check.reporters.prometheus",
    "junit": "feedback_check.reporters.junit",
    "html": "feedback_check.reporters.html",
}
FORMATS = tuple(REPORTER_MODULES)


def render(report: Any, format_name: str, *, color: bool = False, width: int | None = None) -> str:
    module = importlib.import_module(REPORTER_MODULES[format_name])
    if width is not None and "width" in inspect.signature(module.render).parameters:
        sized: str = module.render(report, color=color, width=width)
        return sized
    result: str = module.render(report, color=color)
    return result
