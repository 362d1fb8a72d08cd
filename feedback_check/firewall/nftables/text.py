"""The text reader: `nft list ruleset` (also `nft -a`) and `nft -f` scripts, read line by line."""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Sequence
from itertools import islice
from operator import itemgetter
from typing import NamedTuple

from feedback_check.errors import ConfigError
from feedback_check.firewall.model import Origin
from feedback_check.firewall.nftables import fastpath
from feedback_check.firewall.nftables.ir import (
    IrChain,
    IrRule,
    IrTable,
    Match,
    NamedSet,
    Reading,
    RuleRun,
    close_run,
)
from feedback_check.firewall.nftables.matchers import run_source
from feedback_check.firewall.nftables.statements import (
    _ELEMENT_SYNTAX,
    _element_key_and_data,
    _elements,
    _priority,
    _split_on,
    _statements,
)

_TOKEN = re.compile(r'\n|#[^\n]*|"[^"\n]*"|[{};,]|[^\s{};,"#]+')
_HANDLE = re.compile(r"#\s*handle\s+(\d+)")
_STRUCTURE = frozenset({"{", "}", ";"})
# A value in a rule line: a whole word after a space that starts like a number, an address, a prefix
# or a range (IPv6 may start with hex letters). A line's shape is the line with its values cut out.
_VALUE_WORD = r"(?:[0-9:]|[a-fA-F][0-9A-Fa-f]{0,3}+:)[0-9A-Za-z.:/_-]*+(?= |$)"
_VALUE = re.compile(f" ({_VALUE_WORD})")
_HOLE = "\x00"
# `# handle N` at the end of a rule line (`nft -a`).
_LINE_HANDLE = re.compile(r"# handle (\d+)[ \t]*")
# What a shape must not hold to be read on its own: groups, separators, strings, variables, comments.
_NOT_ONE_RULE = re.compile(r'[{};,"$\\#\x01\x02]')
# Chain-level statements, not rules.
_CHAIN_WORDS = frozenset({"type", "policy", "comment", "devices", "device"})


class _Shape(NamedTuple):
    """A rule line's shape that makes runs: its source value (index among the line's values), which
    other values the rule's statements use (they must be equal along a run), where the source match
    is among the statements, and the pattern that reads the next line of the same shape whole (groups:
    the rule's text, the values, the `# handle`)."""

    source: int
    pick: Callable[[Sequence[str]], object] | None     # the other values used (None: none)
    statement: int
    family: int
    pattern: re.Pattern[str]
    group_pick: Callable[[Sequence[str]], object] | None    # `pick` on the pattern's groups


def _shape(shape: str) -> _Shape | None:
    """Read a shape once: its statements with a placeholder for each value; None unless it is one rule
    as `nft list ruleset` prints it (single spaces) with one source value (`matchers.run_source`)."""
    if _NOT_ONE_RULE.search(shape) or "  " in shape or "\t" in shape:
        return None
    pieces = shape.split(_HOLE)
    holes = [f"\x01{i}\x02" for i in range(len(pieces) - 1)]
    tokens = _TOKEN.findall("".join(p + " " + h for p, h in zip(pieces, holes)) + pieces[-1])
    if not tokens or tokens[0] in _CHAIN_WORDS:
        return None
    statements, comment = _statements(tokens)
    found = run_source(statements)
    if found is None:
        return None
    index, family = found
    match = statements[index]
    assert isinstance(match, Match)
    if match.elements[0][0] not in holes:
        return None
    used = repr((statements[:index], statements[index + 1:], comment))
    keys = [i for i, hole in enumerate(holes) if repr(hole)[1:-1] in used]
    pattern = re.compile(r"[ \t]*(" + f" ({_VALUE_WORD})".join(map(re.escape, pieces))
                         + r")(?: # handle (\d+))?[ \t]*")
    return _Shape(holes.index(match.elements[0][0]), itemgetter(*keys) if keys else None, index, family,
                  pattern, itemgetter(*[k + 1 for k in keys]) if keys else None)


def _handle(comment: str) -> int | None:
    """The handle of a `# handle N` comment (None for another comment)."""
    found = _HANDLE.match(comment)
    return int(found.group(1)) if found else None


