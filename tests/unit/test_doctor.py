"""The signature doctor: published vectors, and for every classic mistake a buggy signer written here,
independently of feedback_check, whose wrong SHASIGN the doctor must name exactly."""

from __future__ import annotations

import hashlib
import json
from urllib.parse import quote, quote_plus, urlencode

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from feedback_check.errors import ConfigError
from feedback_check.platform import load_platform
from feedback_check.signature import digest
from feedback_check.signature.catalogue import MISTAKES
from feedback_check.signature.doctor import CheckStatus, compute, diagnose
from feedback_check.signature.params import ParameterInput, parse_text

PLATFORM = load_platform()
PASS = "Mysecretsig1875!?"
TEST_PASS = "TestPhrase-42#x"

# platform.md §3, official examples.
OUT_VECTOR = ("ACCEPTANCE=1234&amount=15&BRAND=VISA&CARDNO=xxxxxxxxxxxx1111&currency=EUR&NCERROR=0&orderID=12"
              "&PAYID=32100123&PM=CreditCard&STATUS=9")
IN_VECTOR = "AMOUNT=1500&CURRENCY=EUR&LANGUAGE=en_US&ORDERID=1234&PSPID=MyPSPID"

# A realistic post-sale as a GET handler receives it: mixed-case names, an empty value, a non-ASCII
# name, '/' and spaces in values, PAYIDSUB and EMAIL (absent from older lists), and a merchant
# parameter from the URL (shop) that is not on the SHA-OUT list.
FEEDBACK = [
    ("orderID", "FBCHECK-1001"), ("amount", "1395.34"), ("currency", "CHF"), ("PM", "CreditCard"),
    ("ACCEPTANCE", "TEST"), ("STATUS", "5"), ("CARDNO", "XXXXXXXXXXXX1111"), ("ED", "0429"),
    ("CN", "Países Bajos"), ("TRXDATE", "08/24/17"), ("PAYID", "3012345678"), ("PAYIDSUB", "0"),
    ("NCERROR", "0"), ("BRAND", "VISA"), ("IP", "192.0.2.44"), ("ECI", ""), ("EMAIL", "a@shop.example"),
    ("shop", "ch"),
]

# The platform's list, as a buggy integration would hard-code it (copied from platform.md, not imported).
_CURRENT_TEXT = """AAVADDRESS AAVCHECK AAVMAIL AAVNAME AAVPHONE AAVZIP ACCEPTANCE ALIAS AMOUNT BIC BIN BRAND CARDNO
CCCTY CN COLLECTOR_BIC COLLECTOR_IBAN COMPLUS CREATION_STATUS CREDITDEBIT CURRENCY CVCCHECK
DCC_COMMPERCENTAGE DCC_CONVAMOUNT DCC_CONVCCY DCC_EXCHRATE DCC_EXCHRATESOURCE DCC_EXCHRATETS
DCC_INDICATOR DCC_MARGINPERCENTAGE DCC_VALIDHOURS DEVICEID DIGESTCARDNO ECI ED EMAIL ENCCARDNO
FXAMOUNT FXCURRENCY IP IPCTY MANDATEID MOBILEMODE NBREMAILUSAGE NBRIPUSAGE NBRIPUSAGE_ALLTX
NBRUSAGE NCERROR ORDERID PAYID PAYIDSUB PAYMENT_REFERENCE PM SCO_CATEGORY SCORING SEQUENCETYPE
SIGNDATE STATUS SUBBRAND SUBSCRIPTION_ID TICKET TRXDATE VC"""
CURRENT = set(_CURRENT_TEXT.split())


def feedback_input(pairs: list[tuple[str, str]] = FEEDBACK, signature: str | None = None) -> ParameterInput:
    """The parameters as a GET query string, as the handler would receive them."""
    query = urlencode(pairs + ([("SHASIGN", signature)] if signature else []))
    return parse_text(query)


