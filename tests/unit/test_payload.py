"""The simulated post-sale request: realistic parameters, a correct SHA-OUT signature, no passphrase."""

from __future__ import annotations

import datetime as dt
import hashlib
import random
from urllib.parse import parse_qsl, urlsplit

import pytest

from feedback_check.errors import UsageError
from feedback_check.payload import simulated_post_sale
from feedback_check.platform import load_platform
from feedback_check.profile import Secret, SignatureSettings
from feedback_check.reporters import json as json_reporter

PASSPHRASE = "Pay-Load-Secret-7731!"
TODAY = dt.date(2026, 3, 4)


def settings(algorithm: str = "SHA-512", encoding: str = "UTF-8") -> SignatureSettings:
    return SignatureSettings(algorithm, encoding, Secret(PASSPHRASE, "test"),
                             Secret("Test-Pass-0001", "test TEST passphrase"))


def build(**overrides):  # type: ignore[no-untyped-def]
    platform = load_platform()
    arguments = {"role": "accepted", "method": "POST", "parameters": platform.default_parameters,
                     "signature": settings(), "platform": platform, "order_prefix": "FBCHECK-", "today": TODAY,
                     "rng": random.Random(7)}
    arguments.update(overrides)
    return simulated_post_sale(**arguments)


def expected_shasign(pairs: list[tuple[str, str]], passphrase: str, algorithm: str, encoding: str,
                     sha_out: tuple[str, ...]) -> str:
    """Independent SHA-OUT computation (not feedback_check.signature)."""
    kept = sorted(((n.upper(), v) for n, v in pairs if n.upper() in sha_out and v != ""), key=lambda p: p[0])
    text = "".join(f"{n}={v}{passphrase}" for n, v in kept)
    return hashlib.new(algorithm.replace("-", "").lower(), text.encode(encoding)).hexdigest().upper()


def test_default_parameters_look_like_a_real_post_sale() -> None:
    platform = load_platform()
    sale = build()
    values = dict(sale.params)
    assert [name for name, _ in sale.params] == ["orderID", "amount", "currency", "PM", "ACCEPTANCE", "STATUS",
                                                 "CARDNO", "ED", "CN", "TRXDATE", "PAYID", "PAYIDSUB",
                                                 "NCERROR", "BRAND", "IP"]
    assert values["orderID"].startswith("FBCHECK-260304-") and values["orderID"] == sale.order_id
    assert values["CARDNO"] == "XXXXXXXXXXXX1111"
    assert values["TRXDATE"] == "03/04/26"
    assert values["NCERROR"] == "0"
    assert values["IP"] == platform.client_ip
    assert values["STATUS"] == "9" and sale.status == 9
    assert values["amount"] == "1"          # a plain decimal, not x100
    assert values["PAYID"].isdigit()


def test_configured_names_in_any_case_are_sent_in_platform_spelling_and_unknown_ones_empty() -> None:
    sale = build(parameters=["ORDERID", "amount", "Currency", "aavcheck", "MYFIELD", "ORDERID", "SHASIGN"])
    assert [name for name, _ in sale.params] == ["orderID", "amount", "currency", "AAVCheck", "MYFIELD"]
    assert dict(sale.params)["MYFIELD"] == ""
    sent = parse_qsl(sale.form_body().decode("ascii"), keep_blank_values=True)
    assert ("MYFIELD", "") in sent          # empty parameters are still sent
    assert sent[-1][0] == "SHASIGN"


@pytest.mark.parametrize("algorithm", ["SHA-1", "SHA-256", "SHA-512"])
@pytest.mark.parametrize("encoding", ["UTF-8", "ISO-8859-1"])
def test_signature_verifies_independently_from_the_wire(algorithm: str, encoding: str) -> None:
    platform = load_platform()
    sale = build(signature=settings(algorithm, encoding))
    received = parse_qsl(sale.form_body().decode("ascii"), keep_blank_values=True, encoding=encoding)
    shasign = dict(received).pop("SHASIGN")
    pairs = [(n, v) for n, v in received if n != "SHASIGN"]
    assert dict(pairs)["CN"] == "Test Käufer"
    assert shasign == expected_shasign(pairs, PASSPHRASE, algorithm, encoding, platform.sha_out_parameters)


def test_encodings_give_different_wire_bytes_and_signatures() -> None:
    utf8 = build(signature=settings(encoding="UTF-8"))
    iso = build(signature=settings(encoding="ISO-8859-1"))
    assert "CN=Test+K%C3%A4ufer" in utf8.query()
    assert "CN=Test+K%E4ufer" in iso.query()
    assert utf8.shasign != iso.shasign


def test_get_puts_parameters_after_the_existing_query_and_post_in_a_form_body() -> None:
    get = build(method="GET")
    url, body, headers = get.request_for("https://shop.example/pf?shop=ch")
    assert body == b"" and headers == {}
    query = parse_qsl(urlsplit(url).query, keep_blank_values=True)
    assert query[0] == ("shop", "ch") and query[-1] == ("SHASIGN", get.shasign)
    post = build(method="POST")
    url, body, headers = post.request_for("https://shop.example/pf?shop=ch")
    assert url == "https://shop.example/pf?shop=ch"
    assert headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert body == post.form_body()


def test_status_fits_the_role_and_can_be_forced() -> None:
    platform = load_platform()
    rejected = build(role="rejected")
    assert rejected.status in platform.roles["rejected"].statuses
    assert dict(rejected.params)["ACCEPTANCE"] == ""
    assert build(status=91).status == 91
    with pytest.raises(UsageError):
        build(status=12345)
    with pytest.raises(UsageError):
        build(method="PUT")