def _whole_line(chunk: list[str], line: int) -> tuple[list[str], int, int | None, bool]:
    """A statement that is a whole line, its `# handle N` comment (if any) last."""
    if chunk[-1][0] == "#":
        return chunk[:-1], line, _handle(chunk[-1]), False
    return chunk, line, None, False


class _SetDeclaration:
    """What the statements of a `set` or `map` declaration say: its key types, flags and elements (and,
    for a map, each element's verdict). Statements without a filtering meaning (size, timeout, policy,
    comment, ...) are passed over."""

    def __init__(self, is_map: bool) -> None:
        self.keys: tuple[str, ...] = ()
        self.flags: tuple[str, ...] = ()
        self.elements: list[tuple[str, ...]] = []
        self.verdicts: list[tuple[str, str | None]] | None = [] if is_map else None

    def key_types(self, tokens: list[str]) -> None:
        """`type ipv4_addr . inet_service` / `typeof ip saddr` (for a map, the part before `:`)."""
        spec = tokens[1:]
        if self.verdicts is not None and ":" in spec:
            spec = spec[:spec.index(":")]
        self.keys = tuple(" ".join(part) for part in _split_on(spec, "."))

    def set_flags(self, tokens: list[str]) -> None:
        self.flags = tuple(t for t in tokens[1:] if t != ",")

    def add_elements(self, tokens: list[str]) -> None:
        """`elements = { ... }`: a plain list of one-atom set elements (the common, long case) is taken
        as it is; anything else is read element by element."""
        values = tokens[tokens.index("{"):] if "{" in tokens else []
        plain = values[1:-1:2]
        if self.verdicts is None and values and values[-1] == "}" and all(
                t == "," for t in values[2:-1:2]) and not _ELEMENT_SYNTAX.intersection(plain):
            self.elements.extend([(t,) for t in plain])
            return
        for element in _elements(values):
            key, verdict = _element_key_and_data(element)
            self.elements.append(key)
            if self.verdicts is not None:
                self.verdicts.append(verdict or ("unknown", None))


_SET_STATEMENTS: dict[str, Callable[[_SetDeclaration, list[str]], None]] = {
    "type": _SetDeclaration.key_types,
    "typeof": _SetDeclaration.key_types,
    "flags": _SetDeclaration.set_flags,
    "elements": _SetDeclaration.add_elements,
}


# ---------------------------------------------------------------------------------------------------
# Text reader.


