"""Re-signed variants of a post-sale: the SHASIGN a misconfigured handler would accept.

The probe's signature diagnosis (feedback_check.probe.judge) sends the simulated post-sale again with the
SHASIGN each classic handler mistake computes; the variant a handler accepts where the correctly signed
request was refused names the handler's setting. The mistakes are the doctor's catalogue
(feedback_check.signature.doctor: one `Recipe` knob turned, the same `_alternatives`, the same `build_bytes`), so
`verify` and the probe know the same mistakes; this module only orders them by how often they occur,
bounds them, groups the ones that give the same digest, and says for each which setting to change on
which side (handler or back office).

Pure: no I/O. The passphrase enters the hash only; no returned string contains it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import quote_plus

from feedback_check.payload import SimulatedPostSale
from feedback_check.platform import Platform
from feedback_check.profile import SignatureSettings
from feedback_check.signature import ENCODINGS, normalise_encoding
from feedback_check.signature.doctor import (
    SHA_OUT,
    Recipe,
    _alternatives,
    _Context,
    build_bytes,
    digest_bytes,
)
from feedback_check.signature.params import ParameterInput

BACK_OFFICE_SECURITY = "Configuration > Technical information > Global security parameters"
BACK_OFFICE_FEEDBACK = "Configuration > Technical information > Transaction feedback"
#: A knob the doctor does not need (it compares digests without regard to case): the handler compares its
#: own lower-case hex digest (PHP's sha1()/hash()) with the platform's upper-case SHASIGN.
DIGEST_CASE = "digest_case"


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


def _candidates(correct: Recipe, ctx: _Context, platform: Platform) -> Iterator[dict[str, str]]:
    """Knob changes in the order handlers get them wrong (most common first)."""
    for algorithm in platform.algorithms:
        if algorithm != correct.algorithm:
            yield {"algorithm": algorithm}
    for encoding in _alternatives("encoding", correct, ctx):
        yield {"encoding": encoding}
    if "utf8_decoded" in _alternatives("values", correct, ctx):
        yield {"values": "utf8_decoded"}
    for encoding in _alternatives("passphrase_encoding", correct, ctx):
        yield {"passphrase_encoding": encoding}
    for secret in _alternatives("secret", correct, ctx):
        yield {"secret": secret}
    for selection in _alternatives("selection", correct, ctx):
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
    ctx = _Context(inp, SHA_OUT, platform, main, other)
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
    return [_variant(shasign, found, correct, ctx, payload) for shasign, found in by_digest.items()]


def _variant(shasign: str, found: list[dict[str, str]], correct: Recipe, ctx: _Context,
             payload: SimulatedPostSale) -> HandlerVariant:
    described = [_describe(changes, correct, ctx, payload) for changes in found]
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


def _sent(ctx: _Context) -> list[str]:
    return [n for n, v in ctx.inp.pairs if v != ""]


def _describe(changes: Mapping[str, str], correct: Recipe, ctx: _Context,
              payload: SimulatedPostSale) -> tuple[str, str, str, str]:
    """(label, what the handler does, which setting to change on which side, doctor mistake code)."""
    account_alg, account_enc = correct.algorithm, correct.encoding
    selection = changes.get("selection", "")
    if selection == "legacy":
        concat = ctx.platform.legacy_concatenation
        fields = "+".join(concat.sha_out) if concat else ""
        return ("the legacy value concatenation (SHA-1)",
                (f"The handler uses the old Ogone SHA-1 rule: the values of {fields} concatenated, the passphrase "
                "once at the end (Magento 1's Mage_Ogone in its basic mode does this)."),
                ("Switch the handler to the current SHA-OUT rule (each signed parameter as NAME=value followed by "
                f"the passphrase, names upper-cased and sorted) with the account's algorithm {account_alg}; in "
                "Magento 1's Mage_Ogone that is the advanced (all parameters) SHA mode."),
                "signature.mistake.legacy_concatenation")
    if "algorithm" in changes:
        alg = changes["algorithm"]
        return (f"{alg} instead of {account_alg}",
                f"The handler checks the SHASIGN with {alg}, while the account signs with {account_alg}.",
                (f"Set the handler's SHA-OUT hash algorithm to {account_alg}, the account's (back office: "
                f"{BACK_OFFICE_SECURITY} > Hash algorithm), or set the account to {alg}: the two must agree."),
                "signature.mistake.algorithm")
    if "encoding" in changes:
        enc = changes["encoding"]
        return (f"the string hashed as {enc} instead of {account_enc}",
                (f"The handler hashes the string as {enc} bytes, while the account hashes {account_enc}: every "
                "non-ASCII character (the cardholder name, an address) gives another digest."),
                (f"Set the account's character encoding to {enc} (back office: {BACK_OFFICE_SECURITY}), or make "
                f"the handler hash {account_enc} bytes: the two must agree."),
                "signature.mistake.encoding")
    if changes.get("values") == "utf8_decoded":
        return ("UTF-8 decoding whatever the account sends",
                (f"The handler decodes the request as UTF-8 whatever the account says (werkzeug in Odoo and "
                f"Django do): the account sends {account_enc}, so non-ASCII values arrive mangled and the "
                "digest differs."),
                (f"Set the account's character encoding to UTF-8 (back office: {BACK_OFFICE_SECURITY}); this "
                f"handler cannot check {account_enc} requests."),
                "signature.mistake.utf8_decoding_handler")
    if "passphrase_encoding" in changes:
        enc = changes["passphrase_encoding"]
        return (f"the passphrase as {enc} bytes, the values as {account_enc}",
                (f"The handler hashes the values as {account_enc} bytes but its passphrase as {enc} bytes "
                "(typically a passphrase written into a UTF-8 PHP or configuration file)."),
                (f"Store the passphrase in the handler in {account_enc} (or set the account's character encoding "
                f"to {enc}: {BACK_OFFICE_SECURITY}); simplest, choose an ASCII passphrase and set it on both "
                "sides."),
                "signature.mistake.mixed_encodings")
    if changes.get("secret") == "other":
        return ("the TEST account's passphrase",
                "The handler checks with the TEST account's SHA-OUT passphrase (TEST and PROD swapped).",
                ("Put this account's SHA-OUT passphrase into the handler (the one in the back office under "
                f"{BACK_OFFICE_SECURITY}); each environment needs its own."),
                "signature.mistake.test_passphrase")
    if selection.startswith("variant:"):
        name = selection.split(":", 1)[1]
        variant = next(v for v in ctx.platform.sha_out_list_variants if v.name == name)
        current = set(ctx.platform.sha_out_parameters)
        lacking = [n for n in _sent(ctx) if n.upper() in current and n.upper() not in variant.parameters]
        extra = [n for n in _sent(ctx) if n.upper() not in current and n.upper() in variant.parameters]
        what = []
        if lacking:
            what.append(f"lacks {', '.join(lacking)}")
        if extra:
            what.append(f"hashes {', '.join(extra)}, which the platform does not sign")
        fix = "Update the handler's SHA-OUT parameter list to the current one (platform profile: " \
              "signature.sha_out_parameters)"
        if lacking and not extra:
            fix += (f"; if the handler cannot be updated, stop sending {', '.join(lacking)} (untick "
                    f"{'them' if len(lacking) > 1 else 'it'} in the back office's dynamic e-Commerce parameters: "
                    f"{BACK_OFFICE_FEEDBACK})")
        return (f"the older SHA-OUT list {name!r}",
                f"The handler hashes with the older SHA-OUT list {name!r} ({variant.source}), which "
                + " and ".join(what) + ".",
                fix + ".", "signature.mistake.outdated_list")
    if selection == "all":
        outside = [n for n in _sent(ctx) if n.upper() not in set(ctx.platform.sha_out_parameters)]
        return ("every parameter hashed",
                (f"The handler hashes every parameter it receives, also {', '.join(outside)}, which are not on "
                "the SHA-OUT list."),
                ("Make the handler hash only names on the SHA-OUT list, or stop sending "
                f"{', '.join(outside)} (back office: {BACK_OFFICE_FEEDBACK}, dynamic e-Commerce parameters)."),
                "signature.mistake.every_parameter")
    if changes.get("empty") == "hashed":
        empty = [n for n, v in ctx.inp.pairs if v == ""]
        return ("empty values hashed",
                (f"The handler hashes parameters with an empty value too ({', '.join(empty)}); the platform leaves "
                "them out."),
                "Make the handler skip parameters whose value is empty before hashing.",
                "signature.mistake.empty_values_hashed")
    if changes.get("names") == "as_received":
        return ("names not upper-cased",
                "The handler hashes the names as received (orderID, amount, ...) instead of upper-cased.",
                "Make the handler upper-case every name before sorting and hashing.",
                "signature.mistake.names_not_uppercased")
    if changes.get("order") == "case_sensitive":
        return ("a case-sensitive sort",
                "The handler sorts the names before upper-casing them (a case-sensitive sort).",
                "Make the handler sort by the upper-cased name.", "signature.mistake.case_sensitive_sort")
    if DIGEST_CASE in changes:
        return ("a lower-case digest compared case-sensitively",
                ("The handler compares its own lower-case hex digest (as PHP's sha1() and hash() return it) with "
                "the SHASIGN the platform sends in upper case."),
                ("Make the handler compare without regard to case, e.g. strtoupper(hash(...)) === "
                "strtoupper($_REQUEST['SHASIGN'])."),
                "signature.mistake.digest_case")
    if changes.get("placement") == "once_at_end":
        return ("the passphrase once at the end",
                "The handler appends the passphrase once at the end instead of after every pair.",
                "Make the handler append the passphrase after every NAME=value pair.",
                "signature.mistake.passphrase_once")
    if changes.get("values") == "urlencode":
        return ("URL-encoded values",
                "The handler hashes the values still URL-encoded.",
                "Make the handler hash the decoded values its framework hands it.",
                "signature.mistake.url_encoded_values")
    if changes.get("passphrase") == "trailing_newline":
        return ("the passphrase with a trailing newline",
                "The handler's passphrase carries a trailing newline (read from a file or variable untrimmed).",
                "Trim the passphrase where the handler loads it.", "signature.mistake.passphrase_whitespace")
    raise ValueError(f"undescribed variant {dict(changes)}")
