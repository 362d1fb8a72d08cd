"""Time limits of the probe: one `Deadline` type, and the `Budgets` every limit is derived from.

A `Deadline` is a point in monotonic time. Every phase receives one and passes a `child` on (never
later than its own), so an address's connect, handshakes and request share the address's limit and a
server dripping one byte at a time cannot stretch any of them. `Budgets.from_platform` holds every
multiplier and floor of the probe in one place (README "Time limits of the probe").
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from feedback_check.platform import Platform


@dataclass(frozen=True, slots=True)
class Deadline:
    """A point in monotonic time (`time.monotonic()`) by which something must be done."""

    at: float

    @classmethod
    def after(cls, seconds: float, *, start: float | None = None) -> Deadline:
        """`seconds` after `start` (monotonic; now when None)."""
        return cls((time.monotonic() if start is None else start) + seconds)

    def left(self) -> float:
        """Seconds until the deadline (negative once it passed)."""
        return self.at - time.monotonic()

    @property
    def expired(self) -> bool:
        return time.monotonic() >= self.at

    def child(self, cap: float, *, start: float | None = None) -> Deadline:
        """At most `cap` seconds after `start` (now when None), and never after this deadline."""
        return Deadline(min(self.at, (time.monotonic() if start is None else start) + cap))

    def timeout(self) -> asyncio.Timeout:
        """An `async with` block that is cancelled at the deadline (raises TimeoutError)."""
        return asyncio.timeout_at(self.at)


@dataclass(frozen=True, slots=True)
class Budgets:
    """Every time limit of one probe, derived from the platform profile's budgets (timing.*)."""

    #: One request, connect to last byte (platform.budget_seconds): also the cap of each handshake.
    request_seconds: float
    #: All phases of one address together (connect, handshakes incl. a TLS fallback, the request).
    address_seconds: float
    #: All follow-up requests of one probe together (feedback_check.probe.follow_ups).
    follow_up_seconds: float
    #: A follow-up request is skipped when less than this is left of the follow-up budget.
    follow_up_floor_seconds: float
    #: The extra handshake on an http:// port that answered garbage: at least / at most this long.
    plain_port_floor_seconds: float
    plain_port_cap_seconds: float
    #: A timeout is not reported when the loop lag explains this share of the request budget and was at
    #: least `disturbed_timeout_lag_seconds` (a server that never answers must not hide behind a little lag).
    disturbed_timeout_share: float
    disturbed_timeout_lag_seconds: float

    #: All phases of one address take at most this many request budgets (a TLS fallback adds handshakes).
    ADDRESS_BUDGETS = 3
    FOLLOW_UP_FLOOR_SECONDS = 0.05
    PLAIN_PORT_FLOOR_SECONDS = 0.1
    PLAIN_PORT_CAP_SECONDS = 5.0
    DISTURBED_TIMEOUT_SHARE = 0.1
    DISTURBED_TIMEOUT_LAG_SECONDS = 0.25
    #: asyncio's own handshake timeout (feedback_check.probe.exchange): the deadline's time left, at least
    #: the floor, plus the slack - so the deadline always fires first and decides that a handshake timed out.
    HANDSHAKE_FLOOR_SECONDS = 0.05
    HANDSHAKE_SLACK_SECONDS = 1.0

    @classmethod
    def from_platform(cls, platform: Platform) -> Budgets:
        budget = platform.budget_seconds
        return cls(request_seconds=budget, address_seconds=cls.ADDRESS_BUDGETS * budget,
                   follow_up_seconds=budget, follow_up_floor_seconds=cls.FOLLOW_UP_FLOOR_SECONDS,
                   plain_port_floor_seconds=cls.PLAIN_PORT_FLOOR_SECONDS,
                   plain_port_cap_seconds=cls.PLAIN_PORT_CAP_SECONDS,
                   disturbed_timeout_share=cls.DISTURBED_TIMEOUT_SHARE,
                   disturbed_timeout_lag_seconds=cls.DISTURBED_TIMEOUT_LAG_SECONDS)

    def address(self) -> Deadline:
        """The deadline of one address's phases, from now."""
        return Deadline.after(self.address_seconds)

    def follow_ups(self) -> Deadline:
        """The deadline of one probe's follow-up requests, from now."""
        return Deadline.after(self.follow_up_seconds)

    def plain_port(self, address: Deadline) -> Deadline:
        """The deadline of the handshake on an http:// port that answered garbage, from now: what is left
        of the address's deadline (at most one request budget), between the floor and the cap."""
        seconds = max(self.plain_port_floor_seconds, min(self.request_seconds, address.left()))
        return Deadline.after(min(seconds, self.plain_port_cap_seconds))
