"""The intermediate form both readers produce: tables, chains, named sets, and rules as statements
whose values are text atoms (``185.8.52.0/22``, ``1000-2000``, ``@allowlist``)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from feedback_check.firewall.model import Action, Origin
from feedback_check.firewall.nftables import fastpath
from feedback_check.firewall.runs import Run

NAME = "nftables"

#: Families whose input hook filters traffic to this host. netdev/bridge/arp are ignored (noted).
FILTER_FAMILIES = ("ip", "ip6", "inet")
#: Hooks every packet to a local socket crosses, in order.
ENTRY_HOOKS = ("prerouting", "input")
PRIORITY_NAMES = {"raw": -300, "mangle": -150, "dstnat": -100, "filter": 0, "security": 50, "srcnat": 100}
VERDICTS = {"accept": Action.ACCEPT, "drop": Action.DROP, "reject": Action.REJECT, "return": Action.RETURN,
            "continue": Action.CONTINUE, "jump": Action.JUMP, "goto": Action.GOTO}
# First words of two-word selectors, and selectors usable as a single word.
SELECTOR_HEADS = {"ip", "ip6", "tcp", "udp", "th", "sctp", "dccp", "udplite", "meta", "ct", "icmp", "icmpv6",
                  "ether", "vlan", "arp", "fib", "rt", "socket", "osf", "ipsec", "ah", "esp", "comp",
                  "igmp", "gre", "dst", "hbh", "frag", "rthdr", "mh", "exthdr", "tcpopt", "ipopt", "numgen",
                  "jhash", "symhash"}
SINGLE_SELECTORS = {"iif", "iifname", "oif", "oifname", "l4proto", "nfproto", "pkttype", "mark", "skuid",
                    "skgid", "priority", "length", "protocol", "iiftype", "oiftype", "cpu", "cgroup",
                    "iifgroup", "oifgroup", "random", "secpath", "ibrname", "obrname", "time", "day", "hour",
                    "nftrace"}
OPERATORS = {"==": "==", "eq": "==", "!=": "!=", "ne": "!=", "<": "<", "lt": "<", ">": ">", "gt": ">",
             "<=": "<=", "le": "<=", ">=": ">=", "ge": ">="}

# The intermediate form shared by the text and JSON readers.


@dataclass(frozen=True)
class Match:
    """`keys` (one, or several for a concatenation) compared with a value: `elements` (each a tuple
    of text atoms, one per key) or a named set `ref`."""

    keys: tuple[str, ...]
    op: str
    elements: tuple[tuple[str, ...], ...] = ()
    ref: str | None = None


@dataclass(frozen=True)
class VerdictMap:
    """`keys vmap { element : verdict, ... }` or `keys vmap @map`."""

    keys: tuple[str, ...]
    entries: tuple[tuple[tuple[str, ...], tuple[str, str | None]], ...] = ()
    ref: str | None = None


@dataclass(frozen=True)
class Verdict:
    kind: str                   # accept drop reject return continue jump goto
    target: str | None = None


@dataclass(frozen=True)
class Unsupported:
    text: str


@dataclass(frozen=True)
class RateLimit:
    """`limit rate [over] 10/second [burst 5 packets]`: matches while under (or, with `over`, above)."""

    text: str
    over: bool


@dataclass(frozen=True)
class Neutral:
    """A statement that neither ends nor changes the evaluation (counter, log, mark setting)."""

    kind: str


Statement = Match | VerdictMap | Verdict | Unsupported | Neutral | RateLimit
PLAIN_VERDICTS = {kind: Verdict(kind) for kind in ("accept", "drop", "reject", "return", "continue")}


@dataclass
class NamedSet:
    name: str
    keys: tuple[str, ...]               # element types: ipv4_addr, inet_service, ... (or typeof keys)
    flags: tuple[str, ...]
    elements: list[tuple[str, ...]]
    verdicts: list[tuple[str, str | None]] | None   # maps to verdicts: one per element
    is_map: bool
    line: int | None
    handle: int | None


@dataclass
class IrRule:
    statements: list[Statement]
    line: int | None
    handle: int | None
    text: str
    comment: str = ""


class RuleRun(Run):
    """Consecutive rules of one chain of one shape, differing only in the single address of their source
    match (`ip|ip6 saddr A`): a ban list or an allowlist (see firewall/runs.py). `statements` are
    those of the first rule, `source` the index of its source match among them; each rule keeps its
    line number, its text (text form: `document[offsets[i]:stops[i]]`; JSON: `texts`), its handle and
    its source as written, so the model rule made of the run (`Rule.lines`) names the rule that decides."""

    __slots__ = ("comment", "document", "group_pick", "handles", "pattern", "source", "source_group",
                 "statements", "texts", "values")

    def __init__(self, shape: object, family: int, statements: list[Statement], source: int,
                 document: str | None, comment: str = "") -> None:
        super().__init__(shape, family)
        self.statements = statements
        self.source = source
        self.comment = comment
        self.document = document
        self.values: object = None          # text form: the values of the shape the rules share
        self.pattern: re.Pattern[str] | None = None   # text form: reads the next rule of the shape whole
        self.group_pick: Callable[[Sequence[str]], object] | None = None
        self.source_group = 0
        self.texts: list[str] = []
        self.handles: list[Any] = []

    def __len__(self) -> int:
        return len(self.handles)

    @property
    def line(self) -> int | None:
        return self.numbers[0] if self.document is not None else None

    @property
    def handle(self) -> Any:
        return self.handles[0]

    @property
    def text(self) -> str:
        return self.rule_text(0)

    def rule_text(self, index: int) -> str:
        if self.document is None:
            return self.texts[index]
        start = self.offsets[index]
        end = self.document.find("\n", start)
        line = self.document[start:end if end >= 0 else len(self.document)]
        if self.handles[index] is not None:
            line = line[:line.rindex("#")]
        return line.strip()

    def rule_statements(self, index: int) -> list[Statement]:
        """The statements of rule `index`: the first rule's, with that rule's own source."""
        statements = list(self.statements)
        match = statements[self.source]
        assert isinstance(match, Match)
        statements[self.source] = Match(match.keys, match.op, ((self.sources[index],),))
        return statements

    def rules(self) -> list[IrRule]:
        """The run as one rule per rule."""
        return [IrRule(self.rule_statements(i), self.numbers[i] if self.document is not None else None,
                       self.handles[i], self.rule_text(i), self.comment)
                for i in range(len(self))]


def close_run(chain: IrChain, run: RuleRun) -> None:
    """A finished run into its chain: as a run when long enough (`fastpath.MERGE_MIN`), else rule by rule."""
    if len(run) >= fastpath.MERGE_MIN:
        chain.rules.append(run)
    else:
        chain.rules.extend(run.rules())


@dataclass
class IrChain:
    name: str
    line: int | None
    handle: int | None = None
    type: str | None = None
    hook: str | None = None
    priority: int = 0
    policy: str | None = None
    rules: list[IrRule | RuleRun] = field(default_factory=list)
    device: str | None = None


@dataclass
class IrTable:
    family: str
    name: str
    line: int | None
    chains: dict[str, IrChain] = field(default_factory=dict)
    sets: dict[str, NamedSet] = field(default_factory=dict)
    dormant: bool = False


@dataclass
class Reading:
    """What a reader produced: tables in file order, plus what it could not read."""

    file: str
    tables: dict[tuple[str, str], IrTable] = field(default_factory=dict)
    unparsed: list[Origin] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def table(self, family: str, name: str, line: int | None) -> IrTable:
        key = (family, name)
        if key not in self.tables:
            self.tables[key] = IrTable(family, name, line)
        return self.tables[key]
def render_keys(keys: Sequence[str]) -> str:
    return " . ".join(keys)


def render_element(element: Sequence[str]) -> str:
    return " . ".join(element)


def render(statements: Iterable[Any]) -> str:
    """nft-like text of JSON-read statements, for reports."""
    parts = []
    for s in statements:
        if isinstance(s, Match):
            ops = "" if s.op == "==" else s.op + " "
            if s.ref:
                value = "@" + s.ref
            elif len(s.elements) == 1:
                value = render_element(s.elements[0])
            else:
                value = "{ " + ", ".join(render_element(e) for e in s.elements) + " }"
            parts.append(f"{render_keys(s.keys)} {ops}{value}")
        elif isinstance(s, VerdictMap):
            value = "@" + s.ref if s.ref else "{ " + ", ".join(
                f"{render_element(k)} : {' '.join(x for x in v if x)}" for k, v in s.entries) + " }"
            parts.append(f"{render_keys(s.keys)} vmap {value}")
        elif isinstance(s, Verdict):
            parts.append(f"{s.kind} {s.target}" if s.target else s.kind)
        elif isinstance(s, Unsupported):
            parts.append(s.text)
    return " ".join(parts)


