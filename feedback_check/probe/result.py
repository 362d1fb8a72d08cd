"""The typed result of one probe (feedback_check.probe.probe.probe_url): every phase's result, as measured.

`ProbeResult` is what `report.TargetSummary.probe` holds; `reporters.json.probe_details` (one function per phase
result there) turns it into the JSON-ready mapping of the `--format json` document (keys `url_check`, `request`,
`dns`, `loop_lag`, `addresses`, `follow_ups`, each present once its phase ran).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from feedback_check.findings import Finding, Severity
from feedback_check.payload import SimulatedPostSale
from feedback_check.probe.dns import Resolution
from feedback_check.probe.http import HttpResult, HttpStatus
from feedback_check.probe.tcp import ConnectResult
from feedback_check.probe.tls import TlsResult
from feedback_check.probe.url import UrlCheck


@dataclass(frozen=True, slots=True)
class AddressProbe:
    """The phases on one resolved address."""

    address: str
    connect: ConnectResult
    tls: TlsResult | None = None
    http: HttpResult | None = None
    findings: tuple[Finding, ...] = ()
    #: http.slow / http.timeout the event loop's lag explains, so not reported (see lag_meter)
    not_reported: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """No critical finding on this address: the platform would get through here."""
        return not any(f.severity is Severity.CRITICAL for f in self.findings)

    @property
    def is_ipv6(self) -> bool:
        return ":" in self.address


@dataclass(frozen=True, slots=True)
class FollowUpRequest:
    """One follow-up request of the judgement (feedback_check.probe.judge): what was sent under which label
    and how it ended, or why it was not sent (`skipped`)."""

    request: str                          # the label, e.g. judge.FORGED_REQUEST
    method: str = ""
    status: HttpStatus | None = None      # None: skipped
    status_line: str = ""
    error: str = ""
    seconds: float = 0.0
    skipped: str = ""

    @classmethod
    def sent(cls, label: str, method: str, answer: HttpResult) -> FollowUpRequest:
        return cls(label, method, answer.status, answer.status_line, answer.error, answer.total_seconds)

    @property
    def answered(self) -> bool:
        return self.status is HttpStatus.ANSWERED


@dataclass(frozen=True, slots=True)
class FollowUps:
    """The follow-up requests on the address that answered first, and what they changed: the findings
    of that address they replace, and the new ones (a replacement, or one more finding)."""

    requests: tuple[FollowUpRequest, ...] = ()
    replaced: tuple[Finding, ...] = ()
    added: tuple[Finding, ...] = ()

    def applied_to(self, findings: Iterable[Finding]) -> list[Finding]:
        """`findings` without the replaced ones (these very objects), then the added ones."""
        replaced = {id(f) for f in self.replaced}
        return [f for f in findings if id(f) not in replaced] + list(self.added)

    def answered(self, label: str) -> bool:
        """Whether the request labelled `label` was sent and answered."""
        return any(r.request == label and r.answered for r in self.requests)


@dataclass(frozen=True, slots=True)
class LoopLag:
    """This machine's event-loop lag where it explained a timing (lag_meter): the worst lag of the answers,
    and the `address: code` findings it kept from being reported."""

    worst_seconds: float
    not_reported: tuple[str, ...]

    @classmethod
    def of(cls, probes: Iterable[AddressProbe]) -> LoopLag | None:
        probes = tuple(probes)
        if not any(p.not_reported for p in probes):
            return None
        return cls(max(p.http.loop_lag_seconds for p in probes if p.http),
                   tuple(f"{p.address}: {code}" for p in probes for code in p.not_reported))


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """Every phase's result of one probed URL; a phase that did not run is None (or empty)."""

    url_check: UrlCheck
    request: SimulatedPostSale | None = None       # the simulated (or replayed) post-sale sent
    dns: Resolution | None = None
    addresses: tuple[AddressProbe, ...] = ()        # one per resolved address, IPv4 first
    loop_lag: LoopLag | None = None
    follow_ups: FollowUps | None = None
