"""The one masking policy: no SHA-OUT passphrase in any output, log, report, state file or error, in any spelling.

A shop's answer can echo the passphrase (an error page dumping the handler's settings, a header, a
Location), and not always as it was configured: bytes read in the wrong encoding, the repr of a
bytes object, URL-encoded, hex, base64, upper-cased. `Masker.from_secrets(passphrases)` builds one
Aho-Corasick automaton of every spelling of every passphrase (pyahocorasick: a scan costs the length
of the text, whatever the number of passphrases), and `mask(text)` replaces each match by `MASK` in
one pass. What counts as a spelling of a passphrase `p` (long ones, 8 characters or more):

- `p` itself and stripped of surrounding whitespace, in any letter case;
- its UTF-8 and ISO-8859-1 bytes read as ISO-8859-1 or Windows-1252 (the `Ã©` of a UTF-8 `é`), and
  read as UTF-8 with replacement characters (an ISO-8859-1 page shown as UTF-8);
- the repr of those bytes (`caf\\xc3\\xa9`) and of the text, its JSON (`\\u00e9`) and HTML escapes;
- those bytes URL-encoded (quote and quote_plus; hex digits in either case), in hex, in base64
  (standard and URL-safe, with or without padding).

A short passphrase (under `MIN_MASKED_CHARS`, e.g. a throwaway `test`) is masked only where it stands
as a whole word, in its own letter case and plain or URL-encoded spelling: masking every `test` inside
other words and host names would ruin the report and protect nothing.

Masking comes before any cut: `excerpt(text, limit)` masks, then shortens. For an excerpt cut by
someone else (the first bytes of a body), `mask_cut_tail` also masks the start of a spelling (three
characters or more) left at its very end. `mask_bytes` masks raw bytes before they are decoded.
"""

from __future__ import annotations

import base64
import bisect
import contextvars
import datetime as dt
import enum
import html
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import fields, is_dataclass, replace
from typing import Any
from urllib.parse import quote, quote_plus

import ahocorasick

#: What a masked secret is replaced with (the same mask the hashed-string displays use).
MASK = "********"
#: Shorter secrets are masked only where they stand as a whole word.
MIN_MASKED_CHARS = 8
#: An excerpt cut by someone else is masked at its end from this many characters of a spelling on.
MIN_CUT_PREFIX = 3

_WORD_BEFORE = r"(?<![A-Za-z0-9])"
_WORD_AFTER = r"(?![A-Za-z0-9])"


def spellings(passphrase: str) -> set[str]:
    """Every text form of a (long) passphrase that must be masked (letter case aside)."""
    forms = {passphrase, passphrase.strip()}
    forms.add(repr(passphrase)[1:-1])
    forms.add(json.dumps(passphrase)[1:-1])
    forms.add(html.escape(passphrase))
    forms.add(passphrase.encode("ascii", "xmlcharrefreplace").decode("ascii"))
    for encoding in ("utf-8", "iso-8859-1"):
        try:
            data = passphrase.encode(encoding)
        except UnicodeEncodeError:
            continue
        forms.add(data.decode("iso-8859-1"))
        forms.add(data.decode("cp1252", "replace"))
        forms.add(data.decode("utf-8", "replace"))
        forms.add(repr(data)[2:-1])
        forms.add(quote(data, safe=""))
        forms.add(quote_plus(data))
        forms.add(quote(data, safe="/:@"))
        forms.add(data.hex())
        for encoded in (base64.b64encode(data), base64.urlsafe_b64encode(data)):
            text = encoded.decode("ascii")
            forms.add(text)
            forms.add(text.rstrip("="))
    return {f for f in forms if f}


def short_spellings(passphrase: str) -> set[str]:
    """The forms of a short passphrase masked as whole words."""
    return {f for f in (passphrase, passphrase.strip(), quote(passphrase, safe=""), quote_plus(passphrase)) if f}


