"""The signature doctor: does a SHASIGN match, and when not, which known mistake reproduces it?

A signature is the hash of a string built by a *recipe*: which parameters, how names are written and
ordered, whether empty values count, where the passphrase goes, how values are written, which
passphrase (and with what whitespace), which encoding and algorithm. The platform's rule
(platform.md §3) is one recipe; every classic integration mistake is one knob of it turned. The doctor
rebuilds the string with one knob turned, then with two, hashes each distinct string once, and names
the knobs of the first recipe whose digest is the given SHASIGN. The algorithm needs no search: the
length of the SHASIGN names it. Which mistake a turned knob is, and its code, title and generic fix, is
the catalogue's (feedback_check.signature.catalogue); this module words it for these parameters.

Pure: no I/O, nothing printed; results are frozen dataclasses. Passphrases only ever enter the hash;
every string this module returns for display is built with the mask instead.
"""

from __future__ import annotations

import enum
import itertools
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import quote, quote_plus

from feedback_check.errors import ConfigError
from feedback_check.platform import ParameterList, Platform
from feedback_check.signature import (
    ENCODINGS,
    PASSPHRASE_MASK,
    SignedString,
    algorithm_of_digest,
    check_passphrase_encoding,
    digest,
    digest_bytes,
    normalise_algorithm,
    normalise_encoding,
    parse_shasign,
    signed_string,
)
from feedback_check.signature.catalogue import (
    BACK_OFFICE_SECURITY,
    CURRENT_LIST_SOURCE,
    MISTAKES,
    mistake_code,
)
from feedback_check.signature.params import ParameterInput

log = logging.getLogger(__name__)

SHA_OUT = "SHA-OUT"
SHA_IN = "SHA-IN"
RULES = (SHA_OUT, SHA_IN)

#: The passphrase forms a buggy integration produces (knob value -> how the passphrase became that).
PASSPHRASE_FORMS: dict[str, str] = {
    "as_given": "",
    "trailing_newline": "with a trailing newline (read from a file or an environment variable without trimming)",
    "trailing_crlf": "with a trailing CR LF (a file saved with Windows line endings, not trimmed)",
    "trailing_space": "with a trailing space",
    "leading_space": "with a leading space",
    "stripped": "with its surrounding whitespace removed",
}


class CheckStatus(enum.Enum):
    """Outcome of `diagnose`."""

    MATCH = "match"
    EXPLAINED = "mismatch_explained"          # does not match; a known mistake reproduces it
    UNEXPLAINED = "mismatch_unexplained"      # does not match; no known mistake reproduces it

    @property
    def exit_code(self) -> int:
        """0 match; 2 mismatch, explained or not (a request signed so would fail)."""
        return 0 if self is CheckStatus.MATCH else 2


@dataclass(frozen=True)
class Computation:
    """A signature computed by the platform's rule, with everything needed to show how."""

    rule: str
    algorithm: str
    encoding: str
    signed: SignedString
    digest: str

    @property
    def masked(self) -> str:
        return self.signed.masked()

    def to_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, "algorithm": self.algorithm, "encoding": self.encoding,
                "hashed_string_masked": self.masked,
                "hashed": [{"name": n, "value": v} for n, v in self.signed.pairs],
                "dropped": [{"name": n, "reason": r} for n, r in self.signed.dropped],
                "digest": self.digest}


@dataclass(frozen=True)
class Mistake:
    """One way an integration's signing differs from the platform's, with its fix."""

    code: str          # stable: signature.mistake.<what>
    title: str
    detail: str
    fix: str

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "title": self.title, "detail": self.detail, "fix": self.fix}


@dataclass(frozen=True)
class SignatureCheck:
    """Result of checking one SHASIGN."""

    status: CheckStatus
    given: str                                  # the SHASIGN checked, upper case
    expected: Computation                       # the platform's rule with the merchant's settings
    mistakes: tuple[Mistake, ...] = ()          # the explanation (empty when it matches or is unexplained)
    reproduced_masked: str | None = None        # the string the explaining recipe hashed, passphrase masked
    alternatives: tuple[tuple[Mistake, ...], ...] = ()   # other explanations producing the same string
    variants_tried: int = 0
    algorithm_inferred: bool = False            # no algorithm given: taken from the SHASIGN length
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status.value, "match": self.status is CheckStatus.MATCH,
                "given": self.given, "expected": self.expected.to_dict(),
                "algorithm_inferred": self.algorithm_inferred,
                "explanation": [m.to_dict() for m in self.mistakes],
                "reproduced_string_masked": self.reproduced_masked,
                "alternatives": [[m.to_dict() for m in alt] for alt in self.alternatives],
                "variants_tried": self.variants_tried, "notes": list(self.notes)}


