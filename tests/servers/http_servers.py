"""Real HTTP and HTTPS servers on 127.0.0.1 (threads in the test process), good and hostile.

Every server is a `LoopbackServer`: a listening socket, one thread per connection, an optional TLS
server context, and a *behaviour* - a function given the (possibly TLS-wrapped) connection. Behaviours:

- `app(routes)`: a small HTTP/1.1 server; `routes` maps a path to a function Request -> Response.
  Ready-made routes: `answer(status, body, headers, delay)`, `redirect(location)`, `waf_403()`,
  `only_method(method)`, and `ShaOutVerifier` - a recording endpoint that checks the received SHA-OUT
  signature INDEPENDENTLY (its own hashlib code and its own copy of the parameter list, never
  feedback_check.signature) and answers 200 or 4xx accordingly.
- `never_answers`, `resets`, `closes_silently`, `garbage`, `truncated`, `drips(interval)`.

Also: `refusing_port()` (nothing listens), `BlackholeServer` (SYNs are dropped: the accept queue is
full, so connect() times out), and `tls_versions_available()` for TLS 1.0/1.1 servers.

    with LoopbackServer(app({"/feedback": answer(200)})) as server:
        server.url("/feedback")            # http://127.0.0.1:PORT/feedback
"""

from __future__ import annotations

import hashlib
import socket
import ssl
import struct
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Self
from urllib.parse import parse_qsl, urlsplit

import pytest

#: The SHA-OUT parameter list of platform.md §3, copied here on purpose (independent of config/).
SHA_OUT_LIST = frozenset(["AAVADDRESS", "AAVCHECK", "AAVMAIL", "AAVNAME", "AAVPHONE", "AAVZIP", "ACCEPTANCE", "ALIAS", "AMOUNT", "BIC", "BIN", "BRAND", "CARDNO", "CCCTY", "CN", "COLLECTOR_BIC", "COLLECTOR_IBAN", "COMPLUS", "CREATION_STATUS", "CREDITDEBIT", "CURRENCY", "CVCCHECK", "DCC_COMMPERCENTAGE", "DCC_CONVAMOUNT", "DCC_CONVCCY", "DCC_EXCHRATE", "DCC_EXCHRATESOURCE", "DCC_EXCHRATETS", "DCC_INDICATOR", "DCC_MARGINPERCENTAGE", "DCC_VALIDHOURS", "DEVICEID", "DIGESTCARDNO", "ECI", "ED", "EMAIL", "ENCCARDNO", "FXAMOUNT", "FXCURRENCY", "IP", "IPCTY", "MANDATEID", "MOBILEMODE", "NBREMAILUSAGE", "NBRIPUSAGE", "NBRIPUSAGE_ALLTX", "NBRUSAGE", "NCERROR", "ORDERID", "PAYID", "PAYIDSUB", "PAYMENT_REFERENCE", "PM", "SCO_CATEGORY", "SCORING", "SEQUENCETYPE", "SIGNDATE", "STATUS", "SUBBRAND", "SUBSCRIPTION_ID", "TICKET", "TRXDATE", "VC"])

Behaviour = Callable[[socket.socket, "LoopbackServer"], None]


@dataclass
class Request:
    method: str
    target: str
    version: str
    headers: dict[str, str]          # lower-case names
    body: bytes

    @property
    def path(self) -> str:
        return urlsplit(self.target).path

    @property
    def query(self) -> str:
        return urlsplit(self.target).query


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    reason: str = ""
    delay: float = 0.0


