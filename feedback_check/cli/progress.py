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

from feedback_check.reporters.terminal import fit_encoding, shorten
from feedback_check.reporters.views import clean

#: Redraw at most this often (seconds); the first update is drawn at once, a later one at most this late.
REDRAW_INTERVAL = 0.1


class ProgressLine:
    """Writes one updating line to a terminal stream. Safe to call from several threads.

    Every change is drawn, at most once per REDRAW_INTERVAL: an update arriving sooner is kept and drawn
    by a timer when the interval is over, so the line never stays on a stale count (the last update
    before a slow target would otherwise wait for the next one). The count shown is the highest
    reported: updates from concurrent targets may arrive out of order.
    """

    def __init__(self, stream: TextIO, *, width: int | None = None) -> None:
        self.stream = stream
        self.width = width
        self._lock = threading.Lock()
        self._last_draw = 0.0
        self._shown = False
        self._latest: tuple[int, int, str] | None = None
        self._drawn: tuple[int, int, str] | None = None
        self._timer: threading.Timer | None = None

    def on_target_done(self, done: int, total: int, label: str) -> None:
        """One more target finished: `done` of `total`, the last one being `label`."""
        with self._lock:
            if self._latest is None or done >= self._latest[0] or total != self._latest[1]:
                self._latest = (done, total, label)
            if total > 0 and self._latest[0] >= total:
                self._cancel_timer()
                self._erase()
                self._drawn = self._latest
                return
            wait = REDRAW_INTERVAL - (time.monotonic() - self._last_draw)
            if not self._shown or wait <= 0:
                self._draw()
            elif self._timer is None:
                timer = threading.Timer(wait, lambda: self._draw_pending(timer))
                timer.daemon = True
                self._timer = timer
                timer.start()

    def finish(self) -> None:
        """Erase the line (for a run that ends before every target reported)."""
        with self._lock:
            self._cancel_timer()
            self._erase()
            self._latest = self._drawn = None

    def _draw_pending(self, timer: threading.Timer) -> None:
        with self._lock:
            if self._timer is not timer:
                return                  # cancelled (finish, or the last target) after it fired
            self._timer = None
            if self._latest != self._drawn:
                self._draw()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _draw(self) -> None:
        if self._latest is None:
            return
        done, total, label = self._latest
        self._last_draw = time.monotonic()
        digits = len(str(total))
        text = f"[{done:>{digits}}/{total}] {clean(label, 500)}"
        width = self.width or shutil.get_terminal_size((80, 24)).columns
        text = fit_encoding(shorten(text, max(width - 1, 1)), getattr(self.stream, "encoding", None))
        self._write("\r\x1b[2K" + text)
        self._shown = True
        self._drawn = self._latest

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