def good_signer(pairs, passphrase, algo="sha512", enc="utf-8", allowed=CURRENT):
    """A correct SHA-OUT implementation, written independently of feedback_check."""
    kept = sorted(((k.upper(), v) for k, v in pairs if k.upper() in allowed and v != ""), key=lambda kv: kv[0])
    text = "".join(f"{k}={v}{passphrase}" for k, v in kept)
    return hashlib.new(algo, text.encode(enc)).hexdigest().upper()


def codes(check) -> list[str]:
    return [m.code for m in check.mistakes]


# -- published vectors -------------------------------------------------------------------------------

def test_sha_out_vector_sha1() -> None:
    result = compute(parse_text(OUT_VECTOR), PASS, algorithm="SHA-1", encoding="UTF-8", platform=PLATFORM)
    assert result.digest == "B209960D5703DD1047F95A0F97655FFE5AC8BD52"
    assert result.masked.startswith("ACCEPTANCE=1234********AMOUNT=15********BRAND=VISA")
    assert PASS not in result.masked


def test_sha_in_vectors_sha1_and_sha256() -> None:
    inp = parse_text(IN_VECTOR)
    assert compute(inp, PASS, rule="SHA-IN", algorithm="SHA-1", encoding="UTF-8",
                   platform=PLATFORM).digest == "F4CC376CD7A834D997B91598FA747825A238BE0A"
    assert compute(inp, PASS, rule="SHA-IN", algorithm="SHA-256", encoding="UTF-8", platform=PLATFORM).digest == \
        "E019359BAA3456AE5A986B6AABD22CF1B3E09438739E97F17A7F61DF5A11B30F"


def test_sha_in_rule_keeps_names_the_sha_out_list_drops() -> None:
    inp = parse_text(IN_VECTOR)
    out = compute(inp, PASS, rule="SHA-OUT", algorithm="SHA-1", encoding="UTF-8", platform=PLATFORM)
    assert {n for n, _ in out.signed.dropped} == {"LANGUAGE", "PSPID"}


def test_encoding_vector_both_encodings() -> None:
    utf8 = digest("Países Bajos", "SHA-512", "UTF-8")
    assert utf8 == ("D4F8FFEC3FA0A3146C9611294569FF861CFF0E8C26982DA8D492DAB5D67B380558BFA0571A7D0DF49407B5075AE4DCE7"
                    "6253603075AF9350EA180ED32FA96026")
    latin = digest("Países Bajos", "SHA-512", "ISO-8859-1")
    assert latin != utf8
    assert latin == hashlib.sha512("Países Bajos".encode("latin-1")).hexdigest().upper()


def test_vectors_verify_as_match() -> None:
    check = diagnose(parse_text(OUT_VECTOR + "&SHASIGN=B209960D5703DD1047F95A0F97655FFE5AC8BD52"), PASS,
                     platform=PLATFORM, algorithm="SHA-1")
    assert check.status is CheckStatus.MATCH and check.status.exit_code == 0
    check = diagnose(parse_text(IN_VECTOR), PASS, platform=PLATFORM, rule="SHA-IN",
                     shasign="e019359baa3456ae5a986b6aabd22cf1b3e09438739e97f17a7f61df5a11b30f")
    assert check.status is CheckStatus.MATCH and check.algorithm_inferred
    assert any("lower case" in n for n in check.notes)


def test_feedback_signed_correctly_matches() -> None:
    sig = good_signer(FEEDBACK, PASS)
    check = diagnose(feedback_input(signature=sig), PASS, platform=PLATFORM, algorithm="SHA-512")
    assert check.status is CheckStatus.MATCH
    assert check.expected.digest == sig


# -- one buggy signer per mistake ---------------------------------------------------------------------

def test_wrong_algorithm() -> None:
    sig = good_signer(FEEDBACK, PASS, algo="sha256")
    check = diagnose(feedback_input(), PASS, shasign=sig, platform=PLATFORM, algorithm="SHA-512")
    assert check.status is CheckStatus.EXPLAINED and check.status.exit_code == 2
    assert codes(check) == ["signature.mistake.algorithm"]
    assert "SHA-256" in check.mistakes[0].detail


