"""The simulated post-sale request: the parameters PostFinance would send, signed with SHA-OUT.

A simulated request looks like a real PostFinance TEST post-sale (platform.md §2): mixed-case names
(`orderID`, `amount`, `currency`), a masked card number, a documentation-range client IP, today's
TRXDATE, empty parameters still sent, and an order reference that is obviously a test (configurable
prefix) so the merchant's system can recognise and ignore it. Only the dynamic parameters the merchant
configured are sent; SHASIGN comes last, as the platform sends it.

The passphrase is read (`Secret.reveal()`) only inside `_sign`; a `SimulatedPostSale` never holds it.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import quote_plus, urlsplit, urlunsplit

from feedback_check.errors import UsageError
from feedback_check.platform import Platform
from feedback_check.profile import SignatureSettings
from feedback_check.signature import ENCODINGS, normalise_encoding, sign_string, signed_string

FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
MASKED_CARD = "X" * 12 + "1111"     # how the platform masks the card number
#: The cardholder name carries a non-ASCII letter on purpose: real Swiss cardholders do, and it is the
#: only way an encoding mismatch (UTF-8 vs ISO-8859-1) between account and handler shows up.
CARDHOLDER = "Test Käufer"


@dataclass(frozen=True)
class _Context:
    status: int
    today: dt.date
    order_id: str
    pay_id: str
    platform: Platform


#: STATUS values whose post-sale carries no card data: the customer cancelled before paying (1), or the
#: payment never got that far (0 invalid/incomplete).
_NO_CARD_STATUSES = frozenset({0, 1})
#: Names that describe the card or its checks: empty when the customer cancelled (STATUS 1).
_CARD_NAMES = frozenset({"CARDNO", "ED", "CN", "BRAND", "BIN", "SUBBRAND", "AAVCHECK", "CVCCHECK", "ECI",
                         "DIGESTCARDNO", "ENCCARDNO", "AAVADDRESS", "AAVZIP", "AAVNAME", "AAVPHONE", "AAVMAIL",
                         "ALIAS", "CCCTY", "VC"})


def _acceptance(ctx: _Context) -> str:
    # Cancelled (1), refused (2) and invalid (0) payments carry no acceptance code.
    return "" if ctx.status in (0, 1, 2) else "TEST"


def _ncerror(ctx: _Context) -> str:
    """NCERROR of the family the STATUS implies (platform.md §2): 0 on success, 300xxxxx refused,
    500xxxxx invalid/incomplete, 200xxxxx uncertain."""
    if ctx.status == 2 or ctx.status % 10 == 3 and ctx.status >= 10:
        return "30001001"
    if ctx.status == 0:
        return "50001111"
    if ctx.status % 10 == 2 and ctx.status >= 10:
        return "20002001"
    return "0"


#: UPPER-CASED name -> (name as the platform spells it, value). Every name of the current SHA-OUT list
#: has a realistic value (the platform sends several of them empty, e.g. ALIAS without an alias);
#: names not listed are still sent (as configured) with an empty value, the way the platform sends
#: parameters it has no value for.
_PARAMETERS: dict[str, tuple[str, Callable[[_Context], str]]] = {
    "ORDERID": ("orderID", lambda c: c.order_id),
    "AMOUNT": ("amount", lambda c: "1"),
    "CURRENCY": ("currency", lambda c: "CHF"),
    "PM": ("PM", lambda c: "CreditCard"),
    "ACCEPTANCE": ("ACCEPTANCE", _acceptance),
    "STATUS": ("STATUS", lambda c: str(c.status)),
    "CARDNO": ("CARDNO", lambda c: MASKED_CARD),
    "ED": ("ED", lambda c: f"12{(c.today.year + 3) % 100:02d}"),
    "CN": ("CN", lambda c: CARDHOLDER),
    "TRXDATE": ("TRXDATE", lambda c: c.today.strftime("%m/%d/%y")),
    "PAYID": ("PAYID", lambda c: c.pay_id),
    "PAYIDSUB": ("PAYIDSUB", lambda c: "0"),
    "NCERROR": ("NCERROR", _ncerror),
    "NCERRORPLUS": ("NCERRORPLUS", lambda c: "!" if _ncerror(c) == "0" else "Authorisation refused"),
    "NCSTATUS": ("NCSTATUS", lambda c: _ncerror(c)[:1] if _ncerror(c) != "0" else "0"),
    "BRAND": ("BRAND", lambda c: "VISA"),
    "SUBBRAND": ("SUBBRAND", lambda c: "VISA"),
    "IP": ("IP", lambda c: c.platform.client_ip),
    "IPCTY": ("IPCTY", lambda c: "99"),
    "AAVCHECK": ("AAVCheck", lambda c: "NO"),
    "AAVADDRESS": ("AAVADDRESS", lambda c: "NO"),
    "AAVZIP": ("AAVZIP", lambda c: "NO"),
    "AAVNAME": ("AAVNAME", lambda c: "NO"),
    "AAVPHONE": ("AAVPHONE", lambda c: "NO"),
    "AAVMAIL": ("AAVMAIL", lambda c: "NO"),
    "CVCCHECK": ("CVCCheck", lambda c: "NO"),
    "CCCTY": ("CCCTY", lambda c: "CH"),
    "ECI": ("ECI", lambda c: "7"),
    "VC": ("VC", lambda c: ""),
    "BIN": ("BIN", lambda c: "411111"),
    "COMPLUS": ("COMPLUS", lambda c: ""),
    "ALIAS": ("ALIAS", lambda c: ""),
    "EMAIL": ("EMAIL", lambda c: "test.kaeufer@example.ch"),
    "SCORING": ("SCORING", lambda c: "1"),
    "SCO_CATEGORY": ("SCO_CATEGORY", lambda c: "G"),
    "TICKET": ("TICKET", lambda c: ""),
    "CREATION_STATUS": ("CREATION_STATUS", lambda c: ""),
    "CREDITDEBIT": ("CREDITDEBIT", lambda c: "C"),
    "DIGESTCARDNO": ("DIGESTCARDNO", lambda c: "D3F1A8B2C9E0475612AB34CD56EF7890123456AB"),
    "NBREMAILUSAGE": ("NBREMAILUSAGE", lambda c: "1"),
    "NBRIPUSAGE": ("NBRIPUSAGE", lambda c: "1"),
    "NBRIPUSAGE_ALLTX": ("NBRIPUSAGE_ALLTX", lambda c: "1"),
    "NBRUSAGE": ("NBRUSAGE", lambda c: "1"),
    "DEVICEID": ("DEVICEID", lambda c: ""),
    "MOBILEMODE": ("MOBILEMODE", lambda c: ""),
    "SIGNDATE": ("SIGNDATE", lambda c: ""),
    "SEQUENCETYPE": ("SEQUENCETYPE", lambda c: ""),
    "MANDATEID": ("MANDATEID", lambda c: ""),
    "PAYMENT_REFERENCE": ("PAYMENT_REFERENCE", lambda c: ""),
    "SUBSCRIPTION_ID": ("SUBSCRIPTION_ID", lambda c: ""),
    "FXAMOUNT": ("FXAMOUNT", lambda c: ""),
    "FXCURRENCY": ("FXCURRENCY", lambda c: ""),
    "BIC": ("BIC", lambda c: ""),
    "COLLECTOR_BIC": ("COLLECTOR_BIC", lambda c: ""),
    "COLLECTOR_IBAN": ("COLLECTOR_IBAN", lambda c: ""),
    "ENCCARDNO": ("ENCCARDNO", lambda c: ""),
}


@dataclass(frozen=True)
class SimulatedPostSale:
    """One simulated post-sale request: parameters in sending order, and its SHA-OUT signature.

    `params` excludes SHASIGN; `all_parameters()` appends it. `signed_masked` is the string that was
    hashed with the passphrase replaced by a mask (safe to show).
    """

    method: str
    params: tuple[tuple[str, str], ...]
    shasign: str
    order_id: str
    status: int
    algorithm: str
    encoding: str
    signed_masked: str = ""
    sha_parameters: tuple[str, ...] = ()
    hashed_as: str = ""                   # encoding of the hashed string when it differs from `encoding`
    order_source: str = "simulated"       # simulated | test order | replayed <file>

    def all_parameters(self) -> list[tuple[str, str]]:
        """The parameters as sent: the dynamic ones, then SHASIGN (when a passphrase is configured)."""
        return list(self.params) + ([("SHASIGN", self.shasign)] if self.shasign else [])

    def query(self) -> str:
        """The parameters as a query string, percent-encoded in the account's character encoding."""
        return form_encode(self.all_parameters(), ENCODINGS[normalise_encoding(self.encoding)])

    def form_body(self) -> bytes:
        """The parameters as an `application/x-www-form-urlencoded` body (the account's encoding)."""
        return self.query().encode("ascii")

    def request_for(self, url: str) -> tuple[str, bytes, dict[str, str]]:
        """(URL, body, extra headers) of this request to `url`: GET carries the parameters in the
        query string (after any query already in the URL), POST in a form body."""
        if self.method == "GET":
            parts = urlsplit(url)
            query = f"{parts.query}&{self.query()}" if parts.query else self.query()
            return urlunsplit(parts._replace(query=query)), b"", {}
        return url, self.form_body(), {"Content-Type": FORM_CONTENT_TYPE}

    def with_method(self, method: str) -> SimulatedPostSale:
        """The same request sent with another method (GET/POST)."""
        return replace(self, method=method.upper())

    def forged(self) -> SimulatedPostSale:
        """The same request with a wrong SHASIGN of the right length and alphabet (every hex digit
        changed), for the forged-signature check."""
        source = self.shasign or "0" * 128
        wrong = "".join("0123456789ABCDEF"[(int(ch, 16) + 1) % 16] for ch in source)
        return replace(self, shasign=wrong, signed_masked="")

    def with_shasign(self, shasign: str) -> SimulatedPostSale:
        """The same parameters with another SHASIGN (a re-signed variant computed elsewhere)."""
        return replace(self, shasign=shasign, signed_masked="")

    def signed_as(self, signature: SignatureSettings, *, sha_parameters: Iterable[str] | None = None,
                  algorithm: str | None = None, encoding: str | None = None,
                  use_test_passphrase: bool = False) -> SimulatedPostSale:
        """The same parameters signed differently (another algorithm, hash encoding, parameter list or
        the TEST passphrase): what a handler configured that way would accept. The wire encoding stays
        the account's: a handler set to another encoding receives the same bytes and hashes them
        differently."""
        chosen_algorithm = algorithm or signature.algorithm
        chosen_encoding = normalise_encoding(encoding or signature.encoding)
        secret = signature.test_passphrase if use_test_passphrase else signature.passphrase
        names = tuple(sha_parameters) if sha_parameters is not None else self.sha_parameters
        shasign, masked = _sign(self.params, secret, chosen_algorithm, chosen_encoding, names)
        return replace(self, shasign=shasign, signed_masked=masked, algorithm=chosen_algorithm,
                       hashed_as="" if chosen_encoding == self.encoding else chosen_encoding, sha_parameters=names)


