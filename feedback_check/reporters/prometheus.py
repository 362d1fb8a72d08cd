"""`--format prometheus`: the text exposition format, for node_exporter's textfile collector and for
`feedback-check serve` (the exporter answers `/probe` with the same families: one model for both).

Write it with `--output /var/lib/prometheus/node-exporter/feedback_check.prom` (Debian's textfile
directory; the CLI writes atomically: temporary file, then rename). Every family has HELP and TYPE
lines; label values are escaped as the format requires (backslash, double quote, line feed). A run
that fails before it has a report (bad profile, missing firewall file) still replaces the file, with
`render_failure`: `feedback_check_up{shop="",reason="..."} 0`, `feedback_check_success{shop=""} 0` and
`feedback_check_run_verdict 3`.

Verdicts are the documented enum of the exit codes: 0 OK, 1 WARNING, 2 CRITICAL (a post-sale would
fail), 3 UNKNOWN (could not be checked).

Metrics (all gauges):

- `feedback_check_success{shop}`: 1 when PostFinance's post-sale would get through (verdict OK or
  WARNING), 0 when it would fail or the shop could not be checked - blackbox_exporter's
  `probe_success`;
- `feedback_check_up{shop,reason}`: 1 when the shop was checked, 0 when it could not be, with the reason
  (run deadline, internal error; a whole failed run has `shop=""`);
- `feedback_check_run_verdict`, `feedback_check_shop_verdict{shop}`, `feedback_check_verdict{shop,role,url}`
  and `feedback_check_firewall_verdict{shop,port}`: the verdict enum;
- `feedback_check_phase_seconds{shop,role,url,phase}`: dns, connect, tls, ttfb, total;
- per resolved address: `feedback_check_http_status_code{shop,role,url,address}` (0: no answer),
  `feedback_check_tls_version_info{shop,role,url,address,version}` (1) and
  `feedback_check_certificate_expiry_timestamp_seconds{shop,role,url,address}` (the leaf's notAfter);
- `feedback_check_findings{shop,role,url,code,severity}`: how many findings of that code, warning and
  critical only (info findings such as `http.ok` are not problems; profile-wide findings have empty
  shop, role and url);
- `feedback_check_published_addresses{shop,port}` and `feedback_check_published_addresses_blocked{shop,port}`;
- `feedback_check_last_run_timestamp_seconds`, `feedback_check_run_duration_seconds`,
  `feedback_check_lab_mode`, `feedback_check_build_info{version}`.

From access logs (`logs`, and `check` with `logs:` in the profile), per shop and feedback path (`path`:
the URL or path as configured, the findings' target; their findings count with `role="logs"`). Counts
are of the period the logs read covered, so gauges, not counters (a new run reads another period):

- `feedback_check_log_postsales{shop,path,class}`: post-sales from PostFinance's published ranges per
  status class (`2xx`, `3xx`, `4xx`, `5xx`);
- `feedback_check_log_legacy_requests{shop,path}` (the 2019 senders) and
  `feedback_check_log_foreign_requests{shop,path}` (other addresses);
- `feedback_check_log_last_success_timestamp_seconds{shop,path}` and
  `feedback_check_log_last_failure_timestamp_seconds{shop,path}`: the latest logged post-sale answered 2xx
  / with an error (alert on `time() - ... > 86400`);
- `feedback_check_log_answer_seconds{shop,path,quantile}` (a summary: quantiles 0.5, 0.95 and 1 = the
  slowest, `_sum`, `_count`), when the log format records answer times;
- `feedback_check_log_lines{shop}`, `feedback_check_log_unreadable_lines{shop}` and
  `feedback_check_log_coverage_seconds{shop}` (how long a period the lines read cover).
"""

from __future__ import annotations

import datetime as dt
import math
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from feedback_check import __version__
from feedback_check.findings import Finding, Severity, Verdict
from feedback_check.report import PHASES, Report, TargetSummary, general_findings

if TYPE_CHECKING:
    from feedback_check.probe.result import ProbeResult

PREFIX = "feedback_check"
#: Label values longer than this are cut (a URL is rarely longer; the series stays readable).
MAX_LABEL_CHARS = 1024
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]")


