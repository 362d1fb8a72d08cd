"""How late this machine's event loop runs, measured while probes run.

A timing taken by the probe is the network's time plus the time the event loop needed to notice that
the bytes had arrived. On an idle machine the second part is well under a millisecond; when hundreds of
probes compete for one CPU it can be seconds, and a 200 ms server would look slow. The meter ticks every
`TICK_SECONDS` and records how much later than planned each tick ran (the loop's lag), kept as the
worst lag per `BUCKET_SECONDS` bucket for the last `KEEP_SECONDS`.

- `worst_since(t)`: the worst lag between `t` and now - what a measurement that began at `t` may be
  too long by, per event it waited on. A request records it (HttpResult.loop_lag_seconds), and the
  judgment never calls a measurement slow or timed out when the lag explains it.
- `recent()`: the worst lag of the last few ticks, for the runner's admission of new probes.

One meter runs per event loop (`running()`); without one, the lag is taken as 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable, Iterator

TICK_SECONDS = 0.01
BUCKET_SECONDS = 0.05
KEEP_SECONDS = 120.0
#: A request waits on a handful of loop events (connect, handshake, head, body): each may be late by
#: the loop's lag, so this many times the worst lag is what it may explain of a measured time.
EVENTS_PER_REQUEST = 4


class LagMeter:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._buckets: deque[list[float]] = deque(maxlen=int(KEEP_SECONDS / BUCKET_SECONDS))
        self._expected = 0.0
        self._handle: asyncio.TimerHandle | None = None
        self._recent: deque[float] = deque(maxlen=5)
        self.worst = 0.0
        self.listeners: list[Callable[[float], None]] = []

    def start(self) -> None:
        self._expected = self._loop.time() + TICK_SECONDS
        self._handle = self._loop.call_at(self._expected, self._tick)

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _tick(self) -> None:
        now_loop = self._loop.time()
        lag = max(0.0, now_loop - self._expected)
        now = time.monotonic()
        buckets = self._buckets
        start = now - now % BUCKET_SECONDS
        if buckets and buckets[-1][0] == start:
            buckets[-1][1] = max(buckets[-1][1], lag)
        else:
            buckets.append([start, lag])
        self._recent.append(lag)
        self.worst = max(self.worst, lag)
        self._expected = now_loop + TICK_SECONDS
        self._handle = self._loop.call_at(self._expected, self._tick)
        for listener in self.listeners:
            listener(lag)

    def pending_lag(self) -> float:
        """How late the next tick already is (the loop may be blocked right now)."""
        return max(0.0, self._loop.time() - self._expected)

    def recent(self) -> float:
        return max(max(self._recent, default=0.0), self.pending_lag())

    def worst_since(self, since: float) -> float:
        worst = self.pending_lag()
        edge = since - BUCKET_SECONDS
        for start, lag in reversed(self._buckets):
            if start < edge:
                break
            worst = max(worst, lag)
        return worst


_meters: dict[asyncio.AbstractEventLoop, LagMeter] = {}


def current() -> LagMeter | None:
    try:
        return _meters.get(asyncio.get_running_loop())
    except RuntimeError:
        return None


def worst_since(since: float) -> float:
    """The worst loop lag since monotonic time `since` (0.0 when no meter runs)."""
    meter = current()
    return meter.worst_since(since) if meter is not None else 0.0


@contextlib.contextmanager
def running() -> Iterator[LagMeter]:
    """A meter on the running loop for the duration of the block (nested blocks share it)."""
    loop = asyncio.get_running_loop()
    existing = _meters.get(loop)
    if existing is not None:
        yield existing
        return
    meter = LagMeter(loop)
    _meters[loop] = meter
    meter.start()
    try:
        yield meter
    finally:
        meter.stop()
        _meters.pop(loop, None)


def explains(lag: float, excess: float) -> bool:
    """Whether a loop lag of `lag` (worst per event) can explain `excess` seconds of a measurement."""
    return lag > 0.0 and EVENTS_PER_REQUEST * lag >= excess
