"""Judging a handler's answer as the platform would, by comparing it with the answers to follow-up requests.

Real handlers (Odoo's payment_ogone, Magento 1's Mage_Ogone, marlon-ogone-based PHP, django-ogone) look
the order up and check SHASIGN, in either order, and answer failures with 403, 404, 422 or 500 as often
as with 400; on success Odoo and Magento redirect to another page (platform.md §5). So an answer is
judged by comparing it with the answers to the same post-sale sent differently, all on the address that
answered first and inside one follow-up budget (platform.budget_seconds):

- Method: a 405, or a 4xx/5xx a GET/POST mismatch can cause, is retried once with the other method; if
  that one is accepted the finding is http.method_not_allowed naming the method that works.
- Forgery: when the correctly signed request is accepted (2xx or a redirect after processing), it is
  sent again with a wrong SHASIGN; the same answer is signature.forgery_accepted.
- Signature: when it is not accepted (a 4xx/5xx the handler gave: not 401/405/407/408/429, not a WAF
  block), a wrong SHASIGN and at most MAX_VARIANTS re-signed variants from the doctor's catalogue
  (feedback_check.signature.variants) follow, at most MAX_EXTRA_REQUESTS in all. A variant accepted where
  the correct request was not is signature.rejected naming the handler's setting. Answers that differ
  without being accepted are evidence: a wrong SHASIGN answered otherwise than the correct one shows the
  correct one passed the signature check (so the order lookup or processing failed); a variant answered
  otherwise than both shows that variant passed it.
- Unknown order: an answer that names the order sent, or matches a known integration's unknown-order
  answer, is handler.unknown_order (warning) instead of an http.* process error; an ambiguous answer
  (Magento's empty 404, a bare 500) stays what it is, its fix naming the unknown simulated order.

This module judges answers (pure functions returning a `Judgement`); feedback_check.probe.judge decides
which follow-up requests to send and hands their answers here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from feedback_check.findings import Finding, Severity, make_finding
from feedback_check.payload import SimulatedPostSale
from feedback_check.probe.http import AFTER_PROCESSING, HttpResult, HttpStatus, redirect_kind, waf_markers

if TYPE_CHECKING:
    from feedback_check.signature.variants import HandlerVariant

#: 4xx answers with a cause of their own: never read as a signature or order problem.
_OWN_CAUSE = frozenset({401, 405, 407, 408, 429})
#: Answers to the method follow-up: these have causes a method switch cannot fix.
_NOT_METHOD = frozenset({401, 403, 404, 407, 408, 429})
_SIGNATURE_WORDS = re.compile(r"shasign|signature|sha[- _]?(?:out|in|1|256|512)\b|\bhash\b", re.IGNORECASE)
#: Unknown-order answers of known integrations (and the usual wording of hand-written handlers).
_UNKNOWN_ORDER = re.compile(
    r"no transaction found matching reference"          # Odoo 15/16/17 payment_ogone
    r"|matching query does not exist|doesnotexist"       # Django (django-ogone, django-shop-postfinance)
    r"|order (?:is )?not valid"                          # Magento 1 Mage_Ogone's session message
    r"|\b(?:unknown|invalid|no such) order\b"
    r"|\border\s*(?:#|no\.?|number|id|reference|ref\.?)?\s*[\w-]*\s+(?:was\s+|is\s+)?not found\b"
    r"|bestellung[^.\n]{0,80}nicht gefunden|commande[^.\n]{0,60}introuvable", re.IGNORECASE)
#: A crash page: it may list the request's parameters (a debug page, a stack trace with the POST data), so
#: naming the order sent says nothing about why it failed.
_CRASH_PAGE = re.compile(r"traceback \(most recent call last\)|fatal error|stack ?trace|uncaught|exception\b"
                         r"|sqlstate|segmentation fault", re.IGNORECASE)
_HEX_RUN = re.compile(r"[0-9A-Fa-f]{32,}")
_DIGITS = re.compile(r"\d+")



@dataclass(frozen=True, slots=True)
class Judgement:
    """What the follow-up answers change: the findings of the first answer they replace, the new ones."""

    replaced: tuple[Finding, ...] = ()
    added: tuple[Finding, ...] = ()

    @classmethod
    def replacing(cls, old: Finding, new: Finding) -> Judgement:
        return cls((old,), (new,))


NOTHING = Judgement()


@dataclass(frozen=True, slots=True)
class Compared:
    """The answers to the signature comparison: the wrong SHASIGN's, the re-signed variants' that were not
    accepted (in the order sent), and the first accepted variant with its answer."""

    forged: HttpResult | None = None
    tried: tuple[tuple[HandlerVariant, HttpResult], ...] = ()
    accepted: tuple[HandlerVariant, HttpResult] | None = None


def handler_accepted(result: HttpResult | None) -> bool:
    """The handler took the post-sale as processed: a 2xx, or a redirect to another page after it ran."""
    if result is None or result.status is not HttpStatus.ANSWERED or result.status_code is None:
        return False
    code = result.status_code
    return 200 <= code < 300 or (300 <= code < 400 and
                                 redirect_kind(result.url, result.header("location") or "") == AFTER_PROCESSING)


def _fingerprint(result: HttpResult) -> tuple[Any, ...]:
    """What tells two answers apart: status, Location and body. Digests (they echo the SHASIGN) and numbers
    (request ids, timestamps) are cut out of the body, so a page that differs on every request does not
    pass for a different answer."""
    body = _DIGITS.sub("#", _HEX_RUN.sub("#", result.body[:2048].decode("utf-8", "replace")))
    return (result.status.value, result.status_code, result.header("location") or "", " ".join(body.split()))


_TAG = re.compile(r"<[^>]*>")


def _answer(result: HttpResult) -> str:
    """The status line and the start of the body's text (markup removed)."""
    text = result.status_line or result.error or result.status.value
    body = " ".join(_TAG.sub(" ", result.body_text(400)).split())[:100]
    return f"{text} ({body!r})" if body else text


