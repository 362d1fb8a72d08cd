"""The follow-up requests of one probe, on the address that answered first (feedback_check.probe.judge):
the other method, a forged SHASIGN, re-signed variants, all inside one follow-up budget.

`follow_ups` returns one typed `FollowUps`: the log of what was sent (or skipped), the findings of that
address the judgement replaces and the ones it adds. The transport is the caller's (`Transport`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from feedback_check.findings import Finding
from feedback_check.payload import SimulatedPostSale
from feedback_check.platform import Platform
from feedback_check.probe.deadline import Budgets
from feedback_check.probe.http import HttpResult
from feedback_check.probe.judge import judge
from feedback_check.probe.result import FollowUpRequest, FollowUps
from feedback_check.profile import SignatureSettings

#: Sends one request of the follow-ups within the seconds given (the caller's connection handling).
Transport = Callable[[SimulatedPostSale, float], Awaitable[HttpResult]]
#: The log entry of a request there was no time for.
NO_TIME_LEFT = "no time left in the follow-up budget"


async def follow_ups(*, first: HttpResult, address_findings: tuple[Finding, ...], payload: SimulatedPostSale,
                     signature: SignatureSettings, can_sign: bool, try_other_method: bool, platform: Platform,
                     budgets: Budgets, target: str, transport: Transport) -> FollowUps:
    """Judge the answer `first` with the follow-up requests it calls for, all inside one follow-up
    budget (`budgets.follow_ups`); each request gets at most one platform budget of what is left."""
    deadline = budgets.follow_ups()
    log: list[FollowUpRequest] = []

    async def send(variant: SimulatedPostSale, label: str) -> HttpResult | None:
        left = deadline.left()
        if left <= budgets.follow_up_floor_seconds:
            log.append(FollowUpRequest(label, skipped=NO_TIME_LEFT))
            return None
        answer = await transport(variant, min(left, budgets.request_seconds))
        log.append(FollowUpRequest.sent(label, variant.method, answer))
        return answer

    replaced, added = await judge(first=first, address_findings=address_findings, payload=payload,
                                  signature=signature, can_sign=can_sign, try_other_method=try_other_method,
                                  platform=platform, target=target, send=send)
    return FollowUps(tuple(log), tuple(replaced), tuple(added))