def test_wrong_encoding() -> None:
    sig = good_signer(FEEDBACK, PASS, enc="iso-8859-1")
    check = diagnose(feedback_input(), PASS, shasign=sig, platform=PLATFORM, algorithm="SHA-512", encoding="UTF-8")
    assert codes(check) == ["signature.mistake.encoding"]


def test_wrong_algorithm_and_encoding_together() -> None:
    sig = good_signer(FEEDBACK, PASS, algo="sha1", enc="latin-1")
    check = diagnose(feedback_input(), PASS, shasign=sig, platform=PLATFORM, algorithm="SHA-512")
    assert codes(check) == ["signature.mistake.algorithm", "signature.mistake.encoding"]


_OGONE_2010_TEXT = """AAVADDRESS AAVCHECK AAVZIP ACCEPTANCE ALIAS AMOUNT BIN BRAND CARDNO CCCTY CN COMPLUS
CREATION_STATUS CURRENCY CVCCHECK DCC_COMMPERCENTAGE DCC_CONVAMOUNT DCC_CONVCCY DCC_EXCHRATE
DCC_EXCHRATESOURCE DCC_EXCHRATETS DCC_INDICATOR DCC_MARGINPERCENTAGE DCC_VALIDHOURS DIGESTCARDNO
ECI ED ENCCARDNO IP IPCTY NBREMAILUSAGE NBRIPUSAGE NBRIPUSAGE_ALLTX NBRUSAGE NCERROR ORDERID PAYID
PM SCO_CATEGORY SCORING STATUS SUBBRAND SUBSCRIPTION_ID TRXDATE VC"""
OGONE_2010 = set(_OGONE_2010_TEXT.split())


def test_outdated_list_without_payidsub() -> None:
    sig = good_signer(FEEDBACK, PASS, allowed=OGONE_2010)
    check = diagnose(feedback_input(), PASS, shasign=sig, platform=PLATFORM)
    assert codes(check) == ["signature.mistake.outdated_list"]
    # Magento 1's list (tried first) gives the same string here: ogone-2010 is named as the alternative.
    named = [check.mistakes[0].detail] + [alt[0].detail for alt in check.alternatives]
    assert any("ogone-2010" in d and "PAYIDSUB" in d and "EMAIL" in d for d in named)


def test_outdated_list_current_minus_payidsub_and_ticket() -> None:
    sig = good_signer(FEEDBACK, PASS, allowed=CURRENT - {"PAYIDSUB", "TICKET"})
    check = diagnose(feedback_input(), PASS, shasign=sig, platform=PLATFORM)
    assert codes(check) == ["signature.mistake.outdated_list"]
    assert "epdq-omnipay" in check.mistakes[0].detail
    # Leaving out PAYIDSUB alone gives the same string for these parameters: said as an alternative.
    assert [m.code for alt in check.alternatives for m in alt] == ["signature.mistake.parameter_left_out"]


def test_parameter_left_out() -> None:
    sig = good_signer([p for p in FEEDBACK if p[0] != "BRAND"], PASS)
    check = diagnose(feedback_input(), PASS, shasign=sig, platform=PLATFORM)
    assert codes(check) == ["signature.mistake.parameter_left_out"]
    assert "without BRAND" in check.mistakes[0].detail


def test_every_parameter_hashed() -> None:
    def buggy(pairs, passphrase):
        text = "".join(f"{k.upper()}={v}{passphrase}" for k, v in sorted(pairs, key=lambda kv: kv[0].upper()) if v)
        return hashlib.sha512(text.encode()).hexdigest().upper()
    check = diagnose(feedback_input(), PASS, shasign=buggy(FEEDBACK, PASS), platform=PLATFORM)
    assert codes(check) == ["signature.mistake.every_parameter"]
    assert "shop" in check.mistakes[0].detail


