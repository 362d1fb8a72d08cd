"""Models of the post-sale handlers merchants actually run, as `app()` routes on real loopback servers.

Written from the public behaviour of the real integrations (what each checks first, how its framework
decodes the request, what it answers), never from feedback_check: each model hashes with hashlib and
its own copy of its parameter list.

- `Odoo(version=16|17)`: payment_ogone. werkzeug decodes query and form as UTF-8 whatever the account
  sends. The transaction is looked up first: unknown -> 422 "Ogone: No transaction found matching
  reference X."; then the signature (current list, values non-empty, names upper-cased, sorted, the
  configured hash function over UTF-8): wrong -> 403 (werkzeug Forbidden); processed -> 303 to
  /payment/status.
- `Odoo(version=15)`: the same checks inside one ValidationError path: unknown order or wrong signature
  -> a bare 500; processed -> 303 to /payment/status.
- `Magento1()`: Mage_Ogone's ApiController offlineProcess. PHP: the raw bytes as sent. Signature first
  (the 43-name $_inAllMap of Mage_Ogone_Helper_Data, 2010: no PAYIDSUB, BIN, SUBBRAND), then the order:
  either fails -> 404 with an empty body; processed -> 302 to /checkout/onepage/success/ (or the cart
  for a refused payment).
- `HandWrittenPhp()`: a marlon-ogone style handler. PHP raw bytes, the passphrase as written in a UTF-8
  PHP file; signature first -> 400 "Bad request"; unknown order -> 404 "Order X not found"; else 200 OK.
- `Django()`: django-ogone / django-shop-postfinance style. Django decodes UTF-8; APPEND_SLASH redirects
  a GET without the trailing slash (301); signature first -> 400 (empty); then Order.objects.get:
  unknown -> 500 (DEBUG: the DoesNotExist page naming the query), else 200 "OK".

Every model records what it received (`received`: method, headers, parameters) and the orders it
processed (`processed`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

from tests.servers.http_servers import SHA_OUT_LIST, Request, Response

#: Magento 1 Mage_Ogone_Helper_Data::$_inAllMap (2010), copied by hand: 43 names.
MAGENTO_1_LIST = frozenset(["AAVADDRESS", "AAVCHECK", "AAVZIP", "ACCEPTANCE", "ALIAS", "AMOUNT", "BRAND", "CARDNO", "CCCTY", "CN", "COMPLUS", "CREATION_STATUS", "CURRENCY", "CVCCHECK", "DCC_COMMPERCENTAGE", "DCC_CONVAMOUNT", "DCC_CONVCCY", "DCC_EXCHRATE", "DCC_EXCHRATESOURCE", "DCC_EXCHRATETS", "DCC_INDICATOR", "DCC_MARGINPERCENTAGE", "DCC_VALIDHOURS", "DIGESTCARDNO", "ECI", "ED", "ENCCARDNO", "IP", "IPCTY", "NBREMAILUSAGE", "NBRIPUSAGE", "NBRIPUSAGE_ALLTX", "NBRUSAGE", "NCERROR", "ORDERID", "PAYID", "PM", "SCO_CATEGORY", "SCORING", "STATUS", "SUBSCRIPTION_ID", "TRXDATE", "VC"])
#: marlon-ogone's ShaOutParameterFilter list (PAYIDSUB, but none of the later names such as SUBBRAND, EMAIL).
MARLON_LIST = frozenset(["AAVADDRESS", "AAVCHECK", "AAVZIP", "ACCEPTANCE", "ALIAS", "AMOUNT", "BRAND", "CARDNO", "CCCTY", "CN", "COMPLUS", "CREATION_STATUS", "CURRENCY", "CVC", "CVCCHECK", "DCC_COMMPERCENTAGE", "DCC_CONVAMOUNT", "DCC_CONVCCY", "DCC_EXCHRATE", "DCC_EXCHRATESOURCE", "DCC_EXCHRATETS", "DCC_INDICATOR", "DCC_MARGINPERCENTAGE", "DCC_VALIDHOURS", "DIGESTCARDNO", "ECI", "ED", "ENCCARDNO", "IP", "IPCTY", "NBREMAILUSAGE", "NBRIPUSAGE", "NBRIPUSAGE_ALLTX", "NBRUSAGE", "NCERROR", "NCERRORCN", "NCERRORCARDNO", "NCERRORCVC", "NCERRORED", "ORDERID", "PAYID", "PAYIDSUB", "PM", "SCO_CATEGORY", "SCORING", "STATUS", "SUBSCRIPTION_ID", "TRXDATE", "VC"])
#: An outdated list without PAYIDSUB, BIN, SUBBRAND and the later names (as older hand-copied lists are).
OLD_LIST = frozenset(SHA_OUT_LIST - {"PAYIDSUB", "BIN", "SUBBRAND", "AAVMAIL", "AAVNAME", "AAVPHONE", "BIC",
                                     "EMAIL", "TICKET", "COLLECTOR_BIC", "COLLECTOR_IBAN", "CREDITDEBIT",
                                     "DEVICEID", "FXAMOUNT", "FXCURRENCY", "MANDATEID", "MOBILEMODE",
                                     "PAYMENT_REFERENCE", "SEQUENCETYPE", "SIGNDATE"})

_WERKZEUG_FORBIDDEN = (b"<!doctype html>\n<html lang=en>\n<title>403 Forbidden</title>\n<h1>Forbidden</h1>\n"
                       b"<p>You don&#x27;t have the permission to access the requested resource. It is either "
                       b"read-protected or not readable by the server.</p>\n")
_WERKZEUG_500 = (b"<!doctype html>\n<html lang=en>\n<title>500 Internal Server Error</title>\n<h1>Internal Server "
                 b"Error</h1>\n<p>The server encountered an internal error and was unable to complete your request. "
                 b"Either the server is overloaded or there is an error in the application.</p>\n")


@dataclass
class Received:
    method: str
    headers: dict[str, str]
    params: list[tuple[str, str]]


@dataclass
class _Base:
    passphrase: str
    algorithm: str = "sha512"
    orders: dict[str, tuple[str, str]] = field(default_factory=dict)     # orderID -> (amount, currency)
    sha_list: frozenset[str] = SHA_OUT_LIST
    received: list[Received] = field(default_factory=list)
    processed: list[str] = field(default_factory=list)

    def _params_utf8(self, request: Request) -> list[tuple[str, str]]:
        """werkzeug / Django: query and form decoded as UTF-8, undecodable bytes replaced."""
        pairs = parse_qsl(request.query, keep_blank_values=True, encoding="utf-8", errors="replace")
        if request.method == "POST" and "form-urlencoded" in request.headers.get("content-type", ""):
            pairs += parse_qsl(request.body.decode("ascii", "replace"), keep_blank_values=True, encoding="utf-8",
                               errors="replace")
        return pairs

    def _params_raw(self, request: Request) -> list[tuple[bytes, bytes]]:
        """PHP's $_REQUEST: the bytes exactly as sent (latin-1 maps each byte to one character and back)."""
        source = request.query if request.method == "GET" else request.body.decode("ascii", "replace")
        return [(k.encode("latin-1"), v.encode("latin-1"))
                for k, v in parse_qsl(source, keep_blank_values=True, encoding="latin-1")]

    def _record(self, request: Request, params: Iterable[tuple[str, str]]) -> None:
        self.received.append(Received(request.method, dict(request.headers), list(params)))


