"""The JSON reader: `nft -j list ruleset` (libnftables-json(5)), decoded object by object."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from typing import Any

from feedback_check.errors import ConfigError
from feedback_check.firewall.model import Origin
from feedback_check.firewall.nftables.ir import (
    _PLAIN_VERDICTS,
    VERDICTS,
    Match,
    Neutral,
    RateLimit,
    Statement,
    Unsupported,
    Verdict,
    VerdictMap,
    _Chain,
    _close_run,
    _Reading,
    _render,
    _render_keys,
    _Rule,
    _Run,
    _Set,
)
from feedback_check.firewall.nftables.statements import _priority

log = logging.getLogger(__name__)

# ---------------------------------------------------------------------------------------------------
# JSON reader (`nft -j list ruleset`, libnftables-json(5)).


_JSON_HEAD = re.compile(r'[ \t\n\r]*\{[ \t\n\r]*"nftables"[ \t\n\r]*:[ \t\n\r]*\[')
_JSON_SPACE = re.compile(r"[ \t\n\r]*")
_JSON_DECODER = json.JSONDecoder()


class _NotStreamable(Exception):
    """The JSON text is not `{"nftables": [...]}` read object by object: it is read as a whole."""


def _read_json(text: str, file: str) -> _Reading:
    head = _JSON_HEAD.match(text)
    if head is not None:
        try:
            return _JsonReader(file).read(_json_objects(text, head.end()))
        except _NotStreamable:
            pass    # malformed or unusual: json.loads says what is wrong, or reads it
    try:
        document = json.loads(text)
    except json.JSONDecodeError as e:
        raise ConfigError(f"not valid JSON: {e.msg}", file=file, line=e.lineno) from None
    objects = document.get("nftables") if isinstance(document, dict) else None
    if not isinstance(objects, list):
        raise ConfigError('not an nftables JSON ruleset (no top-level "nftables" list)', file=file, line=1)
    return _JsonReader(file).read(iter(objects))


def _json_objects(text: str, start: int) -> Iterator[Any]:
    """The items of the `"nftables"` list whose `[` ends at `start`, decoded one at a time (a large
    ruleset never exists as one Python document); a rule of the common shape is not decoded but
    given as its `_JSON_RULE` match. Raises _NotStreamable unless the text is exactly
    `{"nftables": [...]}`."""
    decode = _JSON_DECODER.raw_decode
    fast = _JSON_RULE.match
    i = _json_space(text, start)
    if text.startswith("]", i):
        i += 1
    else:
        while True:
            found = fast(text, i) if text.startswith('{"rule"', i) else None
            declared = _json_set_object(text, i) if found is None and text.startswith('{"set"', i) else None
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
                    raise _NotStreamable from None
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
            raise _NotStreamable
    i = _json_space(text, i)
    if not text.startswith("}", i) or _json_space(text, i + 1) != len(text):
        raise _NotStreamable


def _json_set_object(text: str, i: int) -> tuple[dict[str, Any], int] | None:
    """A `{"set": {...}}` object at `i` whose elements are addresses and prefixes, decoded without a
    dict per element: a prefix element becomes its atom `a.b.c.d/n` (which the set reader reads as
    it reads the prefix). (object, index after it), or None when it is written any other way."""
    decode = _JSON_DECODER.raw_decode
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

_JSON_SADDR = {"ip": {"payload": {"protocol": "ip", "field": "saddr"}},
               "ip6": {"payload": {"protocol": "ip6", "field": "saddr"}}}
_JSON_DPORT = {"payload": {"protocol": "tcp", "field": "dport"}}


class _JsonReader:
    """`nft -j list ruleset` objects into the intermediate form. Rules are read as they come (rules
    whose chain comes later wait for it, and go first in their chain, as they are first in the file);
    rules of the common shape (`_json_simple`) skip the general statement machinery and form runs."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.reading = _Reading(file)
        self.deferred: list[tuple[int, dict[str, Any]]] = []
        self.rule_errors: list[tuple[int, Origin]] = []
        self.run: _Run | None = None
        self.run_chain: _Chain | None = None
        self.run_where: tuple[str, str, str] | None = None     # the run's family, table, chain names

    def read(self, objects: Iterator[Any]) -> _Reading:
        reading, file = self.reading, self.file
        for index, item in enumerate(objects):
            if type(item) is re.Match:
                self._fast_rule(index, item)
                continue
            if not isinstance(item, dict) or len(item) != 1:
                reading.unparsed.append(Origin(file, None, f"object #{index}: {json.dumps(item)[:200]}"))
                continue
            (kind, body), = item.items()
            if kind in ("add", "create", "insert") and isinstance(body, dict) and len(body) == 1:
                (kind, body), = body.items()
            if not isinstance(body, dict):
                reading.unparsed.append(Origin(file, None, f"object #{index}: {json.dumps(item)[:200]}"))
                continue
            if kind == "rule":
                self._rule(index, body)
                continue
            try:
                self._object(kind, body)
            except (KeyError, TypeError, ValueError) as e:
                reading.unparsed.append(Origin(file, None, f"{kind} #{index} ({e}): {json.dumps(body)[:200]}"))
        self._close_run()
        early: dict[int, list[_Rule | _Run]] = {}
        chains: dict[int, _Chain] = {}
        for index, body in self.deferred:
            chain = self._chain_of(index, body)
            if chain is not None:
                early.setdefault(id(chain), []).append(self._general(body))
                chains[id(chain)] = chain
        for key, rules in early.items():
            chains[key].rules[:0] = rules
        reading.unparsed.extend(origin for _, origin in sorted(self.rule_errors, key=lambda error: error[0]))
        return reading

    def _object(self, kind: str, body: dict[str, Any]) -> None:
        reading = self.reading
        if kind == "table":
            table = reading.table(str(body["family"]), str(body["name"]), None)
            if "dormant" in (body.get("flags") or ()):
                table.dormant = True
        elif kind == "chain":
            table = reading.table(str(body["family"]), str(body["table"]), None)
            chain = table.chains.setdefault(str(body["name"]), _Chain(str(body["name"]), None))
            chain.handle = body.get("handle")
            if "hook" in body:
                chain.type = str(body.get("type", "filter"))
                chain.hook = str(body["hook"])
                prio = body.get("prio", 0)
                chain.priority = prio if isinstance(prio, int) else _priority(str(prio).split())
                chain.policy = body.get("policy", "accept")
                chain.device = body.get("dev")
        elif kind in ("set", "map"):
            table = reading.table(str(body["family"]), str(body["table"]), None)
            table.sets[str(body["name"])] = _json_set(body, kind == "map")
        elif kind == "element":
            table = reading.table(str(body["family"]), str(body["table"]), None)
            target = table.sets[str(body["name"])]
            for elem in body.get("elem", ()):
                _json_add_element(target, elem)

    def _chain_of(self, index: int, body: dict[str, Any]) -> _Chain | None:
        try:
            return self.reading.tables[(str(body["family"]), str(body["table"]))].chains[str(body["chain"])]
        except (KeyError, TypeError, ValueError) as e:
            self.rule_errors.append((index, Origin(self.file, None,
                                                   f"rule #{index} handle {body.get('handle')} ({e})")))
            return None

    def _rule(self, index: int, body: dict[str, Any]) -> None:
        try:
            chain = self.reading.tables[(str(body["family"]), str(body["table"]))].chains[str(body["chain"])]
        except (KeyError, TypeError, ValueError):
            chain = None
        if chain is None:
            self._close_run()
            self.deferred.append((index, body))      # its chain comes later (or never: then an error)
            return
        simple = _json_simple(body)
        if simple is None:
            self._close_run()
            try:
                chain.rules.append(self._general(body))
            except (KeyError, TypeError, ValueError) as e:
                self.rule_errors.append((index, Origin(self.file, None,
                                                       f"rule #{index} handle {body.get('handle')} ({e})")))
            return
        self._add_simple(chain, body.get("handle"), *simple)

    def _fast_rule(self, index: int, found: re.Match[str]) -> None:
        """A rule object matched by `_JSON_RULE` in the text (not decoded)."""
        (family, table, chain_name, handle, key_family, atom, addr, length, port_number, port_name,
         kind, _) = found.groups()
        if atom is None:
            atom = f"{addr}/{int(length)}"
        port = str(int(port_number)) if port_number is not None else port_name
        text = f"{key_family} saddr {atom}" + (f" tcp dport {port}" if port is not None else "") + f" {kind}"
        run = self.run
        if run is not None and self.run_where == (family, table, chain_name) and run.key == (
                key_family, port, None, kind):
            run.texts.append(text)           # the next rule of the run (its chain is the run's chain)
            run.handles.append(int(handle))
            run.atoms.append(atom)
            return
        known = self.reading.tables.get((family, table))
        chain = known.chains.get(chain_name) if known is not None else None
        if chain is None:
            self._rule(index, _JSON_DECODER.raw_decode(found.string, found.start())[0]["rule"])
            return
        self._add_simple(chain, int(handle), key_family, atom, port, kind, text)
        self.run_where = (family, table, chain_name)

    def _add_simple(self, chain: _Chain, handle: Any, family: str, atom: str, port: str | None, kind: str,
                    text: str) -> None:
        key = (family, port, None, kind)
        run = self.run
        if run is None or run.key != key or self.run_chain is not chain:
            self._close_run()
            run = self.run = _Run(key, 4 if family == "ip" else 6, None if port is None else (port,),
                                  _PLAIN_VERDICTS[kind], None)
            self.run_chain = chain
        self.run_where = None
        run.texts.append(text)
        run.handles.append(handle)
        run.atoms.append(atom)

    def _close_run(self) -> None:
        if self.run is not None and self.run_chain is not None:
            _close_run(self.run_chain, self.run)
        self.run = self.run_chain = self.run_where = None

    @staticmethod
    def _general(body: dict[str, Any]) -> _Rule:
        statements = [_json_statement(expr) for expr in body.get("expr", ())]
        return _Rule(statements, None, body.get("handle"), _render(statements), str(body.get("comment", "")))


