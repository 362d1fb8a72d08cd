"""Streaming analysis of access logs: what PostFinance's addresses sent and what the shop answered.

`analyse(files, platform, query)` reads every file once, in time order, in bounded chunks; only lines
the prefilter selects are parsed. Per feedback path it keeps counts (per status, method, day, hour),
answer-time statistics, the first and last success / failure / redirect with file:line, the times of
the post-sales (for gaps), strangers on the path and PostFinance's requests to other paths. Memory is
bounded by the number of distinct paths and addresses kept (capped), not by the size of the logs.
"""

from __future__ import annotations

import array
import datetime as dt
import itertools
import random
import statistics
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from feedback_check.errors import ConfigError
from feedback_check.firewall.ipspace import AddressSet
from feedback_check.logs.evidence import (
    FeedbackPath,
    FileSummary,
    Gap,
    Hit,
    LogEvidence,
    LogQuery,
    PathEvidence,
    SenderGroup,
    Timing,
)
from feedback_check.logs.formats import LineFormat, LogRecord, definition_format, detect
from feedback_check.logs.reading import (
    MAX_LINE_BYTES,
    STDIN,
    LineProblem,
    LogSource,
    expand,
    in_rotation_order,
)
from feedback_check.logs.sources import PUBLISHED, Client, Prefilter, Sources
from feedback_check.platform import Platform

#: A pause between post-sales longer than this many times the usual interval is a gap.
GAP_FACTOR = 10
MIN_GAP = dt.timedelta(hours=1)
#: Bounds on what is kept per path (beyond them only counts grow).
MAX_ADDRESSES = 2000
MAX_OTHER_PATHS = 200
MAX_DISCOVERED_PATHS = 20
MAX_EXAMPLES = 10
MAX_SECONDS_SAMPLE = 50_000
MAX_POSTSALE_TIMES = 5_000_000
MAX_AROUND = 200


# -- accumulation -----------------------------------------------------------------------------------------

class _Group:
    """Mutable counterpart of SenderGroup."""

    def __init__(self) -> None:
        self.count = 0
        self.statuses: Counter[int] = Counter()
        self.methods: Counter[str] = Counter()
        self.addresses: Counter[str] = Counter()
        self.hits: dict[str, Hit] = {}
        self.failures: list[Hit] = []
        self.redirect_kinds: Counter[str] = Counter()
        self.method_examples: list[Hit] = []
        self.claimed: list[Hit] = []
        self.claimed_count = 0
        self.proxied_without_header = 0
        self.recovery: Hit | None = None       # the first success after the latest failure

    def add(self, hit: Hit, kind: str | None = None) -> None:
        self.count += 1
        self.statuses[hit.status] += 1
        self.methods[hit.method] += 1
        if hit.client in self.addresses or len(self.addresses) < MAX_ADDRESSES:
            self.addresses[hit.client] += 1
        self._first_last("", hit)
        status = hit.status
        if 200 <= status < 300:
            self._first_last("success", hit)
            failure = self.hits.get("last_failure")
            if self.recovery is None and failure is not None and not _earlier(hit, failure):
                self.recovery = hit
        elif 300 <= status < 400:
            self._first_last("redirect", hit)
            if kind:
                self.redirect_kinds[kind] += 1
        else:
            self._first_last("failure", hit)
            if self.recovery is not None and not _earlier(hit, self.recovery):
                self.recovery = None
            if len(self.failures) < MAX_EXAMPLES:
                self.failures.append(hit)

    def _first_last(self, what: str, hit: Hit) -> None:
        first, last = f"first_{what}".rstrip("_"), f"last_{what}".rstrip("_")
        current = self.hits.get(first)
        if current is None or _earlier(hit, current):
            self.hits[first] = hit
        current = self.hits.get(last)
        if current is None or not _earlier(hit, current):
            self.hits[last] = hit

    def frozen(self) -> SenderGroup:
        return SenderGroup(
            count=self.count, statuses=dict(self.statuses), methods=dict(self.methods),
            addresses=dict(self.addresses.most_common(20)), failures=tuple(self.failures),
            redirect_kinds=dict(self.redirect_kinds), method_examples=tuple(self.method_examples),
            claimed=tuple(self.claimed), claimed_count=self.claimed_count,
            proxied_without_header=self.proxied_without_header, recovery=self.recovery, **self.hits)


