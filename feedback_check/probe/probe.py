"""The probe of one post-sale URL: URL lint -> DNS -> for each resolved address: TCP -> TLS -> HTTP.

`probe_url` sends a correctly signed, simulated post-sale request (feedback_check.payload) to every
address the host resolves to, separately, and returns one `TargetSummary` with every finding. It never
raises for a network outcome and never prints; one bad address never stops the others. Only a problem
of the user's input (an unreadable CA bundle, a malformed resolver, an unknown STATUS) raises a
FeedbackCheckError. A resolver this machine cannot reach ends the probe with `TargetSummary.unknown`
set (verdict UNKNOWN): nothing about the shop was learned.

Follow-up requests, on the first address that gave an HTTP answer, all inside one extra budget
(feedback_check.probe.judge): the other method after a 405 or a 4xx/5xx a GET/POST mismatch can cause;
a forged SHASIGN after an accepted answer (signature.forgery_accepted when it gets the same answer); a
forged SHASIGN and at most 11 re-signed variants of the doctor's catalogue after an answer that is not
accepted, compared to name the handler's signature setting (signature.rejected) or the unknown order
(handler.unknown_order). These need the real passphrase, so they run only with settings.check_forgery.

The request carries a test order the shop knows when one is given (ProbeRequest.test_order), or is a
captured post-sale re-signed (ProbeRequest.replay); otherwise an obviously simulated order.

Timings: dns (the resolution), connect and tls (the TCP and TLS phases), ttfb and total (the simulated
request itself, connect to first byte / last byte, as curl's time_starttransfer and time_total without
DNS) - of the first address probed (IPv4 first).
"""

from __future__ import annotations

import asyncio
import contextvars
import ipaddress
import logging
import time
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

from feedback_check.errors import UsageError
from feedback_check.findings import Finding, Severity, make_finding
from feedback_check.payload import SimulatedPostSale, replayed_post_sale, simulated_post_sale
from feedback_check.platform import Platform
from feedback_check.probe import lag_meter
from feedback_check.probe.addresses import address_class, this_machine_addresses
from feedback_check.probe.dns import resolve
from feedback_check.probe.exchange import ConnectFailed, Connection, open_connection
from feedback_check.probe.http import HttpResult, HttpStatus, http_findings, send_post_sale
from feedback_check.probe.judge import FORGED_REQUEST, handler_accepted, judge
from feedback_check.probe.tcp import ConnectResult, ConnectStatus, classify_os_error, connect_findings
from feedback_check.probe.tls import (
    TlsResult,
    TlsStatus,
    capture_context,
    load_trust,
    sni_check,
    speaks_tls,
    tls_findings,
    tls_phase,
    verifying_context,
)
from feedback_check.probe.url import check_url, plain_http_fix, port_fix, redact_url, suggested_url
from feedback_check.profile import SignatureSettings
from feedback_check.report import TargetSummary

log = logging.getLogger(__name__)

ONLINE_TIMINGS = ("always_online", "online_then_deferred")
#: All phases of one address together take at most this many budgets (connect, handshakes, request).
ADDRESS_BUDGETS = 3
#: A timeout is not reported when the loop lag explains this share of the budget (see lag_meter) and
#: the lag was at least DISTURBED_TIMEOUT_LAG: a server that never answers must not hide behind a
#: little lag of a busy machine.
DISTURBED_TIMEOUT_SHARE = 0.1
DISTURBED_TIMEOUT_LAG = 0.25


@dataclass(frozen=True)
class ProbeSettings:
    """How to probe: resolvers, trust store, budget and the optional follow-up requests."""

    resolvers: tuple[str, ...] = ()
    ca_bundle: str | None = None          # None: the public CA bundle (certifi)
    budget_seconds: float | None = None   # None: platform.budget_seconds (--timeout overrides)
    check_forgery: bool = True
    try_other_method: bool = True


