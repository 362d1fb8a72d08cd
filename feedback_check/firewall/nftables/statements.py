"""A text rule's tokens as statements, and the token helpers the text reader shares."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from feedback_check.firewall.nftables.ir import (
    OPERATORS,
    PRIORITY_NAMES,
    SELECTOR_HEADS,
    SINGLE_SELECTORS,
    VERDICTS,
    Match,
    RateLimit,
    Statement,
    Unsupported,
    Verdict,
    VerdictMap,
)


def _priority(tokens: list[str]) -> int:
    """`0`, `-10`, `filter`, `filter + 10`, `filter - 10` (up to `;` / `policy`)."""
    words = []
    for tok in tokens:
        if tok in (";", "policy", "device", "}"):
            break
        words.append(tok)
    total = 0
    sign = 1
    for word in words:
        if word in ("+", "-"):
            sign = 1 if word == "+" else -1
            continue
        value = PRIORITY_NAMES[word] if word in PRIORITY_NAMES else int(word)
        total += sign * value
        sign = 1
    return total


def _split_on(tokens: Sequence[str], separator: str) -> list[list[str]]:
    parts: list[list[str]] = [[]]
    for tok in tokens:
        if tok == separator:
            parts.append([])
        else:
            parts[-1].append(tok)
    return [p for p in parts if p]


def _elements(tokens: Sequence[str]) -> list[list[str]]:
    """The comma-separated elements of a `{ ... }` group (token lists), or a single value."""
    if not tokens:
        return []
    if tokens[0] != "{":
        return [list(tokens)]
    inner = tokens[1:-1] if tokens[-1] == "}" else tokens[1:]
    return _split_on(inner, ",")


ELEMENT_OPTIONS = {"timeout": 1, "expires": 1, "comment": 1, "counter": 0, "packets": 1, "bytes": 1}
_ELEMENT_SYNTAX = frozenset({".", ":", *ELEMENT_OPTIONS})


def _element_key_and_data(element: list[str]) -> tuple[tuple[str, ...], tuple[str, str | None] | None]:
    """`1.2.3.4 . 443 timeout 1h : jump x` -> (("1.2.3.4", "443"), ("jump", "x"))."""
    words: list[str] = []
    for tok in element:
        if tok.endswith(":") and not tok.endswith("::") and len(tok) > 1:
            words += [tok[:-1], ":"]
        else:
            words.append(tok)
    data: tuple[str, str | None] | None = None
    if ":" in words:
        index = words.index(":")
        verdict = words[index + 1:]
        words = words[:index]
        if verdict:
            data = (verdict[0], verdict[1] if len(verdict) > 1 else None)
    key: list[str] = []
    skip = 0
    for tok in words:
        if skip:
            skip -= 1
            continue
        if tok in ELEMENT_OPTIONS:
            skip = ELEMENT_OPTIONS[tok]
            continue
        key.append(tok)
    return tuple(" ".join(p) for p in _split_on(key, ".")), data


_ENDS_UNSUPPORTED = frozenset({*VERDICTS, "counter", "log", "comment"})
_LOG_OPTIONS = frozenset({"prefix", "level", "flags", "group", "snaplen", "queue-threshold"})


class _Read:
    """What the statement readers produce for one rule: its statements and its comment."""

    __slots__ = ("comment", "statements")

    def __init__(self) -> None:
        self.statements: list[Statement] = []
        self.comment = ""


def _statements(tokens: list[str]) -> tuple[list[Statement], str]:
    """A rule's tokens as statements (and its comment): each statement by the reader of its first word
    (`_READERS`), a selector by `_match_statement`; anything else (quota, meta mark set, queue, xt ...)
    is unsupported up to the next verdict."""
    read = _Read()
    i, n = 0, len(tokens)
    while i < n:
        tok = tokens[i]
        reader = _READERS.get(tok)
        if reader is not None:
            found = reader(tokens, i, read)
            if found is not None:
                i = found
                continue
        if tok in SELECTOR_HEADS or tok in SINGLE_SELECTORS:
            i = _match_statement(tokens, i, read.statements)
            continue
        start = i
        i = _skip_to_end(tokens, i)
        read.statements.append(Unsupported(" ".join(tokens[start:i])))
    return read.statements, read.comment


def _skip_to_end(tokens: list[str], i: int) -> int:
    """Where the statement at `i` ends: at the next verdict, counter, log or comment."""
    n = len(tokens)
    while i < n and tokens[i] not in _ENDS_UNSUPPORTED:
        i += 1
    return i


def _verdict(tokens: list[str], i: int, read: _Read) -> int:
    tok = tokens[i]
    if tok in ("jump", "goto"):
        read.statements.append(Verdict(tok, tokens[i + 1] if i + 1 < len(tokens) else None))
        return i + 2
    read.statements.append(Verdict(tok))
    if tok == "reject":          # reject [with icmp type x | tcp reset | icmpx ...]
        return _skip_to_end(tokens, i + 1)
    return i + 1


def _comment(tokens: list[str], i: int, read: _Read) -> int:
    read.comment = tokens[i + 1].strip('"') if i + 1 < len(tokens) else ""
    return i + 2


def _counter(tokens: list[str], i: int, read: _Read) -> int:
    i += 1
    while i < len(tokens) and tokens[i] in ("packets", "bytes", "name"):
        i += 2
    return i


def _log(tokens: list[str], i: int, read: _Read) -> int:
    i += 1
    n = len(tokens)
    while i < n and tokens[i] in _LOG_OPTIONS:
        i += 2
        while i < n and tokens[i] == ",":
            i += 2
    return i


def _notrack(tokens: list[str], i: int, read: _Read) -> int:
    return i + 1


def _limit(tokens: list[str], i: int, read: _Read) -> int | None:
    """`limit rate [over] 10/second [burst 5 packets]` (None for any other `limit`: unsupported)."""
    n = len(tokens)
    if not (i + 1 < n and tokens[i + 1] == "rate"):
        return None
    start = i
    i += 2
    over = i < n and tokens[i] == "over"
    i += over
    i += 1                                   # 10/second (or 10 mbytes/second)
    if i < n and "/" in tokens[i]:
        i += 1
    if i + 1 < n and tokens[i] == "burst":
        i += 3 if i + 2 < n and tokens[i + 2] in ("packets", "bytes", "kbytes", "mbytes") else 2
    read.statements.append(RateLimit(" ".join(tokens[start:i]), over))
    return i


#: First word of a statement -> its reader: the index after the statement, or None when the reader does
#: not take it (then it is a selector, or unsupported).
_READERS: dict[str, Callable[[list[str], int, _Read], int | None]] = {
    **dict.fromkeys(VERDICTS, _verdict), "comment": _comment, "counter": _counter, "log": _log,
    "notrack": _notrack, "limit": _limit}


def _selector(tokens: list[str], i: int) -> tuple[str, int]:
    tok = tokens[i]
    if tok in SELECTOR_HEADS and i + 1 < len(tokens) and tok not in ("ct",):
        nxt = tokens[i + 1]
        if re.fullmatch(r"[a-z][a-z0-9-]*", nxt) and nxt not in VERDICTS and nxt not in OPERATORS \
                and nxt != "vmap":
            return f"{tok} {nxt}", i + 2
        return tok, i + 1
    if tok == "ct" and i + 1 < len(tokens):
        # ct [original|reply] key
        if tokens[i + 1] in ("original", "reply") and i + 2 < len(tokens):
            return f"ct {tokens[i + 1]} {tokens[i + 2]}", i + 3
        return f"ct {tokens[i + 1]}", i + 2
    return tok, i + 1


def _match_statement(tokens: list[str], i: int, out: list[Statement]) -> int:
    """A selector (or a concatenation `a . b`), its operator and its value: a Match, a VerdictMap, or
    Unsupported (mangling `... set ...`, bitwise forms, flag tests). Returns the index after it."""
    n = len(tokens)
    start = i
    keys = []
    key, i = _selector(tokens, i)
    keys.append(key)
    while i < n and tokens[i] == ".":
        key, i = _selector(tokens, i + 1)
        keys.append(key)
    op = "=="
    if i < n and tokens[i] in OPERATORS:
        op = OPERATORS[tokens[i]]
        i += 1
    if i < n and tokens[i] == "set":          # `meta mark set 1`, `ct mark set ...`: a mangling statement
        return _skip_to_end(tokens, i + 1)
    if i < n and tokens[i] == "vmap":
        return _verdict_map(tokens, start, i + 1, tuple(keys), out)
    if i >= n:
        out.append(Unsupported(" ".join(tokens[start:])))
        return n
    tok = tokens[i]
    if tok.startswith("@"):
        out.append(Match(tuple(keys), op, ref=tok[1:]))
        return i + 1
    if tok == "{":
        end = _group_end(tokens, i)
        elements = tuple(_element_key_and_data(e)[0] for e in _elements(tokens[i:end]))
        out.append(Match(tuple(keys), op, elements))
        return end
    if tok in _ENDS_UNSUPPORTED:
        # A bare key used as a flag test or an unknown form.
        out.append(Unsupported(" ".join(tokens[start:i])))
        return i
    return _values(tokens, start, i, tuple(keys), op, out)


def _verdict_map(tokens: list[str], start: int, i: int, keys: tuple[str, ...], out: list[Statement]) -> int:
    """`keys vmap @map` or `keys vmap { element : verdict, ... }` from `i` (after `vmap`)."""
    n = len(tokens)
    if i < n and tokens[i].startswith("@"):
        out.append(VerdictMap(keys, ref=tokens[i][1:]))
        return i + 1
    if i < n and tokens[i] == "{":
        end = _group_end(tokens, i)
        entries = []
        for element in _elements(tokens[i:end]):
            key_atoms, verdict = _element_key_and_data(element)
            entries.append((key_atoms, verdict or ("unknown", None)))
        out.append(VerdictMap(keys, tuple(entries)))
        return end
    out.append(Unsupported(" ".join(tokens[start:i + 1])))
    return i + 1


def _values(tokens: list[str], start: int, i: int, keys: tuple[str, ...], op: str, out: list[Statement]) -> int:
    """One value from `i`, possibly a comma list (`ct state established,related`) or a concatenation
    `a . b`; a bitwise form (`/`, `&` ...) after it is not evaluable."""
    n = len(tokens)
    value_tokens = [tokens[i]]
    i += 1
    while i + 1 < n and tokens[i] in (",", "."):
        value_tokens += [tokens[i], tokens[i + 1]]
        i += 2
    if i < n and tokens[i] in ("/", "&", "|", "^", "<<", ">>"):
        j = _skip_to_end(tokens, i)
        out.append(Unsupported(" ".join(tokens[start:j])))
        return j
    elements = tuple(tuple(" ".join(p) for p in _split_on(e, ".")) for e in _split_on(value_tokens, ","))
    out.append(Match(keys, op, elements))
    return i


def _group_end(tokens: list[str], i: int) -> int:
    depth = 0
    for j in range(i, len(tokens)):
        if tokens[j] == "{":
            depth += 1
        elif tokens[j] == "}":
            depth -= 1
            if depth == 0:
                return j + 1
    return len(tokens)

