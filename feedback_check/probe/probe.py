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
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

from feedback_check.diagnosis.connect import address_findings, connect_findings
from feedback_check.diagnosis.http import http_findings
from feedback_check.diagnosis.judgement import handler_accepted
from feedback_check.diagnosis.tls import tls_findings
from feedback_check.errors import UsageError
from feedback_check.findings import Finding, Severity, make_finding
from feedback_check.payload import SimulatedPostSale, replayed_post_sale, simulated_post_sale
from feedback_check.platform import Platform
from feedback_check.probe import lag_meter
from feedback_check.probe.addresses import address_class, this_machine_addresses
from feedback_check.probe.deadline import Budgets, Deadline
from feedback_check.probe.dns import resolve
from feedback_check.probe.exchange import ConnectFailed, Connection, open_connection
from feedback_check.probe.follow_ups import follow_ups
from feedback_check.probe.http import HttpResult, HttpStatus, send_post_sale
from feedback_check.probe.judge import FORGED_REQUEST
from feedback_check.probe.result import AddressProbe, FollowUps, LoopLag, ProbeResult
from feedback_check.probe.tcp import ConnectResult, ConnectStatus, classify_os_error
from feedback_check.probe.tls import (
    TlsResult,
    TlsSession,
    TlsStatus,
    capture_context,
    load_trust,
    sni_check,
    speaks_tls,
    tls_phase,
    verifying_context,
)
from feedback_check.probe.url import UrlCheck, check_url, plain_http_fix, port_fix, redact_url, suggested_url
from feedback_check.profile import SignatureSettings
from feedback_check.report import TargetSummary

__all__ = ["AddressProbe", "ProbeRequest", "ProbeSettings", "probe_address", "probe_url"]

log = logging.getLogger(__name__)

ONLINE_TIMINGS = ("always_online", "online_then_deferred")

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


#: Connections an answer left open, per (address, verified), for the follow-up requests of the same
#: probe (the forged signature goes on the signed request's connection). One dict per probe_url.
_idle_connections: contextvars.ContextVar[dict[tuple[str, bool], Connection] | None] = \
    contextvars.ContextVar("idle_connections", default=None)


async def probe_address(*, url: str, host: str, address: str, port: int, https: bool, payload: SimulatedPostSale,
                        platform: Platform, settings: ProbeSettings, target: str, online: bool,
                        budgets: Budgets | None = None) -> AddressProbe:
    """TCP, TLS (https) and the signed request on one address, on one connection; the URL's host for
    Host and SNI.

    The connection opened by the TCP phase carries the TLS phase's handshake and then the request, so
    dns + connect + tls + first byte add up. The request's budget runs from the start of the connect
    (the platform's budget covers connect to last byte); connect and handshake each get at most the
    budget, and the whole address at most `Budgets.address_seconds` (a TLS fallback adds handshakes)."""
    budgets = budgets or Budgets.from_platform(platform)
    limit = budgets.address()
    budget = budgets.request_seconds
    findings: list[Finding] = []
    tcp, connection = await _connect(address, port, limit.child(budget))
    findings += connect_findings(tcp, target)
    if connection is None:
        return AddressProbe(address, tcp, findings=tuple(findings))
    tls: TlsResult | None = None
    context = None
    verified = True
    sni: asyncio.Task[TlsResult] | None = None
    if https:
        session = await tls_phase(connection, host, platform=platform, ca_bundle=settings.ca_bundle,
                                  deadline=limit.child(budget))
        tls = session.result
        if session.connection is None:
            tls = await sni_check(tls, platform, deadline=limit.child(budget))
            findings += tls_findings(tls, target, platform)
            return AddressProbe(address, tcp, tls, findings=tuple(findings))
        connection = session.connection      # a fallback handshake's connection when the first one failed
        verified = session.verified
        context = _request_context(platform, settings.ca_bundle, verified, tls)
        sni = asyncio.ensure_future(sni_check(tls, platform, deadline=limit.child(budget)))   # its own connection
        findings += _refused_certificate(session, tls, port, host, platform, target)
    answer = await _send(payload, url, address, context, verified, budget, platform, connection=connection,
                         deadline=limit.child(budget, start=connection.started))
    if sni is not None:
        tls = await sni
        findings += tls_findings(tls, target, platform)
    http_found, not_reported = _discount_loop_lag(http_findings(answer, target, platform, online=online), answer,
                                                  platform, budgets)
    if not https and answer.status in (HttpStatus.PROTOCOL_ERROR, HttpStatus.CONNECTION_RESET):
        http_found = await _tls_on_plain_port(http_found, answer, address, port, host, platform, target,
                                              budgets.plain_port(limit))
    findings += http_found
    return AddressProbe(address, tcp, tls, answer, tuple(findings), not_reported)


