"""`explain`: decode what the platform or feedback-check says into the merchant's terms.

Understood: the back office's ``unknown order/…`` errors (platform.md §6, the IP shown for ``/1/i/``),
transaction STATUS codes (from the platform profile, with the second-digit rule), NCERROR values by
family, feedback-check finding codes (from findings.CATALOGUE) and the signature doctor's mistake codes.
Anything else gets an honest "not documented" answer, never a guess.

Deliberately light: no network library is imported on this path (`explain` works offline and starts
fast).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from feedback_check.findings import CATALOGUE, info_for
from feedback_check.platform import Platform

#: The documented ``unknown order/<digit>/<letter>/`` variants (platform.md §6 [doc]):
#: (digit, letter) -> (title, what it means, what to check next).
UNKNOWN_ORDER: dict[tuple[str, str], tuple[str, str, tuple[str, ...]]] = {
    ("1", "s"): (
        "SHA-IN signature of the payment request does not match",
        ("The SHASIGN your shop sent with the payment request differs from the one the platform computes "
        "with the account's SHA-IN passphrase, hash algorithm and character encoding."),
        (("Run `feedback-check verify --sha-in` with the payment request's parameters, their SHASIGN and your "
         "SHA-IN passphrase: it names the mistake (passphrase of the other environment, algorithm, encoding, "
         "names not upper-cased or not sorted, empty values hashed, passphrase not after every pair, ...)."),
         ("Compare the SHA-IN passphrase in Configuration > Technical information > Data and origin "
         "verification with the one your shop uses (TEST and PROD differ)."))),
    ("0", "s"): (
        "SHA-IN signature missing",
        "The payment request carried no SHASIGN, but a SHA-IN passphrase is configured for the account.",
        ("Make the shop send SHASIGN with every payment request (computed with the SHA-IN passphrase).",)),
    ("1", "r"): (
        "Referring page not allowed",
        "The page the payment request came from is not in the account's list of allowed merchant URLs.",
        (("Add the shop's payment page URL under Configuration > Technical information > Data and origin "
         "verification (URL of the merchant page containing the payment form)."),
         "Or send a correct SHASIGN: a valid signature is the stronger check.")),
    ("0", "r"): (
        "No referrer received",
        "The payment request arrived without a Referer header, so the origin could not be checked.",
        ("Send a correct SHASIGN with the request: it lets the platform accept it without a referrer.",
         "Check for a Referrer-Policy (e.g. no-referrer) on the payment page.")),
    ("1", "i"): (
        "Calling server's IP address not allowed (DirectLink)",
        "The server that called the platform is not in the account's list of allowed IP addresses.",
        (("Add the address below to Configuration > Technical information > Data and origin verification > "
         "IP address of your server (DirectLink)."),
         "If your shop leaves through a NAT, proxy or several egress addresses, list each public address.")),
}

#: The transaction e-mail's "process error" (platform.md, PostFinance FAQ [doc]).
PROCESS_ERROR = (
    "Post-sale request failed (\"process error\")",
    ("PostFinance's FAQ: the platform could not reach your server (unavailable) or your server returned an "
    "error to the post-sale request. The payment itself is not affected; your shop did not learn its result."),
    (("Run `feedback-check probe URL` (or `check` with your profile) against the post-sale URL: it names the "
     "failing phase (DNS, connection, TLS, HTTP answer, time)."),
     ("Run `feedback-check firewall FILE...` on your allowlists: the platform must reach the post-sale URL's port from its "
     "published ranges."),
     "Compare the back office's post-sale URL, request method and SHA-OUT settings with your handler's."),
)
_PROCESS_ERROR = re.compile(r"process\s+error", re.IGNORECASE)
_UNKNOWN_ORDER = re.compile(r"unknown\s+order\s*/\s*(\w*)\s*/\s*(\w*)\s*/?\s*([^\s,;]*)", re.IGNORECASE)
_STATUS = re.compile(r"\bSTATUS\s*[=:]?\s*(\S+)", re.IGNORECASE)
_NCERROR = re.compile(r"\bNCERROR\s*[=:]?\s*(\S+)", re.IGNORECASE)
_CODE = re.compile(r"^[a-z0-9_]+(\.[a-z0-9_]+)*\.?$")
NCERROR_DIGITS = 8


@dataclass(frozen=True)
class Explanation:
    """What one piece of the input means, or an honest 'not documented'."""

    query: str
    kind: str          # unknown_order | platform_message | status | ncerror | finding | finding_family |
    #                    signature_mistake | not_documented
    documented: bool
    title: str
    meaning: str = ""
    check_next: tuple[str, ...] = ()
    details: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"query": self.query, "kind": self.kind, "documented": self.documented, "title": self.title,
                "meaning": self.meaning, "check_next": list(self.check_next), "details": dict(self.details)}


@dataclass(frozen=True)
class ExplainResult:
    """Everything `explain TEXT` found."""

    text: str
    explanations: tuple[Explanation, ...]

    @property
    def documented(self) -> bool:
        return bool(self.explanations) and all(e.documented for e in self.explanations)

    @property
    def exit_code(self) -> int:
        """0 when everything is documented; 3 (UNKNOWN) when anything is not: scripts can tell."""
        return 0 if self.documented else 3

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "documented": self.documented,
                "explanations": [e.to_dict() for e in self.explanations]}


def explain(text: str, platform: Platform) -> ExplainResult:
    """Explain every recognisable item of `text`."""
    stripped = text.strip()
    found: list[Explanation] = []
    for match in _UNKNOWN_ORDER.finditer(stripped):
        found.append(explain_unknown_order(match.group(0), match.group(1), match.group(2), match.group(3)))
    if not found and _PROCESS_ERROR.search(stripped):
        title, meaning, check_next = PROCESS_ERROR
        found.append(Explanation(stripped, "platform_message", True, title, meaning, check_next))
    if not found:
        for match in _STATUS.finditer(stripped):
            found.append(explain_status(match.group(1), platform, query=match.group(0)))
        for match in _NCERROR.finditer(stripped):
            found.append(explain_ncerror(match.group(1), platform, query=match.group(0)))
    if not found and stripped:
        found.append(_explain_token(stripped, platform))
    if not found:
        found.append(_not_documented(stripped, "Nothing to explain: give an error text, a STATUS, an NCERROR or a "
                                               "finding code."))
    return ExplainResult(text, tuple(found))


def explain_unknown_order(query: str, digit: str, letter: str, rest: str) -> Explanation:
    entry = UNKNOWN_ORDER.get((digit, letter.lower()))
    if entry is None:
        return _not_documented(query, f"'unknown order/{digit}/{letter}/' is not a documented variant. The "
                                      "documented ones are " + ", ".join(f"/{d}/{c}/" for d, c in UNKNOWN_ORDER)
                               + "; ask PostFinance support about this one.")
    title, meaning, check_next = entry
    details: dict[str, Any] = {"variant": f"unknown order/{digit}/{letter.lower()}/"}
    if letter.lower() == "i":
        try:
            address = ipaddress.ip_address(rest.strip().strip("/"))
        except ValueError:
            meaning += " The message carries no valid IP address after /1/i/."
        else:
            details["ip"] = str(address)
            meaning += f" The platform saw the call coming from {address}."
            check_next = (check_next[0].replace("the address below", str(address)),) + check_next[1:]
    return Explanation(query, "unknown_order", True, title, meaning, check_next, details)


def explain_status(value: str, platform: Platform, *, query: str | None = None) -> Explanation:
    query = query or value
    # isdigit() also accepts digits int() refuses ("²"); statuses have two digits, so a longer
    # number is simply undocumented (and never reaches int()'s length limit).
    if not (value.isascii() and value.isdigit()):
        return _not_documented(query, f"STATUS {value!r} is not a number; statuses are 0-99.")
    code = int(value) if len(value) <= 9 else -1
    if code not in platform.statuses:
        shown = value if len(value) <= 20 else value[:20] + "…"
        return _not_documented(query, f"STATUS {shown} is not in the documented status list "
                                      f"({platform.origin_file}).")
    meaning = platform.statuses[code]
    details: dict[str, Any] = {"status": code}
    title = f"STATUS {code}: {meaning}"
    lines = []
    if code >= 10 and code % 10 in platform.status_second_digit:
        kind = platform.status_second_digit[code % 10]
        details["second_digit"] = kind
        lines.append(f"Second digit {code % 10}: {kind}.")
        main = code // 10
        if main in platform.statuses:
            lines.append(f"Main status {main}: {platform.statuses[main]}.")
    role = next((name for name, info in platform.roles.items() if code in info.statuses and name != "status_change"),
                None)
    if role:
        details["post_sale_url"] = role
        lines.append(f"The post-sale request for it goes to the '{role}' URL ({platform.roles[role].description}).")
    if code == 0:
        lines.append("NCERROR carries the reason; explain it too (e.g. `feedback-check explain NCERROR=50001111`).")
    return Explanation(query, "status", True, title, " ".join(lines) or meaning, (), details)


def explain_ncerror(value: str, platform: Platform, *, query: str | None = None) -> Explanation:
    query = query or value
    if not (value.isascii() and value.isdigit()):
        return _not_documented(query, f"NCERROR {value!r} is not a number.")
    if not value.strip("0"):
        return Explanation(query, "ncerror", True, f"NCERROR {value}: {platform.ncerror_families.get('0', 'no error')}",
                           "The transaction had no error.", (), {"ncerror": value, "family": "0"})
    family = next((prefix for prefix in platform.ncerror_families if prefix != "0" and value.startswith(prefix)),
                  None)
    if family is None or len(value) not in (len(family), NCERROR_DIGITS):
        return _not_documented(query, f"NCERROR {value} belongs to no documented family "
                                      f"({', '.join(p + 'xxxxx' for p in platform.ncerror_families if p != '0')}).")
    meaning = platform.ncerror_families[family]
    text = (f"Family {family}xxxxx: {meaning}. feedback-check knows the families only, not each code: the "
            "transaction's details in the back office show the full error text.")
    return Explanation(query, "ncerror", True, f"NCERROR {value}: {meaning}", text, (),
                       {"ncerror": value, "family": family})


def explain_code(code: str, platform: Platform | None = None) -> Explanation | None:
    """A finding code or a signature doctor mistake code; None when it is neither. A finding's texts
    carry `platform`'s values (findings.info_for)."""
    if code in CATALOGUE:
        info = info_for(code, platform)
        severity = info.severity.value if info.severity else "error"
        return Explanation(code, "finding", True, info.title, info.why, (info.fix,) if info.fix else (),
                           {"code": code, "severity": severity})
    from feedback_check.signature.catalogue import MISTAKES
    if code in MISTAKES:
        title, fix = MISTAKES[code]
        return Explanation(code, "signature_mistake", True, title,
                           "A SHA-OUT/SHA-IN mistake `feedback-check verify` names: signatures made this way do not "
                           "match, so the platform reports unknown order/1/s/ (payment request) or your post-sale "
                           "handler rejects the platform's request.", (fix,), {"code": code})
    return None


