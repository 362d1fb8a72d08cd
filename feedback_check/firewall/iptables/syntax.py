"""Reading an iptables-save / iptables -S dump: tables, chains, and rule lines as written (`_RawRule`, rule.py),
consecutive lines of one shape that differ only in `-s` kept as runs (firewall/runs.py)."""

from __future__ import annotations

import re
import socket
import struct
import sys
from array import array
from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import accumulate
from operator import itemgetter
from typing import NamedTuple

from feedback_check.errors import ConfigError
from feedback_check.firewall.ipspace import AddressSet
from feedback_check.firewall.iptables.rule import _address, _addresses, _parse_rule, _RawRule, _Unreadable
from feedback_check.firewall.model import (
    Action,
    Origin,
)
from feedback_check.firewall.runs import Run

BUILTIN_CHAINS = {"INPUT", "FORWARD", "OUTPUT", "PREROUTING", "POSTROUTING"}
TERMINAL_TARGETS = {"ACCEPT": Action.ACCEPT, "DROP": Action.DROP, "REJECT": Action.REJECT,
                    "TARPIT": Action.DROP, "RETURN": Action.RETURN}
CONTINUE_TARGETS = {"LOG", "NFLOG", "ULOG", "MARK", "CONNMARK", "CT", "TRACE", "AUDIT", "SET", "TCPMSS",
                    "CLASSIFY", "DSCP", "TOS", "TTL", "HL", "NOTRACK", "CHECKSUM", "SECMARK",
                    "CONNSECMARK", "IDLETIMER", "LED", "RATEEST", "TEE", "SYNPROXY"}
_NEVER_DESTINATIONS = AddressSet.from_specs(["127.0.0.0/8", "224.0.0.0/3", "0.0.0.0/8", "::1/128",
                                             "ff00::/8"])
_EVERYTHING = AddressSet.everything()
_HEADER_V6 = re.compile(r"ip6tables")
_COUNTERS = re.compile(r"^\[\d+:\d+\]\s*")


class _Line(NamedTuple):
    """One `-A` line: the parsed rule (shared by every line that differs only in `-s`) and the line's own
    source, number and text. Ban lists and allowlists of 100,000 lines parse their shape once."""

    template: _RawRule
    source: AddressSet | None          # the line's `-s` when it was split off the template
    negated: bool
    line: int
    number: int                        # position in its chain, as `iptables -I CHAIN n` counts
    text: str


