"""HTTP phase: the simulated post-sale request sent to one resolved address, and what came back.

The request goes to THAT address while the URL's host name is used for the Host header, SNI and
certificate verification (the probe's own HTTP/1.1 exchange, feedback_check.probe.exchange). Redirects
are never followed. At most `platform.max_body_bytes` of the answer are read. One deadline (the platform's
budget) covers the whole request, from connect to last byte, also against a server that drips one byte
at a time.

`send_post_sale` returns a frozen `HttpResult` (never raises for a network outcome);
feedback_check.diagnosis.http classifies it per findings.md.
"""

from __future__ import annotations

import enum
import logging
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import SplitResult, urljoin, urlsplit

from feedback_check import __version__
from feedback_check.platform import Platform
from feedback_check.probe import lag_meter
from feedback_check.probe.deadline import Deadline
from feedback_check.probe.exchange import (
    Answer,
    ConnectFailed,
    Connection,
    ConnectionLost,
    ExchangeError,
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
    #: A protocol error on bytes that look like a TLS record (the port speaks TLS).
    tls_bytes: bool = False

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
    started = time.monotonic()
    request = _Request(method, url, address, verified, request_bytes(method, target, request_headers, body),
                       Deadline.after(budget, start=started) if deadline is None else deadline, started)
    reused = connection is not None and connection.requests > 0
    if connection is not None and not reused:
        request.count(connection)
    try:
        try:
            connection = await request.exchange_on(connection, parts, ssl_context, max_body_bytes)
        except ConnectionLost:
            # A kept-alive connection the server closed meanwhile: once more on a new one.
            if not reused or request.answer.status_code is not None:
                raise
            connection = await request.exchange_on(None, parts, ssl_context, max_body_bytes)
    except ExchangeError as e:
        failure = _FAILURES.get(type(e))
        if failure is None:
            raise
        status, error = failure(e, budget)
        return request.result(status, error, isinstance(e, ProtocolViolation) and e.tls_bytes)
    if connection.reusable:
        (on_idle or Connection.close)(connection)
    return request.result(HttpStatus.ANSWERED)


class _Request:
    """One request's state while it is sent: the answer so far, and the connection whose connect (and
    handshake) its timings include (`counted`, None on a reused connection) with their origin."""

    __slots__ = ("address", "answer", "counted", "deadline", "message", "method", "origin", "url", "verified")

    def __init__(self, method: str, url: str, address: str, verified: bool, message: bytes, deadline: Deadline,
                 started: float) -> None:
        self.method, self.url, self.address, self.verified = method, url, address, verified
        self.message, self.deadline = message, deadline
        self.answer = Answer()
        self.counted: Connection | None = None
        self.origin = started

    def count(self, connection: Connection) -> None:
        self.counted, self.origin = connection, connection.started

    async def exchange_on(self, connection: Connection | None, parts: SplitResult,
                          ssl_context: ssl.SSLContext | None, max_body: int) -> Connection:
        """Send on `connection`, or on a new one to the address and the port of the URL (`parts`), upgraded
        with `ssl_context` (SNI: the URL's host)."""
        if connection is None:
            connection = await open_connection(self.address, url_port(parts) or 443, deadline=self.deadline)
            self.count(connection)
            if ssl_context is not None:
                await connection.start_tls(ssl_context, parts.hostname, deadline=self.deadline)
        await exchange(connection, self.message, self.answer, method=self.method, deadline=self.deadline,
                       max_body=max_body)
        return connection

    def result(self, status: HttpStatus, error: str = "", tls_bytes: bool = False) -> HttpResult:
        # What the server sent is masked here, where it is read (the run's secrets: redact.masking).
        answer, counted, origin = self.answer, self.counted, self.origin
        mask = active_masker()
        reason, headers, body = answer.reason, answer.headers, answer.body
        if mask:
            reason, error = mask.mask(reason), mask.mask(error)
            headers = tuple((mask.mask(k), mask.mask(v)) for k, v in headers)
            body = mask.mask_bytes(body)
        return HttpResult(
            method=self.method, url=self.url, address=self.address, status=status, verified=self.verified,
            status_code=answer.status_code, reason=reason, http_version=answer.http_version,
            headers=headers, body=body, body_complete=answer.body_complete,
            connect_seconds=counted.connect_seconds if counted is not None else None,
            tls_seconds=counted.tls_seconds if counted is not None else None,
            ttfb_seconds=None if answer.head_at is None else answer.head_at - origin,
            total_seconds=time.monotonic() - origin, error=error,
            loop_lag_seconds=lag_meter.worst_since(origin), tls_bytes=tls_bytes)


def _connect_failed(error: Any, budget: float) -> tuple[HttpStatus, str]:
    if error.timed_out:
        return HttpStatus.TIMEOUT, f"the whole request did not finish within {budget:g} s (connect)"
    return HttpStatus.CONNECT_FAILED, str(error)


def _tls_failed(error: Any, budget: float) -> tuple[HttpStatus, str]:
    if error.timed_out:
        return HttpStatus.TIMEOUT, f"the whole request did not finish within {budget:g} s (TLS handshake)"
    return HttpStatus.TLS_FAILED, str(error)


#: The outcome of a request the exchange ended with an error, by the error's class (and its cause).
_FAILURES: dict[type[ExchangeError], Callable[[Any, float], tuple[HttpStatus, str]]] = {
    ConnectFailed: _connect_failed,
    TlsFailed: _tls_failed,
    Timeout: lambda error, budget: (HttpStatus.TIMEOUT, f"the whole request did not finish within {budget:g} s"),
    ProtocolViolation: lambda error, budget: (HttpStatus.PROTOCOL_ERROR, str(error)),
    ConnectionLost: lambda error, budget: (HttpStatus.CONNECTION_RESET, str(error)),
}


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