def unknown_order_reason(result: HttpResult, order_id: str) -> str | None:
    """Why this answer reads as 'the handler does not know this order', or None."""
    body = result.body[:8192].decode("utf-8", "replace")
    match = _UNKNOWN_ORDER.search(body)
    if match:
        return f"the answer matches a known unknown-order answer ({match.group(0)!r})"
    if (len(order_id) >= 3 and order_id.lower() in body.lower() and not _SIGNATURE_WORDS.search(body)
            and not _CRASH_PAGE.search(body)):
        return f"the answer names the order sent ({order_id})"
    return None


def _test_order_hint(payload: SimulatedPostSale) -> str:
    return ("probe again with an order the shop knows: probe --order-id ID --amount A --currency C "
            "(--param PAYID=... for more), or test_order: {orderID: ..., amount: ..., currency: ...} in the "
            "shop's profile")




def first_evidence(first: HttpResult, payload: SimulatedPostSale) -> dict[str, Any]:
    """The evidence every finding of the judgement starts with."""
    return {"address": first.address, "method": first.method, "status_line": first.status_line,
            "order_id": payload.order_id, "order_source": payload.order_source}


def main_finding(address_findings: tuple[Finding, ...]) -> Finding | None:
    """The critical http.* finding of the first answer: what the follow-ups may replace."""
    return next((f for f in address_findings if f.code.startswith("http.") and f.severity is Severity.CRITICAL),
                None)


def calls_for_other_method(first: HttpResult) -> bool:
    """A 405, or a 4xx/5xx a GET/POST mismatch can cause."""
    code = first.status_code or 0
    return code == 405 or (code >= 400 and code not in _NOT_METHOD)


def calls_for_signature_check(first: HttpResult) -> bool:
    """An answer the handler gave that a signature or order problem can explain: a 4xx/5xx, not one with a
    cause of its own, not a WAF block (re-signed requests would meet the same block)."""
    code = first.status_code or 0
    if first.status is not HttpStatus.ANSWERED or code < 400 or code in _OWN_CAUSE:
        return False
    return not (code == 403 and waf_markers(first))


# --- the other method -----------------------------------------------------------------------------

def method_verdict(main: Finding, first: HttpResult, other: HttpResult | None, other_method: str,
                   payload: SimulatedPostSale, target: str, evidence: dict[str, Any]) -> Judgement | None:
    """What the answer to the other method decides (None: nothing, the judgement goes on)."""
    code = first.status_code or 0
    if other is not None and handler_accepted(other):
        return Judgement.replacing(main, make_finding(
            "http.method_not_allowed", target,
            evidence={**evidence, "other_method": other_method, "other_status_line": other.status_line},
            detail=f"{payload.method} gets {first.status_line}, while the same request with {other_method} gets "
                   f"{other.status_line}: the handler expects {other_method}.",
            fix=f"Set the request method in the back office (Configuration > Technical information > "
                f"Transaction feedback) to {other_method}, or make the handler read {payload.method} "
                f"{'form fields' if payload.method == 'POST' else 'query parameters'}."))
    if code == 405 and other is not None:
        return Judgement.replacing(main, replace(
            main, evidence={**main.evidence, "other_method": other_method,
                            "other_status_line": other.status_line or other.error},
            detail=main.detail + f" {other_method} fails too ({other.status_line or other.error}).",
            fix=f"Make the handler accept {payload.method} at this URL: switching the back office to {other_method} "
                f"would not help, {other_method} fails too."))
    return NOTHING if code == 405 else None