def _fold(text: str) -> str:
    """Lower case with the length kept (a character whose lower case is longer, like U+0130, stays)."""
    lowered = text.lower()
    if len(lowered) == len(text):
        return lowered
    return "".join(c if len(low := c.lower()) != 1 else low for c in text)


def _automaton(words: Iterable[str]) -> Any:
    automaton = ahocorasick.Automaton()
    for word in words:
        automaton.add_word(word, len(word))
    automaton.make_automaton()
    return automaton


def _replace_spans(text: str, spans: Iterable[tuple[int, int]]) -> str:
    """`text` with each (start, end) span, in order and not overlapping, replaced by MASK."""
    out: list[str] = []
    last = 0
    for start, end in spans:
        out.append(text[last:start])
        out.append(MASK)
        last = end
    if not out:
        return text
    out.append(text[last:])
    return "".join(out)


class Masker:
    """Replaces every spelling of a set of secrets by MASK. Falsy when there is nothing to mask."""

    def __init__(self, long_forms: Iterable[str], short_forms: Iterable[str],
                 byte_forms: Iterable[bytes] = ()) -> None:
        self._long = sorted({_fold(f) for f in long_forms if f})
        short = sorted({f for f in short_forms if f}, key=len, reverse=True)
        self._bytes = sorted({b.lower().decode("iso-8859-1") for b in byte_forms if b})
        # Long spellings: one Aho-Corasick automaton over the folded text (linear in the text whatever the
        # number of passphrases). Short ones: whole words only, a regular expression (few, and short).
        self._long_automaton = _automaton(self._long) if self._long else None
        self._byte_automaton = _automaton(self._bytes) if self._bytes else None
        self._short = re.compile(_WORD_BEFORE + "(?:" + "|".join(map(re.escape, short)) + ")" + _WORD_AFTER) \
            if short else None
        self._max_long = max((len(f) for f in self._long), default=0)
        self._min_long = min((len(f) for f in self._long), default=0)

    @classmethod
    def from_secrets(cls, secrets: Iterable[str | None]) -> Masker:
        """A masker for these passphrases (None and empty ones are ignored) in every spelling."""
        long_forms: set[str] = set()
        short_forms: set[str] = set()
        byte_forms: set[bytes] = set()
        for secret in dict.fromkeys(s for s in secrets if s):
            if len(secret.strip()) >= MIN_MASKED_CHARS:
                forms = spellings(secret)
                long_forms |= forms
                # mask_bytes folds ASCII letters only: the upper- and lower-case forms of non-ASCII letters
                # (`É` of `é`) are spellings of their own.
                for variant in (secret, secret.upper(), secret.lower()):
                    for encoding in ("utf-8", "iso-8859-1"):
                        try:
                            byte_forms.add(variant.encode(encoding))
                        except UnicodeEncodeError:
                            pass
                byte_forms |= {f.encode("utf-8") for f in forms}
            else:
                short_forms |= short_spellings(secret)
        return cls(long_forms, short_forms, byte_forms)

    def __bool__(self) -> bool:
        return self._long_automaton is not None or self._short is not None

    def mask(self, text: str) -> str:
        """`text` with every spelling of every secret replaced by MASK."""
        if not text or (len(text) < self._min_long and self._short is None):
            return text
        if self._long_automaton is not None and len(text) >= self._min_long:
            text = _replace_spans(text, ((end - length + 1, end + 1) for end, length
                                         in self._long_automaton.iter_long(_fold(text))))
        if self._short is not None:
            text = self._short.sub(MASK, text)
        return text

    __call__ = mask

    def mask_bytes(self, data: bytes) -> bytes:
        """Raw bytes (before any decoding) with every secret's bytes, in any encoding and ASCII letter case,
        replaced by MASK."""
        if self._byte_automaton is None or not data:
            return data
        spans = [(end - length + 1, end + 1) for end, length
                 in self._byte_automaton.iter_long(data.lower().decode("iso-8859-1"))]
        if not spans:
            return data
        return _replace_spans(data.decode("iso-8859-1"), spans).encode("iso-8859-1")

    def mask_cut_tail(self, text: str) -> str:
        """`mask(text)`, and the start of a spelling (MIN_CUT_PREFIX characters or more) at the very end
        masked too: for an excerpt someone else cut, a passphrase across the cut shows its first characters."""
        text = self.mask(text)
        if not self._long or len(text) < MIN_CUT_PREFIX:
            return text
        stripped = text.rstrip("\ufffd")     # a multi-byte character cut in half
        tail = _fold(stripped[-self._max_long:])
        for start in range(len(tail) - MIN_CUT_PREFIX + 1):
            piece = tail[start:]
            index = bisect.bisect_left(self._long, piece)
            if index < len(self._long) and self._long[index].startswith(piece):
                return stripped[:len(stripped) - len(piece)] + MASK
        return text

    def excerpt(self, text: str, limit: int) -> str:
        """At most `limit` characters of `text`, masked before it is cut."""
        return self.mask(text)[:limit]

    def mask_data(self, value: Any) -> Any:
        """`value` with every string in it masked: str, mappings (keys too), lists, tuples and frozen
        dataclasses (rebuilt with `replace`); values under a key ending in "excerpt" with `mask_cut_tail`."""
        if not self:
            return value
        return self._walk(value, False, {})

    def _walk(self, value: Any, cut: bool, seen: dict[str, str]) -> Any:
        # Dispatch on the exact type first (a report holds millions of plain values), and give back the
        # very object when nothing in it changed: masking a report costs little more than reading it.
        kind = type(value)
        if kind is str:
            if cut:
                return self.mask_cut_tail(value)
            masked = seen.get(value)
            if masked is None:            # reports repeat their keys and codes: mask each text once
                masked = seen[value] = self.mask(value)
            return masked
        if kind in _PLAIN or value is None or isinstance(value, (enum.Enum, dt.datetime)):
            return value                  # str enums (Severity) stay what they are
        if kind is dict or isinstance(value, Mapping):
            changed = False
            items = []
            for key, item in value.items():
                new_key = self._walk(key, False, seen)
                new_item = self._walk(item, type(key) is str and key.endswith("excerpt"), seen)
                changed = changed or new_key is not key or new_item is not item
                items.append((new_key, new_item))
            return dict(items) if changed or kind is not dict else value
        if kind is list or kind is tuple or isinstance(value, (list, tuple)):
            walked = [self._walk(item, cut, seen) for item in value]
            if all(new is old for new, old in zip(walked, value)) and kind in (list, tuple):
                return value
            return tuple(walked) if isinstance(value, tuple) else walked
        if is_dataclass(value) and not isinstance(value, type):
            changes = {}
            for f in fields(value):
                if not f.init:
                    continue
                old = getattr(value, f.name)
                new = self._walk(old, False, seen)
                if new is not old:
                    changes[f.name] = new
            return replace(value, **changes) if changes else value
        if isinstance(value, str):        # a str subclass
            return self.mask(value)
        return value


_PLAIN = frozenset({int, float, bool, bytes})


NOTHING = Masker((), ())

_ACTIVE: contextvars.ContextVar[Masker] = contextvars.ContextVar("feedback_check_masker", default=NOTHING)


@contextmanager
def masking(masker: Masker) -> Iterator[Masker]:
    """Make `masker` the one `excerpt()` uses while the block runs (code that cuts text it did not get
    the secrets for: error messages quoting a bit of the input)."""
    token = _ACTIVE.set(masker)
    try:
        yield masker
    finally:
        _ACTIVE.reset(token)


def active() -> Masker:
    """The masker set by `masking()` (one that masks nothing outside such a block)."""
    return _ACTIVE.get()


def excerpt(text: str, limit: int) -> str:
    """At most `limit` characters of `text`, masked by the active masker before the cut."""
    return _ACTIVE.get().excerpt(text, limit)
