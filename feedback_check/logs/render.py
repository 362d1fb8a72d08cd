"""The access-log block of the text report: what was read, and per feedback path what arrived.

Called by reporters/text.py for each `LogsSummary` of a report; the findings themselves are rendered by
the text reporter's generic finding lines (passed in as `finding_lines`), so they look like every other.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from feedback_check.findings import Finding, ranked
from feedback_check.logs.evidence import Hit, PathEvidence
from feedback_check.logs.judgement import LogsSummary

MAX_DAYS_SHOWN = 14
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _safe(text: str, limit: int = 200) -> str:
    """Paths and addresses come from the log (anyone can send them): no terminal escapes, bounded."""
    text = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _count(n: int, word: str) -> str:
    return f"{n} {word}{'s' * (n != 1)}"


def _hit_line(hit: Hit) -> str:
    when = hit.time.strftime("%Y-%m-%d %H:%M:%S") if hit.time else "-"
    seconds = f" {hit.seconds:.3f} s" if hit.seconds is not None else ""
    via = f" via {hit.via}" if hit.via else ""
    return (f"{when}  {_safe(hit.client, 45):<15} {_safe(hit.method, 10):<5} {_safe(hit.path)}  {hit.status}"
            f"{seconds}{via}  ({_safe(hit.where, 300)})")


def _path_lines(path: PathEvidence) -> list[str]:
    group = path.published
    label = _safe(path.path.label or path.path.path)
    role = f" [{path.path.role}]" if path.path.role else ""
    out = [f"  {label}{role}" + ("  (path PostFinance requested)" if path.discovered else "")]
    statuses = ", ".join(f"{s}×{n}" for s, n in sorted(group.statuses.items())) or "none"
    if len(group.classes) > 1:
        statuses += " (" + ", ".join(f"{c} {n}" for c, n in group.classes.items()) + ")"
    methods = ", ".join(f"{_safe(m, 10)} {n}" for m, n in group.methods.items()) or "-"
    out.append(f"    post-sales from PostFinance: {group.count}   statuses: {statuses}   methods: {methods}")
    if path.timing:
        t = path.timing
        out.append(f"    answer times: median {t.median:.3f} s · p95 {t.p95:.3f} s · max {t.maximum:.3f} s"
                   f" · {t.slow} slow")
    if path.per_day:
        days = list(path.per_day.items())[-MAX_DAYS_SHOWN:]
        out.append("    per day: " + "  ".join(f"{d} {n}" for d, n in days))
    if path.per_hour:
        out.append("    per hour (UTC): " + " ".join(f"{h:02d}h {n}" for h, n in path.per_hour.items()))
    for label_text, hit in (("first success", group.first_success), ("last success", group.last_success),
                            ("first failure", group.first_failure), ("last failure", group.last_failure)):
        if hit is not None:
            out.append(f"    {label_text + ':':<15} {_hit_line(hit)}")
    if path.legacy.count:
        out.append(f"    from the 2019 senders: {path.legacy.count}")
    if path.foreign.count:
        out.append(f"    from other addresses: {path.foreign.count}"
                   + (f" ({path.foreign.claimed_count} with a forwarding header naming PostFinance)"
                      if path.foreign.claimed_count else ""))
    return out


def text_lines(summary: LogsSummary, paint: Callable[..., str],
               finding_lines: Callable[[Finding], list[str]]) -> list[str]:
    """The block for one LogsSummary."""
    evidence = summary.evidence
    title = f"Access logs{' · ' + summary.shop if summary.shop else ''}"
    out = [paint(title, "bold")]
    for f in evidence.files:
        first, last = f.first_time or f.last_time, f.last_time or f.first_time
        span = f"{first:%Y-%m-%d %H:%M} – {last:%Y-%m-%d %H:%M} UTC" if first and last else "no times"
        cut = next((c for c in evidence.cut_files if c.file == f.name), None)
        if cut is not None:
            where = f"after line {cut.line - 1}" if cut.line > 1 else "before its first line"
            span += f" ({'truncated' if cut.kind == 'truncated' else 'corrupt'} {where})"
        out.append(f"  {_safe(f.name, 300)}: {_count(f.lines, 'line')}, {f.format}{', gzip' if f.compressed else ''}, "
                   f"{span}")
    out.append(f"  {_count(evidence.parsed, 'line')} from PostFinance's addresses, trusted proxies or on the "
               f"feedback path parsed; {evidence.unreadable} unreadable")
    for path in evidence.paths:
        out += _path_lines(path)
    if evidence.query.at is not None:
        at = evidence.query.at
        out.append(f"  around {at:%Y-%m-%d %H:%M:%S} UTC (± {evidence.query.window.total_seconds() / 60:.0f} min): "
                   f"{len(evidence.around)} requests from PostFinance")
        out += [f"    {_hit_line(h)}" for h in evidence.around[:40]]
    for finding in ranked(summary.findings):
        out += finding_lines(finding)
    return out


def findings_of(summaries: Sequence[Any]) -> set[int]:
    """ids of the findings the log blocks render (the text reporter leaves them out elsewhere)."""
    return {id(f) for s in summaries for f in getattr(s, "findings", ())}
