"""The probe's own HTTP/1.1 exchange: one connection per resolved address, from connect to last byte.

One `Connection` serves the TCP phase (its connect), the TLS phase (its handshake) and then the
simulated post-sale request, so the phase timings come from one connection and add up. A follow-up
request (the forged signature, another method) reuses the connection when the server kept it alive.

The parser is small, strict and bounded, because the server may be hostile:
- the response head (status line and headers) at most `MAX_HEAD_BYTES`, at most `MAX_HEADERS` lines;
  anything that does not start like an HTTP/1.x status line is refused as soon as it arrives;
- the body framed by Transfer-Encoding: chunked, Content-Length or the end of the connection, and at
  most `max_body` bytes of it kept (the rest is not read; Content-Encoding is not decoded);
- one absolute deadline for the whole request, so a server dripping a byte at a time cannot stretch it.

Failures are exceptions of this module, one class per outcome (never told apart by message text):
`ConnectFailed` (with the errno-derived status), `TlsFailed`, `Timeout`, `ProtocolViolation`,
`ConnectionLost` (closed or reset before a complete answer). asyncio's own transports are used, so
uvloop works when installed (`feedback_check.probe.loop`).
"""

from __future__ import annotations

import asyncio
import re
import socket
import ssl
import time
from dataclasses import dataclass
from typing import Any

from feedback_check.probe.deadline import Budgets, Deadline

MAX_HEAD_BYTES = 64 * 1024
MAX_HEADERS = 200
MAX_INFORMATIONAL = 8             # 1xx answers skipped before the real one
MAX_CHUNK_LINE = 1024
_PAUSE_ABOVE = 256 * 1024         # stop reading from the socket while this much is unparsed
_HEAD_END = re.compile(rb"\r?\n\r?\n")
_STATUS_LINE = re.compile(rb"HTTP/(1\.[01]) ([0-9]{3})(?: ([^\r\n]*))?")
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


class ExchangeError(Exception):
    """A network outcome of the exchange (the caller classifies it by its class)."""


class ConnectFailed(ExchangeError):
    def __init__(self, error: OSError | None, text: str, *, timed_out: bool = False) -> None:
        super().__init__(text)
        self.os_error = error
        self.timed_out = timed_out


class TlsFailed(ExchangeError):
    def __init__(self, error: BaseException, text: str, *, timed_out: bool = False,
                 verification: bool = False) -> None:
        super().__init__(text)
        self.cause = error
        self.timed_out = timed_out
        self.verification = verification      # the certificate was refused (not the handshake itself)


class Timeout(ExchangeError):
    pass


class ProtocolViolation(ExchangeError):
    pass


class ConnectionLost(ExchangeError):
    pass