def _request_context(platform: Platform, ca_bundle: str | None, verified: bool, tls: TlsResult) -> Any:
    """The TLS context of the requests to an address: verifying as the platform does when that handshake
    worked, else one that captures what the server answers once the TLS problem is fixed."""
    if verified:
        return verifying_context(platform, ca_bundle)
    return capture_context(platform, permissive=tls.status is not TlsStatus.OK)


def _refused_certificate(session: TlsSession, tls: TlsResult, port: int, host: str, platform: Platform,
                         target: str) -> list[Finding]:
    """tls.cert_untrusted when the offline check found nothing but a verifying client refuses: report it,
    look anyway."""
    if not (session.refusal and tls.certificate_ok):
        return []
    return [make_finding(
        "tls.cert_untrusted", target,
        evidence={"address": tls.address, "port": port, "host": host, "error": session.refusal,
                  "assumption": "tls.public_ca_required"},
        severity=None if platform.tls_public_ca_required else Severity.INFO,
        detail=f"A verifying client refuses the certificate of {tls.address}: {session.refusal}.")]


async def _connect(address: str, port: int, deadline: Deadline) -> tuple[ConnectResult, Connection | None]:
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


def _discount_loop_lag(found: list[Finding], answer: HttpResult, platform: Platform,
                       budgets: Budgets | None = None) -> tuple[list[Finding], tuple[str, ...]]:
    """Drop http.slow and http.timeout where this machine's event loop lag explains the time: under
    load the probe's own delay is no finding about the shop (the details say the timing was disturbed).
    Returns the findings kept and the codes dropped."""
    lag = answer.loop_lag_seconds
    if not lag:
        return found, ()
    budgets = budgets or Budgets.from_platform(platform)
    out = []
    for finding in found:
        if finding.code == "http.slow" and lag_meter.explains(lag, answer.total_seconds - platform.slow_seconds):
            continue
        if finding.code == "http.timeout" and lag >= budgets.disturbed_timeout_lag_seconds and \
                lag_meter.explains(lag, budgets.disturbed_timeout_share * budgets.request_seconds):
            continue
        out.append(finding)
    return out, tuple(f.code for f in found if f not in out)


async def _tls_on_plain_port(found: list[Finding], answer: HttpResult, address: str, port: int, host: str,
                             platform: Platform, target: str, deadline: Deadline) -> list[Finding]:
    """An http:// URL whose port answers garbage or hangs up: if the port speaks TLS, say so."""
    version = await speaks_tls(address, port, host, platform, deadline=deadline)
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
                deadline: Deadline | None = None) -> HttpResult:
    """One request to `address` within `budget` seconds (or by `deadline`): on `connection` when given,
    else on a connection an earlier answer of this probe left open to the same address (same
    verification), else on a new one."""
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
    url_check = check_url(request.url, paramvar=request.paramvar, platform=platform)
    findings = list(url_check.findings)
    if not url_check.usable or not url_check.effective or not url_check.host or not url_check.port:
        return _summary(request, target, ProbeResult(url_check), findings, ["url"])
    payload = _post_sale(request, platform)
    if url_check.scheme == "https":
        load_trust(settings.ca_bundle)        # an unusable CA bundle is the user's error: say so before any I/O
    findings += _weak_algorithm(request, platform, target)
    try:
        resolution = await resolve(url_check.host, resolvers=settings.resolvers,
                                   timeout=platform.dns_timeout_seconds, target=target)
    except ValueError as e:
        raise UsageError(str(e)) from None
    findings += resolution.findings
    result = ProbeResult(url_check, payload, resolution)
    checks = ["url", "dns"]               # report.PROBE_CHECKS that ran (for --state: what was judged)
    if resolution.unreachable:          # this machine's problem, not the shop's DNS: the check cannot run
        return _summary(request, target, result, findings, checks, unknown=resolution.unreachable)
    if not resolution.addresses:
        return _summary(request, target, result, findings, checks)
    budgets = Budgets.from_platform(platform)
    probes = await _probe_addresses(url_check, resolution.addresses, payload, platform, settings, budgets, target,
                                    online=request.timing in ONLINE_TIMINGS)
    findings += [f for probe in probes for f in probe.findings]
    checks += ["connect"] + ["tls"] * any(p.tls is not None for p in probes) + \
        ["http"] * any(p.http is not None for p in probes)
    findings += address_findings(probes, target, url_check.port, await _local_addresses(probes))
    answered = next((p for p in probes if p.http is not None and p.http.status is HttpStatus.ANSWERED), None)
    follow_ups = None
    if answered is not None:
        follow_ups = await _follow_ups(answered, payload, request, platform, settings, budgets, target,
                                       url_check.effective)
        findings = follow_ups.applied_to(findings)
        checks += _judged_checks(answered, follow_ups)
    findings = _one_suggested_url(findings, url_check.port)
    result = ProbeResult(url_check, payload, resolution, tuple(probes), LoopLag.of(probes), follow_ups)
    return _summary(request, target, result, findings, checks)