@dataclass
class _Family:
    name: str
    help: str
    samples: dict[tuple[tuple[str, str], ...], float] = field(default_factory=dict)
    type: str = "gauge"
    #: a summary's `_sum` / `_count` samples, by suffix
    suffixed: dict[str, dict[tuple[tuple[str, str], ...], float]] = field(default_factory=dict)

    def set(self, value: float, **labels: str) -> None:
        key = tuple(labels.items())
        # Two targets with the same labels (a profile listing one URL twice) keep the worse value.
        self.samples[key] = max(value, self.samples.get(key, -math.inf))

    def add(self, value: float, **labels: str) -> None:
        key = tuple(labels.items())
        self.samples[key] = self.samples.get(key, 0.0) + value


def escape_label_value(value: str) -> str:
    """Escape a label value for the text format: backslash, double quote and line feed; other control
    characters (which a hostile server could have put into a URL or shop name) become visible \\xNN."""
    value = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", value[:MAX_LABEL_CHARS])
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def escape_help(text: str) -> str:
    """Escape HELP text: backslash and line feed."""
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def format_value(value: float) -> str:
    """A sample value: integers without a fraction, others in Python's shortest round-trip form."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


def render(report: Report, *, color: bool = False) -> str:
    """The exposition text (colour never applies)."""
    return exposition(_families(report))


def render_failure(reason: str, *, now: float | None = None) -> str:
    """The exposition text of a run that could not check anything (see the module docstring)."""
    f = _empty_families()
    f["build_info"].set(1, version=__version__)
    f["up"].set(0, shop="", reason=reason[:MAX_LABEL_CHARS])
    f["success"].set(0, shop="")        # could not be checked: not known to get through
    f["run_verdict"].set(Verdict.UNKNOWN.value)
    f["last_run_timestamp_seconds"].set(round(time.time() if now is None else now, 3))
    return exposition(list(f.values()))


def exposition(families: Iterable[_Family]) -> str:
    lines: list[str] = []
    for family in families:
        if not family.samples:
            continue
        lines.append(f"# HELP {family.name} {escape_help(family.help)}")
        lines.append(f"# TYPE {family.name} {family.type}")
        for labels, value in family.samples.items():
            lines.append(f"{family.name}{_labels(labels)} {format_value(value)}")
        for suffix, samples in family.suffixed.items():
            lines += [f"{family.name}{suffix}{_labels(labels)} {format_value(value)}" for labels, value in samples.items()]
    return "\n".join(lines) + "\n"


def _labels(labels: Iterable[tuple[str, str]]) -> str:
    pairs = [f'{name}="{escape_label_value(value)}"' for name, value in labels]
    return "{" + ",".join(pairs) + "}" if pairs else ""


FAMILIES: tuple[tuple[str, str], ...] = (
    ("build_info", "feedback-check version that wrote this file."),
    ("success", ("1 when PostFinance's post-sale would get through (verdict OK or WARNING), 0 when it would "
                "fail or could not be checked.")),
    ("up", ("1 when the shop was checked, 0 when it could not be (reason: run deadline, internal error, "
           "bad profile).")),
    ("run_verdict", "Verdict of the whole run: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN."),
    ("shop_verdict", "Verdict per shop: 0 OK, 1 WARNING, 2 CRITICAL (a post-sale would fail), 3 UNKNOWN."),
    ("verdict", "Verdict per post-sale URL: 0 OK, 1 WARNING, 2 CRITICAL (a post-sale would fail), 3 UNKNOWN."),
    ("phase_seconds", "Seconds each phase of the simulated post-sale request took."),
    ("http_status_code", "HTTP status code of the simulated post-sale per resolved address (0: no answer)."),
    ("tls_version_info", "TLS version negotiated per resolved address."),
    ("certificate_expiry_timestamp_seconds", "When the certificate a resolved address serves expires (Unix time)."),
    ("findings", ("Warning and critical findings of the last run by code and severity (empty shop/role/url: "
                 "profile-wide).")),
    ("firewall_verdict", "Verdict of the firewall analysis: 0 OK, 1 WARNING, 2 CRITICAL."),
    ("published_addresses", "Published PostFinance source addresses checked against the firewall layers."),
    ("published_addresses_blocked", "Published PostFinance source addresses the firewall layers block."),
    ("lab_mode", "1 when the run used --lab (private addresses and other ports reported as info)."),
    ("run_duration_seconds", "Seconds the whole run took."),
    ("last_run_timestamp_seconds", "When the run ended (Unix time)."),
)


def _empty_families() -> dict[str, _Family]:
    return {name: _Family(f"{PREFIX}_{name}", text) for name, text in FAMILIES}


def success_of(verdict: Verdict) -> int:
    """blackbox's probe_success: would PostFinance's post-sale get through?"""
    return 1 if verdict in (Verdict.OK, Verdict.WARNING) else 0


def _families(report: Report) -> list[_Family]:
    f = _empty_families()
    f["build_info"].set(1, version=__version__)
    _shop_series(f, report)
    f["run_verdict"].set(report.verdict.value)
    for t in report.targets:
        _target_series(f, t)
    for fw in report.firewalls:
        fw_where = {"shop": fw.shop, "port": str(fw.port)}
        f["firewall_verdict"].set(fw.verdict.value, **fw_where)
        f["published_addresses"].set(fw.published_addresses, **fw_where)
        f["published_addresses_blocked"].set(fw.blocked_addresses, **fw_where)
        _count_findings(f["findings"], fw.findings, fw.shop, "firewall", "")
    logged = {_finding_key(finding) for summary in report.logs for finding in summary.findings}
    _count_findings(f["findings"], [g for g in general_findings(report) if _finding_key(g) not in logged],
                    "", "", "")
    for summary in report.logs:
        for finding in summary.findings:
            _count_findings(f["findings"], (finding,), finding.shop or summary.shop, "logs", finding.target)

    f["lab_mode"].set(1 if report.lab else 0)
    f["run_duration_seconds"].set(round(report.duration_seconds, 6))
    f["last_run_timestamp_seconds"].set(round(report.started.timestamp() + report.duration_seconds, 3))
    return [*f.values(), *_logs_families(report)]


def _shop_series(f: dict[str, _Family], report: Report) -> None:
    """up, success and verdict per shop: the shop's own, or (a run without shop summaries, e.g. `logs`
    or `firewall`) the worst of its URLs, firewalls and access logs."""
    shops: dict[str, tuple[Verdict, str]] = {}
    for shop in report.shops:
        shops[shop.name] = (shop.verdict, shop.error or "")
    named = [t.shop for t in report.targets] + [fw.shop for fw in report.firewalls] + [s.shop for s in report.logs]
    for shop_name in named:
        if shop_name not in shops:
            verdicts = [*(t.verdict for t in report.targets if t.shop == shop_name),
                        *(fw.verdict for fw in report.firewalls if fw.shop == shop_name),
                        *(s.verdict for s in report.logs if s.shop == shop_name)]
            shops[shop_name] = (max(verdicts, key=lambda v: v.value), "")
    for name, (verdict, error) in shops.items():
        # An empty label is no label in Prometheus: `reason` only where there is one.
        f["up"].set(0 if error else 1, shop=name, **({"reason": error[:MAX_LABEL_CHARS]} if error else {}))
        f["success"].set(success_of(verdict), shop=name)
        f["shop_verdict"].set(verdict.value, shop=name)


def _target_series(f: dict[str, _Family], t: TargetSummary) -> None:
    where = {"shop": t.shop, "role": t.role, "url": t.url}
    f["verdict"].set(t.verdict.value, **where)
    for phase in PHASES:
        value = t.timings.get(phase) if t.timings else None
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            f["phase_seconds"].set(float(value), **where, phase=phase)
    _address_series(f, t.probe, where, t.cert_not_after)
    _count_findings(f["findings"], t.findings, t.shop, t.role, t.url)


def _address_series(f: dict[str, _Family], result: ProbeResult | None, where: dict[str, str],
                    cert_not_after: dt.datetime | None) -> None:
    """HTTP status, TLS version and certificate expiry per resolved address, from the probe's result."""
    expiry_seen = False
    for entry in result.addresses if result is not None else ():
        if not entry.address:
            continue
        at = {**where, "address": entry.address}
        code = entry.http.status_code if entry.http is not None else None
        f["http_status_code"].set(code or 0, **at)
        tls = entry.tls
        if tls is None:
            continue
        if tls.version:
            f["tls_version_info"].set(1, **at, version=tls.version)
        if tls.leaf is not None:
            f["certificate_expiry_timestamp_seconds"].set(round(tls.leaf.not_after.timestamp()), **at)
            expiry_seen = True
    if not expiry_seen and cert_not_after is not None:
        f["certificate_expiry_timestamp_seconds"].set(round(cert_not_after.timestamp()), **where, address="")