#: What `quote_plus` leaves as it is: such a name or value (nearly all of a post-sale) is sent unchanged.
_UNQUOTED = re.compile(r"[A-Za-z0-9_.~-]*")


def form_encode(pairs: Iterable[tuple[str, str]], codec: str) -> str:
    """`urllib.parse.urlencode(pairs, encoding=codec)` in one pass: the same text (and the same
    UnicodeEncodeError for a character `codec` cannot encode), without quoting what needs none."""
    unquoted = _UNQUOTED.fullmatch
    return "&".join(
        f"{name if unquoted(name) else quote_plus(name, encoding=codec)}="
        f"{value if unquoted(value) else quote_plus(value, encoding=codec)}" for name, value in pairs)


def _sign(params: Sequence[tuple[str, str]], secret: Any, algorithm: str, encoding: str,
          sha_parameters: Sequence[str]) -> tuple[str, str]:
    """(SHASIGN, masked hashed string); ('', '') without a passphrase."""
    if secret is None:
        return "", ""
    hashed = signed_string(params, sha_parameters)
    try:
        shasign = sign_string(hashed, secret.reveal(), algorithm=algorithm, encoding=encoding)
    except ValueError as e:
        # digest() words its error without the passphrase; re-raise it as a usage problem.
        raise UsageError(f"cannot sign the simulated post-sale: {e}") from None
    return shasign, hashed.masked()