def _sign_text(pairs: Iterable[tuple[str, str]], allowed: frozenset[str], passphrase: str) -> str:
    kept = sorted((k.upper(), v) for k, v in pairs if k.upper() in allowed and v and k.upper() != "SHASIGN")
    return "".join(f"{k}={v}{passphrase}" for k, v in kept)


def _sign_bytes(pairs: Iterable[tuple[bytes, bytes]], allowed: frozenset[str], passphrase: bytes) -> bytes:
    kept = sorted((k.upper(), v) for k, v in pairs if k.decode("latin-1").upper() in allowed and v != b""
                  and k.upper() != b"SHASIGN")
    return b"".join(k + b"=" + v + passphrase for k, v in kept)


@dataclass
class Odoo(_Base):
    """payment_ogone of Odoo 15, 16 or 17 (see the module docstring)."""

    version: int = 16
    path: str = "/payment/ogone/return"

    def __call__(self, request: Request) -> Response:
        data = self._params_utf8(request)
        self._record(request, data)
        values = dict(data)
        reference = values.get("orderID", "")
        shasign = values.get("SHASIGN", "")          # hmac.compare_digest with the upper-case expected digest
        expected = hashlib.new(self.algorithm, _sign_text(data, self.sha_list, self.passphrase).encode("utf-8"))
        good = expected.hexdigest().upper() == shasign
        if reference not in self.orders:
            if self.version >= 16:
                body = (b"<!doctype html>\n<html lang=en>\n<title>422 Unprocessable Entity</title>\n<h1>Unprocessable "
                        b"Entity</h1>\n<p>Ogone: No transaction found matching reference "
                        + reference.encode("utf-8") + b".</p>\n")
                return Response(422, body, {"Content-Type": "text/html; charset=utf-8"}, reason="UNPROCESSABLE ENTITY")
            return Response(500, _WERKZEUG_500, {"Content-Type": "text/html; charset=utf-8"})
        if not good:
            if self.version >= 16:
                return Response(403, _WERKZEUG_FORBIDDEN, {"Content-Type": "text/html; charset=utf-8"})
            return Response(500, _WERKZEUG_500, {"Content-Type": "text/html; charset=utf-8"})
        self.processed.append(reference)
        return Response(303, b"", {"Location": "/payment/status"}, reason="SEE OTHER")