# --- an accepted answer: the forgery check --------------------------------------------------------

def forgery_verdict(first: HttpResult, forged: HttpResult | None, forged_payload: SimulatedPostSale, target: str,
                    evidence: dict[str, Any]) -> Judgement:
    """signature.forgery_accepted when a wrong SHASIGN gets the same answer: status, Location and body. A
    handler that answers 200 to both but says "invalid signature" to the forged one does check SHASIGN."""
    if forged is None or not handler_accepted(forged) or _fingerprint(forged) != _fingerprint(first):
        return NOTHING
    return Judgement(added=(make_finding(
        "signature.forgery_accepted", target,
        evidence={**evidence, "forged_status_line": forged.status_line,
                  "forged_location": forged.header("location"), "forged_shasign": forged_payload.shasign},
        detail=f"The endpoint answers {_answer(forged)} to a request with a wrong SHASIGN, just as to the "
               f"correctly signed one ({first.status_line}): it does not check SHASIGN, or ignores the content."),))


# --- an answer that is not accepted: signature, unknown order, or ambiguous -----------------------

@dataclass(frozen=True, slots=True)
class _Rejection:
    """The not-accepted first answer, its critical finding and the answers compared with it."""

    main: Finding
    first: HttpResult
    payload: SimulatedPostSale
    compared: Compared
    target: str
    evidence: dict[str, Any]

    @property
    def differs(self) -> bool:
        """A wrong SHASIGN gets another answer than the correctly signed request."""
        forged = self.compared.forged
        return forged is not None and _fingerprint(forged) != _fingerprint(self.first)


def rejection_verdict(main: Finding, first: HttpResult, payload: SimulatedPostSale, compared: Compared, *,
                      can_sign: bool, target: str, evidence: dict[str, Any]) -> Judgement:
    """signature.rejected (a variant accepted or past the check, or the answer names the signature),
    handler.unknown_order, or `main` with what the comparison showed and what else may cause it."""
    case = _Rejection(main, first, payload, compared, target, evidence)
    if compared.accepted is not None:
        return Judgement.replacing(main, _variant_accepted(case, *compared.accepted))
    if compared.forged is not None and not case.differs:
        found = _variant_passed_check(case, compared.forged) or _names_signature(case)
        if found is not None:
            return Judgement.replacing(main, found)
    unknown = unknown_order_reason(first, payload.order_id)
    if unknown:
        return Judgement.replacing(main, _unknown_order(case, unknown))
    return _ambiguous(case, can_sign)


def _passed_check(case: _Rejection) -> str:
    if not case.differs or case.compared.forged is None:
        return ""
    return (f" A wrong SHASIGN gets another answer ({_answer(case.compared.forged)}): the handler checks SHASIGN "
            "and the correctly signed request passed, so it failed after the check (the order lookup or the "
            "processing).")


def _variant_accepted(case: _Rejection, variant: HandlerVariant, answer: HttpResult) -> Finding:
    payload = case.payload
    return make_finding(
        "signature.rejected", case.target,
        evidence={**case.evidence, "accepted_when": variant.label, "mistake": variant.mistake,
                  "accepted_status_line": answer.status_line},
        detail=f"The correctly signed request ({payload.algorithm}, {payload.encoding}) gets "
               f"{_answer(case.first)}, but the same parameters signed for a handler using {variant.label} "
               f"get {answer.status_line}: {variant.detail}",
        fix=variant.fix)


def _variant_passed_check(case: _Rejection, forged: HttpResult) -> Finding | None:
    """A variant answered otherwise than both the correct and the wrong SHASIGN: it passed the check. Only
    another status or Location counts here: a critical finding must not rest on a body that varies."""
    others = [(v, a) for v, a in case.compared.tried if _fingerprint(a)[:3] != _fingerprint(case.first)[:3]]
    if not others:
        return None
    variant, answer = others[0]
    return make_finding(
        "signature.rejected", case.target,
        evidence={**case.evidence, "passed_check_when": variant.label, "mistake": variant.mistake,
                  "variant_status_line": answer.status_line, "forged_status_line": forged.status_line},
        detail=f"The correctly signed request and one with a wrong SHASIGN get the same answer "
               f"({_answer(case.first)}), while the same parameters signed for a handler using {variant.label} "
               f"get {_answer(answer)}: that one got past the signature check. "
               + variant.detail,
        fix=variant.fix)


