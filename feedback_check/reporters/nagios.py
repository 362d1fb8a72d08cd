"""`--format nagios`: a Nagios / Icinga plugin answer (monitoring-plugins development guidelines).

The first line is ``FEEDBACK-CHECK <STATE> - <one-line reason> | <perfdata>``; the long output (one line
per URL or firewall that is not OK, shops that could not be checked, findings of the profile) follows.

- ``<STATE>`` is always the state of the exit code the process actually returns: with ``--fail-on
  critical`` a WARNING verdict exits 0 and says ``OK`` (naming the warning it did not alert on); when the
  report could not be stored (``--state``/``--output`` unwritable) the state is ``UNKNOWN`` unless the
  verdict is ``CRITICAL`` (a real CRITICAL is never hidden behind a write error).
- The reason of any non-OK state names its main finding (warnings included); an OK answer reads like
  check_curl's: ``HTTP/1.1 200 OK - 0 bytes in 0.048 second response time``.
- Errors that stop the run (bad profile, bad option) are one ``FEEDBACK-CHECK UNKNOWN - ...`` line
  on stdout (`unknown_line`), besides the one-line error on stderr.

Performance data follows the guidelines, ``'label'=value[UOM];[warn];[crit];[min];[max]``:

- ``total``, ``dns``, ``connect``, ``tls``, ``ttfb``: seconds of ONE URL, the slowest (by ``total``) -
  values of different URLs are never mixed in one set; ``total`` carries the slow threshold (``-w``) and
  the budget (``-c``) as warning and critical;
- ``cert_days_left``: the fewest days any certificate of the run has left (``21:`` / ``7:`` ranges, or
  ``-C``: alert below the warning / critical windows);
- ``blocked_addresses``: published PostFinance addresses the firewall layers block (critical above 0);
- ``urls_critical`` / ``urls_warning`` / ``urls_ok``: counts;
- with a few URLs (at most `PER_TARGET_LIMIT`) the same phase, certificate and firewall values per
  URL, labelled ``<shop>/<role> <name>``; above that only the aggregates, so the line stays within
  what Nagios stores.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from feedback_check.findings import Finding, Severity, Verdict, ranked
from feedback_check.report import PHASES, Report, TargetSummary, general_findings
from feedback_check.reporters.views import clean, main_finding, target_label

PLUGIN = "FEEDBACK-CHECK"
#: Up to this many URLs, per-URL performance data is added to the aggregates.
PER_TARGET_LIMIT = 10
#: How long the one-line reason may be.
REASON_CHARS = 200
_LABEL_BAD = re.compile(r"[=']")


def render(report: Report, *, color: bool = False, state: Verdict | None = None,
           problems: Sequence[str] = ()) -> str:
    """The plugin output: status line with performance data, then the long output.

    `state` is the state of the exit code actually used (default: the verdict); `problems` are reasons
    the run's result could not be delivered in full (an unwritable state or output file)."""
    state = report.verdict if state is None else state
    status = f"{PLUGIN} {state.name} - {_plain(_state_reason(report, state, problems), REASON_CHARS)}"
    perfdata = " ".join([*_perfdata(report), *_logs_perfdata(report)])
    first = f"{status} | {perfdata}" if perfdata else status
    extra = [_plain(f"UNKNOWN: {p}") for p in problems]
    return "\n".join([first, *extra, *_long_output(report)]) + "\n"


def unknown_line(reason: str) -> str:
    """The plugin answer of a run that could not check anything (bad profile, bad option)."""
    return f"{PLUGIN} UNKNOWN - {_plain(reason, REASON_CHARS * 2)}"


def _state_reason(report: Report, state: Verdict, problems: Sequence[str]) -> str:
    verdict = report.verdict
    reason = _reason(report)
    if problems and state is not verdict:
        return f"{problems[0]}; the check itself: {verdict.name} - {reason}"
    if state is Verdict.OK and verdict is Verdict.WARNING:
        main = main_finding(report.findings, lab=report.lab)
        named = f": {main.title} ({main.target})" if main else ""
        return f"{_ok_reason(report).rstrip('.')}; a warning is not alerted on (--fail-on critical){named}"
    return reason


