"""A LogQuery from what users write: command-line options or a shop's `logs:` entry in the profile."""

from __future__ import annotations

import os
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

from feedback_check.errors import UsageError
from feedback_check.logs.evidence import FeedbackPath, LogQuery
from feedback_check.logs.formats import definition_format
from feedback_check.logs.serverconf import formats_from_config
from feedback_check.logs.sources import TrustedProxies
from feedback_check.logs.timespec import parse_duration, parse_time


def build_query(*, urls: Any = (), paths: Any = (), extra_paths: tuple[FeedbackPath, ...] = (), since: str | None = None, until: str | None = None,
                at: str | None = None, window: str = "30m", log_format: str | None = None, trusted: Any = (),
                method: str | None = None, expect_every: str = "1d", where: str = "") -> LogQuery:
    """A LogQuery from option values (shared with the profile's `logs:` entries)."""
    def time_of(option: str, value: str | None) -> Any:
        if value is None:
            return None
        try:
            return parse_time(value)
        except ValueError as e:
            raise UsageError(f"{where}{option}: {e}") from None

    feedback_paths = list(extra_paths)
    for url in urls:
        try:
            parts = urlsplit(url)
        except ValueError as e:
            raise UsageError(f"{where}--url {url!r} cannot be parsed: {e}") from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise UsageError(f"{where}--url {url!r} must be an http:// or https:// URL with a host")
        feedback_paths.append(FeedbackPath(parts.path or "/", url, host=parts.hostname.lower().rstrip(".")))
    for path in paths:
        if not path.startswith("/"):
            raise UsageError(f"{where}--path {path!r} must start with /")
        feedback_paths.append(FeedbackPath(path.split("?", 1)[0], path))
    window_delta = _duration_of(where, "--window", window)
    expected = _duration_of(where, "--expect-every" if not where else "expect_every", expect_every)
    since_time, until_time = time_of("--since", since), time_of("--until", until)
    if since_time is not None and until_time is not None and since_time > until_time:
        raise UsageError(f"{where}--since {since} ({since_time:%Y-%m-%d %H:%M} UTC) is after --until {until} "
                         f"({until_time:%Y-%m-%d %H:%M} UTC): the window is empty (swap the two)")
    formats: tuple[Any, ...] = ()
    definition = log_format
    if log_format and os.path.isfile(log_format):
        formats, definition = tuple(formats_from_config(log_format)), None
    elif log_format:
        definition_format(log_format)                    # a bad definition fails now, with its reason
    return LogQuery(paths=_merged(feedback_paths), since=since_time, until=until_time, at=time_of("--at", at), window=window_delta,
                    method=method.upper() if method else None,
                    trusted=TrustedProxies.parse(trusted) if trusted else None,
                    log_format=definition, formats=formats, expected_interval=expected)


def _duration_of(where: str, option: str, value: str) -> Any:
    """A duration longer than zero, or a UsageError naming the option."""
    try:
        return parse_duration(value)
    except ValueError as e:
        raise UsageError(f"{where}{option}: {e}") from None


def _merged(paths: list[FeedbackPath]) -> tuple[FeedbackPath, ...]:
    """One FeedbackPath per (path, host): many shops give the accepted and rejected URLs the same path (or
    differ only in the query string), and a request can count only once."""
    merged: dict[tuple[str, str | None], FeedbackPath] = {}
    for path in paths:
        key = (path.path, path.host)
        if key not in merged:
            merged[key] = path
            continue
        kept = merged[key]
        roles = [r for r in (kept.role or "").split(", ") + [path.role or ""] if r]
        merged[key] = replace(kept, role=", ".join(dict.fromkeys(roles)) or None)
    return tuple(merged.values())


def query_for_shop(spec: Any, paths: tuple[FeedbackPath, ...], method: str | None, *,
                   expect_postsales: bool = True) -> LogQuery:
    """The query of one `logs:` entry (profile.LogSpec) of a shop with these post-sale paths."""
    where = f"logs entry (line {spec.line}): " if spec.line else ""
    query = build_query(extra_paths=paths, log_format=spec.format, trusted=spec.trusted_proxies,
                        method=method, expect_every=spec.expect_every or "1d", where=where)
    return replace(query, expect_postsales=expect_postsales)