# -- the recipe ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Recipe:
    """How a signature string is built. The default field values are the platform's rule (SHA-OUT)."""

    selection: str = "list"          # list | variant:<name> | all | all_with_shasign | omit:<NAME> | legacy | list_for_sha_in
    names: str = "upper"             # upper | as_received
    order: str = "by_name"           # by_name | case_sensitive | as_received
    empty: str = "dropped"           # dropped | hashed
    placement: str = "each_pair"     # each_pair | once_at_end
    values: str = "decoded"          # decoded | as_received | urlencode | rawurlencode | utf8_decoded
    passphrase: str = "as_given"     # a key of PASSPHRASE_FORMS
    secret: str = "main"             # main | other (the second passphrase, e.g. TEST)
    encoding: str = "UTF-8"
    algorithm: str = "SHA-512"
    passphrase_encoding: str = ""    # "" (as `encoding`) | UTF-8 | ISO-8859-1: passphrase bytes in another encoding

    def diff(self, other: Recipe) -> tuple[str, ...]:
        """Names of the knobs where `other` differs from this recipe."""
        return tuple(f for f in KNOB_ORDER if getattr(self, f) != getattr(other, f))


#: Knobs in the order a mismatch is most likely explained by them (most common mistakes first).
KNOB_ORDER = ("algorithm", "secret", "encoding", "passphrase_encoding", "selection", "names", "order", "empty", "placement", "values",
              "passphrase")


@dataclass(frozen=True)
class SigningContext:
    """What every recipe signs: the parameters received, the rule, the platform and the passphrases."""

    inp: ParameterInput
    rule: str
    platform: Platform
    main: str
    other: str | None

    @property
    def current_list(self) -> frozenset[str]:
        return frozenset(self.platform.sha_out_parameters)

    def sent_names(self) -> list[str]:
        """Names of the parameters sent with a value (SHASIGN aside), in received order."""
        return [n for n, v in self.inp.pairs if v != "" and n.upper() != "SHASIGN"]

    def empty_names(self) -> list[str]:
        """Names of the parameters sent with an empty value (the platform leaves them out)."""
        return [n for n, v in self.inp.pairs if v == "" and n.upper() != "SHASIGN"]

    def outside_list(self) -> list[str]:
        """Names sent with a value that are not on the current SHA-OUT list."""
        return [n for n in self.sent_names() if n.upper() not in self.current_list]

    def list_variant(self, name: str) -> ParameterList:
        """The older SHA-OUT list `name` of the platform profile."""
        return next(v for v in self.platform.sha_out_list_variants if v.name == name)

    def list_difference(self, variant: ParameterList) -> tuple[list[str], list[str]]:
        """(names sent that the platform signs and `variant` lacks, names sent that only `variant` signs)."""
        sent, current = self.sent_names(), self.current_list
        return ([n for n in sent if n.upper() in current and n.upper() not in variant.parameters],
                [n for n in sent if n.upper() not in current and n.upper() in variant.parameters])

    def legacy_fields(self) -> tuple[str, ...]:
        """The fields the old Ogone rule concatenates for this rule (none when the profile has no such rule)."""
        concat = self.platform.legacy_concatenation
        if concat is None:
            return ()
        return concat.sha_out if self.rule == SHA_OUT else concat.sha_in


def _passphrase_form(secret: str, form: str) -> str:
    return {
        "as_given": secret, "trailing_newline": secret + "\n", "trailing_crlf": secret + "\r\n",
        "trailing_space": secret + " ", "leading_space": " " + secret, "stripped": secret.strip(),
    }[form]