class _Run(Run):
    """Consecutive lines of one chain that differ only in a plain `-s` (one address, CIDR or range of
    one family, not negated): a ban list or an allowlist (firewall/runs.py). The shape is the rule
    without its `-s` (`template`); `number` is the first line's position in its chain, `rest` the text
    after `-s SOURCE` as matched.

    Sources are converted into the interval arrays a block at a time as they are read (`flush`: IPv4
    in bulk), and kept as written only compactly (`written`: one string per block, with where each
    source ends in it), so a line's text is rebuilt on demand (`text_of`) from `-A CHAIN -s SOURCE
    REST` (every line of a run is exactly that: `_WITH_SOURCE`) instead of keeping the file's text."""

    __slots__ = ("chain", "file", "number", "problem", "rest", "written")

    def __init__(self, template: _RawRule, family: int, number: int, chain: str, rest: str | None = None,
                 file: str = "") -> None:
        super().__init__(template, family)
        self.number = number
        self.rest = rest
        self.chain = chain
        self.file = file
        # per block: (index of its first source, count, the sources joined and where each ends) or, when
        # each is spelled exactly `inet_ntoa(first)` + a common suffix ("/32" or ""), (index, count, suffix, None)
        self.written: list[tuple[int, int, str, array[int] | None]] = []
        self.problem: ConfigError | None = None                # the first unreadable source, if any

    @property
    def template(self) -> _RawRule:
        assert isinstance(self.shape, _RawRule)
        return self.shape

    def add(self, number: int, source: str) -> None:
        """One more line of the run: its number and its source as written."""
        self.numbers.append(number)
        sources = self.sources
        sources.append(source)
        if len(sources) >= _BLOCK:
            self.flush()

    def flush(self) -> None:
        """Convert the pending sources into the interval arrays and keep them as written. An unreadable
        source is kept as the run's `problem` (raised once the whole file was read, the earliest of
        every run's: as if each line had been read in order) and the run converts nothing further."""
        pending = self.sources
        if not pending:
            return
        start = len(self) - len(pending)
        if self.problem is None:
            try:
                self.convert(_source_reader(self, self.file))
            except ConfigError as e:
                self.problem = e
        self.sources = []
        count = len(pending)
        if self.family == 4 and len(self.firsts) == start + count:
            suffix = _canonical_suffix(pending, self.firsts[start:])
            if suffix is not None:       # iptables-save's own spelling: rebuilt from the interval
                self.written.append((start, count, suffix, None))
                return
        self.written.append((start, count, "".join(pending), array("I", accumulate(map(len, pending)))))

    def source_of(self, index: int) -> str:
        """The `index`-th line's source as written."""
        written = self.written
        block = bisect_right(written, index, key=itemgetter(0)) - 1
        if block < 0 or index - written[block][0] >= written[block][1]:
            pending = self.sources
            return pending[index - (len(self) - len(pending))]
        first, _, joined, ends = written[block]
        if ends is None:
            return socket.inet_ntoa(struct.pack("!I", self.firsts[index])) + joined
        at = index - first
        return joined[ends[at - 1] if at else 0:ends[at]]

    def text_of(self, index: int) -> str:
        rest = self.rest
        source = self.source_of(index)
        return f"-A {self.chain} -s {source} {rest}" if rest is not None else f"-A {self.chain} -s {source}"

    def expand(self) -> Iterator[_Line]:
        """The run as one _Line per line (for rules that cannot be merged, e.g. jumps)."""
        for index, (first, last) in enumerate(zip(self.firsts, self.lasts)):
            interval = ((first, last),)
            source = AddressSet(v4=interval) if self.family == 4 else AddressSet(v6=interval)
            yield _Line(self.template, source, False, self.numbers[index], self.number + index,
                        self.text_of(index))


def _canonical_suffix(sources: list[str], firsts: Sequence[int]) -> str | None:
    """"/32" or "" when every source is written as the dotted quad of its interval's first address plus
    that suffix (iptables-save writes single addresses `a.b.c.d/32`), so nothing needs keeping; else None.
    One comparison of joined strings, built in C-level loops."""
    suffix = "/32" if sources[-1].endswith("/32") else ""
    values = array("I", firsts)
    if sys.byteorder == "little":
        values.byteswap()
    dotted = map(socket.inet_ntoa, map(itemgetter(0), struct.iter_unpack("4s", values.tobytes())))
    return suffix if (suffix + "\n").join(dotted) + suffix == "\n".join(sources) else None


#: Sources a run converts at once (and keeps as one string): large enough for the bulk conversion to
#: pay, small enough that the pending ones stay a small part of the memory.
_BLOCK = 4096


#: `-A CHAIN [!] -s SOURCE REST`: iptables-save writes the source first; the rest is the shape.
_WITH_SOURCE = re.compile(r"^-A (\S+) (! )?-s (\S+)(?: (.*))?$")


@dataclass
class _Table:
    """One `*table ... COMMIT` block (or an `iptables -S` listing) of one family."""

    name: str
    family: int | None
    chains: dict[str, tuple[Action | None, int]] = field(default_factory=dict)   # policy, line
    rules: dict[str, list[_Line | _Run]] = field(default_factory=dict)
    start_line: int = 0
    header_family: int | None = None
    counts: dict[str, int] = field(default_factory=dict)      # -A lines per chain so far
    open_runs: dict[str, _Run] = field(default_factory=dict)  # chain -> its IPv4 run, while it is its last item

    def position(self, chain: str) -> int:
        """Count one more line of `chain`: its position in the chain, as `iptables -I CHAIN n` counts."""
        position = self.counts[chain] = self.counts.get(chain, 0) + 1
        return position


