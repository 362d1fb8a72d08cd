"""TCP phase: can a connection be opened to one resolved address on the feedback port?

`connect` returns a frozen `ConnectResult` (never raises for a network outcome); `connect_findings`
turns a failed result into connect.refused / connect.timeout / connect.unreachable.
"""

from __future__ import annotations

import asyncio
import enum
import errno
import logging
import socket
import time
from dataclasses import dataclass
from typing import Any

from feedback_check.findings import Finding, make_finding

log = logging.getLogger(__name__)

_UNREACHABLE_ERRNOS = frozenset({errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EHOSTDOWN, errno.ENETDOWN,
                                 errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT})


class ConnectStatus(str, enum.Enum):
    OK = "ok"
    REFUSED = "refused"
    TIMEOUT = "timeout"
    UNREACHABLE = "unreachable"


@dataclass(frozen=True)
class ConnectResult:
    """Outcome of one TCP connection attempt."""

    address: str
    port: int
    status: ConnectStatus
    seconds: float
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.status is ConnectStatus.OK

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status.value, "seconds": round(self.seconds, 4), "error": self.error or None}


def classify_os_error(error: OSError) -> ConnectStatus:
    """The connect outcome an OSError from connect() stands for."""
    if isinstance(error, ConnectionRefusedError) or error.errno == errno.ECONNREFUSED:
        return ConnectStatus.REFUSED
    if isinstance(error, TimeoutError) or error.errno == errno.ETIMEDOUT:
        return ConnectStatus.TIMEOUT
    return ConnectStatus.UNREACHABLE


def describe_os_error(error: OSError) -> str:
    """'[Errno 111] Connection refused' style text, also for errors without a message."""
    if error.strerror:
        return f"[Errno {error.errno}] {error.strerror}" if error.errno is not None else error.strerror
    return str(error) or type(error).__name__


async def connect(address: str, port: int, *, timeout: float) -> ConnectResult:
    """Open (and close) one TCP connection to `address`:`port` within `timeout` seconds."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    started = time.monotonic()
    try:
        async with asyncio.timeout(timeout):
            _, writer = await asyncio.open_connection(address, port, family=family)
    except TimeoutError:
        return ConnectResult(address, port, ConnectStatus.TIMEOUT, time.monotonic() - started,
                             f"no answer within {timeout:g} s")
    except OSError as e:
        status = classify_os_error(e)
        if status is ConnectStatus.UNREACHABLE and e.errno not in _UNREACHABLE_ERRNOS:
            log.debug("connect to %s:%s failed with unexpected %r", address, port, e)
        return ConnectResult(address, port, status, time.monotonic() - started, describe_os_error(e))
    seconds = time.monotonic() - started
    writer.close()
    try:
        await writer.wait_closed()
    except OSError:
        pass
    return ConnectResult(address, port, ConnectStatus.OK, seconds)


def connect_findings(result: ConnectResult, target: str) -> list[Finding]:
    """connect.* findings for one failed attempt (none when it worked)."""
    where = f"{result.address} port {result.port}"
    evidence = {"address": result.address, "port": result.port, "error": result.error,
                "seconds": round(result.seconds, 3)}
    if result.status is ConnectStatus.REFUSED:
        return [make_finding(
            "connect.refused", target, evidence=evidence,
            detail=f"{where} answered the connection attempt with a reset ({result.error}): nothing listens "
                   "on that port, or a firewall rejects it.",
            fix=f"Make the web server listen on port {result.port} of {result.address} (check the virtual host "
                "and that the service runs), or correct the host's DNS record.")]
    if result.status is ConnectStatus.TIMEOUT:
        return [make_finding(
            "connect.timeout", target, evidence={**evidence, "assumption": "timing.budget_seconds"},
            detail=f"{where} did not answer the connection attempt ({result.error}): packets are dropped "
                   "(a firewall DROP rule, a security group, or the host is down).",
            fix=f"Check that the host is up and that every firewall on the path admits PostFinance's "
                f"published ranges on TCP port {result.port}.")]
    if result.status is ConnectStatus.UNREACHABLE:
        return [make_finding(
            "connect.unreachable", target, evidence=evidence,
            detail=f"There is no route to {where} ({result.error}).",
            fix="Check the address in DNS and the routing to it.")]
    return []
