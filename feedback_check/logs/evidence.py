"""The evidence an access-log analysis gathers, as frozen data (`reporters.json.logs_dict` writes it in the
`--format json` document; `hit_evidence`, `timing_evidence` and `gap_evidence` give the shapes findings' evidence
and that document share).

`LogQuery` says what to look for; `LogEvidence` is what was found: per feedback path (`PathEvidence`) the
requests of PostFinance's published ranges, of the 2019 senders and of strangers (`SenderGroup`), answer
times (`Timing`), pauses (`Gap`), and each request named with its file:line (`Hit`).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any

from feedback_check.logs.formats import LineFormat
from feedback_check.logs.reading import LineProblem
from feedback_check.logs.sources import TrustedProxies

#: The log must cover at least this long before "no post-sale arrived" is a conclusion (assumed: a shop
#: takes payments every day; a shop with rarer payments sets `expect_every` / --expect-every).
DEFAULT_EXPECTED_INTERVAL = dt.timedelta(days=1)
DEFAULT_WINDOW = dt.timedelta(minutes=30)


@dataclass(frozen=True)
class FeedbackPath:
    """A post-sale URL's path to look for; `<PARAMVAR>` matches one path segment."""

    path: str
    label: str = ""                # the URL as configured, or the path
    role: str | None = None
    host: str | None = None        # the URL's host: requests whose logged Host differs are another URL

    @property
    def pattern(self) -> re.Pattern[str]:
        parts = [re.escape(p) for p in self.path.split("<PARAMVAR>")]
        return re.compile("^" + "[^/]*".join(parts) + "$")

    @property
    def needle(self) -> bytes:
        """The longest literal piece, for the byte-level prefilter."""
        return max(self.path.split("<PARAMVAR>"), key=len).encode("utf-8")


@dataclass(frozen=True)
class LogQuery:
    paths: tuple[FeedbackPath, ...] = ()        # empty: every path PostFinance's addresses requested
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    at: dt.datetime | None = None
    window: dt.timedelta = DEFAULT_WINDOW
    method: str | None = None                   # the method the account sends (None: not judged)
    trusted: TrustedProxies | None = None
    log_format: str | None = None               # --log-format definition or name; None: detected
    formats: tuple[LineFormat, ...] = ()        # read from the server's configuration
    expected_interval: dt.timedelta = DEFAULT_EXPECTED_INTERVAL
    expect_postsales: bool = True               # False: the back office sends none (timing no_request)


@dataclass(frozen=True)
class Hit:
    """One request, where the log has it."""

    time: dt.datetime | None
    file: str
    line: int
    client: str
    method: str
    path: str
    status: int
    seconds: float | None = None
    via: str | None = None
    claimed: str | None = None

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"


def hit_evidence(hit: Hit | None) -> dict[str, Any] | None:
    """A request as findings' evidence (and the `logs[]` member of the JSON document) hold it; None stays None."""
    if hit is None:
        return None
    out: dict[str, Any] = {"time": hit.time.isoformat() if hit.time else None, "where": hit.where,
                           "client": hit.client, "method": hit.method, "path": hit.path, "status": hit.status}
    if hit.seconds is not None:
        out["seconds"] = round(hit.seconds, 4)
    if hit.via:
        out["via"] = hit.via
    if hit.claimed:
        out["claimed"] = hit.claimed
    return out


@dataclass(frozen=True)
class Timing:
    count: int
    median: float
    p95: float
    maximum: float
    slow: int                      # >= the platform's slow threshold
    over_budget: int               # >= the platform's budget
    slowest: Hit | None = None
    total: float = 0.0             # seconds of all `count` answers (exact; the quantiles come from a sample)


def timing_evidence(timing: Timing) -> dict[str, Any]:
    """Answer times as findings' evidence (and the JSON document's `answer_times`) hold them."""
    return {"count": timing.count, "median": round(timing.median, 4), "p95": round(timing.p95, 4),
            "max": round(timing.maximum, 4), "slow": timing.slow, "over_budget": timing.over_budget,
            "slowest": hit_evidence(timing.slowest)}


