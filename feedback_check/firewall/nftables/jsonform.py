"""The JSON reader: `nft -j list ruleset` (libnftables-json(5)), decoded object by object."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from typing import Any

from feedback_check import jsonfile
from feedback_check.errors import ConfigError
from feedback_check.firewall.model import Origin
from feedback_check.firewall.nftables.fastpath import (
    JSON_DECODER,
    JSON_HEAD,
    NotStreamable,
    json_objects,
    rule_fields,
)
from feedback_check.firewall.nftables.ir import (
    PLAIN_VERDICTS,
    VERDICTS,
    IrChain,
    IrRule,
    Match,
    NamedSet,
    Neutral,
    RateLimit,
    Reading,
    RuleRun,
    Statement,
    Unsupported,
    Verdict,
    VerdictMap,
    close_run,
    render,
    render_keys,
)
from feedback_check.firewall.nftables.matchers import run_source
from feedback_check.firewall.nftables.statements import _priority

log = logging.getLogger(__name__)

# ---------------------------------------------------------------------------------------------------
# JSON reader (`nft -j list ruleset`, libnftables-json(5)).


def _read_json(text: str, file: str) -> Reading:
    try:
        return _read_json_document(text, file)
    except RecursionError:
        raise jsonfile.too_deep_error(text, file) from None


def _read_json_document(text: str, file: str) -> Reading:
    head = JSON_HEAD.match(text)
    if head is not None:
        try:
            return _JsonReader(file).read(json_objects(text, head.end()))
        except NotStreamable:
            pass    # malformed or unusual: json.loads says what is wrong, or reads it
    try:
        document = jsonfile.loads(text, file)
    except json.JSONDecodeError as e:
        raise ConfigError(f"not valid JSON: {e.msg}", file=file, line=e.lineno) from None
    objects = document.get("nftables") if isinstance(document, dict) else None
    if not isinstance(objects, list):
        raise ConfigError('not an nftables JSON ruleset (no top-level "nftables" list)', file=file, line=1)
    return _JsonReader(file).read(iter(objects))


class _JsonReader:
    """`nft -j list ruleset` objects into the intermediate form. Rules are read as they come (rules
    whose chain comes later wait for it, and go first in their chain, as they are first in the file);
    consecutive rules of one shape whose source is one address form runs (`ir.RuleRun`)."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.reading = Reading(file)
        self.deferred: list[tuple[int, dict[str, Any]]] = []
        self.rule_errors: list[tuple[int, Origin]] = []
        self.run: RuleRun | None = None
        self.run_chain: IrChain | None = None
        self.run_fast: tuple[str | None, ...] | None = None   # the run's fast-path key (fastpath.rule_fields)

    def read(self, objects: Iterator[Any]) -> Reading:
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
        early: dict[int, list[IrRule | RuleRun]] = {}
        chains: dict[int, IrChain] = {}
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
            chain = table.chains.setdefault(str(body["name"]), IrChain(str(body["name"]), None))
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

    def _chain_of(self, index: int, body: dict[str, Any]) -> IrChain | None:
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
        try:
            rule = self._general(body)
        except (KeyError, TypeError, ValueError) as e:
            self._close_run()
            self.rule_errors.append((index, Origin(self.file, None,
                                                   f"rule #{index} handle {body.get('handle')} ({e})")))
            return
        found = run_source(rule.statements)
        if found is None:
            self._close_run()
            chain.rules.append(rule)
            return
        source, family = found
        # The shape: the rule without its source address (but with the key it is matched on) and
        # without neutral statements (counters).
        shape = (rule.comment, *(s.keys if i == source and isinstance(s, Match) else s
                                 for i, s in enumerate(rule.statements) if not isinstance(s, Neutral)))
        self._add(chain, shape, family, rule.statements, source, rule.handle, rule.text, rule.comment)

    def _fast_rule(self, index: int, found: re.Match[str]) -> None:
        """A rule object matched by `fastpath._JSON_RULE` in the text (not decoded)."""
        family, table, chain_name, handle, key_family, atom, port, kind = rule_fields(found)
        text = f"{key_family} saddr {atom}" + (f" tcp dport {port}" if port is not None else "") + f" {kind}"
        run = self.run
        fast = (family, table, chain_name, key_family, port, kind)
        if run is not None and self.run_fast == fast:
            run.texts.append(text)           # the next rule of the run (its chain is the run's chain)
            run.handles.append(handle)
            run.sources.append(atom)
            return
        known = self.reading.tables.get((family, table))
        chain = known.chains.get(chain_name) if known is not None else None
        if chain is None:
            self._rule(index, JSON_DECODER.raw_decode(found.string, found.start())[0]["rule"])
            return
        # The statements the general reader reads from this rule (a counter is neutral: left out).
        source = Match((f"{key_family} saddr",), "==", ((atom,),))
        statements: list[Statement] = [source]
        if port is not None:
            statements.append(Match(("tcp dport",), "==", ((port,),)))
        statements.append(PLAIN_VERDICTS[kind])
        self._add(chain, ("", source.keys, *statements[1:]), 4 if key_family == "ip" else 6, statements, 0, handle,
                  text, "")
        self.run_fast = fast

    def _add(self, chain: IrChain, shape: tuple[Any, ...], family: int, statements: list[Statement], source: int,
             handle: Any, text: str, comment: str) -> None:
        """A rule with a run's source match (`source`) to the current run when it has the same shape
        and chain, else to a new run."""
        run = self.run
        if run is None or run.shape != shape or self.run_chain is not chain:
            self._close_run()
            run = self.run = RuleRun(shape, family, statements, source, None, comment)
            self.run_chain = chain
        self.run_fast = None
        run.texts.append(text)
        run.handles.append(handle)
        match = statements[source]
        assert isinstance(match, Match)
        run.sources.append(match.elements[0][0])

    def _close_run(self) -> None:
        if self.run is not None and self.run_chain is not None:
            close_run(self.run_chain, self.run)
        self.run = self.run_chain = self.run_fast = None

    @staticmethod
    def _general(body: dict[str, Any]) -> IrRule:
        statements = [_json_statement(expr) for expr in body.get("expr", ())]
        return IrRule(statements, None, body.get("handle"), render(statements), str(body.get("comment", "")))