def default_status(role: str, platform: Platform) -> int:
    """The STATUS a post-sale URL of this role receives by default (first of platform.roles)."""
    info = platform.roles.get(role) or next(iter(platform.roles.values()))
    return info.statuses[0]


#: One generator for the simulated order and payment ids of a process (seeding one per request from the
#: system's entropy cost more than building the rest of the request).
_RNG = random.Random()
if hasattr(os, "register_at_fork"):     # a forked child draws its own ids, as random's own generator does
    os.register_at_fork(after_in_child=_RNG.seed)


def simulated_post_sale(*, role: str, method: str, parameters: Sequence[str], signature: SignatureSettings,
                        platform: Platform, order_prefix: str, status: int | None = None,
                        today: dt.date | None = None, rng: random.Random | None = None,
                        test_order: Sequence[tuple[str, str]] = ()) -> SimulatedPostSale:
    """Build and sign the post-sale request the platform would send to a URL of `role`.

    `parameters` are the dynamic e-Commerce parameters the merchant configured (any case); each is sent
    once, spelt the way the platform spells it. `status` defaults to one that fits the role. `test_order`
    are (name, value) pairs of an order the shop knows (orderID, amount, currency, PAYID, ... any name,
    any case): they replace the simulated values, and a name not configured is sent too. A STATUS among
    them wins over `status`. Raises UsageError for a method or status the platform does not know.
    """
    method = method.upper()
    if method not in platform.methods:
        raise UsageError(f"request method {method!r} is not one of {', '.join(platform.methods)}")
    given = {name.strip().upper(): (name.strip(), value) for name, value in test_order if name.strip()}
    given.pop("SHASIGN", None)
    if "STATUS" in given:
        try:
            status = int(given["STATUS"][1])
        except ValueError:
            raise UsageError(f"test order: STATUS {given['STATUS'][1][:20]!r} is not a number") from None
    chosen_status = default_status(role, platform) if status is None else status
    if chosen_status not in platform.statuses:
        raise UsageError(f"STATUS {chosen_status} is not a transaction status of {platform.name}")
    rng = rng or _RNG
    day = today or dt.date.today()
    order_id = f"{order_prefix or platform.test_order_prefix}{day:%y%m%d}-{rng.randrange(16 ** 6):06X}"
    ctx = _Context(status=chosen_status, today=day, order_id=given.get("ORDERID", ("", order_id))[1],
                   pay_id=str(rng.randrange(3_000_000_000, 9_999_999_999)), platform=platform)
    params: list[tuple[str, str]] = []
    seen: set[str] = set()
    names = [*parameters, *(spelt for spelt, _ in given.values())]
    for configured in names:
        upper = configured.strip().upper()
        if not upper or upper == "SHASIGN" or upper in seen:
            continue
        seen.add(upper)
        name, value = _PARAMETERS.get(upper, (configured.strip(), lambda c: ""))
        if upper in given:
            params.append((name, given[upper][1]))
        elif chosen_status in _NO_CARD_STATUSES and upper in _CARD_NAMES:
            params.append((name, ""))
        else:
            params.append((name, value(ctx)))
    return _signed(method, params, signature, platform, ctx.order_id, chosen_status,
                   "test order" if given else "simulated")


