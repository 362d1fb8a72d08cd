"""TCP phase: can a connection be opened to one resolved address on the feedback port?

The connect itself is the first step of the probe's one connection per address
(feedback_check.probe.exchange.open_connection); this module says what its outcome means:
`ConnectResult`, and `connect_findings` for connect.refused / connect.timeout / connect.unreachable.
"""

from __future__ import annotations

import enum
import errno
from dataclasses import dataclass


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


def classify_os_error(error: OSError) -> ConnectStatus:
    """The connect outcome an OSError from connect() stands for."""
    if isinstance(error, ConnectionRefusedError) or error.errno == errno.ECONNREFUSED:
        return ConnectStatus.REFUSED
    if isinstance(error, TimeoutError) or error.errno == errno.ETIMEDOUT:
        return ConnectStatus.TIMEOUT
    return ConnectStatus.UNREACHABLE
