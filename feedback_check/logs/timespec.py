"""Times and durations as users write them: `2026-11-30 14:02`, `2026-11-30T14:02:11+01:00`, `2h`, `7d`."""

from __future__ import annotations

import datetime as dt
import re

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|d|w)\s*$", re.IGNORECASE)
_UNITS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(text: str, *, positive: bool = True) -> dt.timedelta:
    """`90s`, `30m`, `2h`, `7d`, `1w`; zero only when not `positive` (`2h` ago, `0s` ago = now).
    Raises ValueError."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a duration (e.g. 30m, 2h, 7d)")
    delta = dt.timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2).lower()])
    if positive and not delta:
        raise ValueError(f"{text!r} is no time at all: give a duration longer than zero (e.g. 30m, 2h, 7d)")
    return delta


def parse_time(text: str, *, now: dt.datetime | None = None) -> dt.datetime:
    """An ISO 8601 date/time (without a zone: this machine's local time, like the log's), or a duration
    meaning that long ago (`2h`). The result is aware, in UTC. Raises ValueError."""
    value = text.strip()
    current = now or dt.datetime.now(dt.UTC)
    if _DURATION.match(value):
        return current - parse_duration(value, positive=False)
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{text!r} is not a time (e.g. 2026-11-30 14:02, 2026-11-30T14:02:11+01:00, or 2h "
                         "for two hours ago)") from None
    if parsed.tzinfo is None:
        parsed = parsed.astimezone()          # local time of this machine
    return parsed.astimezone(dt.UTC)