@dataclass(frozen=True)
class ProbeRequest:
    """One post-sale URL of one shop, with the back-office settings that shape the request."""

    shop: str
    role: str
    url: str
    method: str
    timing: str
    paramvar: str | None
    parameters: tuple[str, ...]
    signature: SignatureSettings
    order_prefix: str
    status: int | None = None
    test_order: tuple[tuple[str, str], ...] = ()       # (name, value) of an order the shop knows
    replay: tuple[tuple[str, str], ...] | None = None  # a captured post-sale to re-sign and send instead
    replay_origin: str = ""


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

    def to_dict(self) -> dict[str, Any]:
        return {"address": self.address, "connect": self.connect.to_dict(),
                "tls": self.tls.to_dict() if self.tls else None,
                "http": self.http.to_dict() if self.http else None,
                "findings": [f.code for f in self.findings]}


#: Connections an answer left open, per (address, verified), for the follow-up requests of the same
#: probe (the forged signature goes on the signed request's connection). One dict per probe_url.
_idle_connections: contextvars.ContextVar[dict[tuple[str, bool], Connection] | None] = \
    contextvars.ContextVar("idle_connections", default=None)


class _Clock:
    """A shared deadline for a group of requests."""

    def __init__(self, seconds: float) -> None:
        self.deadline = time.monotonic() + seconds

    def left(self) -> float:
        return self.deadline - time.monotonic()


async def probe_address(*, url: str, host: str, address: str, port: int, https: bool, payload: SimulatedPostSale,
                        platform: Platform, settings: ProbeSettings, target: str, online: bool) -> AddressProbe:
    """TCP, TLS (https) and the signed request on one address, on one connection; the URL's host for
    Host and SNI.

    The connection opened by the TCP phase carries the TLS phase's handshake and then the request, so
    dns + connect + tls + first byte add up. The request's budget runs from the start of the connect
    (the platform's budget covers connect to last byte); connect and handshake each get at most the
    budget, and the whole address at most `ADDRESS_BUDGETS` budgets (a TLS fallback adds handshakes)."""
    clock = _Clock(ADDRESS_BUDGETS * platform.budget_seconds)

    def deadline() -> float:
        return min(time.monotonic() + platform.budget_seconds, clock.deadline)

    findings: list[Finding] = []
    tcp, connection = await _connect(address, port, deadline())
    findings += connect_findings(tcp, target)
    if connection is None:
        return AddressProbe(address, tcp, findings=tuple(findings))
    request_deadline = min(connection.started + platform.budget_seconds, clock.deadline)
    tls: TlsResult | None = None
    context = None
    verified = True
    sni: asyncio.Task[TlsResult] | None = None
    if https:
        session = await tls_phase(connection, host, platform=platform, ca_bundle=settings.ca_bundle,
                                  deadline=deadline())
        tls = session.result
        if session.connection is None:
            tls = await sni_check(tls, platform, deadline=deadline())
            findings += tls_findings(tls, target, platform)
            return AddressProbe(address, tcp, tls, findings=tuple(findings))
        if session.connection is not connection:        # a fallback handshake: the request goes there
            connection = session.connection
            request_deadline = min(connection.started + platform.budget_seconds, clock.deadline)
        verified = session.verified
        context = verifying_context(platform, settings.ca_bundle) if verified else \
            capture_context(platform, permissive=tls.status is not TlsStatus.OK)
        sni = asyncio.ensure_future(sni_check(tls, platform, deadline=deadline()))   # meanwhile, its own connection
        if session.refusal and tls.certificate_ok:
            # The offline check found nothing, but a verifying client refuses: report it, look anyway.
            findings.append(make_finding(
                "tls.cert_untrusted", target,
                evidence={"address": address, "port": port, "host": host, "error": session.refusal,
                          "assumption": "tls.public_ca_required"},
                severity=None if platform.tls_public_ca_required else Severity.INFO,
                detail=f"A verifying client refuses the certificate of {address}: {session.refusal}."))
    answer = await _send(payload, url, address, context, verified, platform.budget_seconds, platform,
                         connection=connection, deadline=request_deadline)
    if sni is not None:
        tls = await sni
        findings += tls_findings(tls, target, platform)
    http_found = http_findings(answer, target, platform, online=online)
    http_found, not_reported = _discount_loop_lag(http_found, answer, platform)
    if not https and answer.status in (HttpStatus.PROTOCOL_ERROR, HttpStatus.CONNECTION_RESET):
        http_found = await _tls_on_plain_port(http_found, answer, address, port, host, platform, target,
                                              max(0.1, min(platform.budget_seconds, clock.left())))
    findings += http_found
    return AddressProbe(address, tcp, tls, answer, tuple(findings), not_reported)