def _plain(text: str, limit: int = 500) -> str:
    """Text for the plugin output: one line, printable, and never a `|` (it starts the performance data)."""
    return clean(text, limit).replace("|", "/")


def _reason(report: Report) -> str:
    """One line: the main finding of a non-OK verdict, a check_curl-like summary of an OK one."""
    if report.verdict is Verdict.OK:
        return _ok_reason(report)
    if report.command == "logs" and report.logs:
        return _logs_reason(report)
    errors = [s for s in report.shops if s.error]
    if len(report.targets) <= 1 and not errors:
        return _single_reason(report)
    parts, worst, failing = _urls_part(report)
    blocked = sum(fw.blocked_addresses for fw in report.firewalls)
    if blocked:
        # A firewall that blocks is what makes the state when no URL fails: it comes first.
        parts.insert(0 if not failing else len(parts), f"{blocked:,} published addresses blocked")
    if errors:
        parts.append(f"{len(errors)} shop{'s' * (len(errors) > 1)} not checked ({errors[0].name}: {errors[0].error})")
    if not worst and not blocked:
        named = _named_problem(report)
        if named is not None:
            parts.append(f"{named.title} ({named.target})" if named.target else named.title)
    return "; ".join(parts) if parts else report.answer()


def _urls_part(report: Report) -> tuple[list[str], list[TargetSummary], list[TargetSummary]]:
    """(["3 of 40 URLs failing, 2 warnings, first shop · role: title"] or ["all 40 URLs OK"], the worst URLs,
    the failing URLs). "Failing" is a post-sale that would fail (CRITICAL); a WARNING URL still gets
    through (its `feedback_check_success` is 1), so it is counted apart, as check_http's "N critical, M
    warning" is."""
    targets = report.targets
    by_verdict = {verdict: [t for t in targets if t.verdict is verdict]
                  for verdict in (Verdict.CRITICAL, Verdict.WARNING, Verdict.UNKNOWN)}
    failing, warned, unknown = by_verdict[Verdict.CRITICAL], by_verdict[Verdict.WARNING], by_verdict[Verdict.UNKNOWN]
    worst = failing or warned or unknown
    if not worst:
        return ([f"all {len(targets)} URLs OK"] if targets else []), worst, failing
    main = main_finding(worst[0].findings, lab=report.lab)
    what = f"{main.title}" if main else worst[0].verdict.name.lower()
    counts = [f"{len(failing)} of {len(targets)} URLs failing"]
    if warned:
        counts.append(f"{len(warned)} warning{'s' * (len(warned) != 1)}")
    if unknown:
        counts.append(f"{len(unknown)} unknown")
    return [f"{', '.join(counts)}, first {target_label(worst[0])}: {what}"], worst, failing


def _named_problem(report: Report) -> Finding | None:
    """The main finding of no URL (profile, firewall) when no URL fails and no address is blocked."""
    rest = [f for f in general_findings(report) if f.severity is not Severity.INFO]
    fw_findings = [f for fw in report.firewalls for f in fw.findings if f.severity is not Severity.INFO]
    return main_finding([*rest, *fw_findings], lab=report.lab)


def _single_reason(report: Report) -> str:
    """A run of one URL (and its firewall): the answer, naming the main finding also of a WARNING."""
    if report.verdict is not Verdict.WARNING:
        return report.answer()
    warnings = [f for f in ranked(report.findings, lab=report.lab) if f.severity is Severity.WARNING]
    first = warnings[0]
    where = f" ({first.target})" if first.target else ""
    more = f" (and {len(warnings) - 1} more warning{'s' * (len(warnings) > 2)})" if len(warnings) > 1 else ""
    return f"{first.title}{where}{more}; post-sale requests would still get through"


