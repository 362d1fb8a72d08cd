"""HTTP phase: the simulated post-sale request sent to one resolved address, and what came back.

The request goes to THAT address while the URL's host name is used for the Host header, SNI and
certificate verification (the probe's own HTTP/1.1 exchange, feedback_check.probe.exchange). Redirects
are never followed. At most `platform.max_body_bytes` of the answer are read. One deadline (the platform's
budget) covers the whole request, from connect to last byte, also against a server that drips one byte
at a time.

`send_post_sale` returns a frozen `HttpResult` (never raises for a network outcome); `http_findings`
classifies it per findings.md.
"""

from __future__ import annotations

import enum
import logging
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

from feedback_check import __version__
from feedback_check.findings import Finding, Severity, make_finding
from feedback_check.platform import Assumption, Platform
from feedback_check.probe import lag_meter
from feedback_check.probe.deadline import Deadline
from feedback_check.probe.exchange import (
    Answer,
    ConnectFailed,
    Connection,
    ConnectionLost,
    ProtocolViolation,
    Timeout,
    TlsFailed,
    exchange,
    open_connection,
    request_bytes,
)
from feedback_check.redact import active as active_masker
from feedback_check.urls import DEFAULT_PORTS, url_port

log = logging.getLogger(__name__)

USER_AGENT = f"feedback-check/{__version__} (simulated PostFinance post-sale request)"
#: Answer headers worth keeping as evidence.
KEPT_HEADERS = ("server", "location", "content-type", "content-length", "www-authenticate", "proxy-authenticate",
                "allow", "via", "x-powered-by", "cf-ray", "x-cache", "x-sucuri-id", "x-iinfo", "x-amz-cf-id",
                "x-amzn-requestid", "x-akamai-transformed", "retry-after")
#: (marker, what it is) - looked for in header names, header values and the body, case-insensitively.
WAF_MARKERS: tuple[tuple[str, str], ...] = (
    ("cloudflare", "Cloudflare"), ("cf-ray", "Cloudflare"), ("attention required!", "Cloudflare"),
    ("akamaighost", "Akamai"), ("akamai", "Akamai"), ("reference #", "Akamai"),
    ("sucuri", "Sucuri"), ("incapsula", "Imperva Incapsula"), ("x-iinfo", "Imperva Incapsula"),
    ("imperva", "Imperva"), ("x-amz-cf-id", "Amazon CloudFront / AWS WAF"), ("awselb", "AWS load balancer"),
    ("request blocked", "a WAF"), ("mod_security", "ModSecurity"), ("modsecurity", "ModSecurity"),
    ("noyb", "ModSecurity"), ("the requested url was rejected", "F5 BIG-IP ASM"),
    ("your support id is", "F5 BIG-IP ASM"), ("wordfence", "Wordfence"), ("barracuda", "Barracuda WAF"),
    ("fastly", "Fastly"), ("ddos-guard", "DDoS-Guard"), ("stackpath", "StackPath"),
    ("access denied", "an access rule"),
)


class HttpStatus(str, enum.Enum):
    ANSWERED = "answered"                 # a complete status line and headers arrived
    TIMEOUT = "timeout"
    PROTOCOL_ERROR = "protocol_error"
    CONNECTION_RESET = "connection_reset"
    CONNECT_FAILED = "connect_failed"
    TLS_FAILED = "tls_failed"