def test_shasign_itself_hashed() -> None:
    # PHP: foreach ($_GET as $k => $v) while SHASIGN is still in $_GET.
    received = FEEDBACK + [("SHASIGN", "0" * 128)]
    text = "".join(f"{k.upper()}={v}{PASS}" for k, v in sorted(received, key=lambda kv: kv[0].upper()) if v)
    wrong = hashlib.sha512(text.encode()).hexdigest().upper()
    check = diagnose(feedback_input(signature="0" * 128), PASS, shasign=wrong, platform=PLATFORM)
    assert codes(check) == ["signature.mistake.shasign_hashed"]


def test_names_not_uppercased() -> None:
    kept = sorted(((k, v) for k, v in FEEDBACK if k.upper() in CURRENT and v), key=lambda kv: kv[0].upper())
    text = "".join(f"{k}={v}{PASS}" for k, v in kept)
    check = diagnose(feedback_input(), PASS, shasign=hashlib.sha512(text.encode()).hexdigest(), platform=PLATFORM)
    assert codes(check) == ["signature.mistake.names_not_uppercased"]


def test_names_not_uppercased_and_sorted_as_received() -> None:
    # ksort($params) without strtoupper: both mistakes at once.
    kept = sorted((k, v) for k, v in FEEDBACK if k.upper() in CURRENT and v)
    text = "".join(f"{k}={v}{PASS}" for k, v in kept)
    check = diagnose(feedback_input(), PASS, shasign=hashlib.sha512(text.encode()).hexdigest(), platform=PLATFORM)
    assert codes(check) == ["signature.mistake.names_not_uppercased", "signature.mistake.case_sensitive_sort"]


def test_case_sensitive_sort() -> None:
    kept = sorted((k, v) for k, v in FEEDBACK if k.upper() in CURRENT and v)
    text = "".join(f"{k.upper()}={v}{PASS}" for k, v in kept)
    check = diagnose(feedback_input(), PASS, shasign=hashlib.sha512(text.encode()).hexdigest(), platform=PLATFORM)
    assert codes(check) == ["signature.mistake.case_sensitive_sort"]


def test_not_sorted() -> None:
    text = "".join(f"{k.upper()}={v}{PASS}" for k, v in FEEDBACK if k.upper() in CURRENT and v)
    check = diagnose(feedback_input(), PASS, shasign=hashlib.sha512(text.encode()).hexdigest(), platform=PLATFORM)
    assert codes(check) == ["signature.mistake.not_sorted"]


def test_empty_values_included() -> None:
    kept = sorted((k.upper(), v) for k, v in FEEDBACK if k.upper() in CURRENT)
    text = "".join(f"{k}={v}{PASS}" for k, v in kept)
    check = diagnose(feedback_input(), PASS, shasign=hashlib.sha512(text.encode()).hexdigest(), platform=PLATFORM)
    assert codes(check) == ["signature.mistake.empty_values_hashed"]
    assert "ECI" in check.mistakes[0].detail


def test_passphrase_only_once_at_the_end() -> None:
    kept = sorted((k.upper(), v) for k, v in FEEDBACK if k.upper() in CURRENT and v)
    text = "".join(f"{k}={v}" for k, v in kept) + PASS
    check = diagnose(feedback_input(), PASS, shasign=hashlib.sha512(text.encode()).hexdigest(), platform=PLATFORM)
    assert codes(check) == ["signature.mistake.passphrase_once"]
    assert check.reproduced_masked is not None and check.reproduced_masked.count("********") == 1


@pytest.mark.parametrize("encode", [quote_plus, lambda v: quote(v, safe="")], ids=["urlencode", "rawurlencode"])
def test_url_encoded_values(encode) -> None:
    kept = sorted((k.upper(), v) for k, v in FEEDBACK if k.upper() in CURRENT and v)
    text = "".join(f"{k}={encode(v)}{PASS}" for k, v in kept)
    check = diagnose(feedback_input(), PASS, shasign=hashlib.sha512(text.encode()).hexdigest(), platform=PLATFORM)
    assert codes(check) == ["signature.mistake.url_encoded_values"]