def _json_simple(body: dict[str, Any]) -> tuple[str, str, str | None, str, str] | None:
    """A rule `[{"match": ip|ip6 saddr == A}, [{"match": tcp dport == P},] [{"counter": ...},] verdict]`
    without a comment: (family, A, P, verdict, text as nft-like words); None for any other rule."""
    exprs = body.get("expr")
    if type(exprs) is not list or not 2 <= len(exprs) <= 4 or "comment" in body:
        return None
    first, *middle, last = exprs
    if type(first) is not dict or type(last) is not dict or len(last) != 1:
        return None
    match = first.get("match")
    if type(match) is not dict or len(first) != 1 or match.get("op") != "==":
        return None
    left, right = match.get("left"), match.get("right")
    family = "ip" if left == _JSON_SADDR["ip"] else "ip6" if left == _JSON_SADDR["ip6"] else None
    if family is None:
        return None
    if type(right) is dict:
        prefix = right.get("prefix")
        if len(right) != 1 or type(prefix) is not dict or type(prefix.get("addr")) is not str \
                or type(prefix.get("len")) is not int:
            return None
        atom = f"{prefix['addr']}/{prefix['len']}"
    elif type(right) is str and not right.startswith("@"):
        atom = right
    else:
        return None
    port: str | None = None
    counted = False
    for expr in middle:
        if type(expr) is not dict or len(expr) != 1:
            return None
        if "counter" in expr and not counted:
            counted = True
            continue
        dport = expr.get("match")
        if port is not None or counted or type(dport) is not dict or dport.get("op") != "==" \
                or dport.get("left") != _JSON_DPORT or type(dport.get("right")) not in (int, str):
            return None
        port = str(dport["right"])
    (kind, _), = last.items()
    if kind not in _PLAIN_VERDICTS:
        return None
    text = f"{family} saddr {atom}" + (f" tcp dport {port}" if port is not None else "") + f" {kind}"
    return family, atom, port, kind, text