class _Wire(asyncio.Protocol):
    """Bytes from the socket into one buffer; the reader waits for more with `wait()`."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.eof = False
        self.error: BaseException | None = None
        self.transport: asyncio.Transport | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._paused = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if len(self.buffer) > _PAUSE_ABOVE and self.transport is not None and not self._paused:
            self._paused = True
            self.transport.pause_reading()
        self._wake()

    def eof_received(self) -> bool:
        self.eof = True
        self._wake()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.eof = True
        if exc is not None and self.error is None:
            self.error = exc
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def wait(self) -> None:
        """Until more bytes, the end of the stream or an error arrive."""
        if self._paused and self.transport is not None:
            self._paused = False
            self.transport.resume_reading()
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None


class Connection:
    """One TCP connection to one address, optionally upgraded to TLS."""

    def __init__(self, address: str, port: int, started: float) -> None:
        self.address = address
        self.port = port
        self.started = started              # monotonic time the connect began
        self.connect_seconds = 0.0
        self.tls_seconds: float | None = None
        self.ssl_object: ssl.SSLObject | None = None
        self.requests = 0                   # answered requests on this connection
        self.reusable = False               # the last answer left the connection open for another request
        self._wire = _Wire()
        self._transport: asyncio.Transport | None = None

    @property
    def open(self) -> bool:
        return self._transport is not None and not self._transport.is_closing() and not self._wire.eof

    async def start_tls(self, context: ssl.SSLContext, server_hostname: str | None, *,
                        deadline: Deadline) -> float:
        """The TLS handshake on this connection (raises TlsFailed); returns its duration. The deadline
        decides (asyncio's own handshake timeout is set later than the deadline, never at the same time)."""
        loop = asyncio.get_running_loop()
        assert self._transport is not None
        started = time.monotonic()
        try:
            async with deadline.timeout():
                transport = await loop.start_tls(self._transport, self._wire, context,
                                                 server_hostname=server_hostname,
                                                 ssl_handshake_timeout=max(Budgets.HANDSHAKE_FLOOR_SECONDS,
                                                                           deadline.at - started)
                                                 + Budgets.HANDSHAKE_SLACK_SECONDS)
        except TimeoutError as e:
            self.abort()
            raise TlsFailed(e, f"no handshake answer within {deadline.at - started:.1f} s", timed_out=True) from None
        except ssl.SSLCertVerificationError as e:
            self.abort()
            raise TlsFailed(e, describe_tls_error(e), verification=True) from None
        except (ssl.SSLError, OSError, EOFError) as e:
            self.abort()
            raise TlsFailed(e, describe_tls_error(e)) from None
        except BaseException:              # cancelled (a run deadline): no transport may outlive the loop
            self.abort()
            raise
        if transport is None:              # the loop gave the connection up during the handshake
            self.abort()
            raise TlsFailed(ConnectionResetError(), "the connection closed during the handshake")
        self._transport = transport  # type: ignore[assignment, unused-ignore]  # typeshed versions differ
        self.tls_seconds = time.monotonic() - started
        self.ssl_object = transport.get_extra_info("ssl_object")
        return self.tls_seconds

    def write(self, data: bytes) -> None:
        assert self._transport is not None
        self._transport.write(data)

    def abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()

    def close(self) -> None:
        """Close without waiting for the peer (an idle or finished connection)."""
        if self._transport is not None:
            if self.ssl_object is not None:
                self._transport.abort()    # no close_notify round trip: nothing more is read
            else:
                self._transport.close()


def describe_os_error(error: OSError) -> str:
    """'[Errno 111] Connection refused' style text, also for errors without a message."""
    if error.strerror:
        return f"[Errno {error.errno}] {error.strerror}" if error.errno is not None else error.strerror
    return str(error) or type(error).__name__


def describe_tls_error(error: BaseException) -> str:
    if isinstance(error, ssl.SSLError):
        return error.reason and f"{error.reason}: {error.strerror or error}" or str(error)
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


async def open_connection(address: str, port: int, *, deadline: Deadline) -> Connection:
    """A TCP connection to `address`:`port`, established before `deadline` (raises ConnectFailed)."""
    loop = asyncio.get_running_loop()
    connection = Connection(address, port, time.monotonic())
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    try:
        async with deadline.timeout():
            transport, _ = await loop.create_connection(lambda: connection._wire, address, port, family=family)
    except TimeoutError:
        raise ConnectFailed(None, f"no answer within {deadline.at - connection.started:g} s",
                            timed_out=True) from None
    except OSError as e:
        raise ConnectFailed(e, describe_os_error(e)) from None
    connection._transport = transport
    connection.connect_seconds = time.monotonic() - connection.started
    sock = transport.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
    return connection


# --- requests and answers -------------------------------------------------------------------------

def request_bytes(method: str, target: str, headers: list[tuple[str, str]], body: bytes) -> bytes:
    """The request message (latin-1 head; header values were checked by their makers)."""
    head = f"{method} {target} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers) + "\r\n"
    return head.encode("latin-1") + body


@dataclass(slots=True)
class Answer:
    """What arrived so far for one request (filled in while reading, also when it then fails)."""

    status_code: int | None = None
    reason: str = ""
    http_version: str = ""
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    body_complete: bool = False
    head_at: float | None = None          # monotonic time the head was complete
    keep_alive: bool = False


def parse_head(head: bytes) -> tuple[str, int, str, tuple[tuple[str, str], ...]]:
    """(version, status code, reason, headers) of a response head without its blank line."""
    lines = head.replace(b"\r\n", b"\n").split(b"\n")
    match = _STATUS_LINE.fullmatch(lines[0])
    if match is None:
        raise ProtocolViolation(f"not an HTTP status line: {lines[0][:80]!r}")
    if len(lines) - 1 > MAX_HEADERS:
        raise ProtocolViolation(f"more than {MAX_HEADERS} header lines")
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        if line[:1] in (b" ", b"\t") and headers:        # obsolete line folding: part of the previous value
            previous, text = headers[-1]
            headers[-1] = (previous, f"{text} {line.strip().decode('latin-1')}")
            continue
        name, colon, value = line.partition(b":")
        if not colon or _TOKEN.fullmatch(name) is None:
            raise ProtocolViolation(f"malformed header line: {line[:80]!r}")
        headers.append((name.decode("ascii"), value.strip(b" \t").decode("latin-1")))
    version = "HTTP/" + match.group(1).decode()
    return version, int(match.group(2)), (match.group(3) or b"").decode("latin-1").strip(), tuple(headers)


def _framing(version: str, code: int, headers: tuple[tuple[str, str], ...],
             method: str) -> tuple[str, int, bool]:
    """('none'|'chunked'|'length'|'close', content length, keep-alive) of an answer."""
    lengths: set[str] = set()
    encodings: list[str] = []
    connection_tokens: set[str] = set()
    for name, value in headers:
        lowered = name.lower()
        if lowered == "content-length":
            lengths.update(v.strip() for v in value.split(","))
        elif lowered == "transfer-encoding":
            encodings += [v.strip().lower() for v in value.split(",") if v.strip()]
        elif lowered == "connection":
            connection_tokens.update(v.strip().lower() for v in value.split(","))
    keep_alive = "close" not in connection_tokens and (version == "HTTP/1.1" or "keep-alive" in connection_tokens)
    if method == "HEAD" or code in (204, 304) or 100 <= code < 200:
        return "none", 0, keep_alive
    if encodings:
        if encodings[-1] == "chunked":
            return "chunked", 0, keep_alive and not lengths
        return "close", 0, False
    if lengths:
        if len(lengths) != 1 or not next(iter(lengths)).isdigit() or len(next(iter(lengths))) > 18:
            raise ProtocolViolation(f"invalid Content-Length: {', '.join(sorted(lengths))[:80]}")
        return "length", int(next(iter(lengths))), keep_alive
    return "close", 0, False


async def exchange(connection: Connection, message: bytes, answer: Answer, *, method: str, deadline: Deadline,
                   max_body: int) -> None:
    """Send `message` and read the answer into `answer` until `deadline` (raises an ExchangeError;
    `answer` then holds what had arrived)."""
    try:
        async with deadline.timeout():
            connection.write(message)
            await _read_answer(connection._wire, answer, method, max_body)
    except TimeoutError:
        connection.abort()
        raise Timeout("the deadline passed before the answer was complete") from None
    except ExchangeError:
        connection.abort()
        raise
    except (OSError, ssl.SSLError) as e:      # a write into a connection the peer has reset
        connection.abort()
        raise ConnectionLost(describe_tls_error(e)) from None
    except BaseException:                     # cancelled (a run deadline): no transport may outlive the loop
        connection.abort()
        raise
    connection.requests += 1
    connection.reusable = answer.keep_alive and answer.body_complete and connection.open
    if not connection.reusable:
        connection.close()


def _lost(wire: _Wire, what: str) -> ExchangeError:
    error = wire.error
    if isinstance(error, (ConnectionResetError, ssl.SSLError, OSError)):
        return ConnectionLost(f"{what}: {describe_tls_error(error)}")
    return ConnectionLost(what)


async def _read_answer(wire: _Wire, answer: Answer, method: str, max_body: int) -> None:
    buffer = wire.buffer
    informational = 0
    while True:
        found = _HEAD_END.search(buffer)
        if found is None:
            if buffer and not b"HTTP/".startswith(bytes(buffer[:5])):
                first = bytes(buffer[:80]).split(b"\n", 1)[0]
                raise ProtocolViolation(f"the answer is not HTTP: {first!r}")
            if len(buffer) > MAX_HEAD_BYTES:
                raise ProtocolViolation(f"the answer's head is larger than {MAX_HEAD_BYTES // 1024} KiB")
            if wire.eof:
                if not buffer:
                    raise _lost(wire, "the server closed the connection without sending a response")
                raise ProtocolViolation(f"the connection closed in the middle of the answer's head "
                                        f"({len(buffer)} bytes)")
            await wire.wait()
            continue
        if found.start() > MAX_HEAD_BYTES:
            raise ProtocolViolation(f"the answer's head is larger than {MAX_HEAD_BYTES // 1024} KiB")
        head = bytes(buffer[:found.start()])
        del buffer[:found.end()]
        version, code, reason, headers = parse_head(head)
        if 100 <= code < 200:
            informational += 1
            if informational > MAX_INFORMATIONAL or code == 101:
                raise ProtocolViolation(f"unexpected informational answer {code}")
            continue
        answer.http_version, answer.status_code, answer.reason, answer.headers = version, code, reason, headers
        answer.head_at = time.monotonic()
        break
    framing, length, keep_alive = _framing(answer.http_version, code, headers, method)
    kept = bytearray()
    if framing == "none":
        answer.body_complete = True
    elif framing == "length":
        await _read_length(wire, kept, length, max_body, answer)
    elif framing == "chunked":
        await _read_chunked(wire, kept, max_body, answer)
    else:
        await _read_to_close(wire, kept, max_body, answer)
        keep_alive = False
    answer.body = bytes(kept)
    answer.keep_alive = keep_alive and answer.body_complete and not buffer


def _keep(kept: bytearray, data: bytes | bytearray, max_body: int) -> bool:
    """Append what still fits; False once the bound is reached."""
    room = max_body - len(kept)
    if room > 0:
        kept += data[:room]
    return len(kept) < max_body


async def _read_length(wire: _Wire, kept: bytearray, length: int, max_body: int, answer: Answer) -> None:
    buffer = wire.buffer
    remaining = length
    while remaining:
        if buffer:
            take = min(remaining, len(buffer))
            room = _keep(kept, buffer[:take], max_body)
            del buffer[:take]
            remaining -= take
            if not room and remaining:
                answer.body = bytes(kept)
                return                   # more is announced than the probe reads
            continue
        if wire.eof:
            answer.body = bytes(kept)
            if isinstance(wire.error, (ConnectionResetError, ssl.SSLError)):
                raise _lost(wire, f"reset after {length - remaining} of {length} body bytes")
            raise ProtocolViolation(f"peer closed connection without sending complete message body: "
                                    f"received {length - remaining} bytes, expected {length}")
        await wire.wait()
    answer.body_complete = True


async def _line(wire: _Wire, what: str) -> bytes:
    buffer = wire.buffer
    while True:
        end = buffer.find(b"\n")
        if end >= 0:
            line = bytes(buffer[:end]).rstrip(b"\r")
            del buffer[:end + 1]
            return line
        if len(buffer) > MAX_CHUNK_LINE:
            raise ProtocolViolation(f"{what} longer than {MAX_CHUNK_LINE} bytes")
        if wire.eof:
            raise ProtocolViolation(f"the connection closed in the middle of the chunked body ({what})")
        await wire.wait()


async def _read_chunked(wire: _Wire, kept: bytearray, max_body: int, answer: Answer) -> None:
    buffer = wire.buffer
    while True:
        size_line = await _line(wire, "a chunk size line")
        size_text = size_line.split(b";", 1)[0].strip()
        if not size_text or len(size_text) > 16 or any(c not in b"0123456789abcdefABCDEF" for c in size_text):
            raise ProtocolViolation(f"invalid chunk size line: {size_line[:40]!r}")
        size = int(size_text, 16)
        if size == 0:
            for _ in range(MAX_HEADERS):
                if not await _line(wire, "a trailer line"):
                    answer.body_complete = True
                    return
            raise ProtocolViolation(f"more than {MAX_HEADERS} trailer lines")
        remaining = size
        while remaining:
            if buffer:
                take = min(remaining, len(buffer))
                room = _keep(kept, buffer[:take], max_body)
                del buffer[:take]
                remaining -= take
                if not room:
                    answer.body = bytes(kept)
                    return
                continue
            if wire.eof:
                answer.body = bytes(kept)
                raise ProtocolViolation("the connection closed in the middle of a chunk")
            await wire.wait()
        if await _line(wire, "the end of a chunk"):
            raise ProtocolViolation("a chunk is longer than its announced size")


async def _read_to_close(wire: _Wire, kept: bytearray, max_body: int, answer: Answer) -> None:
    buffer = wire.buffer
    while True:
        if buffer:
            room = _keep(kept, buffer, max_body)
            buffer.clear()
            if not room:
                answer.body = bytes(kept)
                return
            continue
        if wire.eof:
            answer.body = bytes(kept)
            if isinstance(wire.error, (ConnectionResetError, ssl.SSLError)):
                raise _lost(wire, "reset before the end of the body")
            answer.body_complete = True
            return
        await wire.wait()


def ssl_details(connection: Connection) -> dict[str, Any]:
    """Negotiated version and cipher of a TLS connection (empty for plain TCP)."""
    ssl_object = connection.ssl_object
    if ssl_object is None:
        return {}
    cipher = ssl_object.cipher()
    return {"version": ssl_object.version(), "cipher": cipher[0] if cipher else None}