def _value_form(raw: str, decoded: str, form: str, encoding: str) -> str:
    codec = ENCODINGS[normalise_encoding(encoding)]
    if form == "decoded":
        return decoded
    if form == "as_received":
        return raw
    if form == "urlencode":
        return quote_plus(decoded, safe="", encoding=codec, errors="strict")
    if form == "utf8_decoded":
        # What werkzeug or Django hand the handler: the bytes sent in the account's encoding, decoded as UTF-8.
        return decoded.encode(codec, errors="replace").decode("utf-8", errors="replace")
    return quote(decoded, safe="", encoding=codec, errors="strict")


def _selected(recipe: Recipe, ctx: SigningContext) -> list[tuple[str, str, str]]:
    """(name as received, raw value, decoded value) of the parameters the recipe hashes, in received order."""
    rows = [(name, raw, value) for (name, value), (_, raw) in zip(ctx.inp.pairs, ctx.inp.raw)]
    sel = recipe.selection
    if sel == "all_with_shasign":
        return rows
    rows = [r for r in rows if r[0].upper() != "SHASIGN"]
    if sel == "all":
        return rows
    if sel == "list":
        return [r for r in rows if r[0].upper() in ctx.current_list]
    if sel == "list_for_sha_in":
        return [r for r in rows if r[0].upper() in ctx.current_list]
    if sel.startswith("variant:"):
        variant = ctx.list_variant(sel.split(":", 1)[1])
        return [r for r in rows if r[0].upper() in set(variant.parameters)]
    if sel.startswith("omit:"):
        base = _correct_selection(ctx.rule)
        left_out = sel.split(":", 1)[1]
        return [r for r in _selected(replace(recipe, selection=base), ctx) if r[0].upper() != left_out]
    raise ValueError(f"unknown selection {sel!r}")


def _correct_selection(rule: str) -> str:
    return "list" if rule == SHA_OUT else "all"


def build_text(recipe: Recipe, ctx: SigningContext, secret: str) -> str:
    """The string `recipe` hashes, with `secret` (the real passphrase, or the mask for display)."""
    pphrase = _passphrase_form(secret, recipe.passphrase)
    if recipe.selection == "legacy":
        fields = ctx.legacy_fields()
        raw_of = {n.upper(): r for n, r in ctx.inp.raw}
        parts = [_value_form(raw_of.get(f.upper(), ""), ctx.inp.get(f) or "", recipe.values, recipe.encoding)
                 for f in fields]
        return "".join(parts) + pphrase
    rows = _selected(recipe, ctx)
    if recipe.empty == "dropped":
        rows = [r for r in rows if r[2] != ""]
    if recipe.order == "by_name":
        rows = sorted(rows, key=lambda r: r[0].upper())
    elif recipe.order == "case_sensitive":
        rows = sorted(rows, key=lambda r: r[0])
    pairs = [((n.upper() if recipe.names == "upper" else n), _value_form(raw, v, recipe.values, recipe.encoding))
             for n, raw, v in rows]
    if recipe.placement == "each_pair":
        return "".join(f"{n}={v}{pphrase}" for n, v in pairs)
    return "".join(f"{n}={v}" for n, v in pairs) + pphrase


_PASSPHRASE_MARK = "\x00passphrase\x00"


def hashed_encoding(recipe: Recipe) -> str:
    """The encoding the recipe's string (values and names) is hashed in: a UTF-8-decoding handler hashes UTF-8."""
    return "UTF-8" if recipe.values == "utf8_decoded" else normalise_encoding(recipe.encoding)


def build_bytes(recipe: Recipe, ctx: SigningContext, secret: str) -> bytes:
    """The bytes `recipe` hashes: the string in its encoding, the passphrase in `passphrase_encoding` when
    that differs (a passphrase saved as UTF-8 in a PHP file while the values arrive as ISO-8859-1).
    Raises UnicodeEncodeError when a character cannot exist in that encoding."""
    codec = ENCODINGS[hashed_encoding(recipe)]
    if not recipe.passphrase_encoding or normalise_encoding(recipe.passphrase_encoding) == hashed_encoding(recipe):
        return build_text(recipe, ctx, secret).encode(codec)
    text = build_text(replace(recipe, passphrase="as_given"), ctx, _PASSPHRASE_MARK)
    passphrase = _passphrase_form(secret, recipe.passphrase).encode(ENCODINGS[normalise_encoding(
        recipe.passphrase_encoding)])
    return passphrase.join(piece.encode(codec) for piece in text.split(_PASSPHRASE_MARK))