async def _connect(address: str, port: int, deadline: float) -> tuple[ConnectResult, Connection | None]:
    """The TCP phase: its result, and the open connection the next phases use."""
    started = time.monotonic()
    try:
        connection = await open_connection(address, port, deadline=deadline)
    except ConnectFailed as e:
        seconds = time.monotonic() - started
        if e.timed_out:
            return ConnectResult(address, port, ConnectStatus.TIMEOUT, seconds, str(e)), None
        assert e.os_error is not None
        return ConnectResult(address, port, classify_os_error(e.os_error), seconds, str(e)), None
    return ConnectResult(address, port, ConnectStatus.OK, connection.connect_seconds), connection


def _discount_loop_lag(found: list[Finding], answer: HttpResult,
                       platform: Platform) -> tuple[list[Finding], tuple[str, ...]]:
    """Drop http.slow and http.timeout where this machine's event loop lag explains the time: under
    load the probe's own delay is no finding about the shop (the details say the timing was disturbed).
    Returns the findings kept and the codes dropped."""
    lag = answer.loop_lag_seconds
    if not lag:
        return found, ()
    out = []
    for finding in found:
        if finding.code == "http.slow" and lag_meter.explains(lag, answer.total_seconds - platform.slow_seconds):
            continue
        if finding.code == "http.timeout" and lag >= DISTURBED_TIMEOUT_LAG and \
                lag_meter.explains(lag, DISTURBED_TIMEOUT_SHARE * platform.budget_seconds):
            continue
        out.append(finding)
    return out, tuple(f.code for f in found if f not in out)


async def _tls_on_plain_port(found: list[Finding], answer: HttpResult, address: str, port: int, host: str,
                             platform: Platform, target: str, timeout: float) -> list[Finding]:
    """An http:// URL whose port answers garbage or hangs up: if the port speaks TLS, say so."""
    version = await speaks_tls(address, port, host, platform, timeout=min(timeout, 5.0))
    if version is None:
        return found
    kept = [f for f in found if f.code not in ("http.protocol_error", "http.connection_reset")]
    return kept + [make_finding(
        "http.protocol_error", target,
        evidence={"address": address, "port": port, "error": answer.error, "port_speaks": version},
        detail=f"The URL says http://, but port {port} of {address} speaks TLS ({version}): the plain HTTP "
               f"request is refused ({answer.error}).",
        fix=f"Enter {suggested_url(target, scheme='https', port=port)} in the back office (port {port} serves "
            "HTTPS).")]


async def _send(payload: SimulatedPostSale, url: str, address: str, context: Any, verified: bool, budget: float,
                platform: Platform, *, connection: Connection | None = None,
                deadline: float | None = None) -> HttpResult:
    """One request to `address`: on `connection` when given, else on a connection an earlier answer of
    this probe left open to the same address (same verification), else on a new one."""
    idle = _idle_connections.get(None)
    key = (address, verified)
    if connection is None and idle is not None:
        connection = idle.pop(key, None)
        if connection is not None and not connection.open:
            connection.close()
            connection = None

    def keep(open_connection: Connection) -> None:
        assert idle is not None
        previous = idle.pop(key, None)
        if previous is not None and previous is not open_connection:
            previous.close()
        idle[key] = open_connection

    request_url, body, headers = payload.request_for(url)
    answer = await send_post_sale(method=payload.method, url=request_url, address=address, body=body,
                                  headers=headers, ssl_context=context, verified=verified, budget=budget,
                                  max_body_bytes=platform.max_body_bytes, connection=connection,
                                  deadline=deadline, on_idle=keep if idle is not None else None)
    return answer