@dataclass
class Magento1(_Base):
    """Mage_Ogone's offlineProcessAction (see the module docstring)."""

    sha_list: frozenset[str] = MAGENTO_1_LIST
    path: str = "/ogone/api/offlineProcess/"

    def __call__(self, request: Request) -> Response:
        raw = self._params_raw(request)
        self._record(request, [(k.decode("latin-1"), v.decode("latin-1")) for k, v in raw])
        values = {k.decode("latin-1").upper(): v.decode("latin-1") for k, v in raw}
        data = _sign_bytes(raw, self.sha_list, self.passphrase.encode("utf-8"))    # the passphrase from the DB: UTF-8
        if hashlib.new(self.algorithm, data).hexdigest().upper() != values.get("SHASIGN", ""):
            return Response(404, b"", {"Status": "404 Not Found"})
        if values.get("ORDERID", "") not in self.orders:
            return Response(404, b"", {"Status": "404 Not Found"})
        self.processed.append(values["ORDERID"])
        host = request.headers.get("host", "shop.test")
        target = "checkout/onepage/success/" if values.get("STATUS") in ("5", "9", "51") else "checkout/cart/"
        return Response(302, b"", {"Location": f"http://{host}/{target}"})


@dataclass
class HandWrittenPhp(_Base):
    """A marlon-ogone style PHP handler (see the module docstring)."""

    path: str = "/postfinance/notify.php"
    passphrase_bytes: bytes | None = None     # as written in the PHP file (default: its UTF-8 bytes)

    def __call__(self, request: Request) -> Response:
        raw = self._params_raw(request)
        self._record(request, [(k.decode("latin-1"), v.decode("latin-1")) for k, v in raw])
        values = {k.decode("latin-1").upper(): v.decode("latin-1") for k, v in raw}
        secret = self.passphrase_bytes if self.passphrase_bytes is not None else self.passphrase.encode("utf-8")
        digest = hashlib.new(self.algorithm, _sign_bytes(raw, self.sha_list, secret)).hexdigest().upper()
        if digest != values.get("SHASIGN", "").upper():
            return Response(400, b"Bad request", {"Content-Type": "text/plain"})
        order = values.get("ORDERID", "")
        if order not in self.orders:
            return Response(404, f"Order {order} not found".encode("latin-1", "replace"), {"Content-Type": "text/plain"})
        self.processed.append(order)
        return Response(200, b"OK", {"Content-Type": "text/plain"})


@dataclass
class Django(_Base):
    """A django-ogone / django-shop-postfinance style view (see the module docstring)."""

    path: str = "/postfinance/ipn/"
    debug: bool = False

    def __call__(self, request: Request) -> Response:
        data = self._params_utf8(request)
        self._record(request, data)
        values = {k.upper(): v for k, v in data}
        digest = hashlib.new(self.algorithm, _sign_text(data, self.sha_list, self.passphrase).encode("utf-8"))
        if digest.hexdigest().upper() != values.get("SHASIGN", "").upper():
            return Response(400, b"", {"Content-Type": "text/html; charset=utf-8"})
        order = values.get("ORDERID", "")
        if order not in self.orders:
            if self.debug:
                body = (f"<html><head><title>DoesNotExist at {self.path}</title></head><body><h1>DoesNotExist at "
                        f"{self.path}</h1><pre class=\"exception_value\">Order matching query does not exist."
                        f"</pre></body></html>").encode()
                return Response(500, body, {"Content-Type": "text/html; charset=utf-8"})
            return Response(500, b"<h1>Server Error (500)</h1>", {"Content-Type": "text/html; charset=utf-8"})
        self.processed.append(order)
        return Response(200, b"OK", {"Content-Type": "text/html; charset=utf-8"})

    def append_slash(self, request: Request) -> Response:
        """Django's CommonMiddleware for the path without its slash (APPEND_SLASH = True)."""
        return Response(301, b"", {"Location": self.path})