def _json_set(body: dict[str, Any], is_map: bool) -> NamedSet:
    types = body.get("type")
    keys = tuple(str(t) for t in types) if isinstance(types, list) else (str(types),)
    flags = body.get("flags") or ()
    flags = (flags,) if isinstance(flags, str) else tuple(str(f) for f in flags)
    target = NamedSet(str(body["name"]), keys, flags, [], [] if is_map else None, is_map, None, body.get("handle"))
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


def _json_add_element(target: NamedSet, elem: Any) -> None:
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
            fib = expr["fib"]
            result = fib.get("result", "")
            if not isinstance(result, str):
                raise TypeError(f"fib result {result!r}")
            return "fib " + " . ".join(fib.get("flags", ())) + " " + result
    raise ValueError(f"unsupported selector {json.dumps(expr)[:80]}")


def _json_statement(expr: Any) -> Statement:
    """One object of a rule's `expr` list as a statement (libnftables-json(5)), by its kind."""
    if not isinstance(expr, dict) or len(expr) != 1:
        return Unsupported(json.dumps(expr)[:120])
    (kind, body), = expr.items()
    if kind in VERDICTS:
        return Verdict(kind, str(body["target"])) if kind in ("jump", "goto") else Verdict(kind)
    if kind in ("counter", "log", "notrack", "mangle"):
        return Neutral(kind)
    if kind == "limit" and isinstance(body, dict):
        over = bool(body.get("inv"))
        text = f"limit rate {'over ' if over else ''}{body.get('rate')}/{body.get('per', 'second')}"
        return RateLimit(text + (f" burst {body['burst']} packets" if body.get("burst") else ""), over)
    if kind == "match":
        return _json_match(body)
    if kind == "vmap":
        return _json_vmap(body)
    return Unsupported(kind + " " + json.dumps(body)[:100])


_JSON_OPERATORS = {"==": "==", "in": "==", "!=": "!=", "<": "<", ">": ">", "<=": "<=", ">=": ">="}


def _json_keys(left: Any) -> tuple[str, ...]:
    """The selector(s) of a match or map: one, or a `concat` of several."""
    if isinstance(left, dict) and "concat" in left:
        return tuple(_json_selector(k) for k in left["concat"])
    return (_json_selector(left),)


def _json_match(body: Any) -> Statement:
    try:
        keys = _json_keys(body["left"])
    except (KeyError, ValueError, TypeError):
        return Unsupported("match " + json.dumps(body)[:120])
    op = _JSON_OPERATORS.get(body.get("op"))
    if op is None:
        return Unsupported(render_keys(keys) + f" {body.get('op')} " + json.dumps(body.get("right"))[:80])
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
        return Unsupported(render_keys(keys) + " " + json.dumps(right)[:80])
    return Match(keys, op, elements)


def _json_vmap(body: Any) -> Statement:
    try:
        keys = _json_keys(body["key"])
        data = body["data"]
        if isinstance(data, str) and data.startswith("@"):
            return VerdictMap(keys, ref=data[1:])
        return VerdictMap(keys, tuple((_json_key(k), _json_verdict(v)) for k, v in data["set"]))
    except (KeyError, ValueError, TypeError):
        return Unsupported("vmap " + json.dumps(body)[:120])
