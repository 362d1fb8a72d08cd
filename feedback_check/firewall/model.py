"""The common rule model every firewall format is parsed into.

A `Ruleset` is chains of ordered rules with first-match semantics and a default policy, which is how
iptables, nftables, ufw, nginx (allow/deny), cloud security groups (allow-only, default deny) and
Azure NSGs (by priority) all behave. Formats with boolean logic (Apache `Require` blocks) compute their
admitted set and express it as rules. What a parser could not read is kept in `unparsed`; a match it
could not evaluate is kept on the rule in `unsupported`, so the verdict can say it is uncertain.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Protocol, TypeVar

from feedback_check.firewall.ipspace import AddressSet


class Action(str, enum.Enum):
    ACCEPT = "accept"
    DROP = "drop"
    REJECT = "reject"
    JUMP = "jump"          # evaluate `target`; on RETURN or its end, continue after this rule
    GOTO = "goto"          # evaluate `target`; on RETURN or its end, return from the current chain
    RETURN = "return"
    CONTINUE = "continue"  # non-terminating (LOG, counters, comments): matching goes on

    @property
    def terminal(self) -> bool:
        return self in (Action.ACCEPT, Action.DROP, Action.REJECT)


@dataclass(frozen=True)
class Origin:
    """Where a rule or an unparsed piece came from."""

    file: str
    line: int | None
    text: str = ""

    def __str__(self) -> str:
        return f"{self.file}:{self.line}" if self.line else self.file


@dataclass(frozen=True)
class PortSet:
    """Destination ports as closed intervals; `None` on a rule means any port."""

    ranges: tuple[tuple[int, int], ...]

    @classmethod
    def of(cls, *ports: int | tuple[int, int]) -> PortSet:
        return cls(tuple(p if isinstance(p, tuple) else (p, p) for p in ports))

    def __contains__(self, port: object) -> bool:
        return isinstance(port, int) and any(lo <= port <= hi for lo, hi in self.ranges)

    def __str__(self) -> str:
        return ",".join(f"{lo}" if lo == hi else f"{lo}:{hi}" for lo, hi in self.ranges)


#: What str.splitlines() splits on: a line's text ends at the first of these.
_LINE_END = re.compile("[\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")


class LineTexts(Protocol):
    """What rebuilds the text of a run's `index`-th line (a reader that did not keep the file's text)."""

    def text_of(self, index: int) -> str: ...


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class RuleLines:
    """The lines of a run of rules that differ only in their source, merged into one `Rule`.

    A ban list or allowlist of 100,000 lines becomes a few rules instead of 100,000: the rule's
    `source` is the union of the lines' sources, and this index keeps, per line in file order, its
    number and its own source interval (`family` 4 or 6), so that the line deciding an address (the
    first one holding it, as first-match does) is named exactly when asked (`split`). A line's text is
    cut from the file's text on demand (`offsets`: where each line starts) rather than kept per line.
    """

    file: str
    family: int
    numbers: Sequence[int]
    starts: Sequence[int]
    ends: Sequence[int]
    text: str = ""
    offsets: Sequence[int] | None = None
    texts: LineTexts | None = None     # instead of `text`/`offsets`: rebuilds a line's text on demand

    def __len__(self) -> int:
        return len(self.numbers)

    def __repr__(self) -> str:
        return f"RuleLines({self.file}:{self.numbers[0]}, {len(self)} lines)" if len(self) else "RuleLines()"

    def origin(self, index: int) -> Origin:
        """The origin (file, line, text) of the `index`-th line of the run."""
        text = ""
        if self.texts is not None:
            text = self.texts.text_of(index)
        elif self.offsets is not None:
            start = self.offsets[index]
            end = _LINE_END.search(self.text, start)
            text = self.text[start:end.start() if end else len(self.text)].strip()
        return Origin(self.file, self.numbers[index], text)

    def split(self, addresses: AddressSet) -> list[tuple[Origin, AddressSet]]:
        """`addresses` (part of the merged rule's source) split by the line that matches each address
        first, in line order; lines that match none of them are left out."""
        intervals = addresses.v4 if self.family == 4 else addresses.v6
        if not intervals:
            return []
        low, high = intervals[0][0], intervals[-1][1]
        starts, ends = self.starts, self.ends
        touching = [i for i, start in enumerate(starts) if start <= high and ends[i] >= low]
        by_start = sorted(touching, key=starts.__getitem__)
        if all(starts[b] > ends[a] for a, b in pairwise(by_start)):
            # Lines that do not overlap (a ban list) never compete for an address: each takes its own part.
            pieces = ((i, addresses.within(self.family, starts[i], ends[i])) for i in touching)
            return [(self.origin(i), piece) for i, piece in pieces if piece]
        out: list[tuple[Origin, AddressSet]] = []
        rest = addresses
        for index in touching:
            taken = rest.within(self.family, starts[index], ends[index])
            if taken:
                out.append((self.origin(index), taken))
                rest = rest - taken
                if not rest:
                    break
        return out


class AssumptionKind(str, enum.Enum):
    """What a rule's verdict was decided under (see firewall/connection.py)."""

    RATE_LIMIT = "rate-limit"       # one post-sale request stays under the rule's rate limit
    INTERFACE = "interface"         # PostFinance's traffic arrives on the rule's input interface


@dataclass(frozen=True, slots=True)
class Assumption:
    """A condition evaluated under a documented assumption: its kind and the rule's own words."""

    kind: AssumptionKind
    text: str

    def __str__(self) -> str:
        return f"{self.kind.value}: {self.text}"


@dataclass(frozen=True)
class Rule:
    """One rule. A rule matches a new TCP connection to the feedback port from `source` when every
    condition below holds; `unsupported` lists conditions the analyser cannot evaluate."""

    action: Action
    origin: Origin
    source: AddressSet = field(default_factory=AddressSet.everything)
    protocols: frozenset[str] | None = None     # None: any protocol; e.g. {"tcp"}
    ports: PortSet | None = None                # destination ports; None: any
    target: str | None = None                   # chain for JUMP / GOTO
    new_connections: bool = True                # False: matches only ESTABLISHED/RELATED traffic
    interface: str | None = None                # input interface, reported only
    destination: AddressSet | None = None       # reported only: the server's own address is unknown
    unsupported: tuple[str, ...] = ()           # e.g. ("-m geoip",)
    note: str = ""
    # A condition evaluated under a documented assumption (e.g. "a post-sale request stays under a rate
    # limit"): the evaluator reports where such a rule decides; `assumed_match` is the assumed outcome.
    assumption: Assumption | None = None
    assumed_match: bool = True
    # A run of lines that differ only in their source, merged into this rule (`origin` is the first
    # line): which line decides which address. None: the rule is one line.
    lines: RuleLines | None = None

    def applies_to(self, port: int, protocol: str = "tcp") -> bool:
        """Whether the rule can match a new connection to `port` at all (ignoring the source)."""
        if not self.new_connections:
            return False
        if self.protocols is not None and protocol not in self.protocols:
            return False
        return self.ports is None or port in self.ports


@dataclass(frozen=True)
class Chain:
    name: str
    rules: tuple[Rule, ...]
    policy: Action | None = None                # base chains: ACCEPT or DROP; user chains: None (return)
    origin: Origin | None = None
    # Entry chains that see one address family only (iptables vs ip6tables, nftables `ip`/`ip6` tables):
    # 4 or 6. Addresses of the other family do not traverse the chain. None: both families.
    family: int | None = None


class FixContext:
    """What a format's `fix_lines` needs beyond the rules, left by its parser (one frozen dataclass per
    format, e.g. `iptables.IptablesFix`): read back with `Ruleset.fix_context(kind)`."""

    __slots__ = ()


F = TypeVar("F", bound=FixContext)


@dataclass(frozen=True)
class Ruleset:
    """One layer's rules. `entry` lists the base chains a new connection traverses, in order; it gets
    through only if every one of them accepts it (nftables: several base chains on the input hook)."""

    format: str
    file: str
    chains: dict[str, Chain]
    entry: tuple[str, ...]
    unparsed: tuple[Origin, ...] = ()
    notes: tuple[str, ...] = ()
    # What the format's fix generator needs (e.g. nginx location, ufw rule numbers, security-group id).
    fix: FixContext | None = None

    def fix_context(self, kind: type[F]) -> F:
        """The typed fix context this ruleset's parser left (`kind`; its defaults when the parser left
        none); TypeError for a context of another format."""
        if self.fix is None:
            return kind()
        if not isinstance(self.fix, kind):
            raise TypeError(f"{self.file}: a {self.format} ruleset with a {type(self.fix).__name__}, "
                            f"not a {kind.__name__}")
        return self.fix
