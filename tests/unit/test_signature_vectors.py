"""Acceptance of the published SHA-OUT / SHA-IN test vectors (platform.md §3), both encodings.

Each vector is checked twice: through feedback_check.signature, and by an independent hashlib
computation written out here, so a mistake shared by the module and the test cannot hide.
"""

from __future__ import annotations

import hashlib

import pytest

from feedback_check.platform import load_platform
from feedback_check.signature import digest, sign, signed_string

PASSPHRASE = "Mysecretsig1875!?"

SHA_OUT_PARAMETERS = [("ACCEPTANCE", "1234"), ("amount", "15"), ("BRAND", "VISA"),
                      ("CARDNO", "xxxxxxxxxxxx1111"), ("currency", "EUR"), ("NCERROR", "0"),
                      ("orderID", "12"), ("PAYID", "32100123"), ("PM", "CreditCard"), ("STATUS", "9")]
SHA_OUT_SHA1 = "B209960D5703DD1047F95A0F97655FFE5AC8BD52"

SHA_IN_PARAMETERS = [("AMOUNT", "1500"), ("CURRENCY", "EUR"), ("LANGUAGE", "en_US"), ("ORDERID", "1234"),
                     ("PSPID", "MyPSPID")]
SHA_IN = {"SHA-1": "F4CC376CD7A834D997B91598FA747825A238BE0A",
          "SHA-256": "E019359BAA3456AE5A986B6AABD22CF1B3E09438739E97F17A7F61DF5A11B30F"}

PAISES = "Países Bajos"
PAISES_UTF8_SHA512 = ("D4F8FFEC3FA0A3146C9611294569FF861CFF0E8C26982DA8D492DAB5D67B380558BFA0571A7D0DF494"
                      "07B5075AE4DCE76253603075AF9350EA180ED32FA96026")


def independent(pairs: list[tuple[str, str]], passphrase: str, algorithm: str, encoding: str) -> str:
    """The platform's rule written out again: upper-case names, sort, NAME=value+passphrase each."""
    text = "".join(f"{name.upper()}={value}{passphrase}" for name, value in
                   sorted(pairs, key=lambda pair: pair[0].upper()) if value != "")
    return hashlib.new(algorithm, text.encode(encoding)).hexdigest().upper()


@pytest.mark.parametrize("encoding", ["UTF-8", "ISO-8859-1"])
def test_sha_out_official_example(encoding: str) -> None:
    platform = load_platform()
    got = sign(SHA_OUT_PARAMETERS, PASSPHRASE, algorithm="SHA-1", encoding=encoding,
               sha_parameters=platform.sha_out_parameters)
    assert got == SHA_OUT_SHA1
    assert independent(SHA_OUT_PARAMETERS, PASSPHRASE, "sha1", encoding) == SHA_OUT_SHA1


def test_sha_out_example_survives_shasign_unknown_names_and_empty_values() -> None:
    platform = load_platform()
    noisy = SHA_OUT_PARAMETERS + [("SHASIGN", SHA_OUT_SHA1), ("PARAMPLUS", "x=1"), ("CN", ""),
                                  ("ECI", "")]
    assert sign(noisy, PASSPHRASE, algorithm="SHA-1", encoding="UTF-8",
                sha_parameters=platform.sha_out_parameters) == SHA_OUT_SHA1
    dropped = dict(signed_string(noisy, platform.sha_out_parameters).dropped)
    assert set(dropped) == {"SHASIGN", "PARAMPLUS", "CN", "ECI"}


@pytest.mark.parametrize("algorithm", sorted(SHA_IN))
@pytest.mark.parametrize("encoding", ["UTF-8", "ISO-8859-1"])
def test_sha_in_official_example(algorithm: str, encoding: str) -> None:
    got = sign(SHA_IN_PARAMETERS, PASSPHRASE, algorithm=algorithm, encoding=encoding, sha_parameters=None)
    assert got == SHA_IN[algorithm]
    assert independent(SHA_IN_PARAMETERS, PASSPHRASE, algorithm.replace("-", "").lower(), encoding) \
        == SHA_IN[algorithm]


def test_encoding_vector_utf8() -> None:
    assert digest(PAISES, "SHA-512", "UTF-8") == PAISES_UTF8_SHA512
    assert hashlib.sha512(PAISES.encode("utf-8")).hexdigest().upper() == PAISES_UTF8_SHA512


def test_encoding_vector_iso_8859_1_differs() -> None:
    iso = digest(PAISES, "SHA-512", "ISO-8859-1")
    assert iso != PAISES_UTF8_SHA512
    assert iso == hashlib.sha512(PAISES.encode("iso-8859-1")).hexdigest().upper()
    assert len(PAISES.encode("iso-8859-1")) == len(PAISES.encode("utf-8")) - 1


def test_unencodable_value_is_a_value_error_without_the_passphrase() -> None:
    with pytest.raises(ValueError) as caught:
        sign([("CN", "€ sign")], PASSPHRASE, algorithm="SHA-512", encoding="ISO-8859-1", sha_parameters=None)
    assert PASSPHRASE not in str(caught.value)