def _earlier(a: Hit, b: Hit) -> bool:
    if a.time is not None and b.time is not None and a.time != b.time:
        return a.time < b.time
    return False


class _PathState:
    def __init__(self, path: FeedbackPath, discovered: bool = False) -> None:
        self.path = path
        self.discovered = discovered
        self.published = _Group()
        self.legacy = _Group()
        self.foreign = _Group()
        self.per_day: Counter[str] = Counter()
        self.per_hour: Counter[int] = Counter()
        self.times = array.array("d")
        self.seconds = array.array("d")
        self.seconds_seen = 0
        self.seconds_total = 0.0
        self.slowest: Hit | None = None
        self.slow = 0
        self.over_budget = 0
        self.random = random.Random(0)


def _host_of(host: str | None) -> str | None:
    """A logged Host as a comparable name: lower case, without port or trailing dot."""
    if not host:
        return None
    name = host.strip().lower()
    if name.startswith("["):
        return name.split("]", 1)[0] + "]"
    return name.rsplit(":", 1)[0].rstrip(".") if name.count(":") == 1 else name.rstrip(".")


def redirect_kind(record: LogRecord) -> str:
    """`before_handler` (the web server or CDN redirected: 301/308, or nginx answered without its
    upstream), `after_processing` (302/303/307 that the handler sent), or `unknown`."""
    if record.upstream is not None and record.upstream.strip() in ("-", ""):
        return "before_handler"
    if record.status in (301, 308):
        return "before_handler"
    if record.upstream is not None:
        return "after_processing"
    return "unknown"


class _Analysis:
    def __init__(self, platform: Platform, query: LogQuery) -> None:
        self.platform = platform
        self.query = query
        self.sources = Sources(platform, query.trusted)
        self.paths = [_PathState(p) for p in query.paths]
        self.patterns = [(p.pattern.match, state) for p, state in zip(query.paths, self.paths)]
        self.other: dict[str, _Group] = {}
        self.other_dropped = 0
        self.unreadable = 0
        self.examples: list[LineProblem] = []
        self.last_unreadable: LineProblem | None = None
        self.kinds: Counter[str] = Counter()
        self.cut: list[LineProblem] = []        # compressed files that end early (one each)
        self.parsed = 0
        self.around: list[Hit] = []
        self.logs_seconds = False
        self.second_pass = False        # reading again for strangers on discovered paths only

    def problem(self, problem: LineProblem) -> None:
        if self.second_pass:            # the first pass has counted it
            return
        self.unreadable += 1
        self.kinds[problem.kind] += 1
        if problem.kind in ("truncated", "corrupt"):
            self.cut.append(problem)
            return
        if len(self.examples) < MAX_EXAMPLES:
            self.examples.append(problem)
        self.last_unreadable = problem

    def path_state(self, path: str, client: Client, host: str | None = None) -> _PathState | None:
        requested = _host_of(host)
        for match, state in self.patterns:
            if match(path) and (state.path.host is None or requested is None or requested == state.path.host):
                return state
        if self.query.paths or client.kind is None:
            return None
        if len(self.paths) >= MAX_DISCOVERED_PATHS:
            return None
        state = _PathState(FeedbackPath(path, path), discovered=True)
        self.paths.append(state)
        self.patterns.append((state.path.pattern.match, state))
        return state

    def record(self, record: LogRecord, file: str, line: int) -> None:
        query = self.query
        time = record.time
        if time is not None and ((query.since and time < query.since) or (query.until and time > query.until)):
            return
        client = self.sources.client(record)
        if self.second_pass:
            if client.kind is not None:
                return
            self.parsed += 1
        hit = Hit(time, file, line, client.address, record.method, record.path, record.status, record.seconds,
                  client.via, client.claimed)
        if query.at is not None and client.kind is not None and time is not None \
                and abs(time - query.at) <= query.window and len(self.around) < MAX_AROUND:
            self.around.append(hit)
        state = self.path_state(record.path, client, record.host)
        if state is None:
            if client.kind is not None:
                self._other_path(record, hit)
            return
        kind = redirect_kind(record) if 300 <= record.status < 400 else None
        if client.kind is None:
            self._foreign(state, record, hit, kind)
        else:
            self._postsale(state, record, hit, client.kind, kind)

    def _other_path(self, record: LogRecord, hit: Hit) -> None:
        """A request from a PostFinance address to a path that is not a post-sale path (or on another host)."""
        key = record.path
        if any(match(record.path) for match, _ in self.patterns):      # the path, on another host
            key = f"//{_host_of(record.host)}{record.path}"
        group = self.other.get(key)
        if group is None:
            if len(self.other) >= MAX_OTHER_PATHS:
                self.other_dropped += 1
                return
            group = self.other[key] = _Group()
        group.add(hit)

    def _foreign(self, state: _PathState, record: LogRecord, hit: Hit, redirect: str | None) -> None:
        """A request to a post-sale path from an address that is not PostFinance's."""
        state.foreign.add(hit, redirect)
        if hit.claimed:
            state.foreign.claimed_count += 1
            if len(state.foreign.claimed) < MAX_EXAMPLES:
                state.foreign.claimed.append(hit)
        elif self.sources.trusted and record.peer and hit.via is None and self.sources._info(record.peer)[2]:
            state.foreign.proxied_without_header += 1

    def _postsale(self, state: _PathState, record: LogRecord, hit: Hit, source: str, redirect: str | None) -> None:
        """A post-sale request: from a published PostFinance range or a legacy one (`source`)."""
        group = state.published if source == PUBLISHED else state.legacy
        group.add(hit, redirect)
        query = self.query
        if query.method and record.method and record.method != query.method \
                and len(group.method_examples) < MAX_EXAMPLES:
            group.method_examples.append(hit)
        time = record.time
        if time is not None:
            state.per_day[time.strftime("%Y-%m-%d")] += 1
            state.per_hour[time.hour] += 1
            if len(state.times) < MAX_POSTSALE_TIMES:
                state.times.append(time.timestamp())
        if record.seconds is not None:
            self._timing(state, hit, record.seconds)

    def _timing(self, state: _PathState, hit: Hit, seconds: float) -> None:
        state.seconds_seen += 1
        state.seconds_total += seconds
        if len(state.seconds) < MAX_SECONDS_SAMPLE:
            state.seconds.append(seconds)
        else:                                                   # reservoir sampling
            slot = state.random.randrange(state.seconds_seen)
            if slot < MAX_SECONDS_SAMPLE:
                state.seconds[slot] = seconds
        if seconds >= self.platform.slow_seconds:
            state.slow += 1
        if seconds >= self.platform.budget_seconds:
            state.over_budget += 1
        if state.slowest is None or seconds > (state.slowest.seconds or 0):
            state.slowest = hit


