"""The runner's admission of new probes (adaptive concurrency) and the loop-lag meter's judgment."""

from __future__ import annotations

import asyncio
import time

from feedback_check.probe import lag_meter
from feedback_check.runner import _Admission


class FakeMeter:
    def __init__(self) -> None:
        self.listeners: list = []   # type: ignore[type-arg]


def test_limit_grows_while_the_loop_keeps_up_and_shrinks_when_this_process_saturates_it() -> None:
    admission = _Admission(512, FakeMeter())  # type: ignore[arg-type]
    assert admission.limit == _Admission.START
    admission.in_flight = admission.limit
    admission._on_tick(0.001)
    assert admission.limit > _Admission.START
    grown = admission.limit
    admission._busy = True                       # our own CPU keeps the loop late: admit fewer
    admission.in_flight = grown
    admission._on_tick(0.2)
    assert admission.limit == grown * 3 // 4
    admission._busy = False                      # another process causes the lag: fewer would not help
    admission.in_flight = admission.limit
    before = admission.limit
    admission._on_tick(0.2)
    assert admission.limit > before
    admission._busy = True
    admission.in_flight = 0
    admission._on_tick(0.5)
    assert admission.limit == _Admission.FLOOR   # never below the floor


def test_waiters_are_admitted_as_probes_finish() -> None:
    async def scenario() -> list[int]:
        admission = _Admission(2, FakeMeter())  # type: ignore[arg-type]
        order: list[int] = []

        async def job(i: int) -> None:
            await admission.acquire()
            order.append(i)
            await asyncio.sleep(0.01)
            admission.release()

        await asyncio.gather(*(job(i) for i in range(6)))
        assert admission.in_flight == 0
        return order

    assert asyncio.run(scenario()) == [0, 1, 2, 3, 4, 5]


def test_lag_meter_sees_a_blocked_loop() -> None:
    async def scenario() -> tuple[float, float]:
        with lag_meter.running() as meter:
            start = time.monotonic()
            await asyncio.sleep(0.05)
            time.sleep(0.15)  # noqa: ASYNC251 - the loop blocked on purpose: the next tick runs late
            await asyncio.sleep(0.03)
            return meter.worst_since(start), lag_meter.worst_since(time.monotonic() + 10)

    worst, future = asyncio.run(scenario())
    assert worst >= 0.1
    assert future < 0.1
    assert lag_meter.explains(0.05, 0.15) and not lag_meter.explains(0.01, 0.15) and not lag_meter.explains(0, 0)


def test_lag_explained_slow_and_timeout_are_not_reported() -> None:
    from dataclasses import replace

    from feedback_check.diagnosis.http import http_findings
    from feedback_check.platform import load_platform
    from feedback_check.probe.http import HttpResult, HttpStatus
    from feedback_check.probe.probe import _discount_loop_lag

    platform = replace(load_platform(), slow_seconds=0.3, budget_seconds=2.0)

    def judged(status: HttpStatus, total: float, lag: float) -> tuple[list[str], tuple[str, ...]]:
        result = HttpResult(method="POST", url="http://127.0.0.1/pf", address="127.0.0.1", status=status,
                            verified=True, status_code=200 if status is HttpStatus.ANSWERED else None,
                            reason="OK", http_version="HTTP/1.1", total_seconds=total, loop_lag_seconds=lag)
        kept, dropped = _discount_loop_lag(http_findings(result, "t", platform, online=False), result, platform)
        return [f.code for f in kept], dropped

    assert judged(HttpStatus.ANSWERED, 0.5, 0.1) == (["http.ok"], ("http.slow",))          # 4 x 0.1 >= 0.2
    assert "http.slow" in judged(HttpStatus.ANSWERED, 0.5, 0.01)[0]                         # lag explains little
    assert judged(HttpStatus.TIMEOUT, 2.0, 0.3) == ([], ("http.timeout",))
    assert judged(HttpStatus.TIMEOUT, 2.0, 0.1)[0] == ["http.timeout"]                     # under the lag floor
