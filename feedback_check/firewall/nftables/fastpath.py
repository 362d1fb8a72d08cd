"""The nftables reader's fast paths, and the switches that turn them off.

Every fast path reads some input without the general machinery and must give exactly what the general
machinery gives; `tests/property/test_nftables_runs_property.py` compares the two readings, switching
off everything listed in `OFF` (so a new fast path gets a switch here, and the test covers it):

* `MERGE_MIN`: runs of at least this many same-shape rules (`ir.RuleRun`, firewall/runs.py) become one
  model rule; shorter ones, as in hand-written rulesets, stay one model rule per rule.
* `SHAPES`: the text reader keys a rule line by its shape (the line without its values) and reads each
  shape once (`text.TextReader`), so the lines of a ban list are never tokenized.
* `JSON_RULES`: an `nft -j` rule object of the common shape (`ip|ip6 saddr A [tcp dport P] [counter]
  verdict`, `_JSON_RULE`) is matched in the text by its exact JSON spelling rather than decoded.
* `JSON_SETS`: set elements that are addresses or prefixes are read without a dict per element.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

MERGE_MIN = 16
SHAPES = True
JSON_RULES = True
JSON_SETS = True

#: The reference reading: every fast path off.
OFF: dict[str, object] = {"MERGE_MIN": 10**9, "SHAPES": False, "JSON_RULES": False, "JSON_SETS": False}

JSON_HEAD = re.compile(r'[ \t\n\r]*\{[ \t\n\r]*"nftables"[ \t\n\r]*:[ \t\n\r]*\[')
_JSON_SPACE = re.compile(r"[ \t\n\r]*")
JSON_DECODER = json.JSONDecoder()


class NotStreamable(Exception):
    """The JSON text is not `{"nftables": [...]}` read object by object: it is read as a whole."""


def json_objects(text: str, start: int) -> Iterator[Any]:
    """The items of the `"nftables"` list whose `[` ends at `start`, decoded one at a time (a large
    ruleset never exists as one Python document); a rule of the common shape is not decoded but
    given as its `_JSON_RULE` match. Raises NotStreamable unless the text is exactly
    `{"nftables": [...]}`."""
    decode = JSON_DECODER.raw_decode
    fast = _JSON_RULE.match
    rules, sets = JSON_RULES, JSON_SETS
    i = _json_space(text, start)
    if text.startswith("]", i):
        i += 1
    else:
        while True:
            found = fast(text, i) if rules and text.startswith('{"rule"', i) else None
            declared = _json_set_object(text, i) if sets and found is None and text.startswith('{"set"', i) \
                else None
            if found is not None:
                yield found
                i = found.end()
                if found.group("more"):
                    continue                    # the pattern took the comma after the rule too
            elif declared is not None:
                item, i = declared
                yield item
            else:
                try:
                    item, i = decode(text, i)
                except json.JSONDecodeError:
                    raise NotStreamable from None
                yield item
            if text.startswith(",", i):          # compact output (nft -j): no whitespace to skip
                i += 1
                if text.startswith((" ", "\n", "\t", "\r"), i):
                    i = _json_space(text, i)
                continue
            i = _json_space(text, i)
            if text.startswith(",", i):
                i = _json_space(text, i + 1)
                continue
            if text.startswith("]", i):
                i += 1
                break
            raise NotStreamable
    i = _json_space(text, i)
    if not text.startswith("}", i) or _json_space(text, i + 1) != len(text):
        raise NotStreamable


def _json_set_object(text: str, i: int) -> tuple[dict[str, Any], int] | None:
    """A `{"set": {...}}` object at `i` whose elements are addresses and prefixes, decoded without a
    dict per element: a prefix element becomes its atom `a.b.c.d/n` (which the set reader reads as
    it reads the prefix). (object, index after it), or None when it is written any other way."""
    decode = JSON_DECODER.raw_decode
    head = _JSON_SET_HEAD.match(text, i)
    if head is None:
        return None
    i = head.end()
    body: dict[str, Any] = {}
    try:
        while text.startswith('"', i):
            key, i = decode(text, i)
            i = _json_space(text, i)
            if not text.startswith(":", i):
                return None
            i = _json_space(text, i + 1)
            elements = _json_elements(text, i) if key == "elem" and text.startswith("[", i) else None
            if elements is not None:
                body[key], i = elements
            else:
                body[key], i = decode(text, i)
            i = _json_space(text, i)
            if text.startswith(",", i):
                i = _json_space(text, i + 1)
                continue
            if not text.startswith("}", i):
                return None
            i = _json_space(text, i + 1)
            return ({"set": body}, i + 1) if text.startswith("}", i) else None
    except json.JSONDecodeError:
        return None
    return None


def _json_elements(text: str, i: int) -> tuple[list[str], int] | None:
    """The JSON list at `i` when it holds only strings and prefixes (as atoms), with the index after it."""
    atoms: list[str] = []
    append = atoms.append
    element = _JSON_ELEMENT.match
    i = _json_space(text, i + 1)
    if text.startswith("]", i):
        return atoms, i + 1
    while True:
        found = element(text, i)
        if found is None:
            return None
        plain, addr, length, more = found.groups()
        append(plain if plain is not None else f"{addr}/{int(length)}")
        i = found.end()
        if more is None:
            return (atoms, i + 1) if text.startswith("]", i) else None


def _json_space(text: str, i: int) -> int:
    """Where the JSON whitespace from `i` ends."""
    found = _JSON_SPACE.match(text, i)
    return found.end() if found else i


def _json_pattern_object(*members: str) -> str:
    """The pattern of a JSON object with exactly these members (each `"key" : value` pattern), in order."""
    return r"\{" + _JSON_WS + (_JSON_WS + "," + _JSON_WS).join(members) + _JSON_WS + r"\}"


def _json_pattern_member(key: str, value: str) -> str:
    return f'"{key}"{_JSON_WS}:{_JSON_WS}{value}'


def _json_pattern_match(protocol: str, field: str, right: str) -> str:
    payload = _json_pattern_object(_json_pattern_member("payload", _json_pattern_object(
        _json_pattern_member("protocol", protocol), _json_pattern_member("field", f'"{field}"'))))
    return _json_pattern_object(_json_pattern_member("match", _json_pattern_object(
        _json_pattern_member("op", '"=="'), _json_pattern_member("left", payload),
        _json_pattern_member("right", right))))


# Possessive (`*+`): what follows whitespace or a string's characters is never one of them, so giving
# some back can never lead to a match; not trying spares most of the matching time.
_JSON_WS = r"[ \t\n\r]*+"
_JSON_STRING = r'"([^"\\\x00-\x1f]*+)"'         # a string without escapes, captured
_JSON_INT = r"(-?(?:0|[1-9][0-9]*))"
_JSON_COUNT = r"-?(?:0|[1-9][0-9]*)"
#: A whole rule object of the common shape (see `_json_simple`) exactly as JSON spells it, so that it
#: can be read without decoding: family, table, chain, handle, ip|ip6, address or prefix (address,
#: length), port (number or name), verdict; then the comma after it (`more`), if any.
_JSON_RULE = re.compile(_json_pattern_object(_json_pattern_member("rule", _json_pattern_object(
    _json_pattern_member("family", _JSON_STRING), _json_pattern_member("table", _JSON_STRING),
    _json_pattern_member("chain", _JSON_STRING), _json_pattern_member("handle", _JSON_INT),
    _json_pattern_member("expr", r"\[" + _JSON_WS + _json_pattern_match(
        '"(ip6?)"', "saddr", r'(?:"([^"\\@\x00-\x1f][^"\\\x00-\x1f]*+)"|' + _json_pattern_object(
            _json_pattern_member("prefix", _json_pattern_object(_json_pattern_member("addr", _JSON_STRING),
                                                                _json_pattern_member("len", _JSON_INT)))) + ")")
        + f"(?:{_JSON_WS},{_JSON_WS}" + _json_pattern_match('"tcp"', "dport", f"(?:{_JSON_INT}|{_JSON_STRING})")
        + ")?"
        + f"(?:{_JSON_WS},{_JSON_WS}" + _json_pattern_object(_json_pattern_member("counter", "(?:null|" + (
            _json_pattern_object(_json_pattern_member("packets", _JSON_COUNT),
                                 _json_pattern_member("bytes", _JSON_COUNT))) + ")")) + ")?"
        + f"{_JSON_WS},{_JSON_WS}" + _json_pattern_object(
            _json_pattern_member("(accept|drop|reject|return|continue)", "null"))
        + _JSON_WS + r"\]")))) + f"(?:{_JSON_WS}(?P<more>,){_JSON_WS})?")

_JSON_SET_HEAD = re.compile(r'\{' + _JSON_WS + _json_pattern_member("set", r"\{") + _JSON_WS)
#: A set element that is a string or a prefix object, and the whitespace and comma (`more`) after it.
_JSON_ELEMENT = re.compile(f"(?:{_JSON_STRING}|" + _json_pattern_object(_json_pattern_member("prefix", _json_pattern_object(
    _json_pattern_member("addr", _JSON_STRING), _json_pattern_member("len", _JSON_INT)))) + ")" + _JSON_WS
    + f"(?:(,){_JSON_WS})?")



def rule_fields(found: re.Match[str]) -> tuple[str, str, str, int, str, str, str | None, str]:
    """A rule object matched by `_JSON_RULE`: family, table, chain, handle, ip|ip6, source, destination
    port (None: any) and verdict, as the general reader would read them."""
    (family, table, chain, handle, key_family, atom, addr, length, port_number, port_name, kind,
     _) = found.groups()
    if atom is None:
        atom = f"{addr}/{int(length)}"
    port = str(int(port_number)) if port_number is not None else port_name
    return family, table, chain, int(handle), key_family, atom, port, kind
