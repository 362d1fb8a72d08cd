"""Which follow-up requests judge a handler's answer, sent on the address that answered first.

The plan (feedback_check.diagnosis.judgement judges the answers, and explains why each request is sent):

- after an answer a GET/POST mismatch can cause: the same request with the other method, once;
- after an accepted answer, with the real passphrase: the same request with a wrong SHASIGN;
- after an answer that is not accepted (a signature or order problem can explain it), with the real
  passphrase: a wrong SHASIGN, then at most MAX_VARIANTS re-signed variants of the doctor's catalogue
  (feedback_check.signature.variants), stopping at the first one accepted; at most MAX_EXTRA_REQUESTS.

`send` is the caller's (feedback_check.probe.follow_ups: the budget, the log, the connection); it returns
None when there is no time left for a request.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from feedback_check.diagnosis.judgement import (
    NOTHING,
    Compared,
    Judgement,
    calls_for_other_method,
    calls_for_signature_check,
    first_evidence,
    forgery_verdict,
    handler_accepted,
    main_finding,
    method_verdict,
    rejection_verdict,
)
from feedback_check.findings import Finding
from feedback_check.payload import SimulatedPostSale
from feedback_check.platform import Platform
from feedback_check.probe.http import HttpResult
from feedback_check.profile import SignatureSettings

if TYPE_CHECKING:       # the variants (and the doctor's catalogue they come from) only after a refused answer
    from feedback_check.signature.variants import HandlerVariant

#: Requests the signature diagnosis may add to one probe: the wrong SHASIGN and the variants.
MAX_EXTRA_REQUESTS = 12
MAX_VARIANTS = MAX_EXTRA_REQUESTS - 1

#: The follow-up log's label of the request with a wrong SHASIGN (the forgery and signature checks).
FORGED_REQUEST = "same request with a wrong SHASIGN"

Send = Callable[[SimulatedPostSale, str], Awaitable[HttpResult | None]]


async def judge(*, first: HttpResult, address_findings: tuple[Finding, ...], payload: SimulatedPostSale,
                signature: SignatureSettings, can_sign: bool, try_other_method: bool, platform: Platform,
                target: str, send: Send) -> Judgement:
    """What the follow-up requests change about the findings of the address that answered `first`."""
    main = main_finding(address_findings)
    evidence = first_evidence(first, payload)
    if main is not None and try_other_method and calls_for_other_method(first):
        decided = await _other_method(main, first, payload, platform, target, send, evidence)
        if decided is not None:
            return decided
    if handler_accepted(first):
        if not can_sign:
            return NOTHING
        forged_payload = payload.forged()
        forged = await send(forged_payload, FORGED_REQUEST)
        return forgery_verdict(first, forged, forged_payload, target, evidence)
    if main is None or not calls_for_signature_check(first):
        return NOTHING
    compared = await _compare_signatures(payload, signature, platform, send) if can_sign else Compared()
    return rejection_verdict(main, first, payload, compared, can_sign=can_sign, target=target, evidence=evidence)


async def _other_method(main: Finding, first: HttpResult, payload: SimulatedPostSale, platform: Platform,
                        target: str, send: Send, evidence: dict[str, Any]) -> Judgement | None:
    """The same request with the platform's other method; None when that decided nothing."""
    others = [m for m in platform.methods if m != payload.method]
    if not others:
        return None
    other_method = others[0]
    other = await send(payload.with_method(other_method), f"same request with {other_method}")
    return method_verdict(main, first, other, other_method, payload, target, evidence)


async def _compare_signatures(payload: SimulatedPostSale, signature: SignatureSettings, platform: Platform,
                              send: Send) -> Compared:
    """A wrong SHASIGN, then the re-signed variants until one is accepted or the time is up."""
    forged = await send(payload.forged(), FORGED_REQUEST)
    from feedback_check.signature.variants import handler_variants

    tried: list[tuple[HandlerVariant, HttpResult]] = []
    for variant in handler_variants(payload, signature, platform, MAX_VARIANTS):
        answer = await send(payload.with_shasign(variant.shasign), f"signed for a handler using {variant.label}")
        if answer is None:
            break
        if handler_accepted(answer):
            return Compared(forged, tuple(tried), (variant, answer))
        tried.append((variant, answer))
    return Compared(forged, tuple(tried))