def test_values_hashed_exactly_as_received_in_the_query() -> None:
    query = "orderID=12&CN=Pa%C3%ADses%20Bajos&amount=15&TRXDATE=08%2F24%2F17"
    raw = dict(part.split("=", 1) for part in query.split("&"))
    text = "".join(f"{k.upper()}={v}{PASS}" for k, v in sorted(raw.items(), key=lambda kv: kv[0].upper()))
    check = diagnose(parse_text(query), PASS, shasign=hashlib.sha256(text.encode()).hexdigest(), platform=PLATFORM)
    assert codes(check) == ["signature.mistake.url_encoded_values"]
    assert "as received" in check.mistakes[0].detail


@pytest.mark.parametrize(("form", "word"), [(PASS + "\n", "newline"), (PASS + "\r\n", "CR LF"),
                                            (PASS + " ", "trailing space"), (" " + PASS, "leading space")])
def test_whitespace_around_passphrase(form: str, word: str) -> None:
    sig = good_signer(FEEDBACK, form)   # e.g. open(".passphrase").read() without .strip()
    check = diagnose(feedback_input(), PASS, shasign=sig, platform=PLATFORM)
    assert codes(check) == ["signature.mistake.passphrase_whitespace"]
    assert word in check.mistakes[0].detail
    assert PASS not in json.dumps(check.to_dict())


def test_passphrase_configured_with_whitespace_but_code_trims_it() -> None:
    sig = good_signer(FEEDBACK, PASS)
    check = diagnose(feedback_input(), PASS + " ", shasign=sig, platform=PLATFORM)
    assert codes(check) == ["signature.mistake.passphrase_whitespace"]
    assert "removed" in check.mistakes[0].detail


def test_legacy_main_parameter_concatenation() -> None:
    values = {k.upper(): v for k, v in FEEDBACK}
    order = ["ORDERID", "CURRENCY", "AMOUNT", "PM", "ACCEPTANCE", "STATUS", "CARDNO", "PAYID", "NCERROR", "BRAND"]
    text = "".join(values.get(k, "") for k in order) + PASS
    check = diagnose(feedback_input(), PASS, shasign=hashlib.sha1(text.encode()).hexdigest(), platform=PLATFORM,
                     algorithm="SHA-1")
    assert codes(check) == ["signature.mistake.legacy_concatenation"]
    assert "orderID+currency+amount" in check.mistakes[0].detail


def test_legacy_sha_in_concatenation() -> None:
    inp = parse_text(IN_VECTOR)
    text = "1234" + "1500" + "EUR" + "MyPSPID" + PASS        # orderID + amount + currency + PSPID
    check = diagnose(inp, PASS, shasign=hashlib.sha1(text.encode()).hexdigest(), platform=PLATFORM,
                     rule="SHA-IN", algorithm="SHA-1")
    assert codes(check) == ["signature.mistake.legacy_concatenation"]


def test_test_passphrase_used_against_prod() -> None:
    sig = good_signer(FEEDBACK, TEST_PASS)
    check = diagnose(feedback_input(), PASS, other_passphrase=TEST_PASS, shasign=sig, platform=PLATFORM)
    assert codes(check) == ["signature.mistake.test_passphrase"]
    dumped = json.dumps(check.to_dict())
    assert PASS not in dumped and TEST_PASS not in dumped


def test_test_passphrase_is_not_named_without_the_second_passphrase() -> None:
    sig = good_signer(FEEDBACK, TEST_PASS)
    check = diagnose(feedback_input(), PASS, shasign=sig, platform=PLATFORM)
    assert check.status is CheckStatus.UNEXPLAINED and check.mistakes == ()