def _explain_token(token: str, platform: Platform) -> Explanation:
    code = token.lower()
    if _CODE.match(code):
        exact = explain_code(code, platform)
        if exact is not None:
            return exact
        from feedback_check.signature.catalogue import MISTAKES
        prefix = code.rstrip(".") + "."
        family = sorted(c for c in list(CATALOGUE) + list(MISTAKES) if c.startswith(prefix))
        if family:
            return Explanation(token, "finding_family", True, f"{len(family)} codes start with {prefix}",
                               "; ".join(f"{c}: {_title_of(c)}" for c in family), (),
                               {"codes": family})
    if token.isdigit():
        if len(token) <= 2:
            explanation = explain_status(token, platform)
            if token == "0" and explanation.documented:
                return Explanation(token, "status", True, explanation.title,
                                   explanation.meaning + " (As an NCERROR, 0 means no error.)", (),
                                   explanation.details)
            return explanation
        return explain_ncerror(token, platform)
    return _not_documented(token, "This is not a documented platform message, STATUS, NCERROR or feedback-check "
                                  "code. feedback-check does not guess: ask PostFinance support with the full text.")


def _title_of(code: str) -> str:
    explanation = explain_code(code)
    return explanation.title if explanation else ""


def _not_documented(query: str, why: str) -> Explanation:
    return Explanation(query, "not_documented", False, "Not documented", why)