def _names_signature(case: _Rejection) -> Finding | None:
    """The answer names the signature (an echo of the request says nothing) and no variant helps."""
    first, payload = case.first, case.payload
    echoed = bool(payload.shasign) and payload.shasign.encode() in first.body
    if not _SIGNATURE_WORDS.search(first.body_text(500)) or echoed:
        return None
    tried = len(case.compared.tried)
    return make_finding(
        "signature.rejected", case.target, evidence={**case.evidence, "body_excerpt": first.body_text(200),
                                                     "variants_tried": tried},
        detail=f"The correctly signed request gets {_answer(first)} and the answer names the signature; "
               f"none of {tried} re-signed variants of the catalogued handler mistakes is accepted "
               "either.",
        fix="Copy the SHA-OUT passphrase from the back office (Configuration > Technical information > "
            "Global security parameters) into the handler again: no algorithm, encoding or parameter-list "
            "mistake explains the rejection, the passphrase itself differs.")


def _unknown_order(case: _Rejection, unknown: str) -> Finding:
    first, payload = case.first, case.payload
    known = payload.order_source != "simulated"
    return make_finding(
        "handler.unknown_order", case.target,
        evidence={**case.evidence, "reason": unknown, "body_excerpt": first.body_text(200),
                  "replaced": case.main.code, "signature_checked": bool(case.differs)},
        detail=f"{first.address} answered {_answer(first)}: {unknown}. The handler was reached - the path, TLS "
               f"and HTTP work - and rejected order {payload.order_id} because it does not know it, so how it "
               "answers a real post-sale is not proven." + _passed_check(case),
        fix=(f"The order {payload.order_id} given as test order is not known to the shop either: check the "
             "reference (the shop's own order number, as sent to PostFinance in orderID) and probe again."
             if known else "To prove the answer to a real post-sale, " + _test_order_hint(payload) + "."))


def _ambiguous(case: _Rejection, can_sign: bool) -> Judgement:
    """`main` with what the comparison showed and what else may cause the answer (NOTHING: nothing to add)."""
    main, first, payload, forged = case.main, case.first, case.payload, case.compared.forged
    differs, passed_check = case.differs, _passed_check(case)
    ambiguous = _ambiguous_note(first, payload, differs, forged is not None)
    base_fix = main.fix
    if forged is not None and not differs and payload.order_source != "simulated":
        ambiguous = (f"A wrong SHASIGN and all {len(case.compared.tried)} re-signed variants get the same answer: "
                     "if the handler checks SHASIGN, its passphrase differs from the one configured here - copy "
                     "the SHA-OUT passphrase from the back office (Configuration > Technical information > Global "
                     "security parameters) into the handler again.")
    if main.code == "http.forbidden" and not differs:
        base_fix = ("Either an access rule on the server refuses the request (a deny rule, mod_security, file "
                    "permissions: admit PostFinance's ranges on this path), or the handler cannot verify the "
                    "SHASIGN (Odoo's payment_ogone answers 403 then).")
        if not can_sign:
            base_fix += (" Probe with the account's real passphrase (--passphrase-env or --passphrase-file) to tell "
                         "the two apart.")
    if not (ambiguous or passed_check or base_fix != main.fix):
        return NOTHING
    return Judgement.replacing(main, replace(
        main, detail=main.detail + passed_check,
        evidence={**main.evidence, "order_id": payload.order_id, "order_source": payload.order_source,
                  "variants_tried": len(case.compared.tried),
                  **({"forged_status_line": forged.status_line} if forged else {})},
        fix=(base_fix + " " + ambiguous).strip()))


def _ambiguous_note(first: HttpResult, payload: SimulatedPostSale, differs: bool, compared: bool) -> str:
    """For an answer that an unknown order can cause as well: what else it may be, and how to rule it out."""
    if payload.order_source != "simulated":
        return ""
    code = first.status_code or 0
    seen = {404: "Magento 1's Mage_Ogone answers an empty 404 to an order it does not know (and to a wrong "
                 "signature)",
            403: "Odoo's payment_ogone answers 403 to a SHASIGN it cannot verify",
            422: "Odoo 16/17 answer 422 to an order they do not know",
            500: "Odoo 15 and django-shop-postfinance answer 500 to an order they do not know"}
    example = seen.get(code, "real handlers look the order up and fail on one they do not know")
    if code >= 500:
        example = seen[500]
    note = (f"The simulated order {payload.order_id} is unknown to the shop and may cause this answer too ({example}):"
            f" to rule it out, {_test_order_hint(payload)}.")
    if compared and not differs:
        note += " A wrong SHASIGN gets the same answer, so this answer does not tell whether the signature is right."
    return note