class TextReader:
    """Reads the text line by line: a line is turned into tokens only when it is needed, so a large
    ruleset never exists as one token list. A rule line whose shape (`_shape`) makes runs is not
    tokenized at all: it joins the run of the lines before it when it has their shape and the same
    values but its source (firewall/runs.py). Long element lists are read by splitting the text
    between their braces; everything else goes through the tokens."""

    def __init__(self, text: str, file: str) -> None:
        self.file = file
        self.reading = Reading(file)
        if "\r" in text:
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        self.text = text
        self.offset = 0                 # where the text not yet read starts
        self.line_no = 1                # the line at `offset`
        # The tokens of the line(s) being read, "\n" at each line end (interned: large rulesets repeat
        # the same few words many times); `pos` is the next one to read.
        self.tokens: list[str] = []
        self.pos = 0
        self._first_line = 1            # the line of tokens[0]
        self._skipped: list[tuple[int, int]] = []   # (token index, lines) read as raw text before it
        self.closed = False
        self.defines: dict[str, list[str]] = {}
        self.shapes: dict[str, _Shape | None] = {}     # see `_shape`

    # -- the token buffer --------------------------------------------------------------------------
    def _fill(self) -> bool:
        """Add the tokens of the next line to the buffer; False at the end of the text."""
        text = self.text
        start = self.offset
        if start > len(text):
            return False
        end = text.find("\n", start)
        if end < 0:
            end = len(text)
        self.tokens += map(sys.intern, _TOKEN.findall(text, start, end))
        self.tokens.append("\n")
        self.offset = end + 1
        self.line_no += 1
        return True

    def _at_line_start(self) -> bool:
        """Whether the buffer is used up (the next token starts a line): it then starts afresh. Line
        ends and `;` left in it are passed over (no statement starts with them)."""
        tokens = self.tokens
        while self.pos < len(tokens) and tokens[self.pos] in ("\n", ";"):
            self.pos += 1
        if self.pos < len(tokens):
            return False
        if self.tokens:
            self.tokens = []
            self.pos = 0
            self._skipped.clear()
        self._first_line = self.line_no
        return True

    def _line(self, index: int) -> int:
        """The line number of token `index` of the buffer."""
        line = self._first_line + self.tokens[:index].count("\n")
        return line + sum(lines for at, lines in self._skipped if at <= index)

    # -- statement splitting -----------------------------------------------------------------------
    def _statement(self, block_heads: frozenset[str]) -> tuple[list[str], int, int | None, bool] | None:
        """Next statement in the current block: (tokens, line, handle, opens_block). Returns None at
        the block's closing brace (consumed) or at the end of the text."""
        tok = self._next_token()
        if tok is None:
            self.closed = False
            return None
        if tok == "}":
            self.pos += 1
            self.closed = True
            return None
        tokens = self.tokens
        line = self._line(self.pos)
        end = tokens.index("\n", self.pos)
        chunk = tokens[self.pos:end]
        if _STRUCTURE.isdisjoint(chunk) and not any(t[0] == "$" for t in chunk):
            # A whole line without braces, separators or variables (a comment can only come last).
            self.pos = end + 1
            return _whole_line(chunk, line)
        return self._token_by_token(block_heads, line)

    def _next_token(self) -> str | None:
        """The token the next statement starts with, past line ends, `;` and comments (None at the end
        of the text)."""
        while True:
            if self._at_line_start() and not self._fill():
                return None
            tok = self.tokens[self.pos]
            if tok == "\n" or tok == ";" or tok[0] == "#":
                self.pos += 1
                continue
            return tok

    def _token_by_token(self, block_heads: frozenset[str], line: int) -> tuple[list[str], int, int | None, bool]:
        """A statement with braces, separators or variables, read up to its end: a line end, `;`, the
        block's `}` (left for the caller) or the `{` of a block it opens (a head in `block_heads`)."""
        out: list[str] = []
        handle = None
        while self.pos < len(self.tokens):
            tok = self.tokens[self.pos]
            if tok == "\n" or tok == ";":
                self.pos += 1
                break
            if tok == "}":
                break
            if tok == "{" and out and out[0] in block_heads:
                self.pos += 1
                return out, line, handle, True
            if tok == "{":
                self._group(out)
                continue
            if tok[0] == "#":
                found = _handle(tok)
                handle = handle if found is None else found
            elif tok[0] == "$":
                out.extend(self._define(tok, self._line(self.pos)))
            else:
                out.append(tok)
            self.pos += 1
        return out, line, handle, False

    def _group(self, out: list[str]) -> None:
        """Copy a brace group (anonymous set, inline chain spec) into `out`, newlines dropped."""
        tokens = self.tokens
        start = self.pos
        rest = tokens[start + 1:]
        if "}" in rest:
            inner = rest[:rest.index("}")]
            if "{" not in inner and not any(t[0] == "$" for t in inner):
                # The common case (anonymous sets): one slice, no nesting.
                out.append("{")
                out.extend([t for t in inner if t != "\n" and t[0] != "#"])
                out.append("}")
                self.pos = start + len(inner) + 2
                return
        elif "{" not in rest and not any(t[0] == "$" for t in rest) and self._raw_group(out, rest):
            return
        start_line = self._line(start)
        depth = 0
        while self.pos < len(self.tokens) or self._fill():
            tok = self.tokens[self.pos]
            self.pos += 1
            if tok == "{":
                depth += 1
            elif tok == "}":
                depth -= 1
                if depth == 0:
                    out.append(tok)
                    return
            elif tok == "\n" or tok[0] == "#":
                continue
            elif tok[0] == "$":
                out.extend(self._define(tok, self._line(self.pos - 1)))
                continue
            out.append(tok)
        raise ConfigError("'{' is never closed", file=self.file, line=start_line)

    def _raw_group(self, out: list[str], first: list[str]) -> bool:
        """A brace group whose first line is `first` (the tokens after `{`) and that closes on a later
        line, read by splitting the text up to its `}` (long element lists span thousands of lines);
        False when that text has comments, strings, nesting or variables (then tokens are needed)."""
        text = self.text
        close = text.find("}", self.offset)
        if close < 0:
            return False
        chunk = text[self.offset:close]
        if any(c in chunk for c in '{}$#";'):
            return False
        out.append("{")
        out.extend([t for t in first if t != "\n" and t[0] != "#"])
        out.extend(chunk.replace(",", " , ").split())
        out.append("}")
        lines = chunk.count("\n")
        del self.tokens[self.pos:]
        self._skipped.append((self.pos, lines + 1))
        self.line_no += lines       # then _fill reads the rest of the line the group closes on
        self.offset = close + 1
        self._fill()
        return True

    def _define(self, token: str, line: int) -> list[str]:
        name = token[1:]
        if name not in self.defines:
            raise ConfigError(f"${name} is used but never defined", file=self.file, line=line)
        return self.defines[name]

    def _block_handle(self) -> int | None:
        """`chain input { # handle 1`: the handle comment right after an opening brace."""
        if self.pos < len(self.tokens) and self.tokens[self.pos][0] == "#":
            return _handle(self.tokens[self.pos])
        return None

    def _skip_block(self) -> None:
        depth = 1
        while depth and (self.pos < len(self.tokens) or self._fill()):
            tok = self.tokens[self.pos]
            depth += (tok == "{") - (tok == "}")
            self.pos += 1

    def _end_of_block(self, what: str, line: int) -> None:
        if not self.closed:
            raise ConfigError(f"'{{' of {what} is never closed", file=self.file, line=line)

    def _run_rules(self, chain: IrChain, run: RuleRun | None) -> RuleRun | None:
        """The lines from here whose shape makes runs (`_shape`), each added to the current run when it
        has the run's shape and values, else to a new run (the old one closed into the chain), up to
        a line of any other shape, which is left to the tokens. Returns the run that goes on."""
        text, shapes, split, hole = self.text, self.shapes, _VALUE.split, _HOLE
        size = len(text)
        start = self.offset
        line_no = self.line_no
        while start <= size:
            end = text.find("\n", start)
            if end < 0:
                end = size
            if run is not None and run.pattern is not None:
                # The next line of the run's shape, read whole by the shape's own pattern.
                same = run.pattern.fullmatch(text, start, end)
                if same is not None:
                    groups = same.groups()
                    pick = run.group_pick
                    if (pick(groups) if pick is not None else None) == run.values:
                        found_handle = groups[-1]
                        run.numbers.append(line_no)
                        run.offsets.append(same.start(1))
                        run.handles.append(int(found_handle) if found_handle is not None else None)
                        run.sources.append(groups[run.source_group])
                        start = end + 1
                        line_no += 1
                        continue
            handle = None
            stop = end
            cut = text.find("#", start, end)
            if cut >= 0:
                found = _LINE_HANDLE.fullmatch(text, cut, end)
                if found is None or text[cut - 1] != " ":
                    break
                handle = int(found.group(1))
                stop = cut - 1
            line = text[start:stop]
            body = line.lstrip()
            first = start + len(line) - len(body)
            body = body.rstrip()
            parts = split(body)
            key = hole.join(parts[0::2])
            if key in shapes:
                shape = shapes[key]
            else:
                shape = shapes[key] = _shape(key)
            if shape is None:
                break
            values = parts[1::2]
            used = shape.pick(values) if shape.pick is not None else None
            if run is None or run.shape != key or run.values != used:
                if run is not None:
                    close_run(chain, run)
                statements, comment = _statements([sys.intern(t) for t in _TOKEN.findall(body)])
                run = RuleRun(key, shape.family, statements, shape.statement, text, comment)
                run.values = used
                run.pattern, run.group_pick, run.source_group = shape.pattern, shape.group_pick, shape.source + 1
            run.numbers.append(line_no)
            run.offsets.append(first)
            run.handles.append(handle)
            run.sources.append(values[shape.source])
            start = end + 1
            line_no += 1
        self.offset = start
        self.line_no = line_no
        return run

    def _unparsed(self, line: int, tokens: Sequence[str]) -> None:
        self.reading.unparsed.append(Origin(self.file, line, " ".join(tokens)))

    # -- blocks ------------------------------------------------------------------------------------
    def read(self) -> Reading:
        if any(t[0] == "#" and "managed by iptables-nft" in t
               for t in map(re.Match.group, islice(_TOKEN.finditer(self.text), 400))):
            self.reading.notes.append("tables managed by iptables-nft: change them with iptables commands "
                                      "(or the iptables rules file), not nft, so the fix survives a reload")
        heads = frozenset({"table"})
        while True:
            statement = self._statement(heads)
            if statement is None:
                if self.closed:
                    raise ConfigError("'}' without a matching '{'", file=self.file,
                                      line=self._line(self.pos - 1))
                break
            tokens, line, _handle, opens = statement
            head = tokens[0]
            if opens:
                if len(tokens) < 2:
                    raise ConfigError("table without a name", file=self.file, line=line)
                family, name = (tokens[1], tokens[2]) if len(tokens) > 2 else ("ip", tokens[1])
                self._table(family, name, line)
            elif head in ("define", "redefine") and len(tokens) >= 3 and tokens[2] == "=":
                self.defines[tokens[1]] = tokens[3:]
            elif head == "undefine" and len(tokens) == 2:
                self.defines.pop(tokens[1], None)
            elif head == "flush" and tokens[1:] == ["ruleset"]:
                self.reading.tables.clear()
            elif head in ("add", "create", "insert") and len(tokens) > 1:
                self._command(tokens, line)
            elif head == "include":
                self.reading.notes.append(f"{self.file}:{line}: include {' '.join(tokens[1:])} was not "
                                          "followed; analyse the included files too")
                self._unparsed(line, tokens)
            else:
                self._unparsed(line, tokens)
        return self.reading

    def _table(self, family: str, name: str, line: int) -> None:
        table = self.reading.table(family, name, line)
        self._block_handle()
        heads = frozenset({"chain", "set", "map", "flowtable", "counter", "quota", "ct", "limit",
                           "secmark", "synproxy"})
        while True:
            statement = self._statement(heads)
            if statement is None:
                self._end_of_block(f"table {family} {name}", line)
                return
            tokens, sline, _handle, opens = statement
            head = tokens[0]
            if opens and head == "chain" and len(tokens) >= 2:
                chain = table.chains.get(tokens[1]) or IrChain(tokens[1], sline)
                chain.handle = self._block_handle() or chain.handle
                table.chains[tokens[1]] = chain
                self._chain_body(table, chain)
                self._end_of_block(f"chain {tokens[1]}", sline)
            elif opens and head in ("set", "map") and len(tokens) >= 2:
                set_handle = self._block_handle()
                body: list[list[str]] = []
                while (inner := self._statement(frozenset())) is not None:
                    body.append(inner[0])
                self._end_of_block(f"{head} {tokens[1]}", sline)
                table.sets[tokens[1]] = self._set(tokens[1], head == "map", body, sline, set_handle)
            elif opens:
                self._skip_block()      # flowtables, named counters/quotas: no filtering verdict
            elif tokens == ["flags", "dormant"]:
                table.dormant = True
            else:
                self._unparsed(sline, tokens)

    def _chain_body(self, table: IrTable, chain: IrChain) -> None:
        run: RuleRun | None = None
        while True:
            if fastpath.SHAPES and self._at_line_start():
                line = self.line_no
                run = self._run_rules(chain, run)
                if self.line_no != line:
                    continue
            if run is not None:
                close_run(chain, run)
                run = None
            statement = self._statement(frozenset())
            if statement is None:
                return
            tokens, line, handle, _ = statement
            head = tokens[0]
            if head == "type" and "hook" in tokens:
                self._chain_spec(chain, tokens, line)
            elif head == "policy" and len(tokens) == 2:
                chain.policy = tokens[1]
            elif head in ("comment", "devices", "device"):
                continue
            else:
                chain.rules.append(self._rule(tokens, line, handle))

    def _chain_spec(self, chain: IrChain, tokens: list[str], line: int) -> None:
        try:
            chain.type = tokens[tokens.index("type") + 1]
            chain.hook = tokens[tokens.index("hook") + 1]
            if "device" in tokens:
                chain.device = tokens[tokens.index("device") + 1].strip('"')
            if "priority" in tokens:
                chain.priority = _priority(tokens[tokens.index("priority") + 1:])
        except (IndexError, ValueError) as e:
            raise ConfigError(f"cannot read the chain type/hook/priority ({e})", file=self.file,
                              line=line) from None
        if "policy" in tokens:
            chain.policy = tokens[tokens.index("policy") + 1]

    def _set(self, name: str, is_map: bool, body: list[list[str]], line: int, handle: int | None) -> NamedSet:
        declaration = _SetDeclaration(is_map)
        for tokens in body:
            read = _SET_STATEMENTS.get(tokens[0]) if tokens else None
            if read is not None:
                read(declaration, tokens)
        return NamedSet(name, declaration.keys, declaration.flags, declaration.elements, declaration.verdicts,
                        is_map, line, handle)

    def _command(self, tokens: list[str], line: int) -> None:
        """`add table|chain|set|element|rule ...` and `insert rule ...` (nft -f scripts)."""
        verb, what = tokens[0], tokens[1]
        rest = tokens[2:]
        family = "ip"
        if rest and rest[0] in ("ip", "ip6", "inet", "arp", "bridge", "netdev"):
            family, rest = rest[0], rest[1:]
        if what == "table" and rest:
            self.reading.table(family, rest[0], line)
        elif what == "chain" and len(rest) >= 2:
            table = self.reading.table(family, rest[0], line)
            chain = table.chains.setdefault(rest[1], IrChain(rest[1], line))
            spec = [t for t in rest[2:] if t not in ("{", "}")]
            if "hook" in spec:
                self._chain_spec(chain, spec, line)
        elif what in ("set", "map") and len(rest) >= 2 and "{" in rest:
            table = self.reading.table(family, rest[0], line)
            inner = rest[rest.index("{") + 1:-1]
            body = [list(part) for part in _split_on(inner, ";")]
            table.sets[rest[1]] = self._set(rest[1], what == "map", body, line, None)
        elif what == "element" and len(rest) >= 2:
            self._add_elements(self.reading.table(family, rest[0], line), rest, line)
        elif what == "rule" and len(rest) >= 2:
            self._add_rule(self.reading.table(family, rest[0], line), verb, rest, tokens, line)
        else:
            self._unparsed(line, tokens)

    def _add_elements(self, table: IrTable, rest: list[str], line: int) -> None:
        """`add element FAMILY TABLE SET { ... }` (`rest` from the table's name)."""
        target = table.sets.get(rest[1])
        if target is None:
            raise ConfigError(f"add element: set {rest[1]!r} is not declared before", file=self.file, line=line)
        for element in _elements(rest[2:]):
            key, verdict = _element_key_and_data(element)
            target.elements.append(key)
            if target.verdicts is not None:
                target.verdicts.append(verdict or ("unknown", None))

    def _add_rule(self, table: IrTable, verb: str, rest: list[str], tokens: list[str], line: int) -> None:
        """`add|insert rule FAMILY TABLE CHAIN [position N] ...` (`rest` from the table's name)."""
        chain = table.chains.get(rest[1])
        if chain is None:
            raise ConfigError(f"{verb} rule: chain {rest[1]!r} is not declared before", file=self.file, line=line)
        words = rest[2:]
        position = None
        if len(words) >= 2 and words[0] in ("position", "handle", "index"):
            position, words = words[:2], words[2:]
        rule = self._rule(words, line, None)
        if verb == "insert" and position is None:
            chain.rules.insert(0, rule)
        elif position is not None:
            self._unparsed(line, tokens)   # positions refer to handles of a running ruleset
        else:
            chain.rules.append(rule)

    def _rule(self, tokens: list[str], line: int, handle: int | None) -> IrRule:
        text = " ".join(tokens).replace(" ,", ",")
        statements, comment = _statements(tokens)
        return IrRule(statements, line, handle, text, comment)

