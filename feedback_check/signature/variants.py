"""Re-signed variants of a post-sale: the SHASIGN a misconfigured handler would accept.

The probe's signature diagnosis (feedback_check.probe.judge) sends the simulated post-sale again with the
SHASIGN each classic handler mistake computes; the variant a handler accepts where the correctly signed
request was refused names the handler's setting. The mistakes are the doctor's catalogue
(feedback_check.signature.catalogue and .doctor: one `Recipe` knob turned, the same `knob_alternatives`,
the same `build_bytes`, the same `mistake_code`), so `verify` and the probe know the same mistakes; this module
only orders them by how often they occur, bounds them, groups the ones that give the same digest, and
says for each, in a handler's terms, which setting to change on which side (handler or back office).

Pure: no I/O. The passphrase enters the hash only; no returned string contains it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import quote_plus

from feedback_check.payload import SimulatedPostSale
from feedback_check.platform import Platform
from feedback_check.profile import SignatureSettings
from feedback_check.signature import ENCODINGS, digest_bytes, normalise_encoding
from feedback_check.signature.catalogue import (
    BACK_OFFICE_FEEDBACK,
    BACK_OFFICE_SECURITY,
    CURRENT_LIST_SOURCE,
    DIGEST_CASE,
)
from feedback_check.signature.doctor import (
    SHA_OUT,
    KnobTurn,
    Recipe,
    SigningContext,
    build_bytes,
    knob_alternatives,
)
from feedback_check.signature.params import ParameterInput


@dataclass(frozen=True)
class HandlerVariant:
    """One SHASIGN a handler with a given mistake accepts, and what that mistake is."""

    shasign: str
    labels: tuple[str, ...]            # every catalogued mistake giving this digest (short, for logs)
    changes: tuple[tuple[str, str], ...]   # the doctor knobs of the first one
    detail: str                        # what the handler does
    fix: str                           # which setting to change, on which side
    mistake: str                       # the doctor's code (signature.mistake.*)

    @property
    def label(self) -> str:
        return " / ".join(self.labels)

    def to_dict(self) -> dict[str, Any]:
        return {"labels": list(self.labels), "changes": dict(self.changes), "mistake": self.mistake}


def _candidates(correct: Recipe, ctx: SigningContext, platform: Platform) -> Iterator[dict[str, str]]:
    """Knob changes in the order handlers get them wrong (most common first)."""
    for algorithm in platform.algorithms:
        if algorithm != correct.algorithm:
            yield {"algorithm": algorithm}
    for encoding in knob_alternatives("encoding", correct, ctx):
        yield {"encoding": encoding}
    if "utf8_decoded" in knob_alternatives("values", correct, ctx):
        yield {"values": "utf8_decoded"}
    for encoding in knob_alternatives("passphrase_encoding", correct, ctx):
        yield {"passphrase_encoding": encoding}
    for secret in knob_alternatives("secret", correct, ctx):
        yield {"secret": secret}
    for selection in knob_alternatives("selection", correct, ctx):
        if selection.startswith("variant:"):
            yield {"selection": selection}
    yield {"empty": "hashed"}
    yield {"selection": "all"}
    if platform.legacy_concatenation is not None:
        # The old rule was SHA-1 only (Magento 1's "basic" mode forces SHA-1 too).
        yield {"selection": "legacy", "algorithm": "SHA-1"}
    yield {"names": "as_received"}
    yield {"order": "case_sensitive"}
    yield {DIGEST_CASE: "lower"}
    yield {"placement": "once_at_end"}
    yield {"values": "urlencode"}
    yield {"passphrase": "trailing_newline"}


def handler_variants(payload: SimulatedPostSale, signature: SignatureSettings, platform: Platform,
                     limit: int) -> list[HandlerVariant]:
    """At most `limit` distinct SHASIGNs, other than the correct one, that the catalogued handler mistakes
    accept for `payload`'s parameters; none without a passphrase."""
    if signature.passphrase is None or limit <= 0:
        return []
    encoding = normalise_encoding(payload.encoding)
    codec = ENCODINGS[encoding]
    inp = ParameterInput(pairs=payload.params,
                         raw=tuple((n, quote_plus(v, encoding=codec, errors="replace")) for n, v in payload.params),
                         kind="form", origin="<simulated post-sale>")
    main = signature.passphrase.reveal()
    other = signature.test_passphrase.reveal() if signature.test_passphrase is not None else None
    ctx = SigningContext(inp, SHA_OUT, platform, main, other)
    correct = Recipe(selection="list", encoding=encoding, algorithm=payload.algorithm)
    by_digest: dict[str, list[dict[str, str]]] = {}
    for changes in _candidates(correct, ctx, platform):
        knobs = {k: v for k, v in changes.items() if k != DIGEST_CASE}
        recipe = replace(correct, **knobs)
        try:
            data = build_bytes(recipe, ctx, other if recipe.secret == "other" and other else main)
        except (UnicodeEncodeError, LookupError):
            continue                   # e.g. a passphrase ISO-8859-1 cannot encode: no handler can hash it so
        shasign = digest_bytes(data, recipe.algorithm)
        if DIGEST_CASE in changes:
            shasign = payload.shasign.lower()
        if shasign == payload.shasign:
            continue                   # this mistake makes no difference for these parameters
        if shasign not in by_digest and len(by_digest) >= limit:
            continue
        by_digest.setdefault(shasign, []).append(changes)
    return [_variant(shasign, found, correct, ctx) for shasign, found in by_digest.items()]