@dataclass(frozen=True)
class Gap:
    start: dt.datetime
    end: dt.datetime
    open_end: bool = False         # from the last post-sale to the end of the log

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()


def gap_evidence(gap: Gap) -> dict[str, Any]:
    """A pause between post-sales as findings' evidence (and the JSON document's `gaps`) hold it."""
    return {"from": gap.start.isoformat(), "to": gap.end.isoformat(), "hours": round(gap.seconds / 3600, 2),
            "until_end_of_log": gap.open_end}


@dataclass(frozen=True)
class SenderGroup:
    """Requests of one kind of sender (PostFinance published, 2019 senders, strangers) to one path."""

    count: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    methods: dict[str, int] = field(default_factory=dict)
    addresses: dict[str, int] = field(default_factory=dict)
    first: Hit | None = None
    last: Hit | None = None
    first_success: Hit | None = None
    last_success: Hit | None = None
    first_failure: Hit | None = None
    last_failure: Hit | None = None
    first_redirect: Hit | None = None
    last_redirect: Hit | None = None
    failures: tuple[Hit, ...] = ()             # the first few
    redirect_kinds: dict[str, int] = field(default_factory=dict)
    method_examples: tuple[Hit, ...] = ()
    claimed: tuple[Hit, ...] = ()              # strangers whose forwarding header names PostFinance
    claimed_count: int = 0
    proxied_without_header: int = 0
    recovery: Hit | None = None                # the first success after the latest failure

    @property
    def failed(self) -> int:
        """Requests answered with an error (4xx/5xx, nginx's 444/499) or no valid status: each a process error."""
        return sum(n for status, n in self.statuses.items() if status >= 400 or status < 200)

    @property
    def classes(self) -> dict[str, int]:
        """Counts per status class: {"2xx": 71, "5xx": 7}."""
        out: dict[str, int] = {}
        for status, count in sorted(self.statuses.items()):
            key = f"{status // 100}xx"
            out[key] = out.get(key, 0) + count
        return out


@dataclass(frozen=True)
class PathEvidence:
    path: FeedbackPath
    published: SenderGroup
    legacy: SenderGroup
    foreign: SenderGroup
    per_day: dict[str, int] = field(default_factory=dict)
    per_hour: dict[int, int] = field(default_factory=dict)
    timing: Timing | None = None
    gaps: tuple[Gap, ...] = ()
    usual_interval: float | None = None        # seconds, median between post-sales
    discovered: bool = False


@dataclass(frozen=True)
class FileSummary:
    name: str
    format: str
    lines: int
    compressed: bool
    first_time: dt.datetime | None
    last_time: dt.datetime | None


@dataclass(frozen=True)
class LogEvidence:
    """What the access logs say."""

    files: tuple[FileSummary, ...]
    paths: tuple[PathEvidence, ...]
    other_paths: dict[str, SenderGroup]
    other_paths_dropped: int
    unreadable: int
    unreadable_examples: tuple[LineProblem, ...]
    last_unreadable: LineProblem | None
    coverage_start: dt.datetime | None
    coverage_end: dt.datetime | None
    lines: int
    parsed: int
    logs_seconds: bool
    query: LogQuery
    around: tuple[Hit, ...] = ()
    shop: str = ""
    strangers_checked: bool = True
    unreadable_kinds: dict[str, int] = field(default_factory=dict)   # LineProblem.kind -> count
    cut_files: tuple[LineProblem, ...] = ()   # compressed files that end early: where the rest was lost     # requests of other addresses to the feedback paths were looked at

    @property
    def coverage(self) -> dt.timedelta:
        if self.coverage_start is None or self.coverage_end is None:
            return dt.timedelta(0)
        return max(self.coverage_end - self.coverage_start, dt.timedelta(0))
