"""feedback_check.redact: one masking policy for every spelling of every passphrase."""

from __future__ import annotations

import base64
import enum
import secrets
from dataclasses import dataclass
from types import MappingProxyType
from typing import NamedTuple
from urllib.parse import quote, quote_plus

import pytest

from feedback_check.redact import MASK, Masker, excerpt, masking

PASSPHRASE = "Zürich-Sécret-2024"
UTF8 = PASSPHRASE.encode()
LATIN1 = PASSPHRASE.encode("iso-8859-1")


@pytest.mark.parametrize("spelling", [
    PASSPHRASE, PASSPHRASE.upper(), PASSPHRASE.lower(), f"  {PASSPHRASE}  ".strip(),
    UTF8.decode("iso-8859-1"), UTF8.decode("cp1252", "replace"), LATIN1.decode("utf-8", "replace"),
    repr(UTF8), repr(bytearray(UTF8)), repr(LATIN1), repr(PASSPHRASE),
    quote(PASSPHRASE, safe=""), quote(PASSPHRASE, safe="").lower(), quote_plus(PASSPHRASE), quote(LATIN1, safe=""),
    UTF8.hex(), UTF8.hex().upper(), LATIN1.hex(),
    base64.b64encode(UTF8).decode(), base64.b64encode(LATIN1).decode(),
    base64.urlsafe_b64encode(UTF8).decode().rstrip("="),
    "Z\\u00fcrich-S\\u00e9cret-2024", "Z&#252;rich-S&#233;cret-2024",
])
def test_every_spelling_is_masked_inside_other_text(spelling: str) -> None:
    masked = Masker.from_secrets([PASSPHRASE]).mask(f"error: value={spelling}; more")
    assert MASK in masked and masked.startswith("error: value=") and masked.endswith("; more")
    core = spelling.strip("b'\"").removeprefix("bytearray(b'").rstrip("')")
    assert core not in masked


def test_a_short_passphrase_is_masked_only_as_a_whole_word_in_its_own_case() -> None:
    masker = Masker.from_secrets(["test"])
    assert masker.mask("sha_out=test; tests=testing; Test order") == f"sha_out={MASK}; tests=testing; Test order"


def test_bytes_are_masked_before_decoding_in_either_encoding_and_case() -> None:
    masker = Masker.from_secrets([PASSPHRASE])
    data = b"x" + UTF8 + b"y" + LATIN1.upper() + b"z"
    assert masker.mask_bytes(data) == b"x" + MASK.encode() + b"y" + MASK.encode() + b"z"


def test_mask_then_cut_and_the_tail_of_a_cut_excerpt() -> None:
    masker = Masker.from_secrets([PASSPHRASE])
    text = "x" * 30 + PASSPHRASE
    assert masker.excerpt(text, 35) == "x" * 30 + MASK[:5]
    assert masker.mask_cut_tail("body: " + PASSPHRASE[:6]) == "body: " + MASK
    assert masker.mask_cut_tail("body: " + LATIN1[:3].decode("utf-8", "replace")) == "body: " + MASK
    assert masker.mask_cut_tail("body: Zü") == "body: Zü"          # two characters say nothing
    assert masker.mask_cut_tail("an ordinary end.") == "an ordinary end."
    with masking(masker):
        assert excerpt(text, 35) == "x" * 30 + MASK[:5]
    assert excerpt(text, 35) == text[:35]                            # no active masker outside the block


@dataclass(frozen=True)
class Holder:
    text: str
    items: tuple[str, ...]
    data: dict[str, object]


def test_mask_data_walks_dataclasses_mappings_keys_and_excerpts() -> None:
    masker = Masker.from_secrets([PASSPHRASE, None, ""])
    value = Holder(PASSPHRASE, (PASSPHRASE.upper(),), {PASSPHRASE: [1, PASSPHRASE], "body_excerpt": "a " + PASSPHRASE[:4]})
    masked = masker.mask_data(value)
    assert masked == Holder(MASK, (MASK,), {MASK: [1, MASK], "body_excerpt": "a " + MASK})
    assert Masker.from_secrets([]).mask_data(value) is value


def test_longest_spelling_wins_and_overlapping_secrets_leave_nothing() -> None:
    masker = Masker.from_secrets(["Passphrase-0001", "Passphrase-0001-Extended"])
    assert masker.mask("a Passphrase-0001-Extended b") == f"a {MASK} b"


def test_many_passphrases_are_masked_in_one_pass() -> None:
    many = [secrets.token_urlsafe(18) for _ in range(2000)]
    masker = Masker.from_secrets(many)
    text = " ".join(f"{p} and {p.upper()}" for p in many[::100])
    assert not any(p in masker.mask(text) for p in many)


PHP_PASSPHRASE = "Pf'Sha\"Out/2024~<&>\\é"


@pytest.mark.parametrize("spelling", [
    # htmlspecialchars($p, ENT_QUOTES) (PHP 8.1+ default) and ENT_COMPAT (quotes left as they are)
    "Pf&#039;Sha&quot;Out/2024~&lt;&amp;&gt;\\é", "Pf'Sha&quot;Out/2024~&lt;&amp;&gt;\\é",
    # json_encode($p) escapes the slash, with and without JSON_UNESCAPED_UNICODE
    'Pf\'Sha\\"Out\\/2024~<&>\\\\\\u00e9', 'Pf\'Sha\\"Out\\/2024~<&>\\\\é',
    # urlencode / rawurlencode before PHP 5.3 encode the tilde
    quote(PHP_PASSPHRASE, safe="").replace("~", "%7E"), quote_plus(PHP_PASSPHRASE).replace("~", "%7E"),
    # addslashes($p)
    "Pf\\'Sha\\\"Out/2024~<&>\\\\é",
])
def test_the_spellings_a_php_handler_echoes_are_masked(spelling: str) -> None:
    masked = Masker.from_secrets([PHP_PASSPHRASE]).mask(f"config: {spelling} end")
    assert masked == f"config: {MASK} end"


class Level(str, enum.Enum):
    HIGH = "high"


@dataclass(frozen=True)
class Finding:
    code: str
    evidence: dict[str, object]


class Pair(NamedTuple):
    left: str
    right: str


def test_mask_data_gives_back_a_clean_value_as_the_very_object_whatever_its_containers() -> None:
    masker = Masker.from_secrets([PASSPHRASE])
    value = Holder("ok", ("a", "b"), {"proxy": MappingProxyType({"k": "v"}), "pair": Pair("x", "y"),
                                      "state": Level.HIGH, "raw": b"bytes", "when": None})
    assert masker.mask_data(value) is value


def test_a_shared_object_is_masked_wherever_it_stands_and_bytes_and_named_tuples_too() -> None:
    masker = Masker.from_secrets([PASSPHRASE])
    finding = Finding("http.server_error", {"header": f"X-Debug: {PASSPHRASE}"})
    report = {"findings": (finding,), "targets": [{"findings": (finding,)}],
              "raw": b"dump " + LATIN1, "pair": Pair("x", PASSPHRASE), "proxy": MappingProxyType({PASSPHRASE: 1})}
    masked = masker.mask_data(report)
    assert masked["findings"][0] is masked["targets"][0]["findings"][0]
    assert masked["findings"][0].evidence == {"header": f"X-Debug: {MASK}"}
    assert masked["raw"] == b"dump " + MASK.encode()
    assert masked["pair"] == Pair("x", MASK) and isinstance(masked["pair"], Pair)
    assert masked["proxy"] == {MASK: 1}