def _ok_reason(report: Report) -> str:
    """check_curl's OK line (status line, bytes, seconds) for the slowest URL, plus what else was checked."""
    parts: list[str] = []
    slowest = _slowest(report)
    if slowest is not None:
        answer = _answer_facts(slowest)
        if answer:
            status_line, size, seconds = answer
            line = f"{status_line} - {size} bytes in {seconds:.3f} second response time"
            if len(report.targets) > 1:
                line = f"{len(report.targets)} URLs OK, slowest {target_label(slowest)}: {line}"
            parts.append(line)
        else:
            parts.append(f"{len(report.targets)} URL{'s' * (len(report.targets) != 1)} OK")
    for fw in report.firewalls[:1]:
        more = f" (and {len(report.firewalls) - 1} more firewalls)" if len(report.firewalls) > 1 else ""
        parts.append(f"firewall admits all {fw.published_addresses:,} published addresses on port {fw.port}{more}")
    return "; ".join(parts) if parts else report.answer()


def _answer_facts(target: TargetSummary) -> tuple[str, int, float] | None:
    """(status line, body bytes, total seconds) of the first address that answered."""
    for address in target.probe.addresses if target.probe is not None else ():
        http = address.http
        if http is not None and http.status_line:
            total = _seconds(target.timings.get("total"))
            if total is None:
                total = _seconds(round(http.total_seconds, 4))
            return http.status_line, len(http.body), total or 0.0
    return None


def _slowest(report: Report) -> TargetSummary | None:
    """The URL whose phases the aggregate performance data shows: the slowest by total time."""
    if not report.targets:
        return None
    return max(report.targets, key=lambda t: _seconds(t.timings.get("total")) or -1.0)


# --- performance data ---------------------------------------------------------------------------------

def perf_label(label: str) -> str:
    """A label as the guidelines want it: single-quoted, without `=` or `'` (replaced)."""
    safe = _LABEL_BAD.sub("_", clean(label, 100)).replace("|", "/")
    return f"'{safe}'"


def perf_value(value: float) -> str:
    """A number in the guidelines' value grammar: digits, optional fraction, never an exponent."""
    text = f"{value:.6f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _item(label: str, value: float, uom: str = "", warn: str = "", crit: str = "", low: str = "",
          high: str = "") -> str:
    fields = [warn, crit, low, high]
    while fields and not fields[-1]:
        fields.pop()
    tail = "".join(f";{f}" for f in fields)
    return f"{perf_label(label)}={perf_value(value)}{uom}{tail}"


def _platform_number(report: Report, *keys: str) -> float | None:
    """A platform threshold the report carries (e.g. `budget_seconds`), found flat or one level down."""
    platform: Mapping[str, Any] = report.platform or {}
    for key in keys:
        candidates: list[Any] = [platform.get(key)]
        candidates += [v.get(key) for v in platform.values() if isinstance(v, Mapping)]
        for value in candidates:
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return float(value)
    return None


def _threshold(value: float | None, *, below: bool = False) -> str:
    if value is None:
        return ""
    return f"{perf_value(value)}:" if below else perf_value(value)


@dataclass(frozen=True)
class _Thresholds:
    """The warn/crit ranges of the performance data, from the platform the run used."""

    slow: str
    budget: str
    cert_warn: str
    cert_crit: str

    @classmethod
    def of(cls, report: Report) -> _Thresholds:
        return cls(_threshold(_platform_number(report, "slow_seconds")),
                   _threshold(_platform_number(report, "budget_seconds")),
                   _threshold(_platform_number(report, "cert_warning_days"), below=True),
                   _threshold(_platform_number(report, "cert_critical_days"), below=True))

    def phases(self, prefix: str, timings: Mapping[str, float | None]) -> list[str]:
        """One item per measured phase; the total carries the slow and budget thresholds."""
        items = []
        for phase in PHASES:
            value = _seconds(timings.get(phase))
            if value is not None:
                warn, crit = (self.slow, self.budget) if phase == "total" else ("", "")
                items.append(_item(f"{prefix}{phase}", value, "s", warn, crit, "0"))
        return items

    def cert(self, label: str, days: float | None) -> list[str]:
        return [] if days is None else [_item(label, round(days, 2), "", self.cert_warn, self.cert_crit)]