# -- public API --------------------------------------------------------------------------------------------

def compute(inp: ParameterInput, passphrase: str, *, rule: str = SHA_OUT, algorithm: str, encoding: str,
            platform: Platform) -> Computation:
    """The signature the platform computes (SHA-OUT) or expects (SHA-IN) for these parameters."""
    if rule not in RULES:
        raise ValueError(f"unknown rule {rule!r}")
    algorithm, encoding = normalise_algorithm(algorithm), normalise_encoding(encoding)
    signed = signed_string(inp.pairs, platform.sha_out_parameters if rule == SHA_OUT else None)
    try:
        check_passphrase_encoding(passphrase, encoding)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    try:
        value = digest(signed.text(passphrase), algorithm, encoding)
    except ValueError as e:
        raise ConfigError(str(e), file=inp.origin) from None
    return Computation(rule, algorithm, encoding, signed, value)


def diagnose(inp: ParameterInput, passphrase: str, *, platform: Platform, shasign: str | None = None,
             rule: str = SHA_OUT, algorithm: str | None = None, encoding: str = "UTF-8",
             other_passphrase: str | None = None, max_mistakes: int = 2) -> SignatureCheck:
    """Check `shasign` (default: the SHASIGN parameter); when it does not match, search the known mistakes.

    `algorithm=None` takes the algorithm from the SHASIGN's length. `other_passphrase` is the account's
    other passphrase (TEST when `passphrase` is PROD's, or the reverse) to recognise a swap.
    """
    given_text = shasign if shasign is not None else inp.shasign
    if given_text is None:
        raise ConfigError("no SHASIGN in the parameters (give it there or with --shasign)", file=inp.origin)
    try:
        given = parse_shasign(given_text)
    except ValueError as e:
        raise ConfigError(str(e), file=inp.origin, field="SHASIGN") from None
    actual_algorithm = algorithm_of_digest(given)
    assert actual_algorithm is not None        # parse_shasign guarantees a known length
    inferred = algorithm is None
    configured_algorithm = actual_algorithm if algorithm is None else normalise_algorithm(algorithm)
    encoding = normalise_encoding(encoding)
    expected = compute(inp, passphrase, rule=rule, algorithm=configured_algorithm, encoding=encoding,
                       platform=platform)
    notes: list[str] = []
    if given_text.strip() != given:
        notes.append("The SHASIGN was given in lower case; the platform sends upper case, so compare without "
                     "regard to letter case.")
    if expected.digest == given:
        return SignatureCheck(CheckStatus.MATCH, given, expected, algorithm_inferred=inferred, notes=tuple(notes))

    ctx = SigningContext(inp, rule, platform, passphrase, other_passphrase)
    correct = Recipe(selection=_correct_selection(rule), encoding=encoding, algorithm=configured_algorithm)
    seen: set[bytes] = set()
    if actual_algorithm == configured_algorithm:
        # Already hashed as `expected`; with another algorithm the same string is the first thing to try.
        seen.add(expected.signed.text(passphrase).encode(ENCODINGS[encoding]))
    tried = 1
    for level in range(max_mistakes + 1):
        by_bytes: dict[bytes, list[Recipe]] = {}
        for recipe in _recipes_at(level, correct, ctx, actual_algorithm):
            try:
                data = build_bytes(recipe, ctx, ctx.other if recipe.secret == "other" and ctx.other else
                                   passphrase)
            except (UnicodeEncodeError, LookupError):
                continue                       # e.g. '€' cannot be ISO-8859-1: this recipe cannot exist
            if data in seen:
                continue
            by_bytes.setdefault(data, []).append(recipe)
        for data, recipes in by_bytes.items():
            seen.add(data)
            tried += 1
            if digest_bytes(data, actual_algorithm) == given:
                first, *others = recipes
                log.debug("SHASIGN reproduced after %d variants", tried)
                return SignatureCheck(
                    CheckStatus.EXPLAINED, given, expected,
                    mistakes=_describe(correct, first, ctx),
                    reproduced_masked=_masked(first, ctx),
                    alternatives=tuple(_describe(correct, r, ctx) for r in others),
                    variants_tried=tried, algorithm_inferred=inferred, notes=tuple(notes))
    notes.append("No known mistake (alone or two together) reproduces this SHASIGN. Check the passphrase "
                 "itself (copied from the right account and environment?) and that the parameters are exactly "
                 "those received, unchanged.")
    return SignatureCheck(CheckStatus.UNEXPLAINED, given, expected, variants_tried=tried,
                          algorithm_inferred=inferred, notes=tuple(notes))