def _first_time(line_format: LineFormat, lines: Sequence[bytes], reverse: bool = False) -> dt.datetime | None:
    for line in (reversed(lines) if reverse else lines):
        record = line_format.parse(line.rstrip(b"\r"))
        if record is not None and record.time is not None:
            return record.time
    return None


@dataclass
class _File:
    source: LogSource
    line_format: LineFormat | None
    first_time: dt.datetime | None = None
    last_time: dt.datetime | None = None
    problem: str = ""


def _choose_format(query: LogQuery, head_lines: Sequence[bytes]) -> tuple[LineFormat | None, str]:
    if query.log_format and query.log_format != "auto":
        return definition_format(query.log_format), ""
    sample = [ln.rstrip(b"\r") for ln in head_lines if ln.strip()][:50]
    for candidate in query.formats:                     # from the server's own configuration
        if sample and sum(1 for ln in sample if candidate.parse(ln)) * 2 >= len(sample):
            return candidate, ""
    detected = detect(sample)
    if detected is None and sample:
        return None, ("the log format is not recognised (not combined, common, vhost_combined, JSON or AWS "
                      "ALB): give the server's definition with --log-format")
    return detected, ""


def _prepare(names: Sequence[str], query: LogQuery) -> list[_File]:
    files = []
    for name in names:
        source = LogSource(name)
        if name == STDIN:
            files.append(_File(source, None))
            continue
        head = source.head().split(b"\n")
        if len(head) > 1:
            head = head[:-1]                               # the last piece may be cut short
        line_format, problem = _choose_format(query, head)
        entry = _File(source, line_format, problem=problem)
        if line_format is not None:
            entry.first_time = _first_time(line_format, head)
        files.append(entry)
    return files