def _perfdata(report: Report) -> list[str]:
    limits = _Thresholds.of(report)
    targets = report.targets
    slowest = _slowest(report)
    # One URL's whole set (the slowest): maxima of different URLs would show a request that never was.
    items = limits.phases("", slowest.timings) if slowest is not None else []
    items += limits.cert("cert_days_left", min((t.cert_days_left for t in targets if t.cert_days_left is not None),
                                               default=None))
    if report.firewalls:
        items.append(_item("blocked_addresses", sum(f.blocked_addresses for f in report.firewalls), "", "", "0",
                           "0", perf_value(sum(f.published_addresses for f in report.firewalls))))
    if targets:
        count = str(len(targets))
        for verdict, crit in ((Verdict.CRITICAL, "0"), (Verdict.WARNING, ""), (Verdict.OK, "")):
            n = sum(1 for t in targets if t.verdict is verdict)
            items.append(_item(f"urls_{verdict.name.lower()}", n, "", "", crit, "0", count))
    if 1 < len(targets) <= PER_TARGET_LIMIT:
        for t in targets:
            prefix = f"{t.shop}/{t.role}" if t.shop else t.role
            items += limits.phases(f"{prefix} ", t.timings) + limits.cert(f"{prefix} cert_days_left", t.cert_days_left)
    if 1 < len(report.firewalls) <= PER_TARGET_LIMIT:
        for fw in report.firewalls:
            items.append(_item(f"{fw.shop}/firewall:{fw.port} blocked_addresses", fw.blocked_addresses, "", "",
                               "0", "0", perf_value(fw.published_addresses)))
    return items