def _variant(shasign: str, found: list[dict[str, str]], correct: Recipe, ctx: SigningContext) -> HandlerVariant:
    described = [_describe(changes, correct, ctx) for changes in found]
    _label, detail, fix, mistake = described[0]
    labels = tuple(d[0] for d in described)
    lists = [c["selection"].split(":", 1)[1] for c in found if c.get("selection", "").startswith("variant:")]
    if len(lists) == len(found) > 1:
        # Several old lists lack the same names here: one mistake, whichever list the handler copied.
        labels = ("an older SHA-OUT list (" + ", ".join(repr(n) for n in lists) + ")",)
        detail += f" The lists {', '.join(repr(n) for n in lists[1:])} give the same digest for these parameters."
    elif len(described) > 1:
        detail += " (Equally: " + "; ".join(d[0] for d in described[1:]) + ".)"
    return HandlerVariant(shasign=shasign, labels=labels, changes=tuple(found[0].items()), detail=detail, fix=fix,
                          mistake=mistake)


#: (label, what the handler does, which setting to change on which side)
_Advice = tuple[str, str, str]


def _describe(changes: Mapping[str, str], correct: Recipe, ctx: SigningContext) -> tuple[str, str, str, str]:
    """(label, what the handler does, which setting to change on which side, doctor mistake code)."""
    # A candidate turns one knob; the legacy rule brings its algorithm along, and is a selection.
    knob = "selection" if "selection" in changes else next(iter(changes))
    turn = KnobTurn(knob, changes[knob], correct, ctx)
    advice = _ADVICE.get(turn.code)
    if advice is None:
        raise ValueError(f"undescribed variant {dict(changes)}")
    return (*advice(turn), turn.code)


def _legacy_concatenation(turn: KnobTurn) -> _Advice:
    return ("the legacy value concatenation (SHA-1)",
            (f"The handler uses the old Ogone SHA-1 rule: the values of {'+'.join(turn.ctx.legacy_fields())} "
             "concatenated, the passphrase once at the end (Magento 1's Mage_Ogone in its basic mode does this)."),
            ("Switch the handler to the current SHA-OUT rule (each signed parameter as NAME=value followed by "
             "the passphrase, names upper-cased and sorted) with the account's algorithm "
             f"{turn.correct.algorithm}; in Magento 1's Mage_Ogone that is the advanced (all parameters) SHA mode."))


def _algorithm(turn: KnobTurn) -> _Advice:
    alg, account_alg = turn.value, turn.correct.algorithm
    return (f"{alg} instead of {account_alg}",
            f"The handler checks the SHASIGN with {alg}, while the account signs with {account_alg}.",
            (f"Set the handler's SHA-OUT hash algorithm to {account_alg}, the account's (back office: "
             f"{BACK_OFFICE_SECURITY} > Hash algorithm), or set the account to {alg}: the two must agree."))


def _encoding(turn: KnobTurn) -> _Advice:
    enc, account_enc = turn.value, turn.correct.encoding
    return (f"the string hashed as {enc} instead of {account_enc}",
            (f"The handler hashes the string as {enc} bytes, while the account hashes {account_enc}: every "
             "non-ASCII character (the cardholder name, an address) gives another digest."),
            (f"Set the account's character encoding to {enc} (back office: {BACK_OFFICE_SECURITY}), or make "
             f"the handler hash {account_enc} bytes: the two must agree."))


def _utf8_decoding_handler(turn: KnobTurn) -> _Advice:
    account_enc = turn.correct.encoding
    return ("UTF-8 decoding whatever the account sends",
            ("The handler decodes the request as UTF-8 whatever the account says (werkzeug in Odoo and "
             f"Django do): the account sends {account_enc}, so non-ASCII values arrive mangled and the "
             "digest differs."),
            (f"Set the account's character encoding to UTF-8 (back office: {BACK_OFFICE_SECURITY}); this "
             f"handler cannot check {account_enc} requests."))


def _mixed_encodings(turn: KnobTurn) -> _Advice:
    enc, account_enc = turn.value, turn.correct.encoding
    return (f"the passphrase as {enc} bytes, the values as {account_enc}",
            (f"The handler hashes the values as {account_enc} bytes but its passphrase as {enc} bytes "
             "(typically a passphrase written into a UTF-8 PHP or configuration file)."),
            (f"Store the passphrase in the handler in {account_enc} (or set the account's character encoding "
             f"to {enc}: {BACK_OFFICE_SECURITY}); simplest, choose an ASCII passphrase and set it on both "
             "sides."))