def analyse(arguments: Sequence[str], platform: Platform, query: LogQuery, *, base_dir: str | None = None,
            shop: str = "", deadline: float | None = None) -> LogEvidence:
    """Read the logs named by `arguments` (files, globs, `-`) and gather the evidence. With a `deadline`
    (time.monotonic()), reading stops there and the rest counts as unread (check --max-runtime)."""
    names = in_rotation_order(expand(arguments, base_dir))
    if not names:
        raise ConfigError("no log file given")
    files = _prepare(names, query)
    far = dt.datetime.max.replace(tzinfo=dt.UTC)
    files.sort(key=lambda f: (f.source.name == STDIN, f.first_time or far))
    work = _Analysis(platform, query)
    summaries: list[FileSummary] = []
    for entry in files:
        summaries.append(_read_file(entry, work, query, deadline))
    strangers = bool(query.paths) or _strangers_on_discovered_paths(files, work, query, deadline)
    return _evidence(work, summaries, query, shop, strangers)


def _strangers_on_discovered_paths(files: Sequence[_File], work: _Analysis, query: LogQuery,
                                   deadline: float | None) -> bool:
    """Without configured paths, the feedback paths are known only after reading: read the files once
    more for other addresses on them (the prefilter looks for the paths only). Standard input cannot be
    read twice: then strangers are not looked at (False)."""
    needles = [s.path.needle for s in work.paths if s.discovered and len(s.path.path) > 1]
    if not needles:
        return True
    if any(entry.source.name == STDIN for entry in files):
        return False
    work.second_pass = True
    try:
        for entry in files:
            if entry.line_format is not None and not entry.problem:
                _read_file(_File(LogSource(entry.source.name), entry.line_format), work, query, deadline,
                           needles=needles, addresses=work.sources.trusted)
    finally:
        work.second_pass = False
    return True


def _read_file(entry: _File, work: _Analysis, query: LogQuery, deadline: float | None, *,
               needles: Sequence[bytes] | None = None, addresses: AddressSet | None = None) -> FileSummary:
    source = entry.source
    if entry.problem:
        work.problem(LineProblem(source.name, 1, entry.problem, "format"))
        return FileSummary(source.name, "unrecognised", 0, source.compressed, None, None)
    line_format = entry.line_format
    prefilter: Prefilter | None = None
    if needles is None:
        needles = [p.needle for p in query.paths]
    last_lines: list[bytes] = []
    unrecognised = False
    for lines in source.chunks():
        if unrecognised:
            continue
        if deadline is not None and time.monotonic() > deadline:
            work.problem(LineProblem(source.name, source.lines_read - len(lines) + 1,
                                     "not read: the run deadline (--max-runtime) passed", "deadline"))
            break
        if line_format is None:                    # standard input: detect from the first chunk
            line_format = _detect_format(entry, work, query, lines)
            if line_format is None:
                unrecognised = True
                continue
        if prefilter is None:
            prefilter = Prefilter(work.sources.interesting() if addresses is None else addresses, needles,
                                  line_format)
            work.logs_seconds = work.logs_seconds or line_format.logs_seconds
        _read_chunk(work, source.name, lines, source.lines_read - len(lines), prefilter, line_format)
        if lines:                          # the newest lines with a time, even after a short last chunk
            last_lines = (last_lines + lines)[-20:] if len(lines) < 20 else lines[-20:]
    for line_problem in source.problems:
        work.problem(line_problem)
    if line_format is not None and last_lines:
        entry.last_time = _first_time(line_format, last_lines, reverse=True)
    return FileSummary(source.name, line_format.name if line_format else "unrecognised", source.lines_read,
                       source.compressed, entry.first_time, entry.last_time)


def _detect_format(entry: _File, work: _Analysis, query: LogQuery, lines: Sequence[bytes]) -> LineFormat | None:
    """The format of a log whose name says nothing (standard input), from its first lines; None (and the
    problem recorded) when no format reads them."""
    line_format, problem = _choose_format(query, lines[:50])
    if line_format is None:
        work.problem(LineProblem(entry.source.name, 1, problem or "empty input", "format"))
        return None
    entry.first_time = _first_time(line_format, lines[:50])
    return line_format