def _seconds(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return max(float(value), 0.0)


# --- long output --------------------------------------------------------------------------------------

def _long_output(report: Report) -> list[str]:
    lines: list[str] = []
    for shop in report.shops:
        if shop.error:
            lines.append(_plain(f"UNKNOWN {shop.name}: not checked: {shop.error}"))
    for t in sorted(report.targets, key=lambda t: -t.verdict.value):
        if t.verdict is Verdict.OK:
            continue
        lines.append(_plain(f"{t.verdict.name} {target_label(t)} {t.method} {t.url}"))
        lines += _finding_lines(t.findings)
    for fw in sorted(report.firewalls, key=lambda f: -f.verdict.value):
        if fw.verdict is Verdict.OK:
            continue
        label = f"{fw.shop} firewall" if fw.shop else "firewall"
        lines.append(_plain(f"{fw.verdict.name} {label} port {fw.port}: {fw.blocked_addresses:,} of "
                            f"{fw.published_addresses:,} published addresses blocked"))
        lines += _finding_lines(fw.findings)
    logged = _logs_finding_keys(report)
    general = [f for f in general_findings(report) if _key(f) not in logged]
    lines += _logs_long_output(report)
    if any(f.severity is not Severity.INFO for f in general):
        lines.append("Profile and platform:")
        lines += _finding_lines(general)
    ok = [t for t in report.targets if t.verdict is Verdict.OK]
    if ok:
        lines.append(f"OK: {len(ok)} URL{'s' * (len(ok) != 1)}")
    changes = report.changes or {}
    if changes.get("new") or changes.get("resolved"):
        lines.append(_plain(f"Changes since the last run: {len(changes.get('new', ()))} new, "
                            f"{len(changes.get('resolved', ()))} resolved finding(s)"))
    lines += [_plain(f"Note: {n}") for n in report.notes]
    return lines


def _finding_lines(findings: Iterable[Finding]) -> list[str]:
    out = []
    for f in ranked(findings):
        if f.severity is Severity.INFO:
            continue
        fix = f" Fix: {f.fix}" if f.fix else ""
        out.append(_plain(f"  [{f.severity.value}] {f.code}: {f.title} ({f.target}).{fix}", 600))
    return out



# --- access logs (`logs`, and the `logs:` entries of `check`) ------------------------------------------

def _key(f: Finding) -> tuple[Any, ...]:
    return (f.code, f.severity, f.target, f.shop, f.detail)


def _logs_finding_keys(report: Report) -> set[tuple[Any, ...]]:
    return {_key(f) for summary in report.logs for f in summary.findings}


def _logs_reason(report: Report) -> str:
    """`logs`: the main finding, its target, and what the logs counted."""
    findings = [f for f in ranked(report.findings) if f.severity is not Severity.INFO]
    if not findings:
        return report.answer()
    main = findings[0]
    worst = [f for f in findings if f.severity is main.severity]
    more = (f" (and {len(worst) - 1} more {main.severity.value} finding{'s' * (len(worst) > 2)})"
            if len(worst) > 1 else "")
    paths = [p for summary in report.logs for p in summary.evidence.paths]
    published = sum(p.published.count for p in paths)
    failed = sum(p.published.failed for p in paths)
    times = [p.published.last_failure.time for p in paths
             if p.published.last_failure is not None and p.published.last_failure.time is not None]
    counted = f"{published} post-sale{'s' * (published != 1)} from PostFinance in the logs, {failed} failed" + (
        f", last failure {max(times):%Y-%m-%d %H:%M} UTC" if times else "")
    return f"{main.title} ({main.target}){more}; {counted}"


def _logs_perfdata(report: Report) -> list[str]:
    """post-sales from the published ranges, failed ones, requests of the 2019 senders and of other
    addresses to the feedback paths, unreadable lines; the slowest path's p95 and the slowest answer when
    the log format records answer times (with the slow threshold and the budget as warning/critical)."""
    if not report.logs:
        return []
    slow = _threshold(_platform_number(report, "slow_seconds"))
    budget = _threshold(_platform_number(report, "budget_seconds"))
    paths = [p for summary in report.logs for p in summary.evidence.paths]
    published = sum(p.published.count for p in paths)
    items = [_item("log_postsales", published, "", "", "", "0"),
             _item("log_postsales_failed", sum(p.published.failed for p in paths), "", "", "", "0",
                   perf_value(published)),
             _item("log_legacy_requests", sum(p.legacy.count for p in paths), "", "", "", "0"),
             _item("log_foreign_requests", sum(p.foreign.count for p in paths), "", "", "", "0"),
             _item("log_unreadable_lines", sum(s.evidence.unreadable for s in report.logs), "", "", "", "0")]
    timings = [p.timing for p in paths if p.timing is not None]
    if timings:
        items.append(_item("log_answer_p95", max(t.p95 for t in timings), "s", slow, budget, "0"))
        items.append(_item("log_answer_max", max(t.maximum for t in timings), "s", slow, budget, "0"))
    if 1 < len(report.logs) <= PER_TARGET_LIMIT:
        for summary in report.logs:
            shop_paths = summary.evidence.paths
            items.append(_item(f"{summary.shop} log_postsales", sum(p.published.count for p in shop_paths), "", "",
                               "", "0"))
            items.append(_item(f"{summary.shop} log_postsales_failed", sum(p.published.failed for p in shop_paths),
                               "", "", "", "0"))
    return items


def _logs_long_output(report: Report) -> list[str]:
    """The access-log findings under their own heading (not "Profile and platform")."""
    lines: list[str] = []
    for summary in report.logs:
        if not any(f.severity is not Severity.INFO for f in summary.findings):
            continue
        lines.append(_plain(f"{summary.verdict.name} access logs" + (f" of {summary.shop}" if summary.shop else "")
                            + ":"))
        lines += _finding_lines(summary.findings)
    return lines