def _json_set(body: dict[str, Any], is_map: bool) -> _Set:
    types = body.get("type")
    keys = tuple(str(t) for t in types) if isinstance(types, list) else (str(types),)
    flags = body.get("flags") or ()
    flags = (flags,) if isinstance(flags, str) else tuple(str(f) for f in flags)
    target = _Set(str(body["name"]), keys, flags, [], [] if is_map else None, is_map, None, body.get("handle"))
    elements = target.elements
    for elem in body.get("elem", ()):
        # The common elements (an address, a prefix) directly; anything else as _json_key reads it.
        if not is_map and type(elem) is str:
            elements.append((elem,))
        elif not is_map and type(elem) is dict and len(elem) == 1 and type(prefix := elem.get("prefix")) is dict \
                and len(prefix) == 2 and type(addr := prefix.get("addr")) is str \
                and type(length := prefix.get("len")) is int:
            elements.append((f"{addr}/{length}",))
        else:
            _json_add_element(target, elem)
    return target


def _json_add_element(target: _Set, elem: Any) -> None:
    if target.is_map and isinstance(elem, list) and len(elem) == 2:
        target.elements.append(_json_key(elem[0]))
        assert target.verdicts is not None
        target.verdicts.append(_json_verdict(elem[1]))
    else:
        target.elements.append(_json_key(elem))


