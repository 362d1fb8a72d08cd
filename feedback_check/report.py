"""The report model: every finding of a run, per-target and per-shop summaries, and the verdict.

A `Report` is what every reporter formats. Probe and firewall results arrive as summaries holding typed,
frozen results (`FirewallSummary.analysis`, `TargetSummary.probe`); reporters read their attributes and never reach into the probe or firewall internals. Only
`reporters/json.py` turns the model into the `--format json` document (docs/report.schema.json).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from feedback_check.findings import Finding, Severity, Verdict, ranked, verdict_of
from feedback_check.redact import Masker

if TYPE_CHECKING:
    from feedback_check.firewall.verdict import FirewallVerdict
    from feedback_check.probe.result import ProbeResult

PHASES = ("dns", "connect", "tls", "ttfb", "total")
#: Field metadata key: the field's texts are all in the named sibling field too (the secret scan reads those).
#: The checks of one probe, in the order they run; `TargetSummary.checks` names those that ran (a later one
#: needs the earlier ones: no TLS without a connection), `probe_check_of` the one that judges a code.
PROBE_CHECKS = ("url", "dns", "connect", "tls", "http", "signature", "forgery")
_CHECK_OF = {"url": "url", "dns": "dns", "connect": "connect", "tls": "tls", "http": "http", "handler": "http",
             "signature.weak_algorithm": "url", "signature.rejected": "signature",
             "signature.forgery_accepted": "forgery"}


def probe_check_of(code: str) -> str | None:
    """The probe check that judges finding `code` (None: not a probe check's code)."""
    return _CHECK_OF.get(code) or _CHECK_OF.get(code.split(".", 1)[0])


@dataclass(frozen=True)
class TargetSummary:
    """One post-sale URL of one shop, probed."""

    shop: str
    role: str                              # accepted | rejected | status_change | probe
    url: str                               # as configured
    method: str
    findings: tuple[Finding, ...]
    timings: Mapping[str, float | None] = field(default_factory=dict)   # PHASES, seconds
    cert_not_after: dt.datetime | None = None
    # PROBE_CHECKS that ran (None: not recorded, count every check as run). A check that did not run -
    # switched off (--no-forgery-check) or not reached (no answer, no DNS) - judged none of its codes.
    checks: tuple[str, ...] | None = None

    def judged(self, code: str) -> bool:
        """Whether this probe ran the check that would have found `code` (so its absence means something)."""
        check = probe_check_of(code)
        return self.checks is None or check is None or check in self.checks
    #: Why the URL could not be checked from this machine (a resolver it cannot reach): verdict UNKNOWN.
    unknown: str | None = None
    #: The probe's typed phase results (feedback_check.probe.result); None for a URL built without a probe.
    probe: ProbeResult | None = field(default=None, repr=False, compare=False)

    @property
    def verdict(self) -> Verdict:
        return Verdict.UNKNOWN if self.unknown else verdict_of(self.findings)

    @property
    def cert_days_left(self) -> float | None:
        if self.cert_not_after is None:
            return None
        return (self.cert_not_after - dt.datetime.now(dt.UTC)).total_seconds() / 86400



def _no_analysis() -> FirewallVerdict:
    """An empty analysis (the firewall model is imported only by runs that analyse a firewall)."""
    from feedback_check.firewall.verdict import FirewallVerdict

    return FirewallVerdict()


@dataclass(frozen=True)
class FirewallSummary:
    """The firewall analysis of one shop (or of `firewall FILE...`)."""

    shop: str
    port: int
    findings: tuple[Finding, ...]
    published_addresses: int               # how many published addresses were checked
    blocked_addresses: int                 # how many of them cannot reach the port
    uncertain: bool = False                # an unsupported match or unparsed line could decide
    analysis: FirewallVerdict = field(default_factory=_no_analysis, repr=False)   # layers, ranges, fix

    @property
    def verdict(self) -> Verdict:
        return verdict_of(self.findings)


@dataclass(frozen=True)
class ShopSummary:
    name: str
    findings: tuple[Finding, ...]
    error: str | None = None               # the shop could not be checked (deadline, internal error)

    @property
    def verdict(self) -> Verdict:
        return Verdict.UNKNOWN if self.error else verdict_of(self.findings)


@dataclass(frozen=True)
class Report:
    """Everything one run found, ready for a reporter."""

    command: str
    findings: tuple[Finding, ...]
    targets: tuple[TargetSummary, ...] = ()
    firewalls: tuple[FirewallSummary, ...] = ()
    shops: tuple[ShopSummary, ...] = ()
    platform: Mapping[str, Any] = field(default_factory=dict)
    assumptions: tuple[str, ...] = ()       # texts of the assumptions that decided a verdict
    notes: tuple[str, ...] = ()             # e.g. "the probe left from this machine, not from PostFinance"
    lab: bool = False
    started: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    duration_seconds: float = 0.0
    changes: Mapping[str, Any] | None = None   # --state transitions
    logs: tuple[Any, ...] = ()                 # logs.judgement.LogsSummary per shop / `logs` run

    def __repr__(self) -> str:
        # Short on purpose: the generated repr of a 5,000-shop report is megabytes (and CPython 3.11's
        # asyncio.run builds it when the run ends, python/cpython#112559).
        return (f"Report(command={self.command!r}, findings={len(self.findings)}, targets={len(self.targets)}, "
                f"firewalls={len(self.firewalls)}, shops={len(self.shops)})")

    @property
    def verdict(self) -> Verdict:
        if any(s.error for s in self.shops):
            worst = verdict_of(self.findings)
            return worst if worst is Verdict.CRITICAL else Verdict.UNKNOWN
        return verdict_of(self.findings)

    def answer(self) -> str:
        """The one-sentence answer, in PostFinance's terms."""
        critical = [f for f in ranked(self.findings, lab=self.lab) if f.severity is Severity.CRITICAL]
        if critical:
            first = critical[0]
            more = f" (and {len(critical) - 1} more critical finding{'s' * (len(critical) > 2)})" \
                if len(critical) > 1 else ""
            where = f" at {first.target}" if first.target else ""
            return f"PostFinance would report a process error because: {_in_sentence(first.title)}{where}{more}."
        if self.command == "logs" and self.logs:
            from feedback_check.logs.judgement import answer_of
            return answer_of(self.logs, self.findings)
        if self.verdict is Verdict.UNKNOWN:
            return "The check could not complete: " + "; ".join(s.error or "" for s in self.shops if s.error) + "."
        warnings = [f for f in self.findings if f.severity is Severity.WARNING]
        if warnings:
            return (f"PostFinance's post-sale requests would get through, but {len(warnings)} "
                    f"{'warnings need' if len(warnings) > 1 else 'warning needs'} attention.")
        return "PostFinance's post-sale requests would get through: no problem found."


def general_findings(report: Report) -> list[Finding]:
    """Findings of the run that belong to no URL and no firewall (profile, range list, ...)."""
    attached: set[tuple[Any, ...]] = set()
    holders: list[TargetSummary | FirewallSummary] = [*report.targets, *report.firewalls]
    for holder in holders:
        attached.update(finding_key(f) for f in holder.findings)
    return [f for f in report.findings if finding_key(f) not in attached]


def finding_key(f: Finding) -> tuple[Any, ...]:
    """What makes two findings the same one in different places of a report (a shop's and the run's)."""
    return (f.code, f.severity, f.target, f.shop, f.role, f.title, f.detail)




def redact_report(report: Report, secrets: Iterable[str]) -> Report:
    """`report` with every spelling of every secret in any text masked, by the one policy of
    `feedback_check.redact` (the very report when none holds one). The probe masks what a server sends
    where it is read (probe/http.py); this is the safety net for every other way a text reaches a report
    (a certificate's names, a DNS answer, an access-log line, a value of the profile) before it goes to
    mail, files and CI artifacts: one walk, each distinct text scanned once."""
    masked: Report = Masker.from_secrets(secrets).mask_data(report)
    return masked


def _in_sentence(title: str) -> str:
    """A title continuing a sentence: only a plain capitalised first word is lowered, never a name or
    acronym (`Published PostFinance range blocked`, `TLS handshake fails`)."""
    first = title.split(" ", 1)[0]
    if first[:1].isupper() and first[1:] == first[1:].lower():
        return title[0].lower() + title[1:]
    return title


def assumptions_used(findings: Iterable[Finding], platform_assumptions: Mapping[str, str]) -> tuple[str, ...]:
    """Texts of the assumptions named by findings (evidence key `assumption`) that counted towards the
    verdict: an info finding (e.g. lowered by --lab) decided nothing."""
    keys: list[str] = []
    for f in findings:
        if f.severity is Severity.INFO:
            continue
        key = f.evidence.get("assumption")
        if key and key not in keys:
            keys.append(key)
    return tuple(platform_assumptions[k] for k in keys if k in platform_assumptions)