async def probe_url(request: ProbeRequest, platform: Platform, settings: ProbeSettings) -> TargetSummary:
    """Probe one post-sale URL; see the module docstring."""
    idle: dict[tuple[str, bool], Connection] = {}
    token = _idle_connections.set(idle)
    try:
        return await _probe_url(request, platform, settings)
    finally:
        _idle_connections.reset(token)
        for connection in idle.values():
            connection.close()


async def _probe_url(request: ProbeRequest, platform: Platform, settings: ProbeSettings) -> TargetSummary:
    if settings.budget_seconds is not None:
        platform = platform.with_budget(settings.budget_seconds)
    target = redact_url(request.url)
    findings: list[Finding] = []
    details: dict[str, Any] = {}
    timings: dict[str, float | None] = {"dns": None, "connect": None, "tls": None, "ttfb": None, "total": None}
    checks = ["url"]                      # report.PROBE_CHECKS that ran (for --state: what was judged)

    def summary(cert_not_after: Any = None, unknown: str | None = None) -> TargetSummary:
        return TargetSummary(shop=request.shop, role=request.role, url=target, method=request.method,
                             findings=tuple(findings), timings=timings, cert_not_after=cert_not_after,
                             details=details, checks=tuple(checks), unknown=unknown)

    url_check = check_url(request.url, paramvar=request.paramvar, platform=platform)
    findings += url_check.findings
    details["url_check"] = url_check.to_dict()
    if not url_check.usable or not url_check.effective or not url_check.host or not url_check.port:
        return summary()
    if request.replay is not None:
        payload = replayed_post_sale(request.replay, method=request.method, signature=request.signature,
                                     platform=platform, origin=request.replay_origin or "a captured post-sale")
    else:
        payload = simulated_post_sale(role=request.role, method=request.method, parameters=request.parameters,
                                      signature=request.signature, platform=platform,
                                      order_prefix=request.order_prefix, status=request.status,
                                      test_order=request.test_order)
    details["request"] = payload.to_dict()
    if url_check.scheme == "https":
        load_trust(settings.ca_bundle)        # an unusable CA bundle is the user's error: say so before any I/O
    if request.signature.algorithm in platform.weak_algorithms:
        findings.append(make_finding(
            "signature.weak_algorithm", target, evidence={"algorithm": request.signature.algorithm},
            detail=f"The account signs post-sale requests with {request.signature.algorithm}; new accounts use "
                   f"{platform.default_algorithm}."))
    try:
        resolution = await resolve(url_check.host, resolvers=settings.resolvers,
                                   timeout=platform.dns_timeout_seconds, target=target)
    except ValueError as e:
        raise UsageError(str(e)) from None
    findings += resolution.findings
    details["dns"] = resolution.to_dict()
    checks.append("dns")
    timings["dns"] = resolution.seconds if not url_check.host_is_ip else None
    if resolution.unreachable:          # this machine's problem, not the shop's DNS: the check cannot run
        return summary(unknown=resolution.unreachable)
    addresses = list(resolution.addresses)
    if not addresses:
        return summary()
    online = request.timing in ONLINE_TIMINGS
    probes = await asyncio.gather(*(
        probe_address(url=url_check.effective, host=url_check.host, address=address, port=url_check.port,
                      https=url_check.scheme == "https", payload=payload, platform=platform, settings=settings,
                      target=target, online=online)
        for address in addresses))
    probes = _weigh_ipv6(list(probes))
    for probe in probes:
        findings += probe.findings
    checks += ["connect"] + ["tls"] * any(p.tls is not None for p in probes) + \
        ["http"] * any(p.http is not None for p in probes)
    if any(p.not_reported for p in probes):
        details["loop_lag"] = {"worst_seconds": round(max(p.http.loop_lag_seconds for p in probes if p.http), 4),
                               "not_reported": [f"{p.address}: {code}" for p in probes for code in p.not_reported]}
    findings += await _address_findings(probes, target, url_check.port)
    details["addresses"] = [p.to_dict() for p in probes]
    first = probes[0]
    timings.update(connect=first.connect.seconds if first.connect.ok else None,
                   tls=first.tls.seconds if first.tls and first.tls.version else None,
                   ttfb=first.http.ttfb_seconds if first.http else None,
                   total=first.http.total_seconds if first.http else None)
    answered = next((p for p in probes if p.http is not None and p.http.status is HttpStatus.ANSWERED), None)
    if answered is not None and answered.http is not None:
        follow_ups: list[dict[str, Any]] = []
        removed, added = await _follow_ups(answered, answered.http, payload, request, platform, settings, target,
                                           url_check.effective, follow_ups)
        findings = [f for f in findings if not any(f is r for r in removed)] + added
        details["follow_ups"] = follow_ups
        # The forged request answered: compared with an accepted answer it judged the forgery check; the
        # signature is judged by an accepted answer, or by the re-signed requests after a failed one.
        forged = any(entry.get("request") == FORGED_REQUEST and entry.get("status") == HttpStatus.ANSWERED.value
                     for entry in follow_ups)
        accepted = handler_accepted(answered.http)
        checks += ["signature"] * (accepted or forged) + ["forgery"] * (accepted and forged)
    findings = _one_suggested_url(findings, url_check.port)
    cert = next((p.tls.leaf.not_after for p in probes if p.tls is not None and p.tls.leaf is not None), None)
    return summary(cert)


