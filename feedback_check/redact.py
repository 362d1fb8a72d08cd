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
- the repr of those bytes (`caf\\xc3\\xa9`) and of the text, its JSON (`\\u00e9`) and HTML escapes, and
  the escapes of PHP, the language of most shop handlers: htmlspecialchars (`&#039;`), json_encode
  (`\\/`), addslashes;
- those bytes URL-encoded (quote and quote_plus, the tilde as `%7E` too; hex digits in either case), in
  hex, in base64 (standard and URL-safe, with or without padding).

A short passphrase (under `MIN_MASKED_CHARS`, e.g. a throwaway `test`) is masked only where it stands
as a whole word, in its own letter case and plain or URL-encoded spelling: masking every `test` inside
other words and host names would ruin the report and protect nothing.

Masking comes before any cut: `excerpt(text, limit)` masks, then shortens. For an excerpt cut by
someone else (the first bytes of a body), `mask_cut_tail` also masks the start of a spelling (three
characters or more) left at its very end. `mask_bytes` masks raw bytes before they are decoded.

Text from outside is masked where it is captured (the probe masks what a server sends where it reads
it: probe/http.py). `mask_data(value)` is the one walk over a finished value (a report, a document to
print) for every other way a text gets in; `_Redaction` holds its rules of which texts count.
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
    forms.add(html.escape(passphrase, quote=False))
    forms.add(passphrase.encode("ascii", "xmlcharrefreplace").decode("ascii"))
    forms |= _php_spellings(passphrase)
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
        forms.add(quote(data, safe="").replace("~", "%7E"))       # PHP's urlencode/rawurlencode of old
        forms.add(quote_plus(data).replace("~", "%7E"))
        forms.add(data.hex())
        for encoded in (base64.b64encode(data), base64.urlsafe_b64encode(data)):
            text = encoded.decode("ascii")
            forms.add(text)
            forms.add(text.rstrip("="))
    return {f for f in forms if f}


def _php_spellings(passphrase: str) -> set[str]:
    """How a PHP handler (Magento, WooCommerce, ...) echoes a text: htmlspecialchars with ENT_QUOTES
    (`&#039;`) and with ENT_COMPAT (quotes left), json_encode (`\\/` for a slash, `\\u00e9`), addslashes."""
    ampersand = passphrase.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    json_text = json.dumps(passphrase)[1:-1]
    return {ampersand.replace('"', "&quot;").replace("'", "&#039;"), ampersand.replace('"', "&quot;"),
            json_text.replace("/", "\\/"), json.dumps(passphrase, ensure_ascii=False)[1:-1].replace("/", "\\/"),
            re.sub(r"(['\"\\\\])", r"\\\1", passphrase)}


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
        """`value` with every text in it masked, by the policy of `_Redaction`; the very object when no
        text in it holds a secret (so a clean report costs one walk and no copy)."""
        if not self:
            return value
        return _Redaction(self).value(value)