# --------------------------------------------------------------------------------------------------
# reading the text


def _tables(lines: Iterable[tuple[int, str]], file: str) -> tuple[list[_Table], list[Origin]]:
    """The dump's tables from its (number, line) pairs, read once, in order (`inputfile.iter_lines`)."""
    tables: list[_Table] = []
    runs: list[_Run] = []
    try:
        unparsed = _read(lines, file, tables, runs)
    finally:
        # The runs' sources are converted even when reading failed: an unreadable address on an
        # earlier line is the error to report, as if every line had been read in order.
        problems: list[ConfigError] = []
        for run in runs:
            run.flush()
            if run.problem is not None:
                problems.append(run.problem)
        if problems:
            raise min(problems, key=lambda e: e.line or 0)
    return tables, unparsed


def _source_reader(run: _Run, file: str) -> Callable[[int, str], tuple[int, int]]:
    """How `run.convert` reads one source when the bulk conversion cannot: a ConfigError names its line.
    (Without a ":" an address that reads at all reads as IPv4: ipaddress needs ":" for IPv6.)"""
    def read(index: int, value: str) -> tuple[int, int]:
        return _address(value, file, run.numbers[index])[1]
    return read


def _read(lines: Iterable[tuple[int, str]], file: str, tables: list[_Table], runs: list[_Run]) -> list[Origin]:
    reader = _DumpReader(file, tables, runs)
    current: _Table | None = None
    for number, raw in lines:
        line = raw.strip()
        if not line:
            continue
        if current is not None and line.startswith("-A "):
            fast = _WITH_SOURCE.match(line)
            if fast is not None:
                chain, negation, source_text, rest = fast.groups()
                run = current.open_runs.get(chain)
                if run is not None and run.rest == rest and negation is None and "," not in source_text \
                        and ":" not in source_text:
                    # the next line of a ban list: nothing to look up
                    current.counts[chain] += 1
                    run.add(number, source_text)
                    continue
                reader.sourced(current, line, number, chain, negation, source_text, rest)
                continue
        reader.statement(line, number)
        current = reader.current
    return reader.unparsed