def _one_suggested_url(findings: list[Finding], port: int) -> list[Finding]:
    """url.plain_http's and url.port_not_allowed's fixes follow the http.redirect on the same URL: the
    https:// form of the redirect's final URL (its path, e.g. a trailing slash), or that final URL itself
    when it is https:// already - so following one fix never contradicts the other."""
    redirect = next((f for f in findings if f.code == "http.redirect" and f.evidence.get("final_url")), None)
    if redirect is None:
        return findings
    final = str(redirect.evidence["final_url"])
    parts = urlsplit(final)
    plain = plain_http_fix(final, port=parts.port or port, final_https=final if parts.scheme == "https" else None)
    out = []
    for f in findings:
        if f.code == "url.plain_http":
            f = replace(f, fix=plain)
        elif f.code == "url.port_not_allowed":
            f = replace(f, fix=port_fix(final, scheme=parts.scheme, allowed=f.evidence.get("allowed_ports") or [443]))
        out.append(f)
    return out


def _weigh_ipv6(probes: list[AddressProbe]) -> list[AddressProbe]:
    """The platform sends from IPv4 addresses only: when the host has an IPv4 address, what fails on an
    IPv6 address is a warning (connect.ipv6_failed says why), not a process error."""
    if not any(not p.is_ipv6 for p in probes):
        return probes
    out = []
    for probe in probes:
        if probe.is_ipv6:
            lowered = tuple(replace(f, severity=Severity.WARNING) if f.severity is Severity.CRITICAL else f
                            for f in probe.findings)
            probe = replace(probe, findings=lowered)
        out.append(probe)
    return out


#: This machine's addresses, read at most every MACHINE_ADDRESSES_SECONDS (not once per probed URL).
MACHINE_ADDRESSES_SECONDS = 60.0
_machine: tuple[float, frozenset[str]] | None = None


async def _machine_addresses() -> frozenset[str]:
    global _machine
    now = time.monotonic()
    if _machine is None or now - _machine[0] > MACHINE_ADDRESSES_SECONDS:
        _machine = (now, await asyncio.to_thread(this_machine_addresses))
    return _machine[1]


