"""`explain`: documented platform messages, STATUS, NCERROR, finding codes; honest 'not documented'."""

from __future__ import annotations

import pytest

from feedback_check.explain import UNKNOWN_ORDER, explain
from feedback_check.findings import CATALOGUE, info_for
from feedback_check.platform import load_platform
from feedback_check.signature.catalogue import MISTAKES

PLATFORM = load_platform()


@pytest.mark.parametrize(("text", "words"), [
    ("unknown order/1/s/", "SHA-IN signature of the payment request does not match"),
    ("unknown order/0/s/", "SHA-IN signature missing"),
    ("unknown order/1/r/", "Referring page not allowed"),
    ("unknown order/0/r/", "No referrer received"),
    ("unknown order/1/i/203.0.113.9", "IP address not allowed"),
])
def test_every_documented_unknown_order_variant(text: str, words: str) -> None:
    result = explain(text, PLATFORM)
    assert result.documented and result.exit_code == 0
    (e,) = result.explanations
    assert e.kind == "unknown_order" and words in e.title and e.check_next


def test_all_documented_variants_are_in_the_table() -> None:
    assert set(UNKNOWN_ORDER) == {("1", "s"), ("0", "s"), ("1", "r"), ("0", "r"), ("1", "i")}


def test_unknown_order_ip_is_shown_even_inside_a_log_line() -> None:
    result = explain("2024-05-01 Error: Unknown order/1/i/2001:db8::7, please check", PLATFORM)
    (e,) = result.explanations
    assert e.details["ip"] == "2001:db8::7"
    assert "2001:db8::7" in e.meaning and "Add 2001:db8::7" in e.check_next[0]


def test_unknown_order_ip_missing_is_said() -> None:
    (e,) = explain("unknown order/1/i/", PLATFORM).explanations
    assert e.documented and "no valid IP" in e.meaning and "ip" not in e.details


@pytest.mark.parametrize("text", ["unknown order/2/s/", "unknown order/1/x/", "unknown order"])
def test_undocumented_unknown_order_variants_are_not_guessed(text: str) -> None:
    result = explain(text, PLATFORM)
    assert not result.documented and result.exit_code == 3
    assert result.explanations[0].kind == "not_documented"


def test_every_status_of_the_profile_is_explained() -> None:
    for code, meaning in PLATFORM.statuses.items():
        (e,) = explain(f"STATUS={code}", PLATFORM).explanations
        assert e.documented and meaning in e.title


@pytest.mark.parametrize(("status", "rule"), [("51", "on hold"), ("92", "uncertain"), ("93", "refused"),
                                              ("62", "uncertain")])
def test_second_digit_rule(status: str, rule: str) -> None:
    (e,) = explain(status, PLATFORM).explanations
    assert rule in e.details["second_digit"] and rule in e.meaning


def test_status_zero_points_to_ncerror() -> None:
    (e,) = explain("0", PLATFORM).explanations
    assert e.kind == "status" and "NCERROR" in e.meaning


def test_status_routes_to_the_post_sale_url() -> None:
    (e,) = explain("STATUS 2", PLATFORM).explanations
    assert e.details["post_sale_url"] == "rejected"


@pytest.mark.parametrize("text", ["STATUS=53", "STATUS=abc", "77"])
def test_undocumented_status(text: str) -> None:
    assert explain(text, PLATFORM).exit_code == 3


@pytest.mark.parametrize(("text", "family"), [("NCERROR=50001111", "500"), ("30001001", "300"),
                                              ("NCERROR: 20002001", "200"), ("NCERROR=0", "0")])
def test_ncerror_families(text: str, family: str) -> None:
    (e,) = explain(text, PLATFORM).explanations
    assert e.kind == "ncerror" and e.details["family"] == family and e.documented


@pytest.mark.parametrize("text", ["NCERROR=40001134", "12345678", "NCERROR=5000", "NCERROR=x1"])
def test_undocumented_ncerror(text: str) -> None:
    assert explain(text, PLATFORM).exit_code == 3


def test_status_and_ncerror_in_one_text() -> None:
    result = explain("STATUS=0 NCERROR=50001111", PLATFORM)
    assert [e.kind for e in result.explanations] == ["status", "ncerror"] and result.exit_code == 0


def test_every_finding_code_of_the_catalogue() -> None:
    for code in CATALOGUE:
        info = info_for(code, PLATFORM)
        (e,) = explain(code, PLATFORM).explanations
        assert e.kind == "finding" and e.title == info.title and e.meaning == info.why
        assert e.details["severity"] == (info.severity.value if info.severity else "error")


def test_every_signature_mistake_code() -> None:
    for code, (title, fix) in MISTAKES.items():
        (e,) = explain(code, PLATFORM).explanations
        assert e.kind == "signature_mistake" and e.title == title and e.check_next == (fix,)


def test_code_family_lists_its_codes() -> None:
    (e,) = explain("tls", PLATFORM).explanations
    assert e.kind == "finding_family" and "tls.cert_expired" in e.details["codes"]
    assert all(c.startswith("tls.") for c in e.details["codes"])


def test_process_error_from_the_transaction_mail() -> None:
    (e,) = explain("Status: process error", PLATFORM).explanations
    assert e.kind == "platform_message" and e.documented and "could not reach your server" in e.meaning
    assert any("probe" in step for step in e.check_next)


@pytest.mark.parametrize("text", ["tls.cert_exploded", "hello world", "processing failure", ""])
def test_unknown_input_is_not_documented(text: str) -> None:
    result = explain(text, PLATFORM)
    assert not result.documented and result.exit_code == 3
    assert result.explanations[0].title == "Not documented"
