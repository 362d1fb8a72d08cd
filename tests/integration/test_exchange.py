"""The probe's own HTTP/1.1 exchange (feedback_check.probe.exchange) against real servers on 127.0.0.1:
framing, bounds, one connection per address, keep-alive reuse, deadlines, and the probe's total-time
bound against a server slow in every phase."""

from __future__ import annotations

import asyncio
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable

import pytest

from feedback_check.probe.exchange import ProtocolViolation, parse_head
from feedback_check.reporters.json import target_dict
from tests.servers.certs import TestPki
from tests.servers.http_servers import (
    PASSPHRASE,
    LoopbackServer,
    Request,
    Servers,
    codes,
    finding,
    read_request,
    run_probe,
    servers_fixture,  # noqa: F401 - the `servers` fixture
)


def raw(*messages: bytes, keep_open: float = 0.0) -> Callable[[socket.socket, LoopbackServer], None]:
    """Answers each request of the connection with the next message (then closes, or waits first)."""
    def behaviour(conn: socket.socket, server: LoopbackServer) -> None:
        for message in messages:
            request = read_request(conn)
            if request is None:
                return
            server.requests.append(request)
            conn.sendall(message)
        if keep_open:
            server.stopping.wait(keep_open)
    return behaviour


def keep_alive_app(status: int = 200, body: bytes = b"ok") -> Callable[[socket.socket, LoopbackServer], None]:
    """An HTTP/1.1 server that keeps the connection open between requests (as nginx and Apache do)."""
    def behaviour(conn: socket.socket, server: LoopbackServer) -> None:
        while True:
            request: Request | None = read_request(conn)
            if request is None:
                return
            server.requests.append(request)
            conn.sendall(f"HTTP/1.1 {status} OK\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)
    return behaviour


def test_chunked_body_with_extensions_and_trailers(servers: Servers) -> None:
    message = (b"HTTP/1.1 500 Internal Server Error\r\nTransfer-Encoding: chunked\r\nServer: t\r\n\r\n"
               b"5;ext=1\r\nFatal\r\n7\r\n error!\r\n0\r\nX-Trailer: yes\r\n\r\n")
    server = servers(raw(message))
    summary = run_probe(server.url("/feedback"), check_forgery=False)
    http = target_dict(summary)["addresses"][0]["http"]
    assert http["body_excerpt"] == "Fatal error!" and http["body_complete"] is True
    assert "http.server_error" in codes(summary)


def test_informational_answers_are_skipped(servers: Servers) -> None:
    server = servers(raw(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"))
    summary = run_probe(server.url("/feedback"), check_forgery=False)
    assert finding(summary, "http.ok").evidence["status_line"] == "HTTP/1.1 200 OK"


def test_close_delimited_body_is_complete_at_the_end_of_the_connection(servers: Servers) -> None:
    server = servers(raw(b"HTTP/1.0 403 Forbidden\r\nServer: x\r\n\r\nAccess denied by rule 7"))
    summary = run_probe(server.url("/feedback"), check_forgery=False)
    http = target_dict(summary)["addresses"][0]["http"]
    assert http["body_excerpt"] == "Access denied by rule 7" and http["body_complete"] is True
    assert finding(summary, "http.forbidden").evidence["status_line"] == "HTTP/1.0 403 Forbidden"


@pytest.mark.parametrize(("message", "words"), [
    (b"HTTP/1.1 200 OK\r\n" + b"X-Big: " + b"a" * 70_000 + b"\r\n\r\n", "larger than 64 KiB"),
    (b"HTTP/1.1 200 OK\r\n" + b"X-A: 1\r\n" * 300 + b"\r\n", "more than 200 header lines"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\nhello", "invalid Content-Length"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "invalid Content-Length"),
    (b"HTTP/1.1 200 OK\r\nbad header line\r\n\r\n", "malformed header line"),
    (b"HTTP/1.1 2000 OK\r\n\r\n", "not an HTTP status line"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "invalid chunk size"),
    (b"\x15\x03\x01\x00\x02\x02\x32", "not HTTP"),
])
def test_malformed_answers_are_protocol_errors(servers: Servers, message: bytes, words: str) -> None:
    server = servers(raw(message, keep_open=5))       # kept open: the verdict cannot wait for the close
    started = time.monotonic()
    summary = run_probe(server.url("/feedback"), check_forgery=False, budget=3)
    assert time.monotonic() - started < 2.5
    error = finding(summary, "http.protocol_error").evidence["error"]
    assert words in error


def test_tls_bytes_on_a_plain_port_are_recognised_in_the_error(servers: Servers) -> None:
    server = servers(raw(b"\x15\x03\x01\x00\x02\x02\x32"))
    found = finding(run_probe(server.url("/feedback"), check_forgery=False), "http.protocol_error")
    assert "\\x15\\x03" in found.evidence["error"]


def test_head_dripping_server_cannot_stretch_the_deadline(servers: Servers) -> None:
    def drip_head(conn: socket.socket, server: LoopbackServer) -> None:
        read_request(conn)
        for byte in b"HTTP/1.1 200 OK\r\n" + b"X-Slow: " + b"y" * 10_000:
            if server.stopping.wait(0.02):
                return
            conn.sendall(bytes([byte]))

    server = servers(drip_head)
    started = time.monotonic()
    summary = run_probe(server.url("/feedback"), budget=1)
    assert time.monotonic() - started < 3
    assert "http.timeout" in codes(summary)


def test_one_connection_per_address_and_the_forged_request_reuses_it(servers: Servers) -> None:
    server = servers(keep_alive_app())
    summary = run_probe(server.url("/feedback"))
    assert "signature.forgery_accepted" in codes(summary)
    assert len(server.requests) == 2
    assert server.connections == 1             # TCP phase, signed request and forged request: one connection
    timings = summary.timings
    assert timings["connect"] is not None and timings["ttfb"] is not None and timings["total"] is not None
    assert timings["connect"] <= timings["ttfb"] <= timings["total"]


def test_forged_request_on_a_new_connection_when_the_server_closes(servers: Servers) -> None:
    server = servers(raw(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"))   # answers once, then closes
    summary = run_probe(server.url("/feedback"))
    assert "signature.forgery_accepted" in codes(summary)
    assert len(server.requests) == 2 and server.connections == 2


def test_https_one_handshake_serves_the_tls_phase_and_the_request(servers: Servers, pki: TestPki) -> None:
    server = servers(keep_alive_app(), tls=pki.leaf("valid").server_context())
    summary = run_probe(server.url("/feedback"), ca_bundle=str(pki.ca_bundle))
    assert "http.ok" in codes(summary) and "signature.forgery_accepted" in codes(summary)
    address = target_dict(summary)["addresses"][0]
    assert address["http"]["verified"] is True and address["tls"]["certificates"]
    # An IP literal needs no SNI check: the verifying handshake is the only one, and both requests use it.
    assert server.connections == 1 and len(server.requests) == 2
    timings = summary.timings
    assert timings["connect"] + timings["tls"] <= timings["ttfb"] <= timings["total"]


def test_uvloop_runs_the_same_probe(servers: Servers) -> None:
    uvloop = pytest.importorskip("uvloop")
    from feedback_check.probe.loop import loop_factory

    assert loop_factory() is uvloop.new_event_loop
    server = servers(keep_alive_app())
    script = ("import sys; from tests.servers.http_servers import run_probe, codes; "
              "import feedback_check.probe.loop as l, asyncio; "
              "asyncio.run = lambda c: l.run(c); "
              f"print(' '.join(codes(run_probe({server.url('/feedback')!r}))))")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 0, out.stderr
    assert "http.ok" in out.stdout and "signature.forgery_accepted" in out.stdout


def test_parse_head_is_strict_and_keeps_folded_values() -> None:
    version, code, reason, headers = parse_head(b"HTTP/1.1 404 Not Found\r\nServer: a\r\n  b\r\nX-Y:z")
    assert (version, code, reason) == ("HTTP/1.1", 404, "Not Found")
    assert headers == (("Server", "a b"), ("X-Y", "z"))
    assert parse_head(b"HTTP/1.0 200")[2] == ""
    for bad in (b"HTTP/2 200 OK", b"ICY 200 OK", b"HTTP/1.1 200 OK\r\nNo Colon", b"HTTP/1.1 200 OK\r\nBad Name: x"):
        with pytest.raises(ProtocolViolation):
            parse_head(bad)


# --- the probe's total time -----------------------------------------------------------------------

def slow_everywhere(pki: TestPki, delay: float) -> Callable[[socket.socket, LoopbackServer], None]:
    """Slow in every phase: the TLS handshake starts late, the head comes late, the body drips."""
    context = pki.leaf("valid").server_context()

    def behaviour(conn: socket.socket, server: LoopbackServer) -> None:
        if server.stopping.wait(delay):
            return
        try:
            tls = context.wrap_socket(conn, server_side=True)
        except (ssl.SSLError, OSError):
            return
        with tls:
            read_request(tls)
            if server.stopping.wait(delay):
                return
            tls.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
            for _ in range(1000):
                if server.stopping.wait(delay / 4):
                    return
                tls.sendall(b"x")
    return behaviour


def test_probe_ends_within_the_documented_multiple_of_its_timeout(servers: Servers, pki: TestPki) -> None:
    """README, "Performance": `probe --timeout T` ends within 4 x T after DNS (a probe of an IP literal:
    4 x T), whatever the server does."""
    timeout = 1.0
    server = servers(slow_everywhere(pki, 0.4 * timeout))
    started = time.monotonic()
    out = subprocess.run([sys.executable, "-m", "feedback_check", "probe", server.url("/feedback", scheme="https"),
                          "--timeout", str(timeout), "--ca-bundle", str(pki.ca_bundle), "--format", "json",
                          "--passphrase-env", "FEEDBACK_CHECK_PASSPHRASE"],
                         capture_output=True, text=True, timeout=60, check=False,
                         env={"PATH": "/usr/bin:/bin", "FEEDBACK_CHECK_PASSPHRASE": PASSPHRASE})
    elapsed = time.monotonic() - started
    assert "http.timeout" in out.stdout, out.stdout + out.stderr
    assert elapsed < 4 * timeout + 1.5          # + interpreter start-up


def test_run_probe_uses_one_event_loop_per_call() -> None:
    # the lag meter is per loop: none is left behind by a finished run
    from feedback_check.probe import lag_meter

    async def inside() -> float:
        with lag_meter.running() as meter:
            await asyncio.sleep(0.05)
            return meter.worst_since(time.monotonic() - 1)

    assert asyncio.run(inside()) >= 0.0
    assert lag_meter._meters == {}


def test_an_echoed_passphrase_is_masked_where_the_answer_is_read(servers: Servers) -> None:
    from feedback_check.redact import MASK, Masker, masking

    echo = f"Invalid SHASIGN, expected with passphrase {PASSPHRASE}".encode()
    server = servers(raw(b"HTTP/1.1 400 Bad Request\r\nX-Debug: " + PASSPHRASE.encode() + b"\r\nContent-Length: "
                         + str(len(echo)).encode() + b"\r\n\r\n" + echo))
    with masking(Masker.from_secrets([PASSPHRASE])):
        summary = run_probe(server.url("/feedback"), check_forgery=False)
    http = target_dict(summary)["addresses"][0]["http"]
    assert PASSPHRASE not in http["body_excerpt"] and MASK in http["body_excerpt"]
    assert PASSPHRASE not in str(target_dict(summary)) and PASSPHRASE not in str([f.evidence for f in summary.findings])