def _test_passphrase(turn: KnobTurn) -> _Advice:
    return ("the TEST account's passphrase",
            "The handler checks with the TEST account's SHA-OUT passphrase (TEST and PROD swapped).",
            ("Put this account's SHA-OUT passphrase into the handler (the one in the back office under "
             f"{BACK_OFFICE_SECURITY}); each environment needs its own."))


def _outdated_list(turn: KnobTurn) -> _Advice:
    variant = turn.ctx.list_variant(turn.selected_name)
    lacking, extra = turn.ctx.list_difference(variant)
    what = []
    if lacking:
        what.append(f"lacks {', '.join(lacking)}")
    if extra:
        what.append(f"hashes {', '.join(extra)}, which the platform does not sign")
    fix = f"Update the handler's SHA-OUT parameter list to the current one ({CURRENT_LIST_SOURCE})"
    if lacking and not extra:
        fix += (f"; if the handler cannot be updated, stop sending {', '.join(lacking)} (untick "
                f"{'them' if len(lacking) > 1 else 'it'} in the back office's dynamic e-Commerce parameters: "
                f"{BACK_OFFICE_FEEDBACK})")
    return (f"the older SHA-OUT list {variant.name!r}",
            f"The handler hashes with the older SHA-OUT list {variant.name!r} ({variant.source}), which "
            + " and ".join(what) + ".",
            fix + ".")


def _every_parameter(turn: KnobTurn) -> _Advice:
    outside = ", ".join(turn.ctx.outside_list())
    return ("every parameter hashed",
            (f"The handler hashes every parameter it receives, also {outside}, which are not on the SHA-OUT "
             "list."),
            ("Make the handler hash only names on the SHA-OUT list, or stop sending "
             f"{outside} (back office: {BACK_OFFICE_FEEDBACK}, dynamic e-Commerce parameters)."))


def _empty_values_hashed(turn: KnobTurn) -> _Advice:
    return ("empty values hashed",
            (f"The handler hashes parameters with an empty value too ({', '.join(turn.ctx.empty_names())}); the "
             "platform leaves them out."),
            "Make the handler skip parameters whose value is empty before hashing.")


def _names_not_uppercased(turn: KnobTurn) -> _Advice:
    return ("names not upper-cased",
            "The handler hashes the names as received (orderID, amount, ...) instead of upper-cased.",
            "Make the handler upper-case every name before sorting and hashing.")


def _case_sensitive_sort(turn: KnobTurn) -> _Advice:
    return ("a case-sensitive sort",
            "The handler sorts the names before upper-casing them (a case-sensitive sort).",
            "Make the handler sort by the upper-cased name.")


def _digest_case(turn: KnobTurn) -> _Advice:
    return ("a lower-case digest compared case-sensitively",
            ("The handler compares its own lower-case hex digest (as PHP's sha1() and hash() return it) with "
             "the SHASIGN the platform sends in upper case."),
            ("Make the handler compare without regard to case, e.g. strtoupper(hash(...)) === "
             "strtoupper($_REQUEST['SHASIGN'])."))


def _passphrase_once(turn: KnobTurn) -> _Advice:
    return ("the passphrase once at the end",
            "The handler appends the passphrase once at the end instead of after every pair.",
            "Make the handler append the passphrase after every NAME=value pair.")


def _url_encoded_values(turn: KnobTurn) -> _Advice:
    return ("URL-encoded values",
            "The handler hashes the values still URL-encoded.",
            "Make the handler hash the decoded values its framework hands it.")


def _passphrase_whitespace(turn: KnobTurn) -> _Advice:
    return ("the passphrase with a trailing newline",
            "The handler's passphrase carries a trailing newline (read from a file or variable untrimmed).",
            "Trim the passphrase where the handler loads it.")


#: The doctor's mistake code -> what a handler making it does, and which setting to change on which side.
_ADVICE: dict[str, Callable[[KnobTurn], _Advice]] = {
    "signature.mistake.legacy_concatenation": _legacy_concatenation,
    "signature.mistake.algorithm": _algorithm,
    "signature.mistake.encoding": _encoding,
    "signature.mistake.utf8_decoding_handler": _utf8_decoding_handler,
    "signature.mistake.mixed_encodings": _mixed_encodings,
    "signature.mistake.test_passphrase": _test_passphrase,
    "signature.mistake.outdated_list": _outdated_list,
    "signature.mistake.every_parameter": _every_parameter,
    "signature.mistake.empty_values_hashed": _empty_values_hashed,
    "signature.mistake.names_not_uppercased": _names_not_uppercased,
    "signature.mistake.case_sensitive_sort": _case_sensitive_sort,
    "signature.mistake.digest_case": _digest_case,
    "signature.mistake.passphrase_once": _passphrase_once,
    "signature.mistake.url_encoded_values": _url_encoded_values,
    "signature.mistake.passphrase_whitespace": _passphrase_whitespace,
}
