"""The progress line of interactive runs: `[ 12/200] shop-ch accepted` on stderr, rewritten in place.

The runner calls `on_target_done(done, total, label)` after each URL (the core never prints; this is the
observer the CLI gives it). The line only appears when stderr is a terminal: never when stderr is piped
or redirected, and the CLI asks for it only with the text format and without `--quiet`, so machine
formats and cron runs never see it. When the last target is done, the line is erased so the report
starts on a clean screen.
"""

from __future__ import annotations

import os
import shutil
import sys
import threading
import time
from typing import TextIO

from feedback_check.reporters.text import clean

#: Redraw at most this often (seconds); the first and the last update are always drawn.
REDRAW_INTERVAL = 0.1


class ProgressLine:
    """Writes one updating line to a terminal stream. Safe to call from several threads."""

    def __init__(self, stream: TextIO, *, width: int | None = None) -> None:
        self.stream = stream
        self.width = width
        self._lock = threading.Lock()
        self._last_draw = 0.0
        self._shown = False

    def on_target_done(self, done: int, total: int, label: str) -> None:
        """One more target finished: `done` of `total`, the last one being `label`."""
        with self._lock:
            now = time.monotonic()
            finished = total > 0 and done >= total
            if not finished and self._shown and now - self._last_draw < REDRAW_INTERVAL:
                return
            self._last_draw = now
            if finished:
                self._erase()
                return
            digits = len(str(total))
            text = f"[{done:>{digits}}/{total}] {clean(label, 500)}"
            width = self.width or shutil.get_terminal_size((80, 24)).columns
            if len(text) > width - 1:
                text = text[: max(width - 2, 1)] + "…"
            self._write("\r\x1b[2K" + text)
            self._shown = True

    def finish(self) -> None:
        """Erase the line (for a run that ends before every target reported)."""
        with self._lock:
            self._erase()

    def _erase(self) -> None:
        if self._shown:
            self._write("\r\x1b[2K")
            self._shown = False

    def _write(self, text: str) -> None:
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):
            # A closed or broken terminal must not break the check.
            self._shown = False


def progress_observer(stream: TextIO | None = None) -> ProgressLine | None:
    """A progress line on `stream` (default stderr) when it is a terminal; None otherwise.

    The caller decides on format and `--quiet` (only the text format, never quiet). `TERM=dumb`
    terminals cannot rewrite a line and get none.
    """
    stream = stream if stream is not None else sys.stderr
    try:
        interactive = stream.isatty()
    except (AttributeError, ValueError):
        interactive = False
    if not interactive or os.environ.get("TERM") == "dumb":
        return None
    return ProgressLine(stream)
