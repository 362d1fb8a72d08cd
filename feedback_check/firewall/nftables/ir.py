"""The intermediate form both readers produce: tables, chains, named sets, and rules as statements
whose values are text atoms (``185.8.52.0/22``, ``1000-2000``, ``@allowlist``)."""

from __future__ import annotations

import re
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from feedback_check.firewall.model import Action, Origin

NAME = "nftables"

#: Families whose input hook filters traffic to this host. netdev/bridge/arp are ignored (noted).
FILTER_FAMILIES = ("ip", "ip6", "inet")
#: Hooks every packet to a local socket crosses, in order.
ENTRY_HOOKS = ("prerouting", "input")
PRIORITY_NAMES = {"raw": -300, "mangle": -150, "dstnat": -100, "filter": 0, "security": 50, "srcnat": 100}
ALL_PORTS = (0, 65535)
VERDICTS = {"accept": Action.ACCEPT, "drop": Action.DROP, "reject": Action.REJECT, "return": Action.RETURN,
            "continue": Action.CONTINUE, "jump": Action.JUMP, "goto": Action.GOTO}
TRANSPORT_PROTOCOLS = {"tcp": "tcp", "udp": "udp", "sctp": "sctp", "dccp": "dccp", "udplite": "udplite"}
PROTOCOL_NUMBERS = {"1": "icmp", "6": "tcp", "17": "udp", "58": "ipv6-icmp", "132": "sctp", "33": "dccp",
                    "136": "udplite", "47": "gre", "50": "esp", "51": "ah", "4": "ipip", "41": "ipv6"}
PROTOCOL_ALIASES = {"icmpv6": "ipv6-icmp"}
SERVICE_PORTS = {"http": 80, "https": 443, "ssh": 22, "smtp": 25, "domain": 53, "ftp": 21, "telnet": 23,
                 "pop3": 110, "imap": 143, "imap2": 143, "submission": 587, "submissions": 465, "smtps": 465,
                 "imaps": 993, "pop3s": 995, "http-alt": 8080, "webcache": 8080, "ntp": 123, "snmp": 161,
                 "ldap": 389, "ldaps": 636, "mysql": 3306, "postgresql": 5432, "rsync": 873,
                 "microsoft-ds": 445, "ms-wbt-server": 3389, "bgp": 179, "domain-s": 853}

#: Header selectors that imply their protocol (`icmp type ...` never matches a TCP connection).
TRANSPORT_HEADERS = {"tcp": "tcp", "udp": "udp", "sctp": "sctp", "dccp": "dccp", "udplite": "udplite",
                     "icmp": "icmp", "icmpv6": "ipv6-icmp", "igmp": "igmp", "esp": "esp", "ah": "ah"}
# Keys (selectors) the interpreter understands, by kind.
ADDRESS_KEYS = {"ip saddr": 4, "ip6 saddr": 6}
DESTINATION_KEYS = {"ip daddr": 4, "ip6 daddr": 6}
PORT_KEYS = {"tcp dport": "tcp", "udp dport": "udp", "sctp dport": "sctp", "dccp dport": "dccp",
             "udplite dport": "udplite", "th dport": None}
PROTOCOL_KEYS = {"meta l4proto": None, "l4proto": None, "ip protocol": 4, "ip6 nexthdr": 6}
NFPROTO_KEYS = {"meta nfproto", "nfproto"}
CTSTATE_KEYS = {"ct state"}
INTERFACE_KEYS = {"iif", "iifname", "meta iif", "meta iifname"}
PKTTYPE_KEYS = {"pkttype", "meta pkttype"}
FAMILY_OF_KEY_PROTOCOL = {"ip": 4, "ip6": 6, "icmp": 4, "icmpv6": 6}
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
# Statements that never end or change the evaluation of a rule.
NEUTRAL_STATEMENTS = {"counter", "log", "comment", "notrack", "nftrace"}

_STATE_ATOM = re.compile(r"[a-z]+")
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
_PLAIN_VERDICTS = {kind: Verdict(kind) for kind in ("accept", "drop", "reject", "return", "continue")}


@dataclass
class _Set:
    name: str
    keys: tuple[str, ...]               # element types: ipv4_addr, inet_service, ... (or typeof keys)
    flags: tuple[str, ...]
    elements: list[tuple[str, ...]]
    verdicts: list[tuple[str, str | None]] | None   # maps to verdicts: one per element
    is_map: bool
    line: int | None
    handle: int | None


