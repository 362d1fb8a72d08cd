"""The probe judged against models of the handlers merchants run (tests/servers/shop_handlers.py), served
over real loopback HTTP/HTTPS: for each, a real (test) order, the unknown simulated order, a wrong
passphrase, a wrong algorithm, a wrong encoding and a stale SHA-OUT list. Each case asserts the codes,
the verdict, the exit code and that no fix sends the merchant to a wrong setting."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from feedback_check.findings import Severity, Verdict, apply_lab_mode, verdict_of
from feedback_check.platform import load_platform
from tests.servers.certs import TestPki
from tests.servers.http_servers import (
    PASSPHRASE,
    Servers,
    app,
    codes,
    finding,
    run_probe,
    servers_fixture,  # noqa: F401 - the `servers` fixture
)
from tests.servers.shop_handlers import OLD_LIST, Django, HandWrittenPhp, Magento1, Odoo

ORDER_ID = "S1-100042"
TEST_ORDER = (("orderID", ORDER_ID), ("amount", "49.90"), ("currency", "CHF"), ("PAYID", "3012345678"))
ORDERS = {ORDER_ID: ("49.90", "CHF")}
#: The dynamic parameters a Magento 1 merchant must send: its 2010 list has no PAYIDSUB.
MAGENTO_PARAMETERS = tuple(p for p in load_platform().default_parameters if p != "PAYIDSUB")
WRONG_FIXES = ("WAF", "Correct the path", "Enter the final URL", "directory protection")


def probe(servers: Servers, handler: Any, *, test_order: bool = True, tls: Any = None, ca_bundle: str | None = None,
          **options: Any) -> tuple[Any, Verdict]:
    server = servers(app({handler.path: handler}), tls=tls)
    summary = run_probe(server.url(handler.path), test_order=TEST_ORDER if test_order else (), ca_bundle=ca_bundle,
                        **options)
    verdict = verdict_of(apply_lab_mode(summary.findings))
    return summary, verdict


def fixes(summary: Any) -> str:
    return " ".join(f.fix or "" for f in summary.findings if f.severity is not Severity.INFO)


def assert_fixes_avoid(summary: Any, *words: str) -> None:
    text = fixes(summary)
    for word in words:
        assert word not in text, f"{word!r} in a fix: {text}"


def assert_rejected(summary: Any, verdict: Verdict, *, setting: str, fix_names: str) -> None:
    rejected = finding(summary, "signature.rejected")
    assert rejected.severity is Severity.CRITICAL
    assert setting in rejected.evidence["accepted_when"]
    assert fix_names in rejected.fix
    assert verdict is Verdict.CRITICAL and verdict.exit_code == 2
    assert not {"http.forbidden", "http.not_found", "http.server_error", "http.client_error",
                "handler.unknown_order"} & set(codes(summary))
    assert_fixes_avoid(summary, *WRONG_FIXES)


# --- Odoo 16/17 payment_ogone ------------------------------------------------------------------------

@pytest.mark.parametrize("version", [16, 17])
def test_odoo_real_order_is_a_warning_about_the_redirect_only(servers: Servers, pki: TestPki, version: int) -> None:
    odoo = Odoo(PASSPHRASE, version=version, orders=dict(ORDERS))
    summary, verdict = probe(servers, odoo, tls=pki.leaf("valid").server_context(), ca_bundle=pki.ca_bundle)
    redirect = finding(summary, "http.redirect_after_processing")
    assert redirect.severity is Severity.WARNING and redirect.evidence["absolute_location"].endswith("/payment/status")
    assert "signature.forgery_accepted" not in codes(summary)        # the forged one got 403
    assert verdict is Verdict.WARNING and verdict.exit_code == 1
    assert odoo.processed == [ORDER_ID]                             # the genuine request only
    assert_fixes_avoid(summary, *WRONG_FIXES, "/payment/status")


def test_odoo_unknown_order_is_a_warning_naming_the_order(servers: Servers) -> None:
    odoo = Odoo(PASSPHRASE, version=16, orders=dict(ORDERS))
    summary, verdict = probe(servers, odoo, test_order=False)
    unknown = finding(summary, "handler.unknown_order")
    assert unknown.severity is Severity.WARNING
    assert "No transaction found matching reference" in unknown.evidence["reason"]
    assert "--order-id" in unknown.fix
    assert "http.client_error" not in codes(summary)
    assert verdict is Verdict.WARNING
    assert len(odoo.received) <= 1 + 1 + 12                         # genuine, other method, 12 signature requests
    assert_fixes_avoid(summary, *WRONG_FIXES)


def test_odoo_wrong_passphrase_is_critical_and_points_at_the_passphrase_not_a_waf(servers: Servers) -> None:
    odoo = Odoo("another-passphrase-entirely", version=16, orders=dict(ORDERS))
    summary, verdict = probe(servers, odoo)
    forbidden = finding(summary, "http.forbidden")
    assert "passphrase" in forbidden.fix and forbidden.fix.index("passphrase") < len(forbidden.fix)
    assert verdict is Verdict.CRITICAL and verdict.exit_code == 2
    assert odoo.processed == []


def test_odoo_wrong_algorithm_is_signature_rejected(servers: Servers) -> None:
    odoo = Odoo(PASSPHRASE, version=16, algorithm="sha256", orders=dict(ORDERS))
    summary, verdict = probe(servers, odoo, algorithm="SHA-512")
    assert_rejected(summary, verdict, setting="SHA-256 instead of SHA-512", fix_names="SHA-512")
    assert "algorithm" in finding(summary, "signature.rejected").fix


def test_odoo_with_an_iso_account_is_told_to_switch_the_account_to_utf8(servers: Servers) -> None:
    odoo = Odoo(PASSPHRASE, version=16, orders=dict(ORDERS))       # werkzeug decodes UTF-8 whatever is sent
    summary, verdict = probe(servers, odoo, encoding="ISO-8859-1")
    assert_rejected(summary, verdict, setting="UTF-8 decoding", fix_names="character encoding to UTF-8")


def test_odoo_with_a_stale_list_names_the_missing_parameter(servers: Servers) -> None:
    odoo = Odoo(PASSPHRASE, version=16, orders=dict(ORDERS), sha_list=OLD_LIST)
    summary, verdict = probe(servers, odoo)
    assert_rejected(summary, verdict, setting="older SHA-OUT list", fix_names="PAYIDSUB")


# --- Odoo 15 -------------------------------------------------------------------------------------------

def test_odoo15_real_order(servers: Servers) -> None:
    summary, verdict = probe(servers, Odoo(PASSPHRASE, version=15, orders=dict(ORDERS)))
    assert "http.redirect_after_processing" in codes(summary) and verdict is not Verdict.CRITICAL


def test_odoo15_unknown_order_stays_a_server_error_whose_fix_names_the_unknown_order(servers: Servers) -> None:
    summary, verdict = probe(servers, Odoo(PASSPHRASE, version=15, orders=dict(ORDERS)), test_order=False)
    error = finding(summary, "http.server_error")
    assert "--order-id" in error.fix and "Odoo 15" in error.fix
    assert verdict is Verdict.CRITICAL


def test_odoo15_wrong_passphrase_wrong_algorithm_wrong_encoding_stale_list(servers: Servers) -> None:
    summary, verdict = probe(servers, Odoo("not-the-passphrase", version=15, orders=dict(ORDERS)))
    assert "passphrase" in finding(summary, "http.server_error").fix and verdict is Verdict.CRITICAL
    summary, verdict = probe(servers, Odoo(PASSPHRASE, version=15, algorithm="sha1", orders=dict(ORDERS)))
    assert_rejected(summary, verdict, setting="SHA-1 instead of SHA-512", fix_names="SHA-512")
    summary, verdict = probe(servers, Odoo(PASSPHRASE, version=15, orders=dict(ORDERS)), encoding="ISO-8859-1")
    assert_rejected(summary, verdict, setting="UTF-8", fix_names="UTF-8")
    summary, verdict = probe(servers, Odoo(PASSPHRASE, version=15, orders=dict(ORDERS), sha_list=OLD_LIST))
    assert_rejected(summary, verdict, setting="older SHA-OUT list", fix_names="PAYIDSUB")


# --- Magento 1 Mage_Ogone ------------------------------------------------------------------------------

def test_magento_real_order_without_payidsub_is_a_warning_about_the_redirect(servers: Servers) -> None:
    magento = Magento1(PASSPHRASE, orders=dict(ORDERS))
    summary, verdict = probe(servers, magento, parameters=MAGENTO_PARAMETERS)
    redirect = finding(summary, "http.redirect_after_processing")
    assert "/checkout/onepage/success/" in redirect.evidence["absolute_location"]
    assert verdict is Verdict.WARNING and magento.processed == [ORDER_ID]
    assert_fixes_avoid(summary, *WRONG_FIXES, "checkout/onepage")


def test_magento_unknown_order_stays_not_found_and_the_fix_names_the_unknown_order(servers: Servers) -> None:
    magento = Magento1(PASSPHRASE, orders=dict(ORDERS))
    summary, verdict = probe(servers, magento, parameters=MAGENTO_PARAMETERS, test_order=False)
    not_found = finding(summary, "http.not_found")
    assert "Magento 1" in not_found.fix and "--order-id" in not_found.fix
    assert verdict is Verdict.CRITICAL


def test_magento_wrong_passphrase(servers: Servers) -> None:
    magento = Magento1("wrong", orders=dict(ORDERS))
    summary, verdict = probe(servers, magento, parameters=MAGENTO_PARAMETERS)
    assert "passphrase" in finding(summary, "http.not_found").fix and verdict is Verdict.CRITICAL


def test_magento_wrong_algorithm(servers: Servers) -> None:
    magento = Magento1(PASSPHRASE, algorithm="sha256", orders=dict(ORDERS))
    summary, verdict = probe(servers, magento, parameters=MAGENTO_PARAMETERS)
    assert_rejected(summary, verdict, setting="SHA-256 instead of SHA-512", fix_names="SHA-512")
    assert magento.processed == [ORDER_ID]        # the variant it accepted was processed: a test order is needed


def test_magento_wrong_encoding_passphrase_in_utf8_account_in_iso(servers: Servers) -> None:
    passphrase = "Schlüssel-Magento-7"
    magento = Magento1(passphrase, orders=dict(ORDERS))
    summary, verdict = probe(servers, magento, parameters=MAGENTO_PARAMETERS, passphrase=passphrase,
                             encoding="ISO-8859-1")
    assert_rejected(summary, verdict, setting="the passphrase as UTF-8 bytes", fix_names="ASCII passphrase")


def test_magento_with_payidsub_sent_is_its_stale_list(servers: Servers) -> None:
    magento = Magento1(PASSPHRASE, orders=dict(ORDERS))
    summary, verdict = probe(servers, magento)            # the platform's usual parameters: PAYIDSUB among them
    assert_rejected(summary, verdict, setting="older SHA-OUT list", fix_names="stop sending PAYIDSUB")
    assert "magento-1" in finding(summary, "signature.rejected").detail


# --- a hand-written PHP handler (marlon-ogone style) ---------------------------------------------------

def test_php_real_order_is_ok(servers: Servers, pki: TestPki) -> None:
    php = HandWrittenPhp(PASSPHRASE, orders=dict(ORDERS))
    summary, verdict = probe(servers, php, tls=pki.leaf("valid").server_context(), ca_bundle=pki.ca_bundle)
    assert "http.ok" in codes(summary) and verdict is Verdict.OK and verdict.exit_code == 0
    assert php.processed == [ORDER_ID]


def test_php_unknown_order_is_a_warning(servers: Servers) -> None:
    summary, verdict = probe(servers, HandWrittenPhp(PASSPHRASE, orders=dict(ORDERS)), test_order=False)
    unknown = finding(summary, "handler.unknown_order")
    assert unknown.evidence["signature_checked"] is True          # a wrong SHASIGN got 400, the genuine one 404
    assert "passed" in unknown.detail
    assert verdict is Verdict.WARNING
    assert "http.not_found" not in codes(summary)


def test_php_wrong_passphrase(servers: Servers) -> None:
    summary, verdict = probe(servers, HandWrittenPhp("wrong", orders=dict(ORDERS)))
    error = finding(summary, "http.client_error")
    assert "passphrase" in error.fix and verdict is Verdict.CRITICAL


def test_php_wrong_algorithm(servers: Servers) -> None:
    summary, verdict = probe(servers, HandWrittenPhp(PASSPHRASE, algorithm="sha1", orders=dict(ORDERS)))
    assert_rejected(summary, verdict, setting="SHA-1 instead of SHA-512", fix_names="SHA-512")


def test_php_passphrase_saved_as_utf8_with_an_iso_account(servers: Servers) -> None:
    passphrase = "Clé-secrète-42"
    php = HandWrittenPhp(passphrase, orders=dict(ORDERS))
    summary, verdict = probe(servers, php, passphrase=passphrase, encoding="ISO-8859-1")
    assert_rejected(summary, verdict, setting="the passphrase as UTF-8 bytes", fix_names="ISO-8859-1")


def test_php_marlon_list_without_subbrand(servers: Servers) -> None:
    from tests.servers.shop_handlers import MARLON_LIST
    php = HandWrittenPhp(PASSPHRASE, orders=dict(ORDERS), sha_list=MARLON_LIST)
    parameters = (*load_platform().default_parameters, "SUBBRAND", "EMAIL")
    summary, verdict = probe(servers, php, parameters=parameters)
    assert_rejected(summary, verdict, setting="marlon-ogone", fix_names="Update the handler's SHA-OUT parameter list")


def test_php_lower_case_digest_comparison(servers: Servers) -> None:
    class LowerCase(HandWrittenPhp):
        def __call__(self, request: Any) -> Any:      # compares sha1()'s lower case with SHASIGN as sent
            from tests.servers.http_servers import Response
            raw = self._params_raw(request)
            values = {k.decode().upper(): v.decode("latin-1") for k, v in raw}
            import hashlib

            from tests.servers.shop_handlers import _sign_bytes
            digest = hashlib.new(self.algorithm, _sign_bytes(raw, self.sha_list, self.passphrase.encode())).hexdigest()
            return Response(200 if digest == values.get("SHASIGN") else 400, b"")
    summary, verdict = probe(servers, LowerCase(PASSPHRASE, orders=dict(ORDERS)))
    assert_rejected(summary, verdict, setting="lower-case digest", fix_names="without regard to case")


# --- Django (django-ogone / django-shop-postfinance) ---------------------------------------------------

def test_django_real_order_is_ok(servers: Servers) -> None:
    django = Django(PASSPHRASE, orders=dict(ORDERS))
    summary, verdict = probe(servers, django)
    assert "http.ok" in codes(summary) and verdict is not Verdict.CRITICAL
    assert django.processed == [ORDER_ID]


def test_django_unknown_order(servers: Servers) -> None:
    summary, verdict = probe(servers, Django(PASSPHRASE, orders=dict(ORDERS), debug=True), test_order=False)
    assert "DoesNotExist" in finding(summary, "handler.unknown_order").evidence["reason"] or \
        "does not exist" in finding(summary, "handler.unknown_order").evidence["reason"]
    assert verdict is Verdict.WARNING
    summary, verdict = probe(servers, Django(PASSPHRASE, orders=dict(ORDERS)), test_order=False)
    error = finding(summary, "http.server_error")            # a bare 500: ambiguous, stays what it is
    assert "passed" in error.detail and "--order-id" in error.fix
    assert verdict is Verdict.CRITICAL


def test_django_wrong_passphrase(servers: Servers) -> None:
    summary, verdict = probe(servers, Django("wrong", orders=dict(ORDERS)))
    assert "passphrase" in finding(summary, "http.client_error").fix and verdict is Verdict.CRITICAL


def test_django_wrong_algorithm(servers: Servers) -> None:
    summary, verdict = probe(servers, Django(PASSPHRASE, algorithm="sha256", orders=dict(ORDERS)))
    assert_rejected(summary, verdict, setting="SHA-256", fix_names="SHA-512")


def test_django_with_an_iso_account(servers: Servers) -> None:
    summary, verdict = probe(servers, Django(PASSPHRASE, orders=dict(ORDERS)), encoding="ISO-8859-1")
    assert_rejected(summary, verdict, setting="UTF-8", fix_names="character encoding to UTF-8")


def test_django_stale_list(servers: Servers) -> None:
    summary, verdict = probe(servers, Django(PASSPHRASE, orders=dict(ORDERS), sha_list=OLD_LIST))
    assert_rejected(summary, verdict, setting="older SHA-OUT list", fix_names="PAYIDSUB")


def test_django_append_slash_is_a_canonicalising_redirect(servers: Servers) -> None:
    django = Django(PASSPHRASE, orders=dict(ORDERS))
    server = servers(app({django.path: django, django.path.rstrip("/"): django.append_slash}))
    summary = run_probe(server.url(django.path.rstrip("/")), method="GET", test_order=TEST_ORDER)
    redirect = finding(summary, "http.redirect")
    assert redirect.severity is Severity.CRITICAL and redirect.fix.endswith("/postfinance/ipn/ in the back office.")
    assert "SHASIGN" not in redirect.fix
    assert django.processed == []


# --- what the platform profile's assumption keys decide ------------------------------------------------

def test_redirect_fails_true_makes_a_working_odoo_critical_and_false_ok(servers: Servers) -> None:
    for flag, expected in ((True, Verdict.CRITICAL), (False, Verdict.WARNING), (None, Verdict.WARNING)):
        platform = replace(load_platform(), redirect_fails=flag)
        summary, verdict = probe(servers, Odoo(PASSPHRASE, orders=dict(ORDERS)), platform=platform)
        assert verdict is expected, flag          # WARNING for False: plain http:// on loopback stays a warning
        redirect = finding(summary, "http.redirect_after_processing")
        assert redirect.severity is {True: Severity.CRITICAL, False: Severity.INFO, None: Severity.WARNING}[flag]


def test_http_success_200_only_makes_a_204_critical(servers: Servers) -> None:
    from tests.servers.http_servers import answer
    server = servers(app({"/fb": answer(204)}))
    relaxed = run_probe(server.url("/fb"))
    assert finding(relaxed, "http.non_200_success").severity is Severity.WARNING
    strict = run_probe(server.url("/fb"), platform=replace(load_platform(), success="200"))
    assert finding(strict, "http.non_200_success").severity is Severity.CRITICAL


def test_get_post_sale_carries_no_body_header_and_every_assumption_key_is_governed(servers: Servers) -> None:
    django = Django(PASSPHRASE, orders=dict(ORDERS))
    summary, _ = probe(servers, django, method="GET")
    assert "http.ok" in codes(summary)
    first = django.received[0]
    assert first.method == "GET" and "content-length" not in first.headers and "content-type" not in first.headers
    # Each assumption key names a platform value a test above changes (redirect_fails, success, tls.*,
    # ports.other_ports_reachable in tests/unit/test_url.py, timing.* via --timeout).
    keys = {a.key for a in load_platform().assumptions}
    assert keys == {"timing.budget_seconds", "timing.slow_seconds", "http.redirect_fails", "http.success",
                    "ports.other_ports_reachable", "tls.public_ca_required", "tls.intermediates_required",
                    "tls.hostname_must_match"}


def test_wrong_algorithm_is_found_even_without_a_test_order_when_the_handler_checks_first(servers: Servers) -> None:
    # The hand-written handler checks SHASIGN before the order: the SHA-256 variant gets past the check
    # (404 "Order ... not found" instead of 400), which names the handler's algorithm.
    summary, verdict = probe(servers, HandWrittenPhp(PASSPHRASE, algorithm="sha256", orders=dict(ORDERS)),
                             test_order=False)
    rejected = finding(summary, "signature.rejected")
    assert "SHA-256" in rejected.evidence["passed_check_when"] and "SHA-512" in rejected.fix
    assert verdict is Verdict.CRITICAL
    assert_fixes_avoid(summary, *WRONG_FIXES)


def test_a_page_that_differs_on_every_request_is_no_evidence(servers: Servers) -> None:
    import itertools

    from tests.servers.http_servers import Response
    counter = itertools.count(1000)

    def crash(request: Any) -> Response:
        return Response(500, f"<h1>Error</h1><p>Request id {next(counter)} failed</p>".encode())
    server = servers(app({"/fb": crash}))
    summary = run_probe(server.url("/fb"))
    error = finding(summary, "http.server_error")
    assert "signature.rejected" not in codes(summary)
    assert "passed" not in error.detail
    assert "does not tell whether the signature is right" in error.fix


def test_forgery_check_runs_after_a_redirect_and_compares_the_whole_answer(servers: Servers) -> None:
    # An Odoo-like handler that never checks SHASIGN: the forged request is processed and redirected too.
    careless = Odoo(PASSPHRASE, orders=dict(ORDERS))
    careless.passphrase = ""
    from tests.servers.http_servers import Response

    def no_check(request: Any) -> Response:
        careless._record(request, careless._params_utf8(request))
        return Response(303, b"", {"Location": "/payment/status"})
    server = servers(app({careless.path: no_check}))
    summary = run_probe(server.url(careless.path), test_order=TEST_ORDER)
    assert finding(summary, "signature.forgery_accepted").severity is Severity.WARNING
    assert "http.redirect_after_processing" in codes(summary)

    def says_so(request: Any) -> Response:     # 200 to both, but it tells the forged one apart
        good = "SHASIGN=" in request.body.decode() and careless.received == []
        careless._record(request, [])
        return Response(200, b"OK" if good else b"invalid signature, ignored")
    careless.received.clear()
    server = servers(app({"/fb": says_so}))
    summary = run_probe(server.url("/fb"), test_order=TEST_ORDER)
    assert "http.ok" in codes(summary) and "signature.forgery_accepted" not in codes(summary)