def _summary(request: ProbeRequest, target: str, result: ProbeResult, findings: list[Finding], checks: list[str],
             unknown: str | None = None) -> TargetSummary:
    """The target's summary: its findings, the first address's timings, the leaf certificate's expiry."""
    cert = next((p.tls.leaf.not_after for p in result.addresses if p.tls is not None and p.tls.leaf is not None),
                None)
    return TargetSummary(shop=request.shop, role=request.role, url=target, method=request.method,
                         findings=tuple(findings), timings=_timings(result), cert_not_after=cert,
                         checks=tuple(checks), unknown=unknown, probe=result)


def _timings(result: ProbeResult) -> dict[str, float | None]:
    """report.PHASES of the first address probed (IPv4 first); dns unless the host is an IP address."""
    dns = result.dns.seconds if result.dns is not None and not result.url_check.host_is_ip else None
    if not result.addresses:
        return {"dns": dns, "connect": None, "tls": None, "ttfb": None, "total": None}
    first = result.addresses[0]
    return {"dns": dns, "connect": first.connect.seconds if first.connect.ok else None,
            "tls": first.tls.seconds if first.tls and first.tls.version else None,
            "ttfb": first.http.ttfb_seconds if first.http else None,
            "total": first.http.total_seconds if first.http else None}


def _post_sale(request: ProbeRequest, platform: Platform) -> SimulatedPostSale:
    """The request to send: a captured post-sale re-signed, or a simulated one."""
    if request.replay is not None:
        return replayed_post_sale(request.replay, method=request.method, signature=request.signature,
                                  platform=platform, origin=request.replay_origin or "a captured post-sale")
    return simulated_post_sale(role=request.role, method=request.method, parameters=request.parameters,
                               signature=request.signature, platform=platform, order_prefix=request.order_prefix,
                               status=request.status, test_order=request.test_order)


def _weak_algorithm(request: ProbeRequest, platform: Platform, target: str) -> list[Finding]:
    algorithm = request.signature.algorithm
    if algorithm not in platform.weak_algorithms:
        return []
    return [make_finding(
        "signature.weak_algorithm", target, evidence={"algorithm": algorithm},
        detail=f"The account signs post-sale requests with {algorithm}; new accounts use "
               f"{platform.default_algorithm}.")]


async def _probe_addresses(url_check: UrlCheck, addresses: Iterable[str], payload: SimulatedPostSale,
                           platform: Platform, settings: ProbeSettings, budgets: Budgets, target: str, *,
                           online: bool) -> list[AddressProbe]:
    """Every resolved address probed at once, IPv6 failures weighed against IPv4 (_weigh_ipv6)."""
    assert url_check.effective and url_check.host and url_check.port
    probes = await asyncio.gather(*(
        probe_address(url=url_check.effective, host=url_check.host, address=address, port=url_check.port,
                      https=url_check.scheme == "https", payload=payload, platform=platform, settings=settings,
                      target=target, online=online, budgets=budgets)
        for address in addresses))
    return _weigh_ipv6(list(probes))


async def _follow_ups(probe: AddressProbe, payload: SimulatedPostSale, request: ProbeRequest, platform: Platform,
                      settings: ProbeSettings, budgets: Budgets, target: str, url: str) -> FollowUps:
    """Other method, forged signature, re-signed variants (feedback_check.probe.follow_ups), all on the
    address that answered, with the TLS verification of its answer."""
    first = probe.http
    assert first is not None
    context = _request_context(platform, settings.ca_bundle, first.verified, probe.tls) if probe.tls else None

    async def transport(variant: SimulatedPostSale, seconds: float) -> HttpResult:
        return await _send(variant, url, probe.address, context, first.verified, seconds, platform)

    can_sign = bool(settings.check_forgery and request.signature.passphrase is not None and payload.shasign)
    return await follow_ups(first=first, address_findings=probe.findings, payload=payload,
                            signature=request.signature, can_sign=can_sign, try_other_method=settings.try_other_method,
                            platform=platform, budgets=budgets, target=target, transport=transport)


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


async def _local_addresses(probes: list[AddressProbe]) -> dict[str, str]:
    """The probed addresses that are local (loopback, private, ... or this machine's own): address -> why."""
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
    return local


def _judged_checks(answered: AddressProbe, follow_ups: FollowUps) -> list[str]:
    """The signature and forgery checks the follow-ups ran. The forged request answered: compared with an
    accepted answer it judged the forgery check; the signature is judged by an accepted answer, or by the
    re-signed requests after a failed one."""
    forged = follow_ups.answered(FORGED_REQUEST)
    accepted = handler_accepted(answered.http)
    return ["signature"] * (accepted or forged) + ["forgery"] * (accepted and forged)
