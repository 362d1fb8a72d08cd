"""From log evidence to `logs.*` findings, in PostFinance's terms.

Severity follows what the log proves: a failure that is still happening (the last post-sale failed) is
critical, one the shop has recovered from is a warning; "no post-sale arrived" is concluded only when the
log covers at least the expected interval (the shop's, or one day), and never when requests that name a
PostFinance address in a forwarding header came through a proxy not declared trusted (then the log
cannot tell).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from feedback_check.errors import UsageError
from feedback_check.findings import Finding, Severity, Verdict, make_finding, verdict_of
from feedback_check.logs.analysis import analyse
from feedback_check.logs.evidence import (
    FileSummary,
    Hit,
    LogEvidence,
    LogQuery,
    PathEvidence,
    SenderGroup,
    gap_evidence,
    hit_evidence,
    timing_evidence,
)
from feedback_check.platform import Platform

#: What a failing status means for a post-sale, and what to change.
STATUS_MEANING: dict[int, tuple[str, str]] = {
    400: ("the handler rejected the request as malformed (often a SHA-OUT or parameter check)",
          "Check the handler's log; `feedback-check verify` tells a signature mismatch apart."),
    401: ("directory protection asks for a password the platform cannot give",
          "Exempt the feedback path from the password protection."),
    403: ("an access rule, WAF, mod_security or CDN blocks PostFinance's requests",
          "Exempt the feedback path from the WAF/CDN challenge and admit PostFinance's ranges."),
    404: ("the path does not exist on this server (wrong URL in the back office, or a routing change)",
          "Correct the post-sale URL in the back office or route the path to the handler."),
    405: ("the handler refuses the method the account sends (GET vs POST)",
          "Switch the request method in the back office, or accept it in the handler."),
    406: ("a filter (often mod_security) refused the request", "Exempt the feedback path from the filter rule."),
    408: ("the server timed out waiting for the request body", "Check the proxy's client body timeouts."),
    413: ("the request is larger than the server accepts", "Raise the request size limit for the path."),
    429: ("a rate limit refuses PostFinance's requests", "Exempt PostFinance's ranges from the rate limit."),
    444: ("nginx closed the connection without an answer (return 444: a deny or bot-filter rule)",
          "Exempt PostFinance's ranges and the feedback path from the rule that returns 444."),
    499: (("PostFinance closed the connection before the answer (nginx 499): the handler took longer than "
          "the platform waits"), "Answer the post-sale first, do slow work afterwards."),
    500: ("the handler crashed", "Look up the handler's error log at the times listed."),
    502: ("the proxy could not reach the application", "Check the application server behind the proxy."),
    503: ("the service was unavailable (maintenance mode, overload)", "Keep the feedback path up during maintenance."),
    504: ("the application answered the proxy too late: a timeout", "Answer the post-sale first, do slow work afterwards."),
}


def _status_text(status: int) -> str:
    meaning = STATUS_MEANING.get(status) or STATUS_MEANING.get(500 if status >= 500 else 400)
    return meaning[0] if meaning else ""


def _when(hit: Hit | None) -> str:
    if hit is None:
        return "?"
    stamp = hit.time.strftime("%Y-%m-%d %H:%M:%S UTC") if hit.time else "(no time logged)"
    return f"{stamp} ({hit.where})"


def _statuses(statuses: dict[int, int], keep: Iterable[int] | None = None) -> str:
    chosen = sorted((s, n) for s, n in statuses.items() if keep is None or s in set(keep))
    return ", ".join(f"{n}× {s}" for s, n in chosen)


def _addresses(group: SenderGroup, most: int = 5) -> str:
    top = sorted(group.addresses.items(), key=lambda kv: -kv[1])[:most]
    more = len(group.addresses) - len(top)
    return ", ".join(f"{a} ({n})" for a, n in top) + (f" and {more} more" if more > 0 else "")


def _hours(delta: dt.timedelta | float) -> str:
    seconds = delta.total_seconds() if isinstance(delta, dt.timedelta) else delta
    if seconds >= 2 * 86400:
        return f"{seconds / 86400:.1f} days"
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 60:.0f} min"


def judge(evidence: LogEvidence, platform: Platform) -> list[Finding]:
    """Every logs.* finding the evidence supports."""
    findings: list[Finding] = []
    for path in evidence.paths:
        findings += _path_findings(path, evidence, platform)
    if not any(p.published.count or p.legacy.count for p in evidence.paths) and not any(
            not p.discovered for p in evidence.paths):
        findings += _no_postsale_anywhere(evidence)
    findings += _other_paths(evidence)
    findings += _unreadable(evidence)
    return findings


def _path_findings(path: PathEvidence, evidence: LogEvidence, platform: Platform) -> list[Finding]:
    target = path.path.label or path.path.path
    found: list[Finding] = []
    group = path.published
    if group.count == 0 and path.legacy.count == 0:
        if not path.discovered:
            found += _no_postsale(target, path, evidence)
    else:
        found += _failed(target, group, path)
        found += _redirected(target, group)
        found += _ok(target, group, path)
        found += _slow(target, path, platform)
        found += _tail_gap(target, path, evidence)
        found += _method(target, path, evidence)
    found += _legacy(target, path)
    found += _foreign(target, path, evidence)
    return found


def _ok(target: str, group: SenderGroup, path: PathEvidence) -> list[Finding]:
    ok = sum(n for s, n in group.statuses.items() if 200 <= s < 300)
    if not ok:
        return []
    timing = path.timing
    times = (f" Answer times: median {timing.median:.3f} s, 95 % under {timing.p95:.3f} s, slowest "
             f"{timing.maximum:.3f} s." if timing else " The log format records no answer times.")
    gaps = [g for g in path.gaps if not g.open_end]
    gap_text = (" Longest pauses between post-sales: " + "; ".join(
        f"{g.start:%Y-%m-%d %H:%M} – {g.end:%Y-%m-%d %H:%M} ({_hours(g.seconds)})" for g in gaps[:3]) + "."
        if gaps else "")
    detail = (f"{ok} of {group.count} post-sales from PostFinance's published ranges were answered 2xx "
              f"({_statuses(group.statuses, range(200, 300))}); first {_when(group.first_success)}, "
              f"last {_when(group.last_success)}, from {_addresses(group)}.{times}{gap_text}")
    return [make_finding("logs.postsale_ok", target, detail=detail, evidence={
        "count": ok, "postsales": group.count, "statuses": {str(k): v for k, v in group.statuses.items()},
        "addresses": dict(group.addresses), "first": hit_evidence(group.first_success), "last": hit_evidence(group.last_success),
        "answer_times": timing_evidence(timing) if timing else None,
        "per_day": dict(path.per_day), "gaps": [gap_evidence(g) for g in path.gaps]})]


def _failed(target: str, group: SenderGroup, path: PathEvidence) -> list[Finding]:
    failed = {s: n for s, n in group.statuses.items() if s >= 400 or s < 200}
    if not failed:
        return []
    count = sum(failed.values())
    main = max(failed, key=lambda s: failed[s])
    still = group.last is not None and group.last.status in failed
    meanings = "; ".join(f"{s}: {_status_text(s)}" for s in sorted(failed) if _status_text(s))
    if still:
        state = f"The latest post-sale, {_when(group.last)}, failed too: this is still happening."
        severity = Severity.CRITICAL
    else:
        state = (f"Post-sales succeed again since {_when(group.recovery or group.last_success)}: the failures are "
                 "over, but each "
                 "of them was a process error for that payment.")
        severity = Severity.WARNING
    detail = (f"{count} of {group.count} post-sales from PostFinance's published ranges failed "
              f"({_statuses(failed)}); first {_when(group.first_failure)}, last {_when(group.last_failure)}. "
              f"{meanings}. {state} Post-sales came from {_addresses(group)}.")
    fix = STATUS_MEANING.get(main, STATUS_MEANING[500 if main >= 500 else 400])[1]
    return [make_finding("logs.postsale_failed", target, severity=severity, detail=detail, fix=fix, evidence={
        "count": count, "postsales": group.count, "statuses": {str(k): v for k, v in sorted(failed.items())},
        "addresses": dict(group.addresses), "first": hit_evidence(group.first_failure), "last": hit_evidence(group.last_failure),
        "examples": [hit_evidence(h) for h in group.failures], "still_failing": still})]


def _redirected(target: str, group: SenderGroup) -> list[Finding]:
    redirected = {s: n for s, n in group.statuses.items() if 300 <= s < 400}
    if not redirected:
        return []
    count = sum(redirected.values())
    before = group.redirect_kinds.get("before_handler", 0)
    still = group.last is not None and 300 <= group.last.status < 400
    kinds = ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in sorted(group.redirect_kinds.items()))
    if before and still:
        severity = Severity.CRITICAL
        why = ("Redirects of the kind a web server or CDN sends before any handler ran (301/308, or nginx "
               "answering without its application): the handler never saw the post-sale's data.")
    else:
        severity = Severity.WARNING
        why = ("302/303 answers are what some integrations (Odoo, Magento 1) send after processing; whether the "
               "platform counts them as a process error is not documented (assumed: it does not)."
               if not before else "The redirects stopped: later post-sales were answered without one.")
    detail = (f"{count} of {group.count} post-sales from PostFinance's published ranges were answered with a "
              f"redirect ({_statuses(redirected)}; {kinds}); first {_when(group.first_redirect)}, last "
              f"{_when(group.last_redirect)}. {why} The log does not record the Location: "
              "`feedback-check probe URL` shows where it points.")
    return [make_finding("logs.postsale_redirected", target, severity=severity, detail=detail, evidence={
        "count": count, "statuses": {str(k): v for k, v in redirected.items()}, "kinds": dict(group.redirect_kinds),
        "first": hit_evidence(group.first_redirect), "last": hit_evidence(group.last_redirect), "assumption": "http.redirect_fails"})]


def _slow(target: str, path: PathEvidence, platform: Platform) -> list[Finding]:
    timing = path.timing
    if timing is None or not timing.slow:
        return []
    detail = (f"{timing.slow} of {timing.count} post-sales took {platform.slow_seconds:g} s or longer to answer"
              + (f", {timing.over_budget} of them {platform.budget_seconds:g} s or longer (beyond the assumed "
                 "budget: the platform has probably given up and logged a process error)" if timing.over_budget
                 else "")
              + f"; slowest {timing.maximum:.2f} s at {_when(timing.slowest)}, 95 % under {timing.p95:.2f} s.")
    return [make_finding("logs.postsale_slow", target, detail=detail, evidence={
        **timing_evidence(timing), "assumption": "timing.slow_seconds"})]


def _coverage_text(evidence: LogEvidence) -> str:
    if evidence.coverage_start is None or evidence.coverage_end is None:
        return "no time could be read from the log"
    return (f"the log covers {evidence.coverage_start:%Y-%m-%d %H:%M} – {evidence.coverage_end:%Y-%m-%d %H:%M} "
            f"UTC ({_hours(evidence.coverage)}, {evidence.lines} lines)")


def _claims_text(path: PathEvidence) -> str:
    foreign = path.foreign
    if not foreign.claimed_count:
        return ""
    peers = sorted({h.client for h in foreign.claimed})
    return (f" {foreign.claimed_count} requests to the path came from {', '.join(peers[:5])} with a forwarding "
            f"header naming a PostFinance address ({foreign.claimed[0].claimed}): if that is your proxy or CDN, "
            "declare it with --trusted-proxy (or trusted_proxies: in the profile) and run again; if not, they "
            "are forgeries.")


def _rare_by_nature(path: PathEvidence) -> bool:
    """The rejected and status-change URLs get requests only for cancelled/refused payments and offline
    status changes: days without any are normal. Only the accepted URL (or one given without a role)
    gets a post-sale for every payment."""
    roles = {r for r in (path.path.role or "").split(", ") if r}
    return bool(roles) and "accepted" not in roles


def _no_postsale(target: str, path: PathEvidence, evidence: LogEvidence) -> list[Finding]:
    if not evidence.query.expect_postsales:
        return []
    if _rare_by_nature(path):
        return [make_finding("logs.no_postsale", target, severity=Severity.INFO, detail=(
            f"No request from PostFinance's published ranges reached {path.path.path} ({path.path.role} URL) in "
            f"the period read ({_coverage_text(evidence)}); the platform calls it only for "
            + ("cancelled or refused payments" if "rejected" in (path.path.role or "") else
               "offline status changes (captures, refunds, cancellations)") + ", so this proves nothing."),
            evidence={"role": path.path.role, "coverage_hours": round(evidence.coverage.total_seconds() / 3600, 2)},
            fix="")]
    expected = evidence.query.expected_interval
    coverage = _coverage_text(evidence)
    base = {"coverage_hours": round(evidence.coverage.total_seconds() / 3600, 2), "lines": evidence.lines,
            "expected_interval_hours": round(expected.total_seconds() / 3600, 2),
            "files": [f.name for f in evidence.files], "foreign_requests": path.foreign.count}
    others = sum(g.count for g in evidence.other_paths.values())
    other_text = (f" PostFinance's addresses did request other paths ({others} requests, see logs.other_paths): "
                  "the post-sale URL in the back office is probably wrong." if others else "")
    if path.foreign.claimed_count:
        return [make_finding("logs.no_postsale", target, severity=Severity.WARNING, detail=(
            f"No request from PostFinance's published ranges reached {path.path.path}, but the log cannot tell: "
            + _claims_text(path).strip() + f" ({coverage})."),
            evidence={**base, "claimed": path.foreign.claimed_count},
            fix="Declare the proxy in front of the server as trusted (--trusted-proxy CIDR or a preset)."),
        ]
    if evidence.coverage < expected:
        return [make_finding("logs.no_postsale", target, severity=Severity.INFO, detail=(
            f"No request from PostFinance's published ranges reached {path.path.path} yet, but {coverage}: "
            f"shorter than the {_hours(expected)} needed to conclude (assumed: the shop takes payments at "
            "least that often; set expect_every / --expect-every for your shop)." + other_text),
            evidence=base, fix="Read a longer period of the log (the rotated files too: access.log*).")]
    return [make_finding("logs.no_postsale", target, detail=(
        f"No request from PostFinance's published ranges reached {path.path.path}: {coverage}, longer than the "
        f"{_hours(expected)} in which the shop expects payments." + other_text
        + " The platform's post-sales do not arrive at this server: something in front of it (firewall, "
          "CDN/WAF, DNS pointing elsewhere) stops them, or the back office sends them to another URL. "
          "Make sure this is the log of the virtual host that serves the post-sale URL."),
        evidence=base)]


def _no_postsale_anywhere(evidence: LogEvidence) -> list[Finding]:
    """No feedback path was configured and no PostFinance address appears at all."""
    if evidence.paths or not evidence.query.expect_postsales:
        return []
    expected = evidence.query.expected_interval
    coverage = _coverage_text(evidence)
    base = {"coverage_hours": round(evidence.coverage.total_seconds() / 3600, 2), "lines": evidence.lines}
    if evidence.lines == 0:
        return []
    if evidence.coverage < expected:
        return [make_finding("logs.no_postsale", "(any path)", severity=Severity.INFO, detail=(
            f"No request from PostFinance's published ranges in the log, but {coverage}: shorter than the "
            f"{_hours(expected)} needed to conclude."), evidence=base,
            fix="Read a longer period of the log (the rotated files too: access.log*).")]
    return [make_finding("logs.no_postsale", "(any path)", detail=(
        f"No request from any of PostFinance's published ranges appears in the log at all: {coverage}. "
        "Either something in front of this server (firewall, CDN/WAF, DNS) stops the platform's post-sales, "
        "the back office sends them to another server, or a proxy in front hides the real client (declare "
        "it with --trusted-proxy)."), evidence=base)]


def _tail_gap(target: str, path: PathEvidence, evidence: LogEvidence) -> list[Finding]:
    tail = next((g for g in path.gaps if g.open_end), None)
    expected = evidence.query.expected_interval
    if tail is None or not evidence.query.expect_postsales or _rare_by_nature(path) or tail.seconds < expected.total_seconds():
        return []
    usual = f" (usually one every {_hours(path.usual_interval)})" if path.usual_interval else ""
    return [make_finding("logs.no_postsale", target, detail=(
        f"No post-sale from PostFinance's published ranges reached {path.path.path} since "
        f"{tail.start:%Y-%m-%d %H:%M} UTC, {_hours(tail.seconds)} before the end of the log{usual}, although "
        f"{path.published.count} arrived before. Something changed then: a firewall or CDN rule, DNS, the "
        "certificate or the post-sale URL in the back office."),
        evidence={"last_postsale": hit_evidence(path.published.last), "silent_hours": round(tail.seconds / 3600, 2),
                  "usual_interval_seconds": path.usual_interval, "postsales_before": path.published.count})]


def _method(target: str, path: PathEvidence, evidence: LogEvidence) -> list[Finding]:
    expected = evidence.query.method
    if not expected:
        return []
    methods = {m: n for m, n in path.published.methods.items() if m and m != expected}
    if not methods:
        return []
    examples = path.published.method_examples
    detail = (f"{sum(methods.values())} post-sales from PostFinance arrived as "
              f"{', '.join(f'{n}× {m}' for m, n in methods.items())}, while the profile expects {expected}"
              + (f"; first {_when(examples[0])}" if examples else "") + ". The account's request method "
              f"(Configuration > Technical information > Transaction feedback) and the handler disagree: a "
              f"handler reading the {'body' if expected == 'POST' else 'query string'} sees no parameters.")
    return [make_finding("logs.method_mismatch", target, detail=detail, evidence={
        "expected": expected, "methods": methods, "examples": [hit_evidence(h) for h in examples]})]


def _legacy(target: str, path: PathEvidence) -> list[Finding]:
    legacy = path.legacy
    if not legacy.count:
        return []
    only = path.published.count == 0
    detail = (f"{legacy.count} requests to {path.path.path} came from the 2019 PostFinance senders "
              f"({_addresses(legacy)}; {_statuses(legacy.statuses)}), last {_when(legacy.last)}, "
              + ("and none from the currently published ranges. If the platform still sends from there, a firewall "
                 "admitting only the current ranges will block them; if these addresses are no longer "
                 "PostFinance's, they are strangers." if only
                 else f"besides {path.published.count} from the published ranges."))
    return [make_finding("logs.legacy_sources", target, severity=Severity.WARNING if only else Severity.INFO,
                         detail=detail, evidence={"count": legacy.count, "addresses": dict(legacy.addresses),
                                                  "statuses": {str(k): v for k, v in legacy.statuses.items()},
                                                  "first": hit_evidence(legacy.first), "last": hit_evidence(legacy.last)})]


def _foreign(target: str, path: PathEvidence, evidence: LogEvidence) -> list[Finding]:
    foreign = path.foreign
    if not foreign.count:
        return []
    posts = foreign.methods.get("POST", 0)
    ok = sum(n for s, n in foreign.statuses.items() if 200 <= s < 300)
    proxy = (f" {foreign.proxied_without_header} came through a trusted proxy without a client header."
             if foreign.proxied_without_header else "")
    only_gets = not posts and not foreign.claimed_count
    detail = (f"{foreign.count} requests to {path.path.path} came from addresses outside PostFinance's ranges "
              f"({_addresses(foreign)}; {', '.join(f'{n}× {m}' for m, n in foreign.methods.items())}; "
              f"{_statuses(foreign.statuses)}), first {_when(foreign.first)}, last {_when(foreign.last)}."
              + (f" {ok} of them were answered 2xx: if the handler does not verify SHASIGN, anyone can confirm "
                 "payments." if ok and posts else "")
              + _claims_text(path) + proxy
              + (" Only GET requests: often customers' browsers returning from the payment page when the accept "
                 "URL is the post-sale URL." if only_gets else ""))
    return [make_finding("logs.foreign_sources", target,
                         severity=Severity.INFO if only_gets else Severity.WARNING, detail=detail, evidence={
                             "count": foreign.count, "addresses": dict(foreign.addresses),
                             "methods": dict(foreign.methods),
                             "statuses": {str(k): v for k, v in foreign.statuses.items()},
                             "first": hit_evidence(foreign.first), "last": hit_evidence(foreign.last),
                             "claimed": foreign.claimed_count,
                             "claimed_examples": [hit_evidence(h) for h in foreign.claimed]})]


def _near_miss(requested: str, configured: Iterable[str]) -> str | None:
    for path in configured:
        if requested.rstrip("/").lower() == path.rstrip("/").lower() and requested != path:
            return path
    return None


def _other_paths(evidence: LogEvidence) -> list[Finding]:
    configured = [p.path.path for p in evidence.paths if not p.discovered]
    if not configured or not evidence.other_paths:
        return []
    rows = sorted(evidence.other_paths.items(), key=lambda kv: -kv[1].count)
    total = sum(g.count for _, g in rows)
    parts = []
    for requested, group in rows[:5]:
        miss = _near_miss(requested, configured)
        parts.append(f"{requested} ({group.count}: {_statuses(group.statuses)}; last {_when(group.last)})"
                     + (f" - differs from {miss} only in case or trailing slash" if miss else ""))
    detail = (f"PostFinance's addresses sent {total} requests to other paths than "
              f"{', '.join(configured)}: " + "; ".join(parts)
              + (f" and {len(rows) - 5} more paths" if len(rows) > 5 else "") + ". "
              "A post-sale URL in the back office (accepted, rejected or status change) points there.")
    return [make_finding("logs.other_paths", ", ".join(configured), detail=detail, evidence={
        "count": total, "paths": {k: {"count": g.count, "statuses": {str(s): n for s, n in g.statuses.items()},
                                      "last": hit_evidence(g.last)} for k, g in rows[:20]},
        "not_listed": evidence.other_paths_dropped})]


#: What to do about unreadable lines, per LineProblem.kind.
_UNREADABLE_FIX = {
    "truncated": ("The compressed file ends early: copy it again from the server (a copy taken while logrotate "
                  "was still compressing it, or a transfer cut short, is incomplete), or read it once its rotation "
                  "has finished."),
    "corrupt": "The compressed file is damaged: copy it again from the server (binary mode, complete).",
    "deadline": "Give the run more time (--max-runtime) or read fewer files.",
    "too_long": "",
    "binary": "",
}
_FORMAT_FIX = "Give the server's log format with --log-format (its log_format / LogFormat line)."


def _lines(count: int) -> str:
    return f"{count} line{'s' * (count != 1)}"


def _unreadable(evidence: LogEvidence) -> list[Finding]:
    if not evidence.unreadable:
        return []
    parts = []
    for cut in evidence.cut_files:
        after = f"after line {cut.line - 1}" if cut.line > 1 else "before its first line"
        parts.append(f"{cut.file} {'is truncated' if cut.kind == 'truncated' else 'is corrupt'} {after}: the rest "
                     "of the file cannot be read (post-sales logged there are not counted)"
                     + (f" ({cut.problem})" if cut.kind != "truncated" else ""))
    others = evidence.unreadable - len(evidence.cut_files)
    if others and evidence.unreadable_examples:
        first = evidence.unreadable_examples[0]
        last = evidence.last_unreadable or first
        parts.append(f"{_lines(others)} could not be read; first {first.where}: {first.problem}"
                     + (f"; last {last.where}: {last.problem}" if last != first else ""))
    kinds = [k for k in evidence.unreadable_kinds if evidence.unreadable_kinds[k]]
    fixes = [_UNREADABLE_FIX.get(k, _FORMAT_FIX) for k in kinds]
    fix = " ".join(dict.fromkeys(f for f in fixes if f)) or _FORMAT_FIX
    target = (evidence.cut_files[0] if evidence.cut_files else evidence.unreadable_examples[0]).file
    examples = (*evidence.cut_files, *evidence.unreadable_examples)
    return [make_finding("logs.unreadable", target, detail="; ".join(parts) + ".", fix=fix, evidence={
        "count": evidence.unreadable, "kinds": dict(evidence.unreadable_kinds),
        "first": examples[0].where, "last": (evidence.last_unreadable or examples[-1]).where,
        "truncated": [c.where for c in evidence.cut_files],
        "examples": [{"where": p.where, "problem": p.problem} for p in examples]})]


def answer_of(summaries: Sequence[LogsSummary], findings: Sequence[Finding]) -> str:
    """The one-sentence answer of `logs` when nothing is critical: what arrived, in the past tense."""
    paths = [p for s in summaries for p in s.evidence.paths]
    arrived = sum(p.published.count + p.legacy.count for p in paths)
    succeeded = sum(n for p in paths for group in (p.published, p.legacy)
                    for status, n in group.statuses.items() if 200 <= status < 300)
    warnings = sum(1 for f in findings if f.severity is Severity.WARNING)
    attention = f"; {warnings} warning{'s need' if warnings > 1 else ' needs'} attention" if warnings else ""
    if arrived:
        return (f"PostFinance's post-sales arrived: {arrived} from its addresses, {succeeded} answered 2xx"
                f"{attention}.")
    coverage = min((s.evidence.coverage for s in summaries), default=dt.timedelta(0))
    if any(coverage < s.evidence.query.expected_interval for s in summaries):
        return (f"No post-sale from PostFinance's addresses in the logs read ({_hours(coverage)} covered): too "
                f"short to conclude{attention}.")
    return f"No post-sale from PostFinance's addresses was recognised in the logs read{attention}."


@dataclass(frozen=True)
class LogsSummary:
    """The access-log evidence of one shop (or of `logs FILE...`) and its findings, for a Report."""

    evidence: LogEvidence
    findings: tuple[Finding, ...]
    shop: str = ""

    @property
    def verdict(self) -> Verdict:
        return verdict_of(self.findings)



def outside_window(evidence: LogEvidence) -> str | None:
    """Why --since/--until leave nothing to judge, or None. A window the logs' times do not reach is not
    "no post-sale arrived" (and never an OK): nothing was read for it, so the run cannot answer (exit 3,
    UNKNOWN for a monitoring system), like a check that could not run."""
    query = evidence.query
    if query.since is None and query.until is None:
        return None
    spans = _time_spans(evidence.files)
    wanted = _window_text(query.since, query.until)
    if not spans:
        return (f"--since/--until: the logs read record no time that could be read, so the window {wanted} "
                "cannot be applied")
    low = query.since or dt.datetime.min.replace(tzinfo=dt.UTC)
    high = query.until or dt.datetime.max.replace(tzinfo=dt.UTC)
    if any(first <= high and last >= low for first, last in spans):
        return None
    first = min(s for s, _ in spans)
    last = max(e for _, e in spans)
    return (f"--since/--until: no log line in the requested window {wanted}: the logs read cover "
            f"{first:%Y-%m-%d %H:%M} – {last:%Y-%m-%d %H:%M} UTC (give the files of that period, or another window)")


def _time_spans(files: Iterable[FileSummary]) -> list[tuple[dt.datetime, dt.datetime]]:
    """(first, last) time of each file that records a time (a file with one of them: that one twice)."""
    spans = []
    for f in files:
        first, last = f.first_time or f.last_time, f.last_time or f.first_time
        if first is not None and last is not None:
            spans.append((first, last))
    return spans


def _window_text(since: dt.datetime | None, until: dt.datetime | None) -> str:
    """The --since/--until window in words ("2026-11-30 08:00 UTC – 2026-11-30 09:00 UTC", "from ... on")."""
    start, end = (f"{t:%Y-%m-%d %H:%M} UTC" if t else "" for t in (since, until))
    if start and end:
        return f"{start} – {end}"
    return f"from {start} on" if start else f"up to {end}"


def check_logs(arguments: Sequence[str], platform: Platform, query: LogQuery, *, base_dir: str | None = None,
               shop: str = "", deadline: float | None = None) -> LogsSummary:
    """Read the logs and judge them: the whole `logs` evidence of one shop."""
    evidence = analyse(arguments, platform, query, base_dir=base_dir, shop=shop, deadline=deadline)
    outside = outside_window(evidence)
    if outside:
        raise UsageError(outside)
    findings = judge(evidence, platform)
    if shop:
        findings = [replace(f, shop=shop) for f in findings]
    return LogsSummary(evidence, tuple(findings), shop)
