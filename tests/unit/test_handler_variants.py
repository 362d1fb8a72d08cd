"""The probe's re-signed variants: drawn from the doctor's catalogue, bounded, distinct, and each one the
SHASIGN a handler with that mistake computes (checked by signers written here, independently)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import random

from feedback_check.payload import simulated_post_sale
from feedback_check.platform import load_platform
from feedback_check.profile import Secret, SignatureSettings
from feedback_check.signature.variants import handler_variants

PLATFORM = load_platform()
PASS = "Variant-Pässphrase-19"
CURRENT = set(PLATFORM.sha_out_parameters)


def payload(encoding: str = "UTF-8", parameters: tuple[str, ...] = PLATFORM.default_parameters):  # type: ignore[no-untyped-def]
    signature = SignatureSettings("SHA-512", encoding, Secret(PASS, "test"), Secret("Test-Env-Pass", "test"))
    sale = simulated_post_sale(role="accepted", method="POST", parameters=parameters, signature=signature,
                               platform=PLATFORM, order_prefix="FBCHECK-", today=dt.date(2026, 3, 4),
                               rng=random.Random(3))
    return sale, signature


def signer(pairs, passphrase, algo="sha512", values_enc="utf-8", pass_enc=None, allowed=CURRENT):  # type: ignore[no-untyped-def]
    kept = sorted((k.upper(), v) for k, v in pairs if k.upper() in allowed and v)
    data = b"".join(f"{k}={v}".encode(values_enc) + passphrase.encode(pass_enc or values_enc) for k, v in kept)
    return hashlib.new(algo, data).hexdigest().upper()


def test_variants_are_bounded_distinct_and_never_the_genuine_signature() -> None:
    sale, signature = payload()
    variants = handler_variants(sale, signature, PLATFORM, 11)
    assert 0 < len(variants) <= 11
    digests = [v.shasign for v in variants]
    assert len(set(digests)) == len(digests) and sale.shasign not in digests
    assert len(handler_variants(sale, signature, PLATFORM, 3)) == 3
    assert PASS not in json.dumps([v.to_dict() | {"detail": v.detail, "fix": v.fix} for v in variants])


def test_each_variant_is_what_such_a_handler_computes() -> None:
    sale, signature = payload(encoding="ISO-8859-1")
    by_label = {v.label: v.shasign for v in handler_variants(sale, signature, PLATFORM, 20)}
    pairs = list(sale.params)
    assert by_label["SHA-256 instead of SHA-512"] == signer(pairs, PASS, "sha256", "iso-8859-1")
    mangled = [(k, v.encode("iso-8859-1").decode("utf-8", "replace")) for k, v in pairs]
    assert by_label["UTF-8 decoding whatever the account sends"] == signer(mangled, PASS)
    assert by_label["the passphrase as UTF-8 bytes, the values as ISO-8859-1"] == \
        signer(pairs, PASS, values_enc="iso-8859-1", pass_enc="utf-8")
    assert by_label["the TEST account's passphrase"] == signer(pairs, "Test-Env-Pass", values_enc="iso-8859-1")
    assert by_label["a lower-case digest compared case-sensitively"] == sale.shasign.lower()


def test_without_a_passphrase_there_is_nothing_to_sign() -> None:
    sale, _ = payload()
    assert handler_variants(sale, SignatureSettings("SHA-512", "UTF-8", None), PLATFORM, 11) == []



def test_every_variant_is_a_mistake_of_the_doctors_catalogue() -> None:
    """Each knob value the probe turns is one the doctor searches too (the algorithm aside: the doctor reads
    it from the SHASIGN's length), and each names a catalogued mistake: verify and the probe stay in step."""
    from feedback_check.signature.catalogue import DIGEST_CASE, MISTAKES, mistake_code
    from feedback_check.signature.doctor import SHA_OUT, Recipe, SigningContext, knob_alternatives
    from feedback_check.signature.params import ParameterInput
    from feedback_check.signature.variants import _candidates
    sale, _ = payload(encoding="ISO-8859-1")
    inp = ParameterInput(pairs=sale.params, raw=sale.params, kind="form", origin="<test>")
    ctx = SigningContext(inp, SHA_OUT, PLATFORM, PASS, "Test-Env-Pass")
    correct = Recipe(selection="list", encoding="ISO-8859-1", algorithm="SHA-512")
    candidates = list(_candidates(correct, ctx, PLATFORM))
    assert len(candidates) > 10
    for changes in candidates:
        for knob, value in changes.items():
            assert mistake_code(knob, value) in MISTAKES
            if knob not in ("algorithm", DIGEST_CASE):
                assert value in knob_alternatives(knob, correct, ctx), changes