def test_two_structural_mistakes_together() -> None:
    # Empty values kept AND the passphrase once at the end.
    kept = sorted((k.upper(), v) for k, v in FEEDBACK if k.upper() in CURRENT)
    text = "".join(f"{k}={v}" for k, v in kept) + PASS
    check = diagnose(feedback_input(), PASS, shasign=hashlib.sha512(text.encode()).hexdigest(), platform=PLATFORM)
    assert codes(check) == ["signature.mistake.empty_values_hashed", "signature.mistake.passphrase_once"]


def test_sha_in_not_sorted() -> None:
    pairs = [("PSPID", "MyPSPID"), ("ORDERID", "1234"), ("AMOUNT", "1500"), ("CURRENCY", "EUR"), ("LANGUAGE", "en_US")]
    text = "".join(f"{k}={v}{PASS}" for k, v in pairs)
    check = diagnose(parse_text(urlencode(pairs)), PASS, rule="SHA-IN",
                     shasign=hashlib.sha256(text.encode()).hexdigest(), platform=PLATFORM)
    assert codes(check) == ["signature.mistake.not_sorted"]


def test_unexplained_says_so_honestly() -> None:
    check = diagnose(feedback_input(), PASS, shasign=hashlib.sha512(b"something else").hexdigest(),
                     platform=PLATFORM)
    assert check.status is CheckStatus.UNEXPLAINED and check.status.exit_code == 2
    assert check.mistakes == () and check.variants_tried > 50
    assert any("No known mistake" in n for n in check.notes)


def test_every_mistake_code_is_catalogued_and_named_by_a_test() -> None:
    from pathlib import Path
    source = Path(__file__).read_text(encoding="utf-8")
    for code in MISTAKES:
        if code == "signature.mistake.sha_out_list_for_sha_in":
            continue        # tested below
        if code == "signature.mistake.digest_case":
            continue        # the probe's (tests/unit/test_handler_variants.py); verify notes letter case
        assert f'"{code}"' in source, code



def test_each_mistake_is_one_knob_turned_and_each_knob_value_one_mistake() -> None:
    """The catalogue's map from a knob turned to its mistake covers every code, and nothing else."""
    from feedback_check.signature.catalogue import MISTAKE_OF_KNOB, mistake_code
    assert set(MISTAKE_OF_KNOB.values()) == set(MISTAKES)
    assert mistake_code("order", "case_sensitive") == "signature.mistake.case_sensitive_sort"
    assert mistake_code("order", "as_received") == "signature.mistake.not_sorted"
    assert mistake_code("selection", "variant:2013") == "signature.mistake.outdated_list"
    assert mistake_code("selection", "omit:AMOUNT") == "signature.mistake.parameter_left_out"
    with pytest.raises(ValueError, match="selection='sometimes'"):
        mistake_code("selection", "sometimes")

def test_sha_out_list_used_for_a_payment_request() -> None:
    pairs = [("AMOUNT", "1500"), ("CURRENCY", "EUR"), ("LANGUAGE", "en_US"), ("ORDERID", "1234"),
             ("PSPID", "MyPSPID")]
    text = "".join(f"{k}={v}{PASS}" for k, v in pairs if k in CURRENT)
    check = diagnose(parse_text(urlencode(pairs)), PASS, rule="SHA-IN",
                     shasign=hashlib.sha1(text.encode()).hexdigest(), platform=PLATFORM)
    assert codes(check) == ["signature.mistake.sha_out_list_for_sha_in"]


# -- bad input ---------------------------------------------------------------------------------------

def test_missing_shasign_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="no SHASIGN"):
        diagnose(feedback_input(), PASS, platform=PLATFORM)


@pytest.mark.parametrize("bad", ["XYZ", "ABC123", "0" * 41, ""])
def test_malformed_shasign_is_a_config_error(bad: str) -> None:
    with pytest.raises(ConfigError, match="SHASIGN"):
        diagnose(feedback_input(), PASS, shasign=bad, platform=PLATFORM)
    try:
        diagnose(feedback_input(), PASS, shasign=bad, platform=PLATFORM)
    except ConfigError as e:
        assert PASS not in str(e)