def test_order_ids_are_unique_and_carry_the_prefix() -> None:
    ids = {build(rng=random.Random(seed), order_prefix="MYTEST-").order_id for seed in range(50)}
    assert len(ids) == 50 and all(i.startswith("MYTEST-") for i in ids)


def test_forged_and_resigned_variants() -> None:
    platform = load_platform()
    sale = build()
    forged = sale.forged()
    assert forged.shasign != sale.shasign and len(forged.shasign) == len(sale.shasign)
    assert all(a != b for a, b in zip(forged.shasign, sale.shasign))
    sha1 = sale.signed_as(settings(), algorithm="SHA-1")
    assert sha1.shasign == expected_shasign(list(sale.params), PASSPHRASE, "SHA-1", "UTF-8",
                                            platform.sha_out_parameters)
    stale = sale.signed_as(settings(), sha_parameters=[p for p in platform.sha_out_parameters if p != "PAYIDSUB"])
    assert stale.shasign != sale.shasign
    test_key = sale.signed_as(settings(), use_test_passphrase=True)
    assert test_key.shasign == expected_shasign(list(sale.params), "Test-Pass-0001", "SHA-512", "UTF-8",
                                                platform.sha_out_parameters)


def test_no_passphrase_means_no_shasign() -> None:
    sale = build(signature=SignatureSettings("SHA-512", "UTF-8", None))
    assert sale.shasign == "" and "SHASIGN" not in sale.query()


def test_passphrase_never_in_the_result() -> None:
    sale = build()
    text = repr(sale) + str(json_reporter.post_sale_dict(sale)) + sale.query()
    assert PASSPHRASE not in text
    assert "********" in sale.signed_masked


def test_test_order_values_replace_the_simulated_ones_and_are_signed() -> None:
    platform = load_platform()
    sale = build(test_order=[("orderID", "S0-1042"), ("AMOUNT", "49.90"), ("currency", "EUR"),
                             ("PAYID", "3012345678"), ("COMPLUS", "cart-17")])
    values = dict(sale.params)
    assert (values["orderID"], values["amount"], values["currency"], values["PAYID"]) == \
        ("S0-1042", "49.90", "EUR", "3012345678")
    assert values["COMPLUS"] == "cart-17"          # not configured: sent because the test order names it
    assert sale.order_id == "S0-1042" and sale.order_source == "test order"
    assert sale.status == 9                        # STATUS still follows the role
    assert sale.shasign == expected_shasign(list(sale.params), PASSPHRASE, "SHA-512", "utf-8",
                                            platform.sha_out_parameters)
    assert build(test_order=[("STATUS", "5")]).status == 5


def test_every_configured_parameter_of_the_current_list_gets_a_value_and_is_hashed() -> None:
    platform = load_platform()
    names = ["orderID", "amount", "currency", "SUBBRAND", "SCORING", "SCO_CATEGORY", "EMAIL", "AAVMAIL",
             "NCERRORPLUS", "STATUS"]
    sale = build(parameters=names)
    values = dict(sale.params)
    for name in ("SUBBRAND", "SCORING", "SCO_CATEGORY", "EMAIL", "AAVMAIL", "NCERRORPLUS"):
        assert values[name], name
    hashed = sale.signed_masked
    for name in ("SUBBRAND", "SCORING", "SCO_CATEGORY", "EMAIL", "AAVMAIL"):
        assert f"{name}=" in hashed
    assert "NCERRORPLUS=" not in hashed            # not on the SHA-OUT list: sent, not hashed
    assert sale.shasign == expected_shasign(list(sale.params), PASSPHRASE, "SHA-512", "utf-8",
                                            platform.sha_out_parameters)


def test_refused_payment_has_a_300_ncerror_and_a_cancelled_one_no_card_data() -> None:
    refused = dict(build(role="rejected", status=2).params)
    assert refused["NCERROR"].startswith("300") and len(refused["NCERROR"]) == 8
    assert refused["ACCEPTANCE"] == ""
    cancelled = dict(build(role="rejected", status=1).params)
    assert cancelled["CARDNO"] == cancelled["ED"] == cancelled["CN"] == cancelled["BRAND"] == ""
    assert dict(build().params)["NCERROR"] == "0"


def test_get_request_has_no_body_and_no_body_header() -> None:
    url, body, headers = build(method="GET").request_for("https://shop.example/pf?shop=ch")
    assert body == b"" and headers == {}
    assert urlsplit(url).query.startswith("shop=ch&orderID=")


def test_replayed_post_sale_keeps_the_captured_parameters_and_is_re_signed() -> None:
    from feedback_check.payload import replayed_post_sale

    platform = load_platform()
    captured = [("orderID", "100000042"), ("amount", "12.50"), ("currency", "CHF"), ("STATUS", "9"),
                ("PAYIDSUB", "0"), ("SHASIGN", "00AA")]
    sale = replayed_post_sale(captured, method="POST", signature=settings(), platform=platform, origin="cap.txt")
    assert [n for n, _ in sale.params] == ["orderID", "amount", "currency", "STATUS", "PAYIDSUB"]
    assert sale.order_id == "100000042" and sale.status == 9 and sale.order_source == "replayed cap.txt"
    assert sale.shasign == expected_shasign(list(sale.params), PASSPHRASE, "SHA-512", "utf-8",
                                            platform.sha_out_parameters)