async def _address_findings(probes: list[AddressProbe], target: str, port: int) -> list[Finding]:
    """connect.local_probe, connect.partial and connect.ipv6_failed, across the addresses."""
    found: list[Finding] = []
    local: dict[str, str] = {}
    for probe in probes:
        try:
            reason = address_class(probe.address)
        except ValueError:
            reason = None
        if reason:
            local[probe.address] = reason
    if len(local) < len(probes):
        mine = await _machine_addresses()
        for probe in probes:
            if probe.address not in local and str(ipaddress.ip_address(probe.address)) in mine:
                local[probe.address] = "an address of this machine"
    if local:
        listed = ", ".join(f"{a} ({r})" for a, r in local.items())
        found.append(make_finding(
            "connect.local_probe", target, evidence={"addresses": local},
            detail=f"The probe reached {listed} from this machine: the connection may not cross the perimeter "
                   "firewall PostFinance's requests cross, so it does not prove they get through."))
    v4 = [p for p in probes if not p.is_ipv6]
    v6 = [p for p in probes if p.is_ipv6]
    v4_ok = [p.address for p in v4 if p.ok]
    v4_bad = [p.address for p in v4 if not p.ok]
    if v4_ok and v4_bad:
        found.append(make_finding(
            "connect.partial", target, evidence={"working": v4_ok, "failing": v4_bad, "port": port},
            detail=f"Of the host's IPv4 addresses, {', '.join(v4_ok)} work and {', '.join(v4_bad)} fail: "
                   "the platform picks one of them, so some post-sale requests fail.",
            fix=f"Fix the failing address{'es' * (len(v4_bad) > 1)} or remove {'them' if len(v4_bad) > 1 else 'it'} "
                "from DNS."))
    v6_bad = [p for p in v6 if not p.ok or any(f.severity is Severity.WARNING and f.code.split('.')[0] in
                                                  ("connect", "tls", "http") for f in p.findings)]
    if v4_ok and v6_bad:
        found.append(make_finding(
            "connect.ipv6_failed", target,
            evidence={"working_ipv4": v4_ok, "failing_ipv6": [p.address for p in v6_bad],
                      "ipv6_findings": {p.address: [f.code for f in p.findings] for p in v6_bad}},
            detail=f"IPv6 address{'es' * (len(v6_bad) > 1)} {', '.join(p.address for p in v6_bad)} fail while "
                   f"IPv4 works ({', '.join(v4_ok)})."))
    return found


async def _follow_ups(probe: AddressProbe, first: HttpResult, payload: SimulatedPostSale, request: ProbeRequest,
                      platform: Platform, settings: ProbeSettings, target: str, url: str,
                      log_: list[dict[str, Any]]) -> tuple[list[Finding], list[Finding]]:
    """Other method, forged signature, re-signed variants (feedback_check.probe.judge), all on this address
    inside one follow-up budget: (the findings the new ones replace, the new findings)."""
    clock = _Clock(platform.budget_seconds)
    tls = probe.tls
    context = None
    if tls is not None:
        context = verifying_context(platform, settings.ca_bundle) if first.verified else \
            capture_context(platform, permissive=tls.status is not TlsStatus.OK)

    async def send(variant: SimulatedPostSale, label: str) -> HttpResult | None:
        left = clock.left()
        if left <= 0.05:
            log_.append({"request": label, "skipped": "no time left in the follow-up budget"})
            return None
        answer = await _send(variant, url, probe.address, context, first.verified, min(left, platform.budget_seconds),
                             platform)
        log_.append({"request": label, "method": variant.method, "status": answer.status.value,
                     "status_line": answer.status_line or None, "error": answer.error or None,
                     "seconds": round(answer.total_seconds, 4)})
        return answer

    can_sign = bool(settings.check_forgery and request.signature.passphrase is not None and payload.shasign)
    return await judge(first=first, address_findings=probe.findings, payload=payload, signature=request.signature,
                       can_sign=can_sign, try_other_method=settings.try_other_method, platform=platform,
                       target=target, send=send)
