"""What the people-facing reporters (text, html) read from a Report, in the shapes they draw.

The reporters read the report's typed results (`TargetSummary.probe`, a `probe.result.ProbeResult`;
`FirewallSummary.analysis`, a `firewall.verdict.FirewallVerdict`) through the accessor functions of
this module. Everything here is pure. Only the `--state` changes (`Report.changes`, read back from a
state file) are a mapping, read defensively with `seq`/`mappings`: a value of an unexpected shape is
skipped, never trusted.

- `range_views(firewall)`: each published range as its address space cut into admitted, blocked and
  uncertain pieces, once for what passes all layers together and once per layer, each blocked piece
  with the rule that decided it (file:line) — interval arithmetic on the CIDR lists of the analysis.
- `address_timelines(target)`: per resolved address the phases of the simulated post-sale (DNS,
  connect, TLS, waiting for the first byte, reading the answer) as intervals from the start.
- `cidr_summary(...)`: "3 of 1,024 addresses admitted: …" for long CIDR lists.
- `clean`, `main_finding`, `target_label`, `seconds_text`: the words every reporter (text, html, nagios,
  junit, prometheus) shares, here so that no reporter imports another.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from feedback_check.findings import Finding, Severity, ranked
from feedback_check.firewall.ipspace import AddressSet
from feedback_check.report import FirewallSummary, Report, TargetSummary

if TYPE_CHECKING:
    from feedback_check.firewall.verdict import DecidingRule, LayerVerdict, RangeVerdict
    from feedback_check.payload import SimulatedPostSale
    from feedback_check.probe.dns import Resolution
    from feedback_check.probe.result import AddressProbe, FollowUpRequest

ADMITTED = "admitted"
BLOCKED = "blocked"
UNCERTAIN = "uncertain"


# --- words and numbers every reporter shares -------------------------------------------------------

#: Response headers a resolved address's entry names (who answered, where it sends the platform).
SHOWN_HEADERS = ("location", "server", "www-authenticate", "allow")
#: The longest a single value (an evidence text, a body excerpt) may be on screen.
MAX_VALUE_CHARS = 240
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def clean(value: Any, limit: int = MAX_VALUE_CHARS) -> str:
    """A one-line, printable form of a value from the report (control characters escaped, length capped)."""
    text = str(value)
    text = text.replace("\r\n", "\n").replace("\n", " ⏎ ").replace("\t", " ")
    text = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return text


def main_finding(findings: Iterable[Finding], *, lab: bool = False) -> Finding | None:
    """The finding that decides a verdict: the first of the most severe (findings.ranked), ignoring info."""
    for finding in ranked(findings, lab=lab):
        return finding if finding.severity is not Severity.INFO else None
    return None


def target_label(target: TargetSummary) -> str:
    """`shop · role`, or only the role when the run has no shop (`probe URL`)."""
    return f"{target.shop} · {target.role}" if target.shop else target.role


def seconds_text(seconds: float | None) -> str:
    """12 ms / 1.23 s / – for a phase that did not happen."""
    if seconds is None:
        return "–"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms" if seconds >= 0.0095 else f"{seconds * 1000:.1f} ms"
    return f"{seconds:.2f} s"


# --- report model accessors ------------------------------------------------------------------------

def seq(value: Any) -> list[Any]:
    """A list from a mapping read back from a file (Report.changes), or nothing when the value is not a list."""
    return list(value) if isinstance(value, (list, tuple)) else []


def mappings(value: Any) -> list[Mapping[str, Any]]:
    return [v for v in seq(value) if isinstance(v, Mapping)]


def number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def platform_seconds(report: Report) -> tuple[float | None, float | None]:
    """(budget, slow threshold) of the platform the run used, in seconds."""
    platform = report.platform if isinstance(report.platform, Mapping) else {}
    return number(platform.get("budget_seconds")), number(platform.get("slow_seconds"))


def logs_of(report: Report) -> tuple[Any, ...]:
    """The access-log summaries of the run (logs.judgement.LogsSummary), outermost shop first."""
    return tuple(getattr(report, "logs", ()) or ())


def layers_of(firewall: FirewallSummary) -> tuple[LayerVerdict, ...]:
    return firewall.analysis.layers


def ranges_of(firewall: FirewallSummary) -> tuple[RangeVerdict, ...]:
    return firewall.analysis.ranges


def fix_lines_of(firewall: FirewallSummary) -> list[str]:
    return list(firewall.analysis.all_fix_lines())


def addresses_of(target: TargetSummary) -> tuple[AddressProbe, ...]:
    return target.probe.addresses if target.probe is not None else ()


def dns_of(target: TargetSummary) -> Resolution | None:
    return target.probe.dns if target.probe is not None else None


def request_of(target: TargetSummary) -> SimulatedPostSale | None:
    """The simulated post-sale as sent (method, STATUS, orderID, parameters, algorithm, encoding)."""
    return target.probe.request if target.probe is not None else None


def request_label(addresses: tuple[AddressProbe, ...]) -> str:
    """How a report introduces the simulated post-sale: "sent" once an address got the request, else
    "prepared, not sent" (no address resolved, none connected), so nobody reads it as delivered."""
    return "sent" if any(a.http is not None for a in addresses) else "prepared, not sent"


def resolved_text(dns: Resolution) -> str:
    """What the resolution gave: the addresses, "no address", or why this machine could not ask at all
    (a resolver it cannot reach is not the shop's DNS answering nothing)."""
    if dns.unreachable and not dns.addresses:
        return f"not resolved: {dns.unreachable}"
    return ", ".join(dns.addresses) or "no address"


def follow_ups_of(target: TargetSummary) -> tuple[FollowUpRequest, ...]:
    """The extra requests of the probe (wrong SHASIGN, the other method), with their answers."""
    follow_ups = target.probe.follow_ups if target.probe is not None else None
    return follow_ups.requests if follow_ups is not None else ()


def seconds_of(seconds: float | None) -> float | None:
    """A measured duration as the JSON document rounds it (4 decimals), so every format shows the same."""
    return None if seconds is None else round(seconds, 4)


def firewall_for(firewall: FirewallSummary) -> tuple[str, str]:
    """(host, path) of the post-sale URL the firewall analysis was made for ("" when not known)."""
    return firewall.analysis.host or "", firewall.analysis.path or ""


def firewall_target(firewall: FirewallSummary, report: Report | None = None) -> str:
    """`host[:port]/path` of the post-sale URL the analysis was made for, as the URL gives it: the port
    is the URL's own (a check's URL on :8443 analysed at :443 still shows :8443), found among the
    report's URLs of the same shop on that host; "" when neither host nor path is known."""
    host, path = firewall_for(firewall)
    if not host and not path:
        return ""
    port = None
    for target in report.targets if report is not None else ():
        if firewall.shop and target.shop != firewall.shop:
            continue
        try:
            parts = urlsplit(target.url)
            if (parts.hostname or "").lower() == host.lower():
                port = parts.port
                break
        except ValueError:
            continue
    shown = f"[{host}]" if ":" in host else host
    return f"{shown}{f':{port}' if port else ''}{path}"


def layer_label(layer: LayerVerdict) -> tuple[str, str]:
    """(name, "format, file") of a layer; a generated name that already says the format (`layer 1
    (nginx)`) loses it, so the label names the format once: `layer 1 (nginx, file)`."""
    name, kind = layer.name or "?", layer.format
    if kind and name.endswith(f" ({kind})"):
        name = name[: -len(kind) - 3]
    return name, ", ".join(part for part in (layer.format, layer.file) if part)


# --- address arithmetic ------------------------------------------------------------------------------

def address_set(cidrs: Iterable[Any]) -> AddressSet:
    """The addresses of a CIDR list from the details; an entry that is not a CIDR is skipped."""
    result = AddressSet.empty()
    for cidr in cidrs:
        try:
            result = result | AddressSet.parse(str(cidr))
        except ValueError:
            continue
    return result


def count_text(count: int) -> str:
    """1,024; IPv6 counts beyond a billion as a power of two (2^96)."""
    if count >= 10 ** 12 and count & (count - 1) == 0:
        return f"2^{count.bit_length() - 1}"
    return f"{count:,}"


def cidr_list(part: Sequence[str], most: int = 3) -> str:
    """`185.8.52.254/32, 185.8.53.254/32, 185.8.54.254/32 … (+2 more)`."""
    shown = ", ".join(str(c) for c in part[:most])
    return shown + (f" … (+{len(part) - most} more)" if len(part) > most else "")


def of_published(part: Sequence[str], total: int, most: int = 3) -> str:
    """`2,301 of the 2,304 published addresses: a, b, c … (+24 more)` (what one layer blocks or admits)."""
    count = address_set(part).size()
    return f"{count_text(count)} of the {count_text(total)} published addresses: " + cidr_list(part, most)


def cidr_summary(part: Sequence[str], total: int, what: str, *, most: int = 3) -> str:
    """`3 of 1,024 addresses admitted: 185.8.52.254/32, 185.8.53.254/32, 185.8.54.254/32 … (+2 more)`."""
    size = address_set(part).size()
    return f"{count_text(size)} of {count_text(total)} addresses {what}" + (f": {cidr_list(part, most)}"
                                                                         if part else "")


# --- range bars -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Piece:
    """A contiguous run of one range's addresses in one state."""

    start: int                  # offset of the first address from the range's first address
    size: int                   # number of addresses
    state: str                  # ADMITTED | BLOCKED | UNCERTAIN
    first: str                  # first and last address, for people
    last: str
    cidrs: tuple[str, ...]      # the same addresses as minimal CIDRs
    rule: str = ""              # file:line (or file (chain)) of the deciding rule of a blocked piece
    rule_text: str = ""         # the rule as written
    action: str = ""            # drop, reject, deny, ...
    by_policy: bool = False
    layer: str = ""             # the layer whose rule decided


@dataclass(frozen=True)
class Bar:
    """One range's address space as pieces: for all layers together or for one layer."""

    label: str
    pieces: tuple[Piece, ...]

    def count(self, state: str) -> int:
        return sum(p.size for p in self.pieces if p.state == state)


@dataclass(frozen=True)
class RangeView:
    cidr: str
    size: int
    verdict: str
    admitted: tuple[str, ...]
    blocked: tuple[str, ...]
    uncertain: tuple[str, ...]
    total_bar: Bar                         # what reaches the port through every layer
    layer_bars: tuple[Bar, ...]            # outermost layer first
    fix_lines: tuple[str, ...]

    @property
    def admitted_count(self) -> int:
        return self.total_bar.count(ADMITTED)

    @property
    def blocked_count(self) -> int:
        return self.total_bar.count(BLOCKED) + self.total_bar.count(UNCERTAIN)


def range_views(firewall: FirewallSummary) -> list[RangeView]:
    """Every published range of a firewall summary, drawn as bars (see the module docstring)."""
    layers = layers_of(firewall)
    views = []
    for entry in ranges_of(firewall):
        space = address_set([entry.cidr])
        if not space or len(space.v4) + len(space.v6) != 1:
            continue
        decisions = [d for d in entry.deciding if d.action.lower() != "accept"]
        uncertain = address_set(entry.uncertain) & space
        blocked = (address_set(entry.blocked) & space) - uncertain
        total = _bar("all layers", space, blocked, uncertain, decisions)
        layer_bars = []
        if len(layers) > 1:
            layer_bars = [_layer_bar(layer, space, decisions) for layer in layers]
        elif layers:
            # One layer: its bar is the total bar, under the layer's name.
            total = Bar(layers[0].name or "?", total.pieces)
        views.append(RangeView(
            cidr=entry.cidr, size=space.size(), verdict=entry.state, admitted=entry.admitted,
            blocked=entry.blocked, uncertain=entry.uncertain, total_bar=total, layer_bars=tuple(layer_bars),
            fix_lines=entry.fix_lines))
    return views


def _layer_bar(layer: LayerVerdict, space: AddressSet, decisions: Sequence[DecidingRule]) -> Bar:
    """What one layer alone blocks of a range: the published addresses it blocks and what its own
    deciding rules cover (behind an earlier layer that blocks them first)."""
    own = [d for d in decisions if d.layer == layer.name]
    blocked = (address_set(layer.blocks_published) & space) | address_set(c for d in own for c in d.blocked)
    return _bar(layer.name, space, blocked & space, AddressSet.empty(), own)


def _bar(label: str, space: AddressSet, blocked: AddressSet, uncertain: AddressSet,
         decisions: Sequence[DecidingRule]) -> Bar:
    """Cut `space` (one range) into pieces: blocked parts split by the decision that covers them (the
    first listed wins: the analysis lists the outermost layer first), uncertain parts, the rest admitted."""
    version = 4 if space.v4 else 6
    first = (space.v4 or space.v6)[0][0]
    parts: list[tuple[AddressSet, str, DecidingRule | None]] = []
    # Uncertain addresses are blocked unless a rule the analyser cannot evaluate admits them: they keep
    # the rule that blocks them otherwise.
    left = blocked | uncertain
    for decision in decisions:
        covered = left & address_set(decision.blocked)
        if covered:
            if covered - uncertain:
                parts.append((covered - uncertain, BLOCKED, decision))
            if covered & uncertain:
                parts.append((covered & uncertain, UNCERTAIN, decision))
            left = left - covered
    if left - uncertain:
        parts.append((left - uncertain, BLOCKED, None))
    if left & uncertain:
        parts.append((left & uncertain, UNCERTAIN, None))
    admitted = space - blocked - uncertain
    if admitted:
        parts.append((admitted, ADMITTED, None))
    pieces = [_piece(start, end, first, version, state, chosen)
              for addresses, state, chosen in parts
              for start, end in (addresses.v4 if version == 4 else addresses.v6)]
    pieces.sort(key=lambda p: p.start)
    return Bar(label, tuple(pieces))


def _piece(start: int, end: int, first: int, version: int, state: str, chosen: DecidingRule | None) -> Piece:
    run = AddressSet(v4=((start, end),)) if version == 4 else AddressSet(v6=((start, end),))
    networks = list(run.networks())
    return Piece(
        start=start - first, size=end - start + 1, state=state,
        first=str(networks[0].network_address), last=str(networks[-1].broadcast_address),
        cidrs=tuple(run.cidrs()),
        rule=chosen.rule if chosen else "", rule_text=chosen.text if chosen else "",
        action=chosen.action if chosen else "", by_policy=chosen.by_policy if chosen else False,
        layer=chosen.layer if chosen else "")


# --- timelines ------------------------------------------------------------------------------------------

#: The phases of one post-sale request as drawn, in order: (key, label).
TIMELINE_PHASES = (("dns", "DNS"), ("connect", "connect"), ("tls", "TLS"), ("wait", "first byte"),
                   ("read", "answer read"))


@dataclass(frozen=True)
class Segment:
    phase: str          # a key of TIMELINE_PHASES
    label: str
    start: float        # seconds from the start (the DNS query)
    seconds: float


@dataclass(frozen=True)
class Timeline:
    """The phases of the post-sale request to one resolved address."""

    address: str
    segments: tuple[Segment, ...]
    first_byte: float | None       # seconds from the start to the answer's first byte
    total: float | None            # seconds from the start to the end of the answer
    outcome: str                   # status line or the error


def address_timelines(target: TargetSummary) -> list[Timeline]:
    """The timeline of every resolved address of a URL.

    DNS comes from the URL's resolution; connect, TLS, first byte and total from that address's
    post-sale request (first byte and total are measured from the request's start, connect included,
    as curl does). An address whose request never left shows its connect and TLS attempts only.
    """
    dns = dns_of(target)
    dns_seconds = (seconds_of(dns.seconds) if dns is not None else None) or 0.0
    return [_timeline(address, dns_seconds) for address in addresses_of(target)]


def _timeline(address: AddressProbe, dns_seconds: float) -> Timeline:
    http = address.http
    connect = seconds_of(http.connect_seconds) if http is not None else None
    tls = seconds_of(http.tls_seconds) if http is not None else None
    if connect is None:
        connect = seconds_of(address.connect.seconds)
    if tls is None and address.tls is not None:
        tls = seconds_of(address.tls.seconds)
    ttfb = seconds_of(http.ttfb_seconds) if http is not None else None
    total = seconds_of(http.total_seconds) if http is not None else None
    segments: list[Segment] = []
    if dns_seconds:
        segments.append(Segment("dns", "DNS", 0.0, dns_seconds))
    clock = dns_seconds
    for key, label, seconds in (("connect", "connect", connect), ("tls", "TLS", tls)):
        if seconds is not None and seconds > 0:
            segments.append(Segment(key, label, clock, seconds))
            clock += seconds
    if ttfb is not None and dns_seconds + ttfb > clock:
        segments.append(Segment("wait", "first byte", clock, dns_seconds + ttfb - clock))
        clock = dns_seconds + ttfb
    if total is not None and dns_seconds + total > clock:
        segments.append(Segment("read", "answer read", clock, dns_seconds + total - clock))
    return Timeline(
        address=address.address, segments=tuple(segments),
        first_byte=dns_seconds + ttfb if ttfb is not None else None,
        total=dns_seconds + total if total is not None else None, outcome=_outcome(address))


def _outcome(address: AddressProbe) -> str:
    """The status line, or the error, of the address's request; else the phase that failed."""
    http = address.http
    if http is not None:
        outcome = http.status_line or http.error or http.status.value
        if outcome:
            return outcome
    for key, phase in (("tls", address.tls), ("connect", address.connect)):
        if phase is not None and phase.status.value != "ok":
            return f"{key} {phase.status.value}" + (f": {phase.error}" if phase.error else "")
    return ""