def _read_chunk(work: _Analysis, name: str, lines: list[bytes], base: int, prefilter: Prefilter,
                line_format: LineFormat) -> None:
    """Parse and record the lines of one chunk that the prefilter selects (`base`: lines before the chunk)."""
    parse, record_line = line_format.parse, work.record
    for index in prefilter.select(lines):
        raw = lines[index]
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        if len(raw) > MAX_LINE_BYTES:
            work.problem(LineProblem(name, base + index + 1,
                                     f"line longer than {MAX_LINE_BYTES // 1024} KiB: skipped", "too_long"))
            continue
        record = parse(raw)
        if record is None:
            if raw.strip():
                work.problem(LineProblem(name, base + index + 1, *_why_unreadable(raw, line_format)))
            continue
        if not work.second_pass:
            work.parsed += 1
        record_line(record, name, base + index + 1)


def _why_unreadable(raw: bytes, line_format: LineFormat) -> tuple[str, str]:
    """(problem, kind) of a line the format does not parse."""
    if b"\x00" in raw or sum(1 for b in raw[:200] if b < 9 or 13 < b < 32) > 2:
        return "binary data, not a log line", "binary"
    return f"does not have the {line_format.name} shape", "line"


def _percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def _gaps(times: array.array[float], end: dt.datetime | None, expected: dt.timedelta
          ) -> tuple[tuple[Gap, ...], float | None]:
    if not times:
        return (), None
    ordered = sorted(times)
    intervals = [b - a for a, b in itertools.pairwise(ordered)]
    usual = statistics.median(intervals) if len(intervals) >= 2 else None
    threshold = max(GAP_FACTOR * usual, MIN_GAP.total_seconds()) if usual is not None else expected.total_seconds()
    found = [(b - a, a, b) for a, b in itertools.pairwise(ordered) if b - a > threshold]
    found.sort(reverse=True)
    gaps = [Gap(_utc(a), _utc(b)) for _, a, b in found[:5]]
    if end is not None and end.timestamp() - ordered[-1] > threshold:
        gaps.insert(0, Gap(_utc(ordered[-1]), end, open_end=True))
    return tuple(gaps), usual


def _utc(timestamp: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(timestamp, dt.UTC)


def _evidence(work: _Analysis, files: list[FileSummary], query: LogQuery, shop: str,
              strangers: bool) -> LogEvidence:
    firsts = [f.first_time for f in files if f.first_time]
    lasts = [f.last_time for f in files if f.last_time]
    start = min(firsts) if firsts else None
    end = max(lasts) if lasts else None
    if start and query.since and query.since > start:
        start = query.since
    if end and query.until and query.until < end:
        end = query.until
    paths = []
    for state in work.paths:
        timing = None
        if state.seconds:
            timing = Timing(count=state.seconds_seen, median=statistics.median(state.seconds),
                            p95=_percentile(state.seconds, 0.95), maximum=max(state.seconds),
                            slow=state.slow, over_budget=state.over_budget, slowest=state.slowest,
                            total=state.seconds_total)
        gaps, usual = _gaps(state.times, end, query.expected_interval)
        paths.append(PathEvidence(
            path=state.path, published=state.published.frozen(), legacy=state.legacy.frozen(),
            foreign=state.foreign.frozen(), per_day=dict(sorted(state.per_day.items())),
            per_hour=dict(sorted(state.per_hour.items())), timing=timing, gaps=gaps, usual_interval=usual,
            discovered=state.discovered))
    around = sorted(work.around, key=lambda h: abs((h.time - query.at).total_seconds())
                    if h.time and query.at else 0)[:100]
    around.sort(key=lambda h: h.time or dt.datetime.min.replace(tzinfo=dt.UTC))
    return LogEvidence(
        files=tuple(files), paths=tuple(paths), other_paths={k: g.frozen() for k, g in work.other.items()},
        other_paths_dropped=work.other_dropped, unreadable=work.unreadable,
        unreadable_examples=tuple(work.examples), last_unreadable=work.last_unreadable,
        unreadable_kinds=dict(work.kinds), cut_files=tuple(work.cut),
        coverage_start=start, coverage_end=end, lines=sum(f.lines for f in files), parsed=work.parsed,
        logs_seconds=work.logs_seconds, query=query, around=tuple(around), shop=shop,
        strangers_checked=strangers)