def test_character_not_in_iso_8859_1_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="ISO-8859-1 cannot encode"):
        compute(parse_text("orderID=1&CN=5%E2%82%AC"), PASS, algorithm="SHA-1", encoding="ISO-8859-1",
                platform=PLATFORM)


# -- property: the doctor's rule is the independent reference rule -----------------------------------

names = st.sampled_from(sorted(CURRENT) + ["orderID", "amount", "currency", "shop", "Brand", "paramplus"])
values = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=0x2FF), max_size=12)


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(names, values, min_size=1, max_size=12), st.text(min_size=1, max_size=20),
       st.sampled_from(["sha1", "sha256", "sha512"]))
def test_compute_agrees_with_the_reference_and_matches(params, passphrase, algo) -> None:
    upper_seen: set[str] = set()
    pairs = []
    for k, v in params.items():
        if k.upper() not in upper_seen:
            upper_seen.add(k.upper())
            pairs.append((k, v))
    inp = ParameterInput(tuple(pairs), tuple(pairs), "lines", "<test>")
    name = {"sha1": "SHA-1", "sha256": "SHA-256", "sha512": "SHA-512"}[algo]
    result = compute(inp, passphrase, algorithm=name, encoding="UTF-8", platform=PLATFORM)
    assert result.digest == good_signer(pairs, passphrase, algo=algo)
    check = diagnose(inp, passphrase, shasign=result.digest, platform=PLATFORM, algorithm=name)
    assert check.status is CheckStatus.MATCH


def test_utf8_decoding_handler_with_an_iso_account() -> None:
    # An ISO-8859-1 account sends CN=Pa%EDses; werkzeug/Django decode it as UTF-8 (a replacement character)
    # and the handler hashes UTF-8: a buggy signer written here does exactly that.
    query = urlencode(FEEDBACK, encoding="iso-8859-1")
    inp = parse_text(query, encoding="ISO-8859-1")
    mangled = [(k, v.encode("iso-8859-1").decode("utf-8", "replace")) for k, v in FEEDBACK]
    wrong = good_signer(mangled, PASS, enc="utf-8")
    check = diagnose(inp, PASS, shasign=wrong, platform=PLATFORM, encoding="ISO-8859-1")
    assert codes(check) == ["signature.mistake.utf8_decoding_handler"]
    assert "UTF-8" in check.mistakes[0].fix


def test_mixed_encodings_passphrase_utf8_values_iso() -> None:
    passphrase = "Geheimnis-Schlüssel-9"
    query = urlencode(FEEDBACK, encoding="iso-8859-1")
    inp = parse_text(query, encoding="ISO-8859-1")
    kept = sorted(((k.upper(), v) for k, v in FEEDBACK if k.upper() in CURRENT and v != ""))
    data = b"".join(f"{k}={v}".encode("iso-8859-1") + passphrase.encode("utf-8") for k, v in kept)
    check = diagnose(inp, passphrase, shasign=hashlib.sha512(data).hexdigest(), platform=PLATFORM,
                     encoding="ISO-8859-1")
    assert codes(check) == ["signature.mistake.mixed_encodings"]
    assert passphrase not in json.dumps(check.to_dict())


def test_magento_1_list_without_payidsub_bin_subbrand() -> None:
    magento = next(v for v in PLATFORM.sha_out_list_variants if v.name == "magento-1")
    assert len(magento.parameters) == 43
    assert not {"PAYIDSUB", "BIN", "SUBBRAND"} & set(magento.parameters)
    pairs = [p for p in FEEDBACK if p[0] != "EMAIL"] + [("BIN", "411111")]
    wrong = good_signer(pairs, PASS, allowed=set(magento.parameters))
    check = diagnose(feedback_input(pairs), PASS, shasign=wrong, platform=PLATFORM)
    assert codes(check) == ["signature.mistake.outdated_list"]
    assert "magento-1" in check.mistakes[0].detail and "PAYIDSUB" in check.mistakes[0].detail