def _count_findings(family: _Family, findings: Iterable[Finding], shop: str, role: str, url: str) -> None:
    for finding in findings:
        if finding.severity is Severity.INFO:
            continue
        family.add(1, shop=shop, role=role, url=url, code=finding.code, severity=finding.severity.value)



def _finding_key(finding: Finding) -> tuple[Any, ...]:
    return (finding.code, finding.severity, finding.target, finding.shop, finding.detail)


LOG_FAMILIES: tuple[tuple[str, str], ...] = (
    ("log_postsales", "Post-sales from PostFinance's published ranges in the access logs read, by status class."),
    ("log_legacy_requests", "Requests from the 2019 PostFinance senders to the feedback path in the logs read."),
    ("log_foreign_requests", "Requests from outside PostFinance's ranges to the feedback path in the logs read."),
    ("log_last_success_timestamp_seconds", "When the latest logged post-sale answered 2xx arrived (Unix time)."),
    ("log_last_failure_timestamp_seconds", "When the latest logged post-sale answered with an error arrived (Unix time)."),
    ("log_answer_seconds", "Seconds the shop took to answer PostFinance's post-sales, as the access log records them."),
    ("log_lines", "Lines of the access logs read."),
    ("log_unreadable_lines", "Access-log lines that could not be read (another format, binary, a truncated file)."),
    ("log_coverage_seconds", "How long a period the access-log lines read cover."),
)