# -- the search space ------------------------------------------------------------------------------------

#: (the account's recipe, what is signed) -> the wrong values one knob can take.
_Alternatives = Callable[[Recipe, SigningContext], list[str]]


def _other_secrets(correct: Recipe, ctx: SigningContext) -> list[str]:
    return ["other"] if ctx.other and ctx.other != ctx.main else []


def _other_encodings(correct: Recipe, ctx: SigningContext) -> list[str]:
    return [e for e in ctx.platform.encodings if normalise_encoding(e) != correct.encoding] or \
        [e for e in ENCODINGS if e != correct.encoding]


def _passphrase_encodings(correct: Recipe, ctx: SigningContext) -> list[str]:
    if all(ord(c) < 128 for c in ctx.main + (ctx.other or "")):
        return []                      # an ASCII passphrase is the same bytes in every encoding
    return [e for e in ctx.platform.encodings if normalise_encoding(e) != correct.encoding]


def _wrong_selections(correct: Recipe, ctx: SigningContext) -> list[str]:
    """Older lists and every parameter (SHA-OUT) or the SHA-OUT list (SHA-IN), SHASIGN hashed, the legacy
    rule, and each signed parameter left out in turn."""
    out: list[str] = []
    if ctx.rule == SHA_OUT:
        out += [f"variant:{v.name}" for v in ctx.platform.sha_out_list_variants]
        out += ["all"]
    else:
        out += ["list_for_sha_in"]
    out += ["all_with_shasign"]
    if ctx.platform.legacy_concatenation is not None:
        out += ["legacy"]
    signed = {n for n, _ in signed_string(ctx.inp.pairs, ctx.platform.sha_out_parameters
                                          if ctx.rule == SHA_OUT else None).pairs}
    out += [f"omit:{n}" for n in sorted(signed)]
    return out


def _value_forms(correct: Recipe, ctx: SigningContext) -> list[str]:
    return ["as_received", "urlencode", "rawurlencode"] + (["utf8_decoded"] if correct.encoding != "UTF-8" else [])


def _passphrase_forms(correct: Recipe, ctx: SigningContext) -> list[str]:
    forms = ["trailing_newline", "trailing_crlf", "trailing_space", "leading_space"]
    if ctx.main != ctx.main.strip():
        forms.append("stripped")
    return forms


def _always(*values: str) -> _Alternatives:
    return lambda correct, ctx: list(values)


#: knob -> its wrong values for these parameters (only those that can change the string). The algorithm
#: is not searched: the SHASIGN's length names it.
_ALTERNATIVES: dict[str, _Alternatives] = {
    "secret": _other_secrets,
    "encoding": _other_encodings,
    "passphrase_encoding": _passphrase_encodings,
    "selection": _wrong_selections,
    "names": _always("as_received"),
    "order": _always("case_sensitive", "as_received"),
    "empty": _always("hashed"),
    "placement": _always("once_at_end"),
    "values": _value_forms,
    "passphrase": _passphrase_forms,
}


def knob_alternatives(knob: str, correct: Recipe, ctx: SigningContext) -> list[str]:
    """The wrong values `knob` can take for these parameters (only those that can change the string)."""
    alternatives = _ALTERNATIVES.get(knob)
    return alternatives(correct, ctx) if alternatives else []


def _recipes_at(level: int, correct: Recipe, ctx: SigningContext, actual_algorithm: str) -> Iterator[Recipe]:
    """Every recipe with exactly `level` knobs (other than the algorithm) turned."""
    base = replace(correct, algorithm=actual_algorithm)
    knobs = [k for k in KNOB_ORDER if k != "algorithm"]
    options = {k: knob_alternatives(k, correct, ctx) for k in knobs}
    for chosen in itertools.combinations(knobs, level):
        for values in itertools.product(*(options[k] for k in chosen)):
            yield replace(base, **dict(zip(chosen, values)))