class _Redaction:
    """One walk of a value, giving it back with every secret masked: the one policy of which texts count.

    - every `str` (mapping keys too, str subclasses as plain text) is masked with `Masker.mask`, each
      distinct text once; `bytes` with `Masker.mask_bytes`;
    - a text under a mapping key ending in "excerpt" (or in a list or tuple there) was cut by someone
      else: masked with `Masker.mask_cut_tail`;
    - mappings, lists, tuples and dataclasses (their init fields; rebuilt with `replace`) are walked;
      numbers, enums (str enums too), datetimes and any other object are left as they are.

    A container is rebuilt only when something in it changed, so a clean value comes back as the very
    object; an object reached twice (a finding in the report, its shop and its target) is walked once.
    Dispatch is per class, decided once (`_shape_of`): a report holds hundreds of thousands of values."""

    __slots__ = ("_done", "_masker", "_texts")

    def __init__(self, masker: Masker) -> None:
        self._masker = masker
        self._texts: dict[str, str] = {}                  # text -> masked or _CLEAN: reports repeat texts
        self._done: dict[int, tuple[Any, Any]] = {}       # id -> (object, walked): shared objects once

    def value(self, value: Any, cut: bool = False) -> Any:
        kind = type(value)
        if kind is str:
            return self._masker.mask_cut_tail(value) if cut else self.text(value)
        shape = _SHAPES.get(kind) or _shape_of(kind)
        if shape is _Shape.LEAF:
            return value
        if shape is _Shape.SEQUENCE:
            return self._sequence(value, cut)
        if shape is _Shape.TEXT:
            masked = self.text(str(value))
            return value if masked == value else masked
        if shape is _Shape.BYTES:
            return self._masker.mask_bytes(value)
        done = self._done.get(id(value))
        if done is not None and done[0] is value:
            return done[1]
        walked = self._mapping(value) if shape is _Shape.MAPPING else self._dataclass(value, _FIELDS[kind])
        self._done[id(value)] = (value, walked)
        return walked

    def text(self, text: str) -> str:
        masked = self._texts.get(text)
        if masked is None:
            masked = self._masker.mask(text)
            masked = self._texts[text] = _CLEAN if masked == text else masked
        return text if masked is _CLEAN else masked     # the very object when clean: its holder stays as it is

    def _item(self, item: Any, cut: bool) -> Any:
        """`value(item, cut)`, with the common cases (a clean text seen before, a number) without a call."""
        kind = type(item)
        if kind is str and not cut:
            return item if self._texts.get(item) is _CLEAN else self.text(item)
        return item if kind in _LEAVES else self.value(item, cut)

    def _mapping(self, value: Mapping[Any, Any]) -> Any:
        if self._changes(value):
            return {self.value(key): self.value(item, type(key) is str and key.endswith("excerpt"))
                    for key, item in value.items()}
        return value                   # nothing in it changed: no copy

    def _changes(self, value: Mapping[Any, Any]) -> bool:
        """Whether masking changes any key or item of `value` (its texts are remembered for the copy). The
        hot loop of a report's walk: the common cases - a clean text seen before, a number - are inlined."""
        texts, leaves = self._texts, _LEAVES
        for key, item in value.items():
            if type(key) is not str:
                if self.value(key) is not key or self.value(item) is not item:
                    return True
                continue
            if texts.get(key) is not _CLEAN and self.text(key) is not key:
                return True
            kind = type(item)
            if kind in leaves or (kind is str and texts.get(item) is _CLEAN and not key.endswith("excerpt")):
                continue
            if self.value(item, key.endswith("excerpt")) is not item:
                return True
        return False

    def _sequence(self, value: list[Any] | tuple[Any, ...], cut: bool) -> Any:
        item_of = self._item
        for item in value:
            if item_of(item, cut) is not item:
                break
        else:
            return value
        walked = [self.value(item, cut) for item in value]
        if isinstance(value, list):
            return walked
        return value._make(walked) if hasattr(value, "_make") else tuple(walked)    # a NamedTuple stays one

    def _dataclass(self, value: Any, names: tuple[str, ...]) -> Any:
        changes = {}
        item_of = self._item
        for name in names:
            old = getattr(value, name)
            new = item_of(old, False)
            if new is not old:
                changes[name] = new
        return replace(value, **changes) if changes else value


#: What `_Redaction` remembers for a text that holds no secret.
_CLEAN = "\x00clean"


class _Shape(enum.Enum):
    """How `_Redaction` walks the values of one class."""

    LEAF = enum.auto()
    TEXT = enum.auto()           # a str subclass (not an enum)
    BYTES = enum.auto()
    SEQUENCE = enum.auto()
    MAPPING = enum.auto()
    DATACLASS = enum.auto()


_SHAPES: dict[type, _Shape] = {int: _Shape.LEAF, float: _Shape.LEAF, bool: _Shape.LEAF, type(None): _Shape.LEAF,
                               dt.datetime: _Shape.LEAF, dict: _Shape.MAPPING, list: _Shape.SEQUENCE,
                               tuple: _Shape.SEQUENCE, bytes: _Shape.BYTES}
#: The classes of LEAF shape (int, None, enums, ...), checked inline in the hot loops; `_shape_of` adds to it.
_LEAVES: set[type] = {int, float, bool, type(None), dt.datetime}
#: Per dataclass class: the names of its init fields (what `replace` rebuilds).
_FIELDS: dict[type, tuple[str, ...]] = {}


def _shape_of(kind: type) -> _Shape:
    """The shape of `kind`, decided once and remembered."""
    if issubclass(kind, (enum.Enum, dt.datetime, int, float)):
        shape = _Shape.LEAF
    elif issubclass(kind, str):
        shape = _Shape.TEXT
    elif issubclass(kind, bytes):
        shape = _Shape.BYTES
    elif issubclass(kind, Mapping):
        shape = _Shape.MAPPING
    elif issubclass(kind, (list, tuple)):
        shape = _Shape.SEQUENCE
    elif is_dataclass(kind):
        _FIELDS[kind] = tuple(f.name for f in fields(kind) if f.init)
        shape = _Shape.DATACLASS
    else:
        shape = _Shape.LEAF
    if shape is _Shape.LEAF:
        _LEAVES.add(kind)
    _SHAPES[kind] = shape
    return shape


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