def _logs_families(report: Report) -> list[_Family]:
    """The access-log series (see the module docstring)."""
    if not report.logs:
        return []
    f = {name: _Family(f"{PREFIX}_{name}", text) for name, text in LOG_FAMILIES}
    f["log_answer_seconds"].type = "summary"
    answers = f["log_answer_seconds"].suffixed
    for summary in report.logs:
        evidence = summary.evidence
        shop = summary.shop
        f["log_lines"].set(evidence.lines, shop=shop)
        f["log_unreadable_lines"].set(evidence.unreadable, shop=shop)
        f["log_coverage_seconds"].set(evidence.coverage.total_seconds(), shop=shop)
        for path in evidence.paths:
            at = {"shop": shop, "path": path.path.label or path.path.path}
            group = path.published
            for status_class in ("2xx", "3xx", "4xx", "5xx"):
                f["log_postsales"].set(group.classes.get(status_class, 0), **at, **{"class": status_class})
            other = group.count - sum(group.classes.get(c, 0) for c in ("2xx", "3xx", "4xx", "5xx"))
            if other:                                   # 1xx, nginx 0 / 999: not a valid answer
                f["log_postsales"].set(other, **at, **{"class": "other"})
            f["log_legacy_requests"].set(path.legacy.count, **at)
            f["log_foreign_requests"].set(path.foreign.count, **at)
            for name, hit in (("log_last_success_timestamp_seconds", group.last_success),
                              ("log_last_failure_timestamp_seconds", group.last_failure)):
                if hit is not None and hit.time is not None:
                    f[name].set(round(hit.time.timestamp(), 3), **at)
            timing = path.timing
            if timing is not None:
                for quantile, value in (("0.5", timing.median), ("0.95", timing.p95), ("1", timing.maximum)):
                    f["log_answer_seconds"].set(value, **at, quantile=quantile)
                key = tuple(at.items())
                answers.setdefault("_sum", {})[key] = round(timing.total, 6)
                answers.setdefault("_count", {})[key] = timing.count
    return list(f.values())
