"""Reporters turn a Report into a string. The registry also feeds the `--format` choice.

A reporter whose module also has `chunks(report) -> Iterator[str]` (the JSON document) can be written
piece by piece (`render_chunks`): its text is never held whole."""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Iterator
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


def render_chunks(report: Any, format_name: str, *, color: bool = False, width: int | None = None) -> Iterator[str]:
    """The text of `render(...)` in pieces: the module's own `chunks` where it has one, else one piece."""
    module = importlib.import_module(REPORTER_MODULES[format_name])
    pieces = getattr(module, "chunks", None)
    if pieces is not None:
        yield from pieces(report)
        return
    yield render(report, format_name, color=color, width=width)