@dataclass(frozen=True)
class KnobTurn:
    """One knob of the account's recipe (`correct`) turned to `value`: what a catalogue entry describes."""

    knob: str
    value: str
    correct: Recipe
    ctx: SigningContext

    @property
    def code(self) -> str:
        return mistake_code(self.knob, self.value)

    @property
    def selected_name(self) -> str:
        """The older list (`variant:<name>`) or the parameter left out (`omit:<NAME>`) a selection names."""
        return self.value.split(":", 1)[1]


# -- describing a recipe's mistakes (verify) -------------------------------------------------------------

def _masked(recipe: Recipe, ctx: SigningContext) -> str:
    text = build_text(recipe, ctx, PASSPHRASE_MASK)
    return text.replace("\r", "\\r").replace("\n", "\\n")


def _describe(correct: Recipe, recipe: Recipe, ctx: SigningContext) -> tuple[Mistake, ...]:
    return tuple(_mistake(KnobTurn(knob, getattr(recipe, knob), correct, ctx)) for knob in correct.diff(recipe))


#: What the integration did, and a fix for these parameters (None: the catalogue's generic fix).
_Detail = tuple[str, str | None]


def _mistake(turn: KnobTurn) -> Mistake:
    code = turn.code
    title, generic_fix = MISTAKES[code]
    detail, fix = _DETAILS[code](turn)
    return Mistake(code, title, detail, fix or generic_fix)


def _algorithm_detail(turn: KnobTurn) -> _Detail:
    wrong, configured = turn.value, turn.correct.algorithm
    return (f"The SHASIGN is a {wrong} digest (its length says so), but {configured} is configured on your side.",
            (f"Use {wrong} on both sides, or switch the account and the code to {configured} together "
             f"({BACK_OFFICE_SECURITY})."))


def _test_passphrase_detail(turn: KnobTurn) -> _Detail:
    return (("The SHASIGN matches the second passphrase you gave, not the first. TEST and PROD accounts must have "
             "different passphrases."), None)


def _encoding_detail(turn: KnobTurn) -> _Detail:
    wrong, account = turn.value, turn.correct.encoding
    return ((f"The string was hashed as {wrong} bytes, not {account}: non-ASCII characters (in CN, an address or "
             "the passphrase) become different bytes."),
            (f"Encode the string as {account} before hashing (s.encode('{ENCODINGS[account]}')), or set the "
             f"account's character encoding to {wrong} if that is what your code uses."))


def _mixed_encodings_detail(turn: KnobTurn) -> _Detail:
    return ((f"The values were hashed as {turn.correct.encoding} bytes but the passphrase as {turn.value} bytes "
             "(typically a passphrase written into a UTF-8 source or configuration file)."), None)


def _outdated_list_detail(turn: KnobTurn) -> _Detail:
    ctx = turn.ctx
    variant = ctx.list_variant(turn.selected_name)
    lacking, extra = ctx.list_difference(variant)
    parts = []
    if lacking:
        parts.append(f"it lacks {', '.join(lacking)}, which the platform signs")
    if extra:
        parts.append(f"it includes {', '.join(extra)}, which the platform does not sign")
    return (f"The SHASIGN was computed with the older '{variant.name}' list ({variant.source}) "
            f"[{variant.provenance}]: " + "; ".join(parts) + ".",
            (f"Replace the list in your code with the current SHA-OUT list ({len(ctx.current_list)} names, "
             f"{CURRENT_LIST_SOURCE})."))


def _every_parameter_detail(turn: KnobTurn) -> _Detail:
    return ((f"Parameters not on the SHA-OUT list ({', '.join(turn.ctx.outside_list())}) were hashed too; the "
             "platform hashes only names on the SHA-OUT list."), None)


def _shasign_hashed_detail(turn: KnobTurn) -> _Detail:
    return "The SHASIGN parameter was included in the string; the platform never hashes it.", None


def _sha_out_list_for_sha_in_detail(turn: KnobTurn) -> _Detail:
    return (("Only names on the SHA-OUT list were hashed; for a payment request (SHA-IN) the platform hashes every "
             "parameter sent."), None)


def _legacy_concatenation_detail(turn: KnobTurn) -> _Detail:
    concat = turn.ctx.platform.legacy_concatenation
    assert concat is not None          # the search offers the legacy rule only when the profile has it
    return ("Only the values of " + "+".join(turn.ctx.legacy_fields()) + " were concatenated, with the passphrase "
            f"once at the end: the old Ogone rule ({concat.source}) [{concat.provenance}].", None)