@dataclass(frozen=True, slots=True)
class HttpResult:
    """Outcome of one post-sale request to one address."""

    method: str
    url: str
    address: str
    status: HttpStatus
    verified: bool                        # False: sent over TLS without certificate verification
    status_code: int | None = None
    reason: str = ""
    http_version: str = ""
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""                     # at most platform.max_body_bytes
    body_complete: bool = True            # False: more body than was read, or the body was cut off
    connect_seconds: float | None = None
    tls_seconds: float | None = None
    ttfb_seconds: float | None = None     # request start (incl. connect) to response headers, like curl
    total_seconds: float = 0.0            # request start to last byte read (or to the failure)
    error: str = ""
    #: The worst event-loop lag while this request was measured: timings may be that much too long.
    loop_lag_seconds: float = 0.0

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        return next((v for k, v in self.headers if k.lower() == lowered), None)

    @property
    def status_line(self) -> str:
        if self.status_code is None:
            return ""
        return f"{self.http_version or 'HTTP/1.1'} {self.status_code} {self.reason}".strip()

    @property
    def success(self) -> bool:
        return self.status is HttpStatus.ANSWERED and self.status_code is not None and \
            200 <= self.status_code < 300

    def body_text(self, limit: int = 300) -> str:
        return self.body[:limit].decode("utf-8", "replace")

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "url": self.url, "status": self.status.value, "verified": self.verified,
                "status_code": self.status_code, "status_line": self.status_line or None,
                "headers": {k: v for k, v in self.headers if k.lower() in KEPT_HEADERS},
                "body_bytes_read": len(self.body), "body_excerpt": self.body_text(),
                "body_complete": self.body_complete, "error": self.error or None,
                "seconds": {"connect": _round(self.connect_seconds), "tls": _round(self.tls_seconds),
                            "ttfb": _round(self.ttfb_seconds), "total": _round(self.total_seconds)}}


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def host_header(url: str) -> str:
    """The Host header for `url`: host (brackets for IPv6) and the port when it is not the default."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    return host if parts.port in (None, DEFAULT_PORTS.get(parts.scheme)) else f"{host}:{parts.port}"


async def send_post_sale(*, method: str, url: str, address: str, body: bytes, headers: dict[str, str],
                         ssl_context: ssl.SSLContext | None, verified: bool, budget: float,
                         max_body_bytes: int, connection: Connection | None = None,
                         deadline: Deadline | None = None,
                         on_idle: Callable[[Connection], None] | None = None) -> HttpResult:
    """Send one request to `address` (Host/SNI from `url`), within `budget` seconds in total.

    `connection`: an open connection to `address` to send it on (the probe's own, after its TCP and TLS
    phases, or one a previous answer left open); without it a new one is opened (and upgraded with
    `ssl_context`). `deadline`, when given, replaces "now + budget" - the probe counts the
    budget from the start of its connection's connect, as the platform does. A connection the answer
    leaves open for another request goes to `on_idle` (without it, it is closed)."""
    parts = urlsplit(url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    request_headers = [("Host", host_header(url)), ("User-Agent", USER_AGENT), ("Accept", "*/*"),
                       *headers.items()]
    if method != "GET" or body:
        request_headers.append(("Content-Length", str(len(body))))
    message = request_bytes(method, target, request_headers, body)
    started = time.monotonic()
    deadline = Deadline.after(budget, start=started) if deadline is None else deadline
    answer = Answer()
    reused = connection is not None and connection.requests > 0
    # The connection whose connect (and handshake) this request's timings include, and their origin.
    counted = connection if connection is not None and not reused else None
    origin = counted.started if counted is not None else started

    def result(status: HttpStatus, error: str = "") -> HttpResult:
        # What the server sent is masked here, where it is read (the run's secrets: redact.masking).
        mask = active_masker()
        reason, headers, body = answer.reason, answer.headers, answer.body
        if mask:
            reason, error = mask.mask(reason), mask.mask(error)
            headers = tuple((mask.mask(k), mask.mask(v)) for k, v in headers)
            body = mask.mask_bytes(body)
        return HttpResult(
            method=method, url=url, address=address, status=status, verified=verified,
            status_code=answer.status_code, reason=reason, http_version=answer.http_version,
            headers=headers, body=body, body_complete=answer.body_complete,
            connect_seconds=counted.connect_seconds if counted is not None else None,
            tls_seconds=counted.tls_seconds if counted is not None else None,
            ttfb_seconds=None if answer.head_at is None else answer.head_at - origin,
            total_seconds=time.monotonic() - origin, error=error,
            loop_lag_seconds=lag_meter.worst_since(origin))

    try:
        for attempt in (1, 2):
            if connection is None:
                connection = await open_connection(address, url_port(parts) or 443, deadline=deadline)
                counted, origin = connection, connection.started
                if ssl_context is not None:
                    await connection.start_tls(ssl_context, parts.hostname, deadline=deadline)
            try:
                await exchange(connection, message, answer, method=method, deadline=deadline,
                               max_body=max_body_bytes)
                break
            except ConnectionLost:
                # A kept-alive connection the server closed meanwhile: once more on a new one.
                if attempt == 2 or not reused or answer.status_code is not None:
                    raise
                connection, reused = None, False
    except ConnectFailed as e:
        return result(HttpStatus.TIMEOUT if e.timed_out else HttpStatus.CONNECT_FAILED,
                      f"the whole request did not finish within {budget:g} s (connect)" if e.timed_out else str(e))
    except TlsFailed as e:
        return result(HttpStatus.TIMEOUT if e.timed_out else HttpStatus.TLS_FAILED,
                      f"the whole request did not finish within {budget:g} s (TLS handshake)" if e.timed_out
                      else str(e))
    except Timeout:
        return result(HttpStatus.TIMEOUT, f"the whole request did not finish within {budget:g} s")
    except ProtocolViolation as e:
        return result(HttpStatus.PROTOCOL_ERROR, str(e))
    except ConnectionLost as e:
        return result(HttpStatus.CONNECTION_RESET, str(e))
    if connection is not None and connection.reusable:
        (on_idle or Connection.close)(connection)
    return result(HttpStatus.ANSWERED)


# --- classification -------------------------------------------------------------------------------

def waf_markers(result: HttpResult) -> list[str]:
    """What in the answer points at a WAF, CDN or access rule (e.g. 'Cloudflare (cf-ray header)')."""
    haystacks = [("header", f"{k}: {v}".lower()) for k, v in result.headers] + \
        [("body", result.body[:8192].decode("utf-8", "replace").lower())]
    found: list[str] = []
    for marker, what in WAF_MARKERS:
        for where, text in haystacks:
            if marker in text:
                label = f"{what} ({where} contains {marker!r})"
                if not any(f.startswith(what + " ") for f in found):
                    found.append(label)
                break
    return found


def redirect_hint(url: str, location: str) -> tuple[str, str]:
    """(absolute Location, hint) for a redirect: http->https, www, trailing slash, or another place."""
    target = urljoin(url, location)
    old, new = urlsplit(url), urlsplit(target)
    hints = []
    if old.scheme == "http" and new.scheme == "https":
        hints.append("http->https")
    old_host, new_host = (old.hostname or ""), (new.hostname or "")
    if old_host != new_host and (new_host == "www." + old_host or old_host == "www." + new_host):
        hints.append("www")
    if old.path != new.path and old.path.rstrip("/") == new.path.rstrip("/"):
        hints.append("trailing slash")
    if not hints:
        hints.append("another location")
    return target, ", ".join(hints)


#: The two kinds of redirect (platform.md §5 "Response").
BEFORE_HANDLER = "before_handler"
AFTER_PROCESSING = "after_processing"


def redirect_kind(url: str, location: str) -> str:
    """BEFORE_HANDLER when `location` names the same resource as `url` (only the scheme, host - www/apex or
    another host -, port, letter case or a trailing slash of the path differ: a web server or CDN
    canonicalising the URL, the handler never ran); AFTER_PROCESSING when it names another page (the
    handler ran and sent the caller on, as Odoo and Magento do). A 3xx without Location is BEFORE_HANDLER:
    nothing shows that a handler ran."""
    if not location:
        return BEFORE_HANDLER
    old, new = urlsplit(url), urlsplit(urljoin(url, location))
    old_path, new_path = (old.path or "/").rstrip("/").lower(), (new.path or "/").rstrip("/").lower()
    return BEFORE_HANDLER if old_path == new_path else AFTER_PROCESSING


def final_url(target: str, absolute: str) -> str:
    """The URL to enter in the back office after a redirect before the handler: the Location's scheme, host,
    port and path with the configured URL's query (its <PARAMVAR> kept; the request's own post-sale
    parameters never), built by `suggested_url` like every suggested URL."""
    from feedback_check.probe.url import suggested_url

    new = urlsplit(absolute)
    try:
        port = new.port
    except ValueError:
        return ""
    if new.scheme not in ("http", "https") or not new.hostname:
        return ""
    return suggested_url(target, scheme=new.scheme, host=new.hostname, port=port, path=new.path or "/")


def shown_location(absolute: str) -> str:
    """A redirect target fit to show: the post-sale's own parameters (a GET's query carries SHASIGN and the
    order) are cut off."""
    parts = urlsplit(absolute)
    if "shasign=" in parts.query.lower():
        return parts._replace(query="", fragment="").geturl()
    return absolute


def is_accepted(result: HttpResult, platform: Platform) -> bool:
    """Whether the platform would take this answer as a processed post-sale: a success status
    (http.success), or a redirect to another page after the handler ran unless http.redirect_fails is true."""
    if result.status is not HttpStatus.ANSWERED:
        return False
    if platform.is_success_status(result.status_code):
        return True
    code = result.status_code or 0
    return 300 <= code < 400 and platform.redirect_fails is not True and \
        redirect_kind(result.url, result.header("location") or "") == AFTER_PROCESSING


_REDIRECT_ASSUMPTION = Assumption("http.redirect_fails", "{redirect_fails}")


def http_findings(result: HttpResult, target: str, platform: Platform, *, online: bool) -> list[Finding]:
    """http.* findings for one request's result."""
    where = f"{result.address}"
    evidence: dict[str, Any] = {"address": result.address, "method": result.method,
                                "seconds": round(result.total_seconds, 3)}
    if result.status_line:
        evidence["status_line"] = result.status_line
    if result.header("server"):
        evidence["server"] = result.header("server")
    note = "" if result.verified else \
        " (The request was sent without certificate verification, to show what the endpoint answers once " \
        "the TLS problem is fixed.)"
    if result.error:
        evidence["error"] = result.error
    status = result.status
    if status is HttpStatus.TIMEOUT:
        return [make_finding(
            "http.timeout", target, evidence={**evidence, "budget_seconds": platform.budget_seconds,
                                              "assumption": "timing.budget_seconds",
                                              "bytes_received": len(result.body),
                                              **({"status_line": result.status_line} if result.status_line else {})},
            detail=f"The {result.method} request to {where} did not complete within {platform.budget_seconds:g} s "
                   f"(the assumed platform budget, connect to last byte)"
                   f"{'; the status line ' + result.status_line + ' arrived but the answer never completed' if result.status_line else ''}."
                   + note)]
    if status is HttpStatus.PROTOCOL_ERROR:
        tls_like = "\\x15\\x03" in result.error or "\\x16\\x03" in result.error
        return [make_finding(
            "http.protocol_error", target, evidence=evidence,
            detail=f"The answer from {where} is not valid HTTP ({result.error})."
                   + (" The bytes look like TLS: the port speaks HTTPS while the URL says http://."
                      if tls_like else "")
                   + (" The answer was cut off before its announced end." if result.status_code else "") + note,
            fix="Change the URL to https:// (the port speaks TLS)." if tls_like else None)]
    if status is HttpStatus.CONNECTION_RESET:
        return [make_finding(
            "http.connection_reset", target, evidence=evidence,
            detail=f"{where} closed or reset the connection before a complete answer ({result.error})." + note)]
    if status in (HttpStatus.CONNECT_FAILED, HttpStatus.TLS_FAILED):
        # The TCP and TLS phases report these; the request itself adds nothing but the error.
        return []
    code = result.status_code or 0
    found: list[Finding] = []
    if 200 <= code < 300:
        if code == platform.expected_status:
            found.append(make_finding(
                "http.ok", target, evidence=evidence,
                detail=f"{where} answered {result.status_line} in {result.total_seconds:.2f} s "
                       f"(first byte after {result.ttfb_seconds or 0:.2f} s)." + note))
        else:
            only_200 = not platform.is_success_status(code)
            found.append(make_finding(
                "http.non_200_success", target, evidence={**evidence, "assumption": "http.success"},
                severity=Severity.CRITICAL if only_200 else None,
                detail=f"{where} answered {result.status_line}: "
                       + ("the platform profile counts only " if only_200 else "assumed to count as success, but "
                          "the platform expects ") + f"{platform.expected_status}." + note,
                fix=f"Make the handler answer {platform.expected_status}."))
    elif 300 <= code < 400:
        location = result.header("location") or ""
        absolute, hint = redirect_hint(result.url, location) if location else ("", "no Location header")
        shown = shown_location(absolute)
        kind = redirect_kind(result.url, location)
        if kind == BEFORE_HANDLER:
            final = final_url(target, absolute) if absolute else ""
            found.append(make_finding(
                "http.redirect", target,
                evidence={**evidence, "location": shown_location(location), "absolute_location": shown,
                          "hint": hint, "kind": kind, **({"final_url": final} if final else {})},
                detail=f"{where} answered {result.status_line} to {shown or '(no Location)'} ({hint}): the same "
                       "resource under another address, so the web server or CDN answered before any handler ran. "
                       "The platform does not follow redirects" + (", and a redirect would drop the POST body."
                                                                  if result.method == "POST" else ".")
                       + " The post-sale's data never reaches the shop." + note,
                fix=f"Enter the final URL {final} in the back office." if final else
                    "Make the server answer the post-sale URL itself instead of redirecting (no Location was sent)."))
        else:
            severity = {None: Severity.WARNING, True: Severity.CRITICAL, False: Severity.INFO}[platform.redirect_fails]
            found.append(make_finding(
                "http.redirect_after_processing", target, severity=severity,
                evidence={**evidence, "location": shown_location(location), "absolute_location": shown,
                          "kind": kind, "assumption": "http.redirect_fails",
                          "redirect_fails": platform.redirect_fails},
                detail=f"{where} answered {result.status_line} to another page, {shown}: the handler ran and sends "
                       "the caller on, as Odoo's payment_ogone (303 to /payment/status) and Magento 1's Mage_Ogone "
                       "(302 to the checkout success page) do after processing a post-sale. "
                       + platform.describe(platform.assumption("http.redirect_fails")
                                           or _REDIRECT_ASSUMPTION) + note,
                fix="Keep the post-sale URL as it is: the redirect target is a page for the customer's browser, "
                    "not a post-sale URL. "
                    + ("Make the handler answer 200 to the post-sale (a redirect is taken to fail it here)."
                       if platform.redirect_fails else
                       "If PostFinance's transaction e-mails still say \"process error\", make the handler answer "
                       "200 to the post-sale instead of redirecting.")))
    elif code in (401, 407):
        challenge = result.header("www-authenticate") or result.header("proxy-authenticate") or ""
        found.append(make_finding(
            "http.auth_required", target, evidence={**evidence, "challenge": challenge},
            detail=f"{where} answered {result.status_line}{' (' + challenge + ')' if challenge else ''}: the path is "
                   "password-protected, and the platform sends no credentials." + note))
    elif code == 403:
        markers = waf_markers(result)
        detail = f"{where} answered {result.status_line}."
        if markers:
            detail += " The answer looks like a WAF/CDN block: " + "; ".join(markers) + "."
        else:
            detail += " Nothing in the answer names a WAF or CDN: an access rule (deny/allow list, " \
                      "mod_security, file permissions) on the server refuses it."
        found.append(make_finding("http.forbidden", target,
                                  evidence={**evidence, "waf_markers": markers, "body_excerpt": result.body_text(200)},
                                  detail=detail + note))
    elif code == 404:
        found.append(make_finding("http.not_found", target, evidence=evidence,
                                  detail=f"{where} answered {result.status_line} for {urlsplit(result.url).path}."
                                         + note))
    elif code == 405:
        allow = result.header("allow") or ""
        found.append(make_finding(
            "http.method_not_allowed", target, evidence={**evidence, "allow": allow},
            detail=f"{where} answered {result.status_line} to {result.method}"
                   f"{' (Allow: ' + allow + ')' if allow else ''}." + note))
    elif 400 <= code < 500:
        found.append(make_finding("http.client_error", target,
                                  evidence={**evidence, "body_excerpt": result.body_text(200)},
                                  detail=f"{where} answered {result.status_line}: "
                                         f"{result.body_text(120).strip() or '(empty body)'}." + note))
    elif code >= 500:
        found.append(make_finding("http.server_error", target,
                                  evidence={**evidence, "body_excerpt": result.body_text(200)},
                                  detail=f"{where} answered {result.status_line}: the handler fails. "
                                         f"{result.body_text(120).strip()}" + note))
    if platform.slow_seconds < result.total_seconds <= platform.budget_seconds:
        found.append(make_finding(
            "http.slow", target,
            evidence={**evidence, "slow_seconds": platform.slow_seconds, "assumption": "timing.slow_seconds"},
            detail=f"{where} took {result.total_seconds:.2f} s to answer (more than {platform.slow_seconds:g} s; "
                   f"budget {platform.budget_seconds:g} s)." + note))
    # A failing answer fails the post-sale anyway; only an accepted or redirecting one reaches the customer.
    if online and (300 <= code < 400 or (200 <= code < 300 and result.body.strip())):
        found.append(make_finding(
            "http.online_body_shown", target,
            evidence={**evidence, "body_excerpt": result.body_text(200), "content_type": result.header("content-type")},
            detail=f"With online timing the customer sees this answer instead of the accept page: "
                   f"{'a redirect' if 300 <= code < 400 else repr(result.body_text(80))}." + note))
    return found