def replayed_post_sale(pairs: Sequence[tuple[str, str]], *, method: str, signature: SignatureSettings,
                       platform: Platform, origin: str) -> SimulatedPostSale:
    """A captured real post-sale (`verify`'s input formats) to send again, re-signed with the configured
    passphrase: its parameters, in their order and spelling; its own SHASIGN is replaced."""
    method = method.upper()
    if method not in platform.methods:
        raise UsageError(f"request method {method!r} is not one of {', '.join(platform.methods)}")
    params = [(name, value) for name, value in pairs if name.upper() != "SHASIGN"]
    if not params:
        raise UsageError(f"{origin}: no parameters to replay")
    values = {name.upper(): value for name, value in params}
    try:
        status = int(values.get("STATUS", "") or 0)
    except ValueError:
        status = 0
    return _signed(method, params, signature, platform, values.get("ORDERID", ""), status, f"replayed {origin}")


def _signed(method: str, params: Sequence[tuple[str, str]], signature: SignatureSettings, platform: Platform,
            order_id: str, status: int, source: str) -> SimulatedPostSale:
    shasign, masked = _sign(params, signature.passphrase, signature.algorithm, signature.encoding,
                            platform.sha_out_parameters)
    return SimulatedPostSale(method=method, params=tuple(params), shasign=shasign, order_id=order_id,
                             status=status, algorithm=signature.algorithm,
                             encoding=normalise_encoding(signature.encoding), signed_masked=masked,
                             sha_parameters=platform.sha_out_parameters, order_source=source)
