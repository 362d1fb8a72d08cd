"""SHA-OUT / SHA-IN signatures, exactly as the platform computes them (platform.md §3), and what goes wrong.

This module is the rule itself: pure functions, parameters + passphrase + algorithm + encoding -> digest
(`signed_string`, `sign`, `digest`), and a SHASIGN's length -> its algorithm (`algorithm_of_digest`).
The rest of the package builds on it:

- `params`: the parameters of a post-sale (or payment request) read from what a merchant has at hand:
  a query string, a form body, key=value lines or a captured HTTP request (`read_parameters`).
- `catalogue`: the signing mistakes both `verify` and the probe know: which knob turned is which mistake
  (`mistake_code`), each mistake's code, title and generic fix (`MISTAKES`, read by `explain` too).
- `doctor`: `verify`'s core. The platform's rule as a recipe of knobs; each classic integration mistake
  is one knob turned. `diagnose` names the turned knobs that reproduce a given SHASIGN, in the words of
  someone checking a signature.
- `variants`: the probe's side of the same catalogue: for a simulated post-sale, the SHASIGN a handler
  with each mistake would accept, and which setting to change on which side (`handler_variants`).

Nothing here prints, logs or raises with the passphrase in the message.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

ALGORITHMS = {"SHA-1": "sha1", "SHA-256": "sha256", "SHA-512": "sha512"}
ENCODINGS = {"UTF-8": "utf-8", "ISO-8859-1": "iso-8859-1"}
PASSPHRASE_MASK = "********"


def normalise_algorithm(name: str) -> str:
    """'sha512', 'SHA512', 'sha-512' -> 'SHA-512'. Raises ValueError for anything else."""
    compact = name.strip().upper().replace("-", "").replace("_", "")
    for canonical in ALGORITHMS:
        if canonical.replace("-", "") == compact:
            return canonical
    raise ValueError(f"unknown hash algorithm {name!r} (use SHA-1, SHA-256 or SHA-512)")


def normalise_encoding(name: str) -> str:
    compact = name.strip().upper().replace("_", "-")
    aliases = {"UTF8": "UTF-8", "UTF-8": "UTF-8", "ISO-8859-1": "ISO-8859-1", "ISO8859-1": "ISO-8859-1",
               "LATIN-1": "ISO-8859-1", "LATIN1": "ISO-8859-1"}
    if compact in aliases:
        return aliases[compact]
    raise ValueError(f"unknown character encoding {name!r} (use UTF-8 or ISO-8859-1)")


@dataclass(frozen=True)
class SignedString:
    """What was hashed, in order, and what was left out and why."""

    pairs: tuple[tuple[str, str], ...]          # (UPPER-CASED name, value), sorted
    dropped: tuple[tuple[str, str], ...]        # (name as given, reason)

    def text(self, passphrase: str) -> str:
        return "".join(f"{name}={value}{passphrase}" for name, value in self.pairs)

    def masked(self) -> str:
        """The hashed string with the passphrase replaced by a mask: safe to show."""
        return self.text(PASSPHRASE_MASK)


@functools.lru_cache(maxsize=32)
def _upper_names(names: tuple[str, ...]) -> frozenset[str]:
    return frozenset(name.upper() for name in names)


def signed_string(parameters: Iterable[tuple[str, str]] | Mapping[str, str],
                  sha_parameters: Iterable[str] | None) -> SignedString:
    """Steps 1-3 of the algorithm: drop SHASIGN, names not on the list and empty values; upper-case
    names; sort. `sha_parameters=None` keeps every name (the SHA-IN rule)."""
    items = parameters.items() if isinstance(parameters, Mapping) else parameters
    if sha_parameters is None:
        allowed: frozenset[str] | None = None
    elif type(sha_parameters) is tuple:
        allowed = _upper_names(sha_parameters)     # the platform's list: upper-cased once, not per request
    else:
        allowed = frozenset(p.upper() for p in sha_parameters)
    kept: list[tuple[str, str]] = []
    dropped: list[tuple[str, str]] = []
    for name, value in items:
        upper = name.upper()
        if upper == "SHASIGN":
            dropped.append((name, "the signature itself is never hashed"))
        elif allowed is not None and upper not in allowed:
            dropped.append((name, "not on the SHA-OUT parameter list"))
        elif value == "":
            dropped.append((name, "empty value"))
        else:
            kept.append((upper, value))
    kept.sort(key=lambda pair: pair[0])
    return SignedString(tuple(kept), tuple(dropped))


def digest(text: str, algorithm: str, encoding: str) -> str:
    """Upper-case hex digest of `text` encoded in `encoding` and hashed with `algorithm`.
    Raises ValueError if a character cannot be encoded (e.g. '€' in ISO-8859-1)."""
    codec = ENCODINGS[normalise_encoding(encoding)]
    try:
        data = text.encode(codec)
    except UnicodeEncodeError as e:
        raise ValueError(f"a value contains {e.object[e.start:e.end]!r}, which {encoding} cannot encode") from None
    return digest_bytes(data, normalise_algorithm(algorithm))


def digest_bytes(data: bytes, algorithm: str) -> str:
    """Upper-case hex digest of bytes already encoded; `algorithm` as `normalise_algorithm` spells it."""
    return hashlib.new(ALGORITHMS[algorithm], data).hexdigest().upper()


def check_passphrase_encoding(passphrase: str, encoding: str) -> None:
    """Raise ValueError when `encoding` cannot encode the passphrase. The message never shows the
    passphrase or any of its characters (digest()'s message names the character, fine for a value)."""
    try:
        passphrase.encode(ENCODINGS[normalise_encoding(encoding)])
    except UnicodeEncodeError:
        raise ValueError(f"the passphrase contains a character that {encoding} cannot encode "
                         f"(check the account's character encoding, or the passphrase)") from None


def sign(parameters: Iterable[tuple[str, str]] | Mapping[str, str], passphrase: str, *, algorithm: str,
         encoding: str, sha_parameters: Iterable[str] | None) -> str:
    """The SHASIGN the platform would send (SHA-OUT) or expect (SHA-IN with sha_parameters=None)."""
    return sign_string(signed_string(parameters, sha_parameters), passphrase, algorithm=algorithm, encoding=encoding)


def sign_string(hashed: SignedString, passphrase: str, *, algorithm: str, encoding: str) -> str:
    """The SHASIGN of an already built signed string (`signed_string`), as `sign` computes it."""
    check_passphrase_encoding(passphrase, encoding)
    return digest(hashed.text(passphrase), algorithm, encoding)


#: hex digest length -> algorithm ("a 40-character SHASIGN is SHA-1"): the length names the algorithm.
DIGEST_LENGTHS: dict[int, str] = {hashlib.new(impl).digest_size * 2: name for name, impl in ALGORITHMS.items()}


def algorithm_of_digest(shasign: str) -> str | None:
    """The algorithm whose hex digest has the length of `shasign` (None for any other length)."""
    return DIGEST_LENGTHS.get(len(shasign.strip()))


def signing_algorithm(given_shasign: str | None, default: str) -> tuple[str, bool]:
    """The algorithm to sign with when none is configured, and whether it was inferred: the one the length
    of the SHASIGN already in the parameters names (as `verify` infers it), else `default`."""
    if given_shasign:
        try:
            algorithm = algorithm_of_digest(parse_shasign(given_shasign))
        except ValueError:
            algorithm = None               # not a digest: nothing to infer from, and it will not match
        if algorithm is not None:
            return algorithm, True
    return normalise_algorithm(default), False


def parse_shasign(text: str) -> str:
    """A SHASIGN as given (any letter case, surrounding whitespace) -> upper-case hex.
    Raises ValueError when it is not the hex digest of SHA-1, SHA-256 or SHA-512."""
    value = text.strip()
    if not value or any(c not in "0123456789abcdefABCDEF" for c in value):
        raise ValueError(f"SHASIGN {value!r} is not a hexadecimal digest")
    if algorithm_of_digest(value) is None:
        lengths = ", ".join(f"{n} ({name})" for n, name in sorted(DIGEST_LENGTHS.items()))
        raise ValueError(f"SHASIGN has {len(value)} hex digits; a SHA-OUT/SHA-IN digest has {lengths}")
    return value.upper()