class LoopbackServer:
    """A TCP server on 127.0.0.1 (or ::1) running `behaviour` for each connection, optionally over TLS."""

    def __init__(self, behaviour: Behaviour, *, tls: ssl.SSLContext | None = None, host: str = "127.0.0.1") -> None:
        self.behaviour = behaviour
        self.tls = tls
        self.host = host
        self.stopping = threading.Event()
        self.requests: list[Request] = []
        self.connections = 0
        self.handshake_errors: list[str] = []
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, 0))
        self.sock.listen(64)
        self.sock.settimeout(0.2)
        self.port: int = self.sock.getsockname()[1]
        self._threads: list[threading.Thread] = []
        self._accept = threading.Thread(target=self._loop, name=f"loopback-{self.port}", daemon=True)

    def url(self, path: str = "/", *, host: str | None = None, scheme: str | None = None) -> str:
        scheme = scheme or ("https" if self.tls else "http")
        name = host or (f"[{self.host}]" if ":" in self.host else self.host)
        return f"{scheme}://{name}:{self.port}{path}"

    def start(self) -> Self:
        self._accept.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self._accept.join(timeout=5)
        for thread in self._threads:
            thread.join(timeout=5)
        self.sock.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _loop(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            self.connections += 1
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(10)
        try:
            if self.tls is not None:
                try:
                    conn = self.tls.wrap_socket(conn, server_side=True)
                except (ssl.SSLError, OSError) as e:
                    self.handshake_errors.append(str(e))
                    return
            self.behaviour(conn, self)
        except OSError:
            pass
        finally:
            try:
                conn.close()
            except OSError:
                pass


# --- reading requests ------------------------------------------------------------------------------

def read_request(conn: socket.socket) -> Request | None:
    """One HTTP/1.1 request (headers and a Content-Length body), or None if the client went away."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        data += chunk
        if not data[:1].isalpha():
            # Like nginx or Apache, answer something that is not HTTP (e.g. a TLS ClientHello) at once.
            write_response(conn, Response(400, b"<h1>400 Bad Request</h1>"))
            return None
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method, target, version = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0") or 0)
    while len(rest) < length:
        chunk = conn.recv(65536)
        if not chunk:
            break
        rest += chunk
    return Request(method, target, version, headers, rest[:length])


def write_response(conn: socket.socket, response: Response) -> None:
    if response.delay:
        time.sleep(response.delay)
    reason = response.reason or {200: "OK", 201: "Created", 204: "No Content", 301: "Moved Permanently",
                                 302: "Found", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden",
                                 404: "Not Found", 405: "Method Not Allowed", 500: "Internal Server Error",
                                 503: "Service Unavailable"}.get(response.status, "Status")
    headers = {"Content-Length": str(len(response.body)), "Connection": "close", **response.headers}
    head = f"HTTP/1.1 {response.status} {reason}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    conn.sendall(head.encode("latin-1") + b"\r\n" + response.body)


# --- behaviours -----------------------------------------------------------------------------------

Route = Callable[[Request], Response]


def app(routes: Mapping[str, Route]) -> Behaviour:
    """A tiny HTTP server: the route for the request's path (404 otherwise); records every request."""
    def behaviour(conn: socket.socket, server: LoopbackServer) -> None:
        request = read_request(conn)
        if request is None:
            return
        server.requests.append(request)
        route = routes.get(request.path)
        write_response(conn, route(request) if route else Response(404, b"<h1>Not Found</h1>",
                                                                    {"Content-Type": "text/html"}))
    return behaviour


def answer(status: int, body: bytes = b"", headers: Mapping[str, str] | None = None, delay: float = 0.0) -> Route:
    return lambda request: Response(status, body, dict(headers or {}), delay=delay)


def redirect(location: str, status: int = 301) -> Route:
    return answer(status, b"", {"Location": location})


def waf_403() -> Route:
    """What a Cloudflare challenge looks like to a server-to-server client."""
    body = (b"<!DOCTYPE html><html><head><title>Attention Required! | Cloudflare</title></head>"
            b"<body>Sorry, you have been blocked. Cloudflare Ray ID: 8c1f0e7d9a</body></html>")
    return answer(403, body, {"Server": "cloudflare", "CF-RAY": "8c1f0e7d9a-ZRH", "Content-Type": "text/html"})


def only_method(method: str, inner: Route | None = None) -> Route:
    """405 with an Allow header for any other method."""
    def route(request: Request) -> Response:
        if request.method != method:
            return Response(405, b"", {"Allow": method})
        return inner(request) if inner else Response(200)
    return route


def never_answers(conn: socket.socket, server: LoopbackServer) -> None:
    """Accepts (and completes TLS, if any) and never says a word."""
    while not server.stopping.wait(0.05):
        pass


def resets(conn: socket.socket, server: LoopbackServer) -> None:
    """Reads the request, then resets the connection (RST, SO_LINGER 0)."""
    read_request(conn)
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()


def closes_silently(conn: socket.socket, server: LoopbackServer) -> None:
    """Reads the request, then closes without a byte."""
    read_request(conn)


def garbage(conn: socket.socket, server: LoopbackServer) -> None:
    read_request(conn)
    conn.sendall(b"SSH-2.0-OpenSSH_9.6 garbage that is not HTTP\r\n\r\n")


def truncated(conn: socket.socket, server: LoopbackServer) -> None:
    """Announces 100 bytes of body, sends 5 and closes."""
    read_request(conn)
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\nConnection: close\r\n\r\nhello")


def drips(interval: float) -> Behaviour:
    """Sends a valid answer one byte every `interval` seconds (far past any test budget)."""
    def behaviour(conn: socket.socket, server: LoopbackServer) -> None:
        read_request(conn)
        message = b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"x" * 100000
        for byte in message:
            if server.stopping.wait(interval):
                return
            conn.sendall(bytes([byte]))
    return behaviour


# --- the SHA-OUT verifying endpoint ---------------------------------------------------------------

class ShaOutVerifier:
    """A post-sale handler that checks SHASIGN on its own: hashlib, its own parameter list.

    Answers `ok_status` (with `ok_body`) when the signature matches, else 400 with `reject_body`.
    `method` limits the accepted method (others get `wrong_method_status`, like a handler that reads
    only the query string or only the form body and so sees no parameters). Every received parameter
    list is kept in `received`."""

    def __init__(self, passphrase: str, *, algorithm: str = "sha512", encoding: str = "utf-8",
                 wire_encoding: str | None = None, method: str | None = None, ok_status: int = 200, ok_body: bytes = b"",
                 reject_body: bytes = b"invalid SHASIGN", wrong_method_status: int = 400,
                 sha_out_list: frozenset[str] = SHA_OUT_LIST) -> None:
        self.passphrase = passphrase
        self.algorithm = algorithm
        self.encoding = encoding                  # what the hashed string is encoded in
        self.wire_encoding = wire_encoding or encoding   # how the received bytes are decoded
        self.method = method
        self.ok_status = ok_status
        self.ok_body = ok_body
        self.reject_body = reject_body
        self.wrong_method_status = wrong_method_status
        self.sha_out_list = sha_out_list
        self.received: list[list[tuple[str, str]]] = []
        self.verdicts: list[bool] = []

    def expected(self, pairs: list[tuple[str, str]]) -> str:
        kept = sorted((name.upper(), value) for name, value in pairs
                      if name.upper() in self.sha_out_list and value != "")
        text = "".join(f"{name}={value}{self.passphrase}" for name, value in kept)
        return hashlib.new(self.algorithm, text.encode(self.encoding, "replace")).hexdigest().upper()

    def __call__(self, request: Request) -> Response:
        if self.method is not None and request.method != self.method:
            return Response(self.wrong_method_status, b"missing parameter orderID")
        source = request.query if request.method == "GET" else request.body.decode("ascii", "replace")
        pairs = parse_qsl(source, keep_blank_values=True, encoding=self.wire_encoding, errors="replace")
        self.received.append(pairs)
        received = next((v for k, v in pairs if k.upper() == "SHASIGN"), "")
        good = received.upper() == self.expected([(k, v) for k, v in pairs if k.upper() != "SHASIGN"])
        self.verdicts.append(good)
        if good:
            return Response(self.ok_status, self.ok_body, {"Content-Type": "text/html"} if self.ok_body else {})
        return Response(400, self.reject_body, {"Content-Type": "text/plain"})


# --- network oddities ----------------------------------------------------------------------------

def refusing_port(host: str = "127.0.0.1") -> int:
    """A port on which nothing listens (bound, then closed): connect() gets a RST."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class BlackholeServer:
    """A listening socket whose accept queue is full: further SYNs are dropped, connect() times out."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(0)
        self.port = int(self.sock.getsockname()[1])
        self._fillers: list[socket.socket] = []
        for _ in range(2):
            filler = socket.socket()
            filler.setblocking(False)
            try:
                filler.connect(("127.0.0.1", self.port))
            except BlockingIOError:
                pass
            self._fillers.append(filler)
        time.sleep(0.05)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        for filler in self._fillers:
            filler.close()
        self.sock.close()


def tls_versions_available(*versions: ssl.TLSVersion) -> bool:
    """Whether this Python/OpenSSL can still serve these (old) versions at security level 0."""
    flags = {ssl.TLSVersion.TLSv1: ssl.HAS_TLSv1, ssl.TLSVersion.TLSv1_1: ssl.HAS_TLSv1_1}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            for version in versions:
                context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
                context.set_ciphers("ALL:@SECLEVEL=0")
                context.minimum_version = version
                context.maximum_version = version
        except (ValueError, ssl.SSLError):
            return False
    return all(flags.get(v, True) for v in versions)


def weak_cipher_available() -> str | None:
    """A weak cipher this OpenSSL can still serve at TLS 1.2 (3DES, else a NULL cipher), or None."""
    for cipher in ("DES-CBC3-SHA", "ECDHE-ECDSA-DES-CBC3-SHA", "ECDHE-ECDSA-NULL-SHA"):
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        try:
            context.set_ciphers(f"{cipher}:@SECLEVEL=0")
            return cipher
        except ssl.SSLError:
            continue
    return None


@dataclass
class Servers:
    """Starts servers for one test and stops them all afterwards (the `servers` fixture)."""

    started: list[Any] = field(default_factory=list)

    def __call__(self, behaviour: Behaviour, *, tls: ssl.SSLContext | None = None,
                 host: str = "127.0.0.1") -> LoopbackServer:
        server = LoopbackServer(behaviour, tls=tls, host=host).start()
        self.started.append(server)
        return server

    def stop_all(self) -> None:
        for server in self.started:
            server.stop()


@pytest.fixture(name="servers")
def servers_fixture() -> Iterator[Servers]:
    """Start loopback servers: `servers(behaviour, tls=...)`; all stop after the test."""
    servers = Servers()
    try:
        yield servers
    finally:
        servers.stop_all()


# --- running the probe against these servers ------------------------------------------------------

PASSPHRASE = "Integration-Sha0ut-Passphrase-91!"


def run_probe(url: str, *, passphrase: str | None = PASSPHRASE, method: str = "POST", timing: str = "always_deferred",
              algorithm: str = "SHA-512", encoding: str = "UTF-8", ca_bundle: str | None = None, budget: float = 2.0,
              platform: Any = None, resolvers: tuple[str, ...] = (), check_forgery: bool = True,
              try_other_method: bool = True, role: str = "accepted", test_passphrase: str | None = None,
              test_order: tuple[tuple[str, str], ...] = (), parameters: tuple[str, ...] | None = None,
              replay: tuple[tuple[str, str], ...] | None = None) -> Any:
    """probe_url on `url` with a small budget; returns the TargetSummary."""
    import asyncio

    from feedback_check.platform import load_platform
    from feedback_check.probe.probe import ProbeRequest, ProbeSettings, probe_url
    from feedback_check.profile import Secret, SignatureSettings

    platform = platform or load_platform()
    signature = SignatureSettings(algorithm, encoding, Secret(passphrase, "test") if passphrase else None,
                                  Secret(test_passphrase, "test TEST") if test_passphrase else None)
    request = ProbeRequest(shop="test-shop", role=role, url=url, method=method, timing=timing, paramvar=None,
                           parameters=parameters or platform.default_parameters, signature=signature,
                           order_prefix=platform.test_order_prefix, test_order=test_order, replay=replay,
                           replay_origin="capture.txt" if replay is not None else "")
    settings = ProbeSettings(resolvers=resolvers, ca_bundle=ca_bundle, budget_seconds=budget,
                             check_forgery=check_forgery, try_other_method=try_other_method)
    return asyncio.run(probe_url(request, platform, settings))


def codes(summary: Any) -> list[str]:
    return [f.code for f in summary.findings]


def finding(summary: Any, code: str) -> Any:
    matches = [f for f in summary.findings if f.code == code]
    assert matches, f"no {code} in {codes(summary)}"
    return matches[0]