class _DumpReader:
    """The state of `_read` between lines: the table being read, the shapes parsed so far (a rule line
    without its `-s`, parsed once), and what could not be read."""

    def __init__(self, file: str, tables: list[_Table], runs: list[_Run]) -> None:
        self.file = file
        self.tables = tables
        self.runs = runs
        self.unparsed: list[Origin] = []
        self.current: _Table | None = None
        self.header_family: int | None = None
        self.listing: _Table | None = None            # iptables -S output (no *table header)
        self.shapes: dict[tuple[str, str], _RawRule | None] = {}

    def sourced(self, current: _Table, line: str, number: int, chain: str, negation: str | None,
                source_text: str, rest: str | None) -> None:
        """An `-A CHAIN [!] -s SOURCE REST` line that does not continue its chain's open run: its shape
        parsed once, the line added to a run of its shape (or as a line of its own)."""
        file = self.file
        key = (chain, rest or "")
        template = self.shapes.get(key, _UNSEEN)
        if template is _UNSEEN:
            try:
                template = self.shapes[key] = _parse_rule(f"-A {chain} {rest or ''}".strip(), number, file)
            except _Unreadable:
                template = self.shapes[key] = None
        if template is None:
            self.unparsed.append(Origin(file, number, line))
            return
        if chain not in current.chains:
            current.chains[chain] = (None, number)
        chain_rules = current.rules.get(chain)
        if chain_rules is None:
            chain_rules = current.rules[chain] = []
        position = current.position(chain)
        _close(current, chain)
        if negation is not None or "," in source_text:
            if chain_rules and isinstance(chain_rules[-1], _Run):
                chain_rules[-1].flush()
            chain_rules.append(_Line(template, _addresses(source_text, file, number),
                                     negation is not None, number, position, line))
            return
        last = chain_rules[-1] if chain_rules else None
        family = 6 if ":" in source_text else 4
        if isinstance(last, _Run) and last.shape is template and last.family == family:
            run = last
        else:
            if isinstance(last, _Run):
                last.flush()
            run = _Run(template, family, position, chain, rest, file)
            self.runs.append(run)
            chain_rules.append(run)
        run.add(number, source_text)
        if family == 4:
            current.open_runs[chain] = run

    def statement(self, line: str, number: int) -> None:
        """Any other line: a comment or header, `*table`, COMMIT, a chain declaration or policy, a rule."""
        if line.startswith("#"):
            if "Generated by" in line or "Completed on" in line:
                self.header_family = 6 if _HEADER_V6.search(line) else 4
                if "Generated by" in line:
                    self.listing = None
            return
        if line.startswith("*"):
            self.current = _Table(line[1:].strip(), None, start_line=number, header_family=self.header_family)
            self.tables.append(self.current)
            self.listing = None
            return
        if line == "COMMIT":
            if self.current is not None:
                for run in self.current.open_runs.values():
                    run.flush()
                self.current.open_runs.clear()
            self.current = None
            return
        line = _COUNTERS.sub("", line)
        table = self.current
        if table is None:
            # iptables -S output: a new `-P INPUT` after rules starts the next family's listing.
            if self.listing is None or (line.startswith("-P INPUT") and any(self.listing.rules.values())):
                self.listing = _Table("filter", None, start_line=number, header_family=self.header_family)
                self.tables.append(self.listing)
            table = self.listing
        if not self._declaration(table, line, number):
            self.unparsed.append(Origin(self.file, number, line))

    def _declaration(self, table: _Table, line: str, number: int) -> bool:
        """`:CHAIN POLICY`, `-P`, `-N` or `-A` into `table`; False when the line is none of them (or is
        not readable as one)."""
        file = self.file
        if line.startswith(":"):
            parts = line[1:].split()
            if len(parts) < 2:
                return False
            table.chains[parts[0]] = (_policy(parts[1], file, number), number)
            table.rules.setdefault(parts[0], [])
        elif line.startswith(("-P ", "--policy ")):
            parts = line.split()
            if len(parts) != 3:
                return False
            table.chains[parts[1]] = (_policy(parts[2], file, number), number)
            table.rules.setdefault(parts[1], [])
        elif line.startswith(("-N ", "--new-chain ")):
            parts = line.split()
            if len(parts) != 2:
                return False
            table.chains.setdefault(parts[1], (None, number))
            table.rules.setdefault(parts[1], [])
        elif line.startswith(("-A ", "--append ")):
            try:
                rule = _parse_rule(line, number, file)
            except _Unreadable:
                return False
            position = table.position(rule.chain)
            _close(table, rule.chain)
            chain_rules = table.rules.setdefault(rule.chain, [])
            if chain_rules and isinstance(chain_rules[-1], _Run):
                chain_rules[-1].flush()
            chain_rules.append(_Line(rule, None, False, number, position, line))
            if rule.chain not in table.chains:
                table.chains[rule.chain] = (None, number)
        else:
            return False
        return True


_UNSEEN = _RawRule("", 0, "", 0)       # shapes: not parsed yet


def _close(table: _Table, chain: str) -> None:
    """`chain`'s open run, if any, is not continued by the next line: its pending sources are converted."""
    run = table.open_runs.pop(chain, None)
    if run is not None:
        run.flush()


def _policy(word: str, file: str, line: int) -> Action | None:
    if word == "-":
        return None
    if word in ("ACCEPT", "DROP"):
        return Action(word.lower())
    raise ConfigError(f"chain policy must be ACCEPT or DROP, not {word!r}", file=file, line=line)