def _json_key(value: Any) -> tuple[str, ...]:
    if isinstance(value, dict) and "elem" in value:
        value = value["elem"].get("val")
    if isinstance(value, dict) and "concat" in value:
        return tuple(_json_atom(v) for v in value["concat"])
    return (_json_atom(value),)


def _json_atom(value: Any) -> str:
    if isinstance(value, bool):
        raise TypeError(f"unexpected value {value!r}")
    if isinstance(value, (str, int)):
        return str(value)
    if isinstance(value, dict):
        if "prefix" in value:
            return f"{value['prefix']['addr']}/{value['prefix']['len']}"
        if "range" in value:
            low, high = value["range"]
            return f"{_json_atom(low)}-{_json_atom(high)}"
        if "elem" in value:
            return _json_atom(value["elem"]["val"])
    raise ValueError(f"unsupported value {json.dumps(value)[:80]}")


def _json_verdict(value: Any) -> tuple[str, str | None]:
    if isinstance(value, dict) and len(value) == 1:
        (kind, arg), = value.items()
        if kind in ("jump", "goto"):
            return kind, str(arg["target"])
        return kind, None
    return "unknown", None


def _json_selector(expr: Any) -> str:
    if isinstance(expr, dict):
        if "payload" in expr:
            p = expr["payload"]
            if "protocol" in p:
                return f"{p['protocol']} {p['field']}"
        if "meta" in expr:
            key = expr["meta"]["key"]
            return key if key in ("iif", "iifname", "oif", "oifname") else f"meta {key}"
        if "ct" in expr:
            ct = expr["ct"]
            return f"ct {ct['dir']} {ct['key']}" if "dir" in ct else f"ct {ct['key']}"
        if "fib" in expr:
            return "fib " + " . ".join(expr["fib"].get("flags", ())) + " " + expr["fib"].get("result", "")
    raise ValueError(f"unsupported selector {json.dumps(expr)[:80]}")


def _json_statement(expr: Any) -> Statement:
    if not isinstance(expr, dict) or len(expr) != 1:
        return Unsupported(json.dumps(expr)[:120])
    (kind, body), = expr.items()
    if kind in VERDICTS:
        if kind in ("jump", "goto"):
            return Verdict(kind, str(body["target"]))
        return Verdict(kind)
    if kind in ("counter", "log", "notrack", "mangle"):
        return Neutral(kind)
    if kind == "limit" and isinstance(body, dict):
        over = bool(body.get("inv"))
        text = f"limit rate {'over ' if over else ''}{body.get('rate')}/{body.get('per', 'second')}"
        return RateLimit(text + (f" burst {body['burst']} packets" if body.get("burst") else ""), over)
    if kind == "match":
        try:
            left = body["left"]
            keys = tuple(_json_selector(k) for k in left["concat"]) if isinstance(left, dict) \
                and "concat" in left else (_json_selector(left),)
        except (KeyError, ValueError, TypeError):
            return Unsupported("match " + json.dumps(body)[:120])
        op = {"==": "==", "in": "==", "!=": "!=", "<": "<", ">": ">", "<=": "<=", ">=": ">="}.get(body.get("op"))
        if op is None:
            return Unsupported(_render_keys(keys) + f" {body.get('op')} " + json.dumps(body.get("right"))[:80])
        right = body["right"]
        if isinstance(right, str) and right.startswith("@"):
            return Match(keys, op, ref=right[1:])
        try:
            if isinstance(right, dict) and "set" in right:
                elements = tuple(_json_key(v) for v in right["set"])
            elif isinstance(right, list):
                elements = tuple(_json_key(v) for v in right)
            else:
                elements = (_json_key(right),)
        except (ValueError, KeyError, TypeError):
            return Unsupported(_render_keys(keys) + " " + json.dumps(right)[:80])
        return Match(keys, op, elements)
    if kind == "vmap":
        try:
            key = body["key"]
            keys = tuple(_json_selector(k) for k in key["concat"]) if isinstance(key, dict) \
                and "concat" in key else (_json_selector(key),)
            data = body["data"]
            if isinstance(data, str) and data.startswith("@"):
                return VerdictMap(keys, ref=data[1:])
            entries = tuple((_json_key(k), _json_verdict(v)) for k, v in data["set"])
            return VerdictMap(keys, entries)
        except (KeyError, ValueError, TypeError):
            return Unsupported("vmap " + json.dumps(body)[:120])
    return Unsupported(kind + " " + json.dumps(body)[:100])
