"""The progress line: only on a terminal, one line rewritten in place, erased at the end."""

from __future__ import annotations

import io
import os
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from feedback_check.cli import progress
from feedback_check.cli.progress import ProgressLine, progress_observer


@pytest.fixture
def terminal() -> Iterator[tuple[io.TextIOWrapper, int]]:
    """A real pseudo-terminal: (stream writing to it, fd to read what appeared)."""
    primary, secondary = os.openpty()
    stream = os.fdopen(secondary, "w", encoding="utf-8")
    try:
        yield stream, primary
    finally:
        stream.close()
        os.close(primary)


def read_all(fd: int) -> str:
    os.set_blocking(fd, False)
    chunks = []
    while True:
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks).decode("utf-8")


def test_a_terminal_gets_a_progress_line(terminal: tuple[io.TextIOWrapper, int],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TERM", "xterm")
    stream, fd = terminal
    observer = progress_observer(stream)
    assert isinstance(observer, ProgressLine)
    observer.on_target_done(1, 3, "shop-ch accepted")
    shown = read_all(fd)
    assert "[1/3] shop-ch accepted" in shown
    assert "\n" not in shown and shown.startswith("\r")
    observer.on_target_done(3, 3, "shop-ch status_change")
    assert read_all(fd) == "\r\x1b[2K", "the last target erases the line"


def test_a_pipe_gets_nothing() -> None:
    read_end, write_end = os.pipe()
    with os.fdopen(write_end, "w") as stream:
        assert progress_observer(stream) is None
    os.close(read_end)


def test_a_file_or_string_stream_gets_nothing() -> None:
    assert progress_observer(io.StringIO()) is None


def test_dumb_terminal_gets_nothing(terminal: tuple[io.TextIOWrapper, int], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TERM", "dumb")
    assert progress_observer(terminal[0]) is None


def test_long_labels_are_cut_to_the_width_and_escapes_neutralised() -> None:
    out = io.StringIO()
    line = ProgressLine(out, width=40)
    line.on_target_done(7, 500, "shop-\x1b[31mred " + "x" * 200)
    text = out.getvalue()
    visible = text.replace("\r\x1b[2K", "")
    assert len(visible) <= 39
    assert "\x1b[31m" not in visible
    assert visible.startswith("[  7/500] shop-\\x1b[31mred")


def shown_counts(text: str) -> list[str]:
    return [chunk.split("]")[0] + "]" for chunk in text.split("\r\x1b[2K") if chunk.startswith("[")]


def wait_until(condition: Callable[[], bool], seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


def test_updates_are_rate_limited_and_the_last_one_is_drawn_late() -> None:
    out = io.StringIO()
    line = ProgressLine(out, width=80)
    for done in range(1, 200):
        line.on_target_done(done, 200, f"shop-{done}")
    drawn = shown_counts(out.getvalue())
    assert drawn[0] == "[  1/200]" and len(drawn) < 199, "updates within the interval are not each drawn"
    # No further update comes (a slow last target): the line must not stay on a stale count.
    assert wait_until(lambda: shown_counts(out.getvalue())[-1] == "[199/200]"), shown_counts(out.getvalue())
    assert out.getvalue().endswith("shop-199")
    line.on_target_done(200, 200, "shop-200")
    assert out.getvalue().endswith("\r\x1b[2K"), "the last target erases the line"


def test_redraws_are_at_least_an_interval_apart(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [100.0]
    monkeypatch.setattr(progress.time, "monotonic", lambda: clock[0])
    out = io.StringIO()
    line = ProgressLine(out, width=80)
    line.on_target_done(1, 9, "a")
    line.on_target_done(2, 9, "b")
    assert shown_counts(out.getvalue()) == ["[1/9]"]
    clock[0] += 2 * progress.REDRAW_INTERVAL
    line.on_target_done(3, 9, "c")
    assert shown_counts(out.getvalue())[-1] == "[3/9]", "after the interval the next update is drawn at once"
    line.finish()


def test_the_count_never_goes_back_when_updates_arrive_out_of_order() -> None:
    out = io.StringIO()
    line = ProgressLine(out, width=80)
    line.on_target_done(5, 9, "e")
    line.on_target_done(4, 9, "d")
    assert wait_until(lambda: line._drawn is not None and line._timer is None)
    assert shown_counts(out.getvalue())[-1] == "[5/9]"
    line.finish()


def test_no_redraw_after_finish() -> None:
    out = io.StringIO()
    line = ProgressLine(out, width=80)
    line.on_target_done(1, 9, "a")
    line.on_target_done(2, 9, "b")          # pending: would be drawn by the timer
    line.finish()
    erased = out.getvalue()
    time.sleep(2 * progress.REDRAW_INTERVAL)
    assert out.getvalue() == erased and erased.endswith("\r\x1b[2K")


def test_a_terminal_that_cannot_show_the_label_gets_ascii() -> None:
    raw = io.BytesIO()
    stream = io.TextIOWrapper(raw, encoding="ascii")
    line = ProgressLine(stream, width=80)
    line.on_target_done(1, 2, "shop-zürich · accepted")
    assert raw.getvalue().decode("ascii").endswith("shop-zurich - accepted")


def test_finish_erases_only_a_shown_line() -> None:
    out = io.StringIO()
    line = ProgressLine(out, width=80)
    line.finish()
    assert out.getvalue() == ""
    line.on_target_done(1, 5, "a")
    line.finish()
    assert out.getvalue().endswith("\r\x1b[2K")


def test_a_closed_terminal_does_not_break_the_run() -> None:
    out = io.StringIO()
    line = ProgressLine(out, width=80)
    out.close()
    line.on_target_done(1, 2, "a")
    line.on_target_done(2, 2, "b")


def test_calls_from_many_threads_never_interleave_a_line() -> None:
    out = io.StringIO()
    line = ProgressLine(out, width=80)
    threads = [threading.Thread(target=line.on_target_done, args=(i, 1000, f"t{i}")) for i in range(1, 50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for chunk in out.getvalue().split("\r\x1b[2K")[1:]:
        assert chunk.startswith("[") and chunk.count("/1000]") == 1