@dataclass(frozen=True)
class _Simple:
    """The common rule shape `[ip|ip6 saddr [!=] A] [tcp dport P] [counter|log ...] verdict`, read
    without the general machinery (large rulesets are mostly made of it)."""

    version: int | None
    sources: tuple[str, ...] | None
    negated: bool
    ports: tuple[str, ...] | None
    verdict: Verdict


@dataclass
class _Rule:
    statements: list[Statement]
    line: int | None
    handle: int | None
    text: str
    comment: str = ""
    simple: _Simple | None = None


#: Runs of at least this many lines are merged into one model rule (`_Run`); shorter ones, as in
#: hand-written rulesets, stay one model rule per line.
MERGE_MIN = 16


class _Run:
    """Consecutive rules `ip|ip6 saddr A [tcp dport P] [counter ...] verdict` that differ only in their
    one source A: a ban list or an allowlist. Read without a `_Rule` per rule; each keeps its line
    number, its text (text form: where it is in `document`; JSON: `texts`), its handle and its source,
    so the model rule made of the run (`Rule.lines`) names the rule that decides."""

    __slots__ = ("atoms", "document", "handles", "key", "numbers", "ports", "starts", "stops", "texts",
                 "verdict", "version")

    def __init__(self, key: tuple[str | None, ...], version: int, ports: tuple[str, ...] | None,
                 verdict: Verdict, document: str | None) -> None:
        self.key = key
        self.version = version
        self.ports = ports
        self.verdict = verdict
        self.document = document            # text form: rule i is document[starts[i]:stops[i]]
        self.numbers = array("q")           # text form: line numbers
        self.starts = array("q")
        self.stops = array("q")
        self.texts: list[str] = []          # JSON form: each rule's text
        self.handles: list[Any] = []
        self.atoms: list[str] = []

    def __len__(self) -> int:
        return len(self.atoms)

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
        return self.document[self.starts[index]:self.stops[index]]

    def rules(self) -> list[_Rule]:
        """The run as one `_Rule` per rule."""
        return [_Rule([], self.numbers[i] if self.document is not None else None, self.handles[i],
                      self.rule_text(i), "", _Simple(self.version, (self.atoms[i],), False, self.ports,
                                                     self.verdict))
                for i in range(len(self))]


def _close_run(chain: _Chain, run: _Run) -> None:
    """A finished run into its chain: as a run when long enough (`MERGE_MIN`), else rule by rule."""
    if len(run) >= MERGE_MIN:
        chain.rules.append(run)
    else:
        chain.rules.extend(run.rules())


@dataclass
class _Chain:
    name: str
    line: int | None
    handle: int | None = None
    type: str | None = None
    hook: str | None = None
    priority: int = 0
    policy: str | None = None
    rules: list[_Rule | _Run] = field(default_factory=list)
    device: str | None = None


@dataclass
class _Table:
    family: str
    name: str
    line: int | None
    chains: dict[str, _Chain] = field(default_factory=dict)
    sets: dict[str, _Set] = field(default_factory=dict)
    dormant: bool = False


@dataclass
class _Reading:
    """What a reader produced: tables in file order, plus what it could not read."""

    file: str
    tables: dict[tuple[str, str], _Table] = field(default_factory=dict)
    unparsed: list[Origin] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def table(self, family: str, name: str, line: int | None) -> _Table:
        key = (family, name)
        if key not in self.tables:
            self.tables[key] = _Table(family, name, line)
        return self.tables[key]
def _render_keys(keys: Sequence[str]) -> str:
    return " . ".join(keys)


def _render_element(element: Sequence[str]) -> str:
    return " . ".join(element)


def _render(statements: Iterable[Any]) -> str:
    """nft-like text of JSON-read statements, for reports."""
    parts = []
    for s in statements:
        if isinstance(s, Match):
            ops = "" if s.op == "==" else s.op + " "
            if s.ref:
                value = "@" + s.ref
            elif len(s.elements) == 1:
                value = _render_element(s.elements[0])
            else:
                value = "{ " + ", ".join(_render_element(e) for e in s.elements) + " }"
            parts.append(f"{_render_keys(s.keys)} {ops}{value}")
        elif isinstance(s, VerdictMap):
            value = "@" + s.ref if s.ref else "{ " + ", ".join(
                f"{_render_element(k)} : {' '.join(x for x in v if x)}" for k, v in s.entries) + " }"
            parts.append(f"{_render_keys(s.keys)} vmap {value}")
        elif isinstance(s, Verdict):
            parts.append(f"{s.kind} {s.target}" if s.target else s.kind)
        elif isinstance(s, Unsupported):
            parts.append(s.text)
    return " ".join(parts)


