"""`--format nagios`: a Nagios / Icinga plugin answer.

The first line is ``FEEDBACK-CHECK <VERDICT> - <one-line reason> | <perfdata>``; the long output (one line
per URL or firewall that is not OK, shops that could not be checked, findings of the profile) follows.
The process exit code is the verdict (the CLI returns it).

Performance data follows the Nagios plugin guidelines, ``'label'=value[UOM];[warn];[crit];[min];[max]``:

- ``total``, ``dns``, ``connect``, ``tls``, ``ttfb``: seconds (the slowest URL of the run), warning at the
  platform's slow threshold and critical at its budget when the report carries them;
- ``cert_days_left``: the fewest days any certificate of the run has left (``21:`` / ``7:`` ranges: alert
  below the platform's warning / critical windows);
- ``blocked_addresses``: published PostFinance addresses the firewall layers block (critical above 0);
- ``urls_critical`` / ``urls_warning`` / ``urls_ok``: counts;
- with a few URLs (at most `PER_TARGET_LIMIT`) the same phase, certificate and firewall values per
  URL, labelled ``<shop>/<role> <name>``; above that only the aggregates, so the line stays within
  what Nagios stores.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from feedback_check.diagnosis import PHASES, Report
from feedback_check.findings import Finding, Severity, Verdict, ranked
from feedback_check.reporters.text import clean, general_findings, main_finding, target_label

PLUGIN = "FEEDBACK-CHECK"
#: Up to this many URLs, per-URL performance data is added to the aggregates.
PER_TARGET_LIMIT = 10
#: How long the one-line reason may be.
REASON_CHARS = 200
_LABEL_BAD = re.compile(r"[=']")


def render(report: Report, *, color: bool = False) -> str:
    """The plugin output: status line with performance data, then the long output."""
    verdict = report.verdict
    status = f"{PLUGIN} {verdict.name} - {_plain(_reason(report), REASON_CHARS)}"
    perfdata = " ".join(_perfdata(report))
    first = f"{status} | {perfdata}" if perfdata else status
    return "\n".join([first, *_long_output(report)]) + "\n"


def _plain(text: str, limit: int = 500) -> str:
    """Text for the plugin output: one line, printable, and never a `|` (it starts the performance data)."""
    return clean(text, limit).replace("|", "/")


def _reason(report: Report) -> str:
    targets = report.targets
    failing = [t for t in targets if t.verdict is not Verdict.OK]
    blocked = sum(fw.blocked_addresses for fw in report.firewalls)
    errors = [s for s in report.shops if s.error]
    if len(targets) <= 1 and not errors:
        return report.answer()
    parts: list[str] = []
    worst = sorted(failing, key=lambda t: -t.verdict.value)
    if worst:
        main = main_finding(worst[0].findings)
        what = f"{main.title}" if main else worst[0].verdict.name.lower()
        parts.append(f"{len(failing)} of {len(targets)} URLs failing, first {target_label(worst[0])}: {what}")
    elif targets:
        parts.append(f"all {len(targets)} URLs OK")
    if blocked:
        parts.append(f"{blocked} published addresses blocked")
    if errors:
        parts.append(f"{len(errors)} shop{'s' * (len(errors) > 1)} not checked ({errors[0].name}: {errors[0].error})")
    rest = [f for f in general_findings(report) if f.severity is not Severity.INFO]
    if rest and not failing:
        parts.append(f"{rest[0].title}")
    return "; ".join(parts) if parts else report.answer()


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


def _perfdata(report: Report) -> list[str]:
    slow = _threshold(_platform_number(report, "slow_seconds"))
    budget = _threshold(_platform_number(report, "budget_seconds"))
    cert_warn = _threshold(_platform_number(report, "cert_warning_days"), below=True)
    cert_crit = _threshold(_platform_number(report, "cert_critical_days"), below=True)
    items: list[str] = []
    targets = report.targets
    for phase in PHASES:
        values = [v for v in (_seconds(t.timings.get(phase)) for t in targets) if v is not None]
        if values:
            warn, crit = (slow, budget) if phase == "total" else ("", "")
            items.append(_item(phase, max(values), "s", warn, crit, "0"))
    days = [t.cert_days_left for t in targets if t.cert_days_left is not None]
    if days:
        items.append(_item("cert_days_left", round(min(days), 2), "", cert_warn, cert_crit))
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
            for phase in PHASES:
                value = _seconds(t.timings.get(phase))
                if value is not None:
                    warn, crit = (slow, budget) if phase == "total" else ("", "")
                    items.append(_item(f"{prefix} {phase}", value, "s", warn, crit, "0"))
            if t.cert_days_left is not None:
                items.append(_item(f"{prefix} cert_days_left", round(t.cert_days_left, 2), "", cert_warn, cert_crit))
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
        lines.append(_plain(f"{fw.verdict.name} {label} port {fw.port}: {fw.blocked_addresses} of "
                            f"{fw.published_addresses} published addresses blocked"))
        lines += _finding_lines(fw.findings)
    general = general_findings(report)
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

