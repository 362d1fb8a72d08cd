"""`--format prometheus`: text exposition format for node_exporter's textfile collector.

Write it with `--output /var/lib/node_exporter/textfile_collector/feedback_check.prom` (the CLI writes
atomically: temporary file, then rename). Every family has HELP and TYPE lines; every series of a URL
carries the labels `shop`, `role` and `url` (firewall series: `shop`, `port`). Label values are escaped
as the format requires (backslash, double quote, line feed).

Metrics (all gauges):

- `feedback_check_up{shop}`: 1 when the shop was checked, 0 when it could not be (run deadline,
  internal error);
- `feedback_check_run_verdict`, `feedback_check_verdict{shop,role,url}` and
  `feedback_check_firewall_verdict{shop,port}`: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (the exit codes);
- `feedback_check_phase_seconds{shop,role,url,phase}`: dns, connect, tls, ttfb, total;
- `feedback_check_certificate_expiry_timestamp_seconds{shop,role,url}`;
- `feedback_check_findings{shop,role,url,code,severity}`: how many findings of that code (profile-wide
  findings have empty shop, role and url);
- `feedback_check_published_addresses{shop,port}` and `feedback_check_published_addresses_blocked{shop,port}`;
- `feedback_check_last_run_timestamp_seconds`, `feedback_check_run_duration_seconds`,
  `feedback_check_lab_mode`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from feedback_check import __version__
from feedback_check.diagnosis import PHASES, Report
from feedback_check.findings import Finding
from feedback_check.reporters.text import general_findings

PREFIX = "feedback_check"
#: Label values longer than this are cut (a URL is rarely longer; the series stays readable).
MAX_LABEL_CHARS = 1024
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]")


@dataclass
class _Family:
    name: str
    help: str
    samples: dict[tuple[tuple[str, str], ...], float] = field(default_factory=dict)

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
    families = _families(report)
    lines: list[str] = []
    for family in families:
        if not family.samples:
            continue
        lines.append(f"# HELP {family.name} {escape_help(family.help)}")
        lines.append(f"# TYPE {family.name} gauge")
        for labels, value in family.samples.items():
            lines.append(f"{family.name}{_labels(labels)} {format_value(value)}")
    return "\n".join(lines) + "\n"


def _labels(labels: Iterable[tuple[str, str]]) -> str:
    pairs = [f'{name}="{escape_label_value(value)}"' for name, value in labels]
    return "{" + ",".join(pairs) + "}" if pairs else ""


def _families(report: Report) -> list[_Family]:
    f = {name: _Family(f"{PREFIX}_{name}", text) for name, text in (
        ("build_info", "feedback-check version that wrote this file."),
        ("up", "1 when the shop was checked, 0 when it could not be (run deadline, internal error)."),
        ("run_verdict", "Verdict of the whole run: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN."),
        ("verdict", "Verdict per post-sale URL: 0 OK, 1 WARNING, 2 CRITICAL (a post-sale would fail), 3 UNKNOWN."),
        ("phase_seconds", "Seconds each phase of the simulated post-sale request took."),
        ("certificate_expiry_timestamp_seconds", "When the post-sale URL's certificate expires (Unix time)."),
        ("findings", "Findings of the last run by code and severity (empty shop/role/url: profile-wide)."),
        ("firewall_verdict", "Verdict of the firewall analysis: 0 OK, 1 WARNING, 2 CRITICAL."),
        ("published_addresses", "Published PostFinance source addresses checked against the firewall layers."),
        ("published_addresses_blocked", "Published PostFinance source addresses the firewall layers block."),
        ("lab_mode", "1 when the run used --lab (private addresses and other ports reported as info)."),
        ("run_duration_seconds", "Seconds the whole run took."),
        ("last_run_timestamp_seconds", "When the run ended (Unix time)."),
    )}
    f["build_info"].set(1, version=__version__)

    shops: dict[str, bool] = {}
    for shop in report.shops:
        shops[shop.name] = shops.get(shop.name, True) and not shop.error
    for shop_name in [t.shop for t in report.targets] + [fw.shop for fw in report.firewalls]:
        shops.setdefault(shop_name, True)
    for name, up in shops.items():
        f["up"].set(1 if up else 0, shop=name)

    f["run_verdict"].set(report.verdict.value)
    for t in report.targets:
        where = {"shop": t.shop, "role": t.role, "url": t.url}
        f["verdict"].set(t.verdict.value, **where)
        for phase in PHASES:
            value = t.timings.get(phase) if t.timings else None
            if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
                f["phase_seconds"].set(float(value), **where, phase=phase)
        if t.cert_not_after is not None:
            f["certificate_expiry_timestamp_seconds"].set(round(t.cert_not_after.timestamp()), **where)
        _count_findings(f["findings"], t.findings, t.shop, t.role, t.url)
    for fw in report.firewalls:
        where = {"shop": fw.shop, "port": str(fw.port)}
        f["firewall_verdict"].set(fw.verdict.value, **where)
        f["published_addresses"].set(fw.published_addresses, **where)
        f["published_addresses_blocked"].set(fw.blocked_addresses, **where)
        _count_findings(f["findings"], fw.findings, fw.shop, "firewall", "")
    _count_findings(f["findings"], general_findings(report), "", "", "")

    f["lab_mode"].set(1 if report.lab else 0)
    f["run_duration_seconds"].set(round(report.duration_seconds, 6))
    f["last_run_timestamp_seconds"].set(round(report.started.timestamp() + report.duration_seconds, 3))
    return list(f.values())


def _count_findings(family: _Family, findings: Iterable[Finding], shop: str, role: str, url: str) -> None:
    for finding in findings:
        family.add(1, shop=shop, role=role, url=url, code=finding.code, severity=finding.severity.value)