def _parameter_left_out_detail(turn: KnobTurn) -> _Detail:
    name = turn.selected_name
    why = ("it is on the SHA-OUT list and the platform signs it" if turn.ctx.rule == SHA_OUT else
           "the platform checks every parameter sent (was it added to the form after signing?)")
    return (f"The SHASIGN is reproduced without {name}; {why}.",
            f"Include {name}: hash every received parameter that is signed, not a fixed selection.")


def _names_not_uppercased_detail(turn: KnobTurn) -> _Detail:
    return (("The names were hashed as received (orderID, amount, ...); the platform upper-cases every name "
             "(ORDERID, AMOUNT, ...) before hashing."), None)


def _case_sensitive_sort_detail(turn: KnobTurn) -> _Detail:
    return (("The parameters were sorted before upper-casing, so 'amount' and 'orderID' came after all upper-case "
             "names; the platform sorts by the upper-cased name."), None)


def _not_sorted_detail(turn: KnobTurn) -> _Detail:
    return (("The parameters were hashed in the order received; the platform sorts them alphabetically by "
             "upper-cased name."), None)


def _empty_values_hashed_detail(turn: KnobTurn) -> _Detail:
    return ((f"Parameters with an empty value ({', '.join(turn.ctx.empty_names())}) were hashed as NAME=; the "
             "platform leaves out every parameter whose value is empty."), None)


def _passphrase_once_detail(turn: KnobTurn) -> _Detail:
    return (("The pairs were concatenated and the passphrase added once; the platform appends the passphrase after "
             "EVERY NAME=value pair, the last one included."), None)


def _utf8_decoding_handler_detail(turn: KnobTurn) -> _Detail:
    return (("The values were hashed as a UTF-8-decoding framework sees them: the "
             f"{turn.correct.encoding} bytes of non-ASCII characters (in CN, an address) decoded as UTF-8 become "
             "replacement characters, and the string is hashed as UTF-8."), None)


#: How each URL-encoding value form writes the values.
_URL_ENCODED = {"as_received": "exactly as received (still URL-encoded)",
                "urlencode": "URL-encoded (urlencode/quote_plus: space as '+')",
                "rawurlencode": "URL-encoded (rawurlencode/quote: space as '%20')"}


def _url_encoded_values_detail(turn: KnobTurn) -> _Detail:
    return f"The values were hashed {_URL_ENCODED[turn.value]}; the platform hashes the decoded values.", None


def _passphrase_whitespace_detail(turn: KnobTurn) -> _Detail:
    return f"The passphrase was used {PASSPHRASE_FORMS[turn.value]}.", None


#: mistake code -> what `verify` says about it for these parameters.
_DETAILS: dict[str, Callable[[KnobTurn], _Detail]] = {
    "signature.mistake.algorithm": _algorithm_detail,
    "signature.mistake.test_passphrase": _test_passphrase_detail,
    "signature.mistake.encoding": _encoding_detail,
    "signature.mistake.mixed_encodings": _mixed_encodings_detail,
    "signature.mistake.outdated_list": _outdated_list_detail,
    "signature.mistake.every_parameter": _every_parameter_detail,
    "signature.mistake.shasign_hashed": _shasign_hashed_detail,
    "signature.mistake.sha_out_list_for_sha_in": _sha_out_list_for_sha_in_detail,
    "signature.mistake.legacy_concatenation": _legacy_concatenation_detail,
    "signature.mistake.parameter_left_out": _parameter_left_out_detail,
    "signature.mistake.names_not_uppercased": _names_not_uppercased_detail,
    "signature.mistake.case_sensitive_sort": _case_sensitive_sort_detail,
    "signature.mistake.not_sorted": _not_sorted_detail,
    "signature.mistake.empty_values_hashed": _empty_values_hashed_detail,
    "signature.mistake.passphrase_once": _passphrase_once_detail,
    "signature.mistake.utf8_decoding_handler": _utf8_decoding_handler_detail,
    "signature.mistake.url_encoded_values": _url_encoded_values_detail,
    "signature.mistake.passphrase_whitespace": _passphrase_whitespace_detail,
}
