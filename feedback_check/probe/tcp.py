"""TCP phase: can a connection be opened to one resolved address on the feedback port?

The connect itself is the first step of the probe's one connection per address
(feedback_check.probe.exchange.open_connection); this module says what its outcome means:
`ConnectResult`, and `connect_findings` for connect.refused / connect.timeout / connect.unreachable.
"""

from __future__ import annotations

import enum
import errno
from dataclasses import dataclass
from typing import Any

from feedback_check.findings import Finding, make_finding


class ConnectStatus(str, enum.Enum):
    OK = "ok"
    REFUSED = "refused"
    TIMEOUT = "timeout"
    UNREACHABLE = "unreachable"


@dataclass(frozen=True, slots=True)
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
