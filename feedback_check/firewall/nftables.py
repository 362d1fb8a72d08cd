"""nftables: `nft list ruleset` text (also `nft -a`, and `/etc/nftables.conf` scripts) and
`nft -j list ruleset` JSON, parsed into the common rule model.

Both forms are first read into the same small intermediate form (tables, sets, chains, and rules as
lists of statements whose values are text atoms such as ``185.8.52.0/22``, ``1000-2000`` or
``@allowlist``); one interpreter then turns each rule into model rules for a new TCP connection:

* a rule's matches are combined into a relation "source addresses x destination ports" (exact
  interval sets; concatenations such as ``ip saddr . tcp dport @pairs`` are evaluated on the part
  that concerns the source address and the port), and the rule becomes one model rule per distinct
  source set, whose port sets are disjoint, so first-match semantics (jumps included) are kept;
* a verdict map (``vmap``) becomes one model rule per verdict (map keys never overlap);
* only base chains on the ``input`` hook (and ``filter`` chains on ``prerouting``, which every
  incoming packet also crosses) of ``ip``, ``ip6`` and ``inet`` tables are entries, ordered by hook
  then priority; a packet must be accepted by each of them. An ``ip`` table does not see IPv6
  packets (and an ``ip6`` table IPv4 ones): a synthetic first rule accepts the other family there.

Conservative choices, each reported: a rule on the loopback interface never matches PostFinance's
traffic; any other input interface is assumed to be the one the traffic arrives on; matches the
analyser cannot evaluate (``tcp sport``, ``fib``, marks, rate limits, xt matches...) go to
``Rule.unsupported`` and make the verdict uncertain.
"""

from __future__ import annotations

import json
import logging
import re
import socket
import sys
from array import array
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from itertools import accumulate, islice, pairwise
from typing import Any, cast

from feedback_check import jsonfile
from feedback_check.errors import ConfigError
from feedback_check.firewall.analysis import INTERFACE, RATE_LIMIT
from feedback_check.firewall.evaluate import LayerEvaluation, evaluate
from feedback_check.firewall.formats import ParseContext
from feedback_check.firewall.ipspace import IPV4_MAX, AddressSet, ipv4_bounds
from feedback_check.firewall.iptables import INTERNAL_INTERFACE
from feedback_check.firewall.model import Action, Chain, Origin, PortSet, Rule, RuleLines, Ruleset

log = logging.getLogger(__name__)

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

_TOKEN = re.compile(r'\n|#[^\n]*|"[^"\n]*"|[{};,]|[^\s{};,"#]+')
_HANDLE = re.compile(r"#\s*handle\s+(\d+)")
_STRUCTURE = frozenset({"{", "}", ";"})
_STATE_ATOM = re.compile(r"[a-z]+")
# A whole rule line of the common shape, as `nft list ruleset` prints it (single spaces, `{ a, b }`):
# `[ip|ip6 saddr [!=] A] [tcp dport P] [counter [packets N bytes N]] verdict [# handle N]`.
_FAST_ADDRESS = r"[0-9A-Fa-f:][0-9A-Fa-f.:/-]*"
_FAST_PORT = r"[0-9A-Za-z][0-9A-Za-z-]*"
_FAST_RULE = re.compile(
    r"[ \t]*(?P<rule>"
    rf"(?:(?P<family>ip6?) saddr (?P<negated>!= )?(?:(?P<source>{_FAST_ADDRESS})"
    rf"|\{{ (?P<sources>{_FAST_ADDRESS}(?:, {_FAST_ADDRESS})*) \}}) )?"
    rf"(?:tcp dport (?:(?P<port>{_FAST_PORT})|\{{ (?P<ports>{_FAST_PORT}(?:, {_FAST_PORT})*) \}}) )?"
    r"(?:counter(?: packets \d+ bytes \d+)? )?"
    r"(?P<verdict>accept|drop|reject|return|continue))"
    r"(?: # handle (?P<handle>\d+))?[ \t]*")


# ---------------------------------------------------------------------------------------------------
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


# ---------------------------------------------------------------------------------------------------
# Public protocol (see firewall/formats.py).


def detect(text: str) -> bool:
    """nft text (`table inet filter {`, `add rule ...`) or `nft -j` JSON."""
    head = text.lstrip()[:4096]
    if head.startswith("{") and '"nftables"' in head:
        return True
    return bool(re.search(r"^\s*(table\s+(ip|ip6|inet|arp|bridge|netdev)\s+\S+\s*\{"
                          r"|(add|insert)\s+rule\s+(ip|ip6|inet)\s)", text, re.MULTILINE))


def parse(text: str, file: str, context: ParseContext | None = None) -> Ruleset:
    """The ruleset in `text` (nft text or JSON). Unreadable input raises ConfigError(file, line)."""
    stripped = text.lstrip()
    if stripped.startswith(("{", "[")):
        reading = _read_json(text, file)
    else:
        reading = _TextReader(text, file).read()
    return _build(reading)


def fix_lines(ruleset: Ruleset, evaluation: LayerEvaluation, missing: AddressSet,
              context: ParseContext) -> list[str]:
    """`nft` commands that admit `missing` to TCP `context.port`: `nft add element` when an accepting
    rule draws its sources from a named interval set, else `nft insert rule ... position <handle>`
    placed before the rule that blocks (at the top of the chain when the dump has no handles), or
    `nft add rule` when the chain's policy blocks. Each proposal is checked by re-evaluating the
    ruleset with it applied."""
    port = context.port
    if not missing:
        return []
    lines: list[str] = []
    current = ruleset
    remaining = missing - evaluate(current, port, candidates=missing).admitted
    if not remaining:
        return []
    element_lines, current = _set_element_fixes(current, remaining, port)
    lines += element_lines
    if element_lines:
        remaining = remaining - evaluate(current, port, candidates=remaining).admitted
    for _ in range(32):
        result = evaluate(current, port, candidates=remaining)
        blocked = remaining - result.admitted
        if not blocked:
            break
        blocking = next((d for d in result.decisions
                         if d.action in (Action.DROP, Action.REJECT) and d.addresses & blocked), None)
        if blocking is None:
            break
        in_chain = AddressSet.empty()
        for d in result.decisions:
            if d.chain == blocking.chain and d.action in (Action.DROP, Action.REJECT):
                in_chain = in_chain | (d.addresses & blocked)
        chain = current.chains[blocking.chain]
        index = len(chain.rules) if blocking.by_policy else _rule_index(chain, blocking.origin)
        shown = _widen(in_chain, in_chain | evaluation.admitted)
        lines += _insert_lines(current, blocking.chain, index, shown, port, blocking.by_policy)
        fix_rule = Rule(Action.ACCEPT, Origin(ruleset.file, None, "proposed fix"), source=in_chain,
                        protocols=frozenset({"tcp"}), ports=PortSet.of(port))
        rules = chain.rules[:index] + (fix_rule,) + chain.rules[index:]
        chains = dict(current.chains)
        chains[blocking.chain] = replace(chain, rules=rules)
        current = replace(current, chains=chains)
    return lines


# ---------------------------------------------------------------------------------------------------
# Fix generation helpers.


WIDEST_FIX_PREFIX = {4: 16, 6: 32}


def _widen(addresses: AddressSet, harmless: AddressSet) -> AddressSet:
    """`addresses` grown to fewer, wider CIDRs, taking in only addresses of `harmless` (those the
    layer admits anyway, so accepting them earlier changes nothing) and never wider than /16."""
    out = []
    for network in addresses.networks():
        best = network
        while best.prefixlen > WIDEST_FIX_PREFIX[best.version]:
            wider = best.supernet()
            if not AddressSet.parse(str(wider)).issubset(harmless):
                break
            best = wider
        out.append(str(best))
    return AddressSet.from_specs(out)


def _rule_index(chain: Chain, origin: Origin | None) -> int:
    for index, rule in enumerate(chain.rules):
        if rule.origin == origin:
            return index
    return 0


def _saddr_clause(addresses: AddressSet, family: str) -> list[str]:
    clauses = []
    for version, part in ((4, addresses.ipv4()), (6, addresses.ipv6())):
        if not part or (family == "ip" and version == 6) or (family == "ip6" and version == 4):
            continue
        cidrs = part.cidrs()
        value = cidrs[0] if len(cidrs) == 1 else "{ " + ", ".join(cidrs) + " }"
        clauses.append(f"{'ip' if version == 4 else 'ip6'} saddr {value}")
    return clauses


def _insert_lines(ruleset: Ruleset, chain_key: str, index: int, addresses: AddressSet, port: int,
                  by_policy: bool) -> list[str]:
    chains: dict[str, tuple[str, str, str]] = ruleset.context.get("chains", {})  # type: ignore[assignment]
    family, table, name = chains.get(chain_key) or chain_key.split(" ", 2)
    handles: dict[Origin, int] = ruleset.context.get("handles", {})  # type: ignore[assignment]
    chain = ruleset.chains[chain_key]
    lines = []
    if by_policy:
        lines.append(f"# the policy of chain {name} ({family} {table}) blocks them: append the rule")
        command = f"nft add rule {family} {table} {name}"
    else:
        blocker = chain.rules[index]
        handle = handles.get(blocker.origin)
        where = f"{blocker.origin}: {blocker.origin.text}".strip()
        if handle is not None:
            lines.append(f"# before the blocking rule {where}")
            command = f"nft insert rule {family} {table} {name} position {handle}"
        else:
            lines.append(f"# at the top of chain {name}, before the blocking rule {where}"
                         " (run `nft -a list ruleset` for handles)")
            command = f"nft insert rule {family} {table} {name}"
    for clause in _saddr_clause(addresses, family):
        lines.append(f"{command} {clause} tcp dport {port} accept")
    return lines


def _set_element_fixes(ruleset: Ruleset, missing: AddressSet, port: int) -> tuple[list[str], Ruleset]:
    """`nft add element` lines for named interval sets whose accepting rules would admit `missing`."""
    uses: dict[str, list[tuple[str, int, bool]]] = ruleset.context.get("set_uses", {})  # type: ignore[assignment]
    sets: dict[str, dict[str, Any]] = ruleset.context.get("sets", {})  # type: ignore[assignment]
    for set_key, refs in uses.items():
        info = sets.get(set_key)
        # A set that only drops or rejects its members (a blocklist) cannot admit more when it grows.
        if not info or not info.get("simple") or not any(
                not negated and ruleset.chains[chain_key].rules[index].action not in (Action.DROP, Action.REJECT)
                for chain_key, index, negated in refs):
            continue
        addable = (missing.ipv4() if info["version"] == 4 else missing.ipv6()) - info["content"]
        if not info.get("interval") and any("/" in c and not c.endswith(("/32", "/128"))
                                            for c in addable.cidrs()):
            continue
        if not addable:
            continue
        chains = dict(ruleset.chains)
        for chain_key, index, negated in refs:
            chain = chains[chain_key]
            rule = chain.rules[index]
            source = rule.source - addable if negated else rule.source | addable
            rules = chain.rules[:index] + (replace(rule, source=source),) + chain.rules[index + 1:]
            chains[chain_key] = replace(chain, rules=rules)
        trial = replace(ruleset, chains=chains)
        gained = evaluate(trial, port, candidates=addable).admitted & addable
        if gained:
            family, table, name = info["family"], info["table"], info["name"]
            return ([f"# add the missing ranges to the named set {name} used by the accepting rule",
                     f"nft add element {family} {table} {name} {{ {', '.join(addable.cidrs())} }}"], trial)
    return [], ruleset


# ---------------------------------------------------------------------------------------------------
# Text reader.


class _TextReader:
    """Reads the text line by line: a line is turned into tokens only when it is needed, so a large
    ruleset never exists as one token list. Rule lines of the common shape are read whole by one
    regular expression (`_FAST_RULE`), and long element lists by splitting the text between their
    braces; everything else goes through the tokens."""

    def __init__(self, text: str, file: str) -> None:
        self.file = file
        self.reading = _Reading(file)
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
        while True:
            if self._at_line_start() and not self._fill():
                self.closed = False
                return None
            tok = self.tokens[self.pos]
            if tok == "\n" or tok == ";" or tok[0] == "#":
                self.pos += 1
                continue
            break
        tokens = self.tokens
        if tok == "}":
            self.pos += 1
            self.closed = True
            return None
        line = self._line(self.pos)
        end = tokens.index("\n", self.pos)
        chunk = tokens[self.pos:end]
        if _STRUCTURE.isdisjoint(chunk) and not any(t[0] == "$" for t in chunk):
            # A whole line without braces, separators or variables (a comment can only come last).
            handle = None
            if chunk[-1][0] == "#":
                found = _HANDLE.match(chunk[-1])
                handle = int(found.group(1)) if found else None
                chunk = chunk[:-1]
            self.pos = end + 1
            return chunk, line, handle, False
        out: list[str] = []
        handle = None
        while self.pos < len(self.tokens):
            tok = self.tokens[self.pos]
            if tok == "\n" or tok == ";":
                self.pos += 1
                break
            if tok == "}":
                break
            if tok[0] == "#":
                found = _HANDLE.match(tok)
                if found:
                    handle = int(found.group(1))
                self.pos += 1
                continue
            if tok == "{":
                if out and out[0] in block_heads:
                    self.pos += 1
                    return out, line, handle, True
                self._group(out)
                continue
            if tok[0] == "$":
                out.extend(self._define(tok, self._line(self.pos)))
                self.pos += 1
                continue
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
            found = _HANDLE.match(self.tokens[self.pos])
            if found:
                return int(found.group(1))
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

    def _fast_rule(self) -> re.Match[str] | None:
        """The next line, when it is a whole rule of the common shape as `nft list ruleset` prints it
        (see `_FAST_RULE`), read without tokens; None for any other line."""
        text = self.text
        start = self.offset
        end = text.find("\n", start)
        if end < 0:
            end = len(text)
        found = _FAST_RULE.fullmatch(text, start, end)
        if found is None or found.group("sources") and ":" in found.group("sources").split(", "):
            return None         # `{ : }` is no address list: the tokens say what it is
        self.offset = end + 1
        self.line_no += 1
        return found

    def _add_fast(self, chain: _Chain, run: _Run | None, found: re.Match[str], line: int) -> _Run | None:
        """Add a line read by `_fast_rule` to the chain: to the current run when it has the run's shape
        (`_Run`), else as a rule of its own. Returns the run that goes on."""
        family, negated, source, sources, port, ports, kind, handle = found.group(
            "family", "negated", "source", "sources", "port", "ports", "verdict", "handle")
        if source and not negated:
            key = (family, port, ports, kind)
            if run is None or run.key != key:
                if run is not None:
                    _close_run(chain, run)
                run = _Run(key, 4 if family == "ip" else 6, (port,) if port else _atoms(ports),
                           _PLAIN_VERDICTS[kind], self.text)
            run.numbers.append(line)
            run.starts.append(found.start("rule"))
            run.stops.append(found.end("rule"))
            run.handles.append(int(handle) if handle else None)
            run.atoms.append(source)
            return run
        if run is not None:
            _close_run(chain, run)
        simple = _Simple(None if family is None else 4 if family == "ip" else 6,
                         (source,) if source else _atoms(sources), negated is not None,
                         (port,) if port else _atoms(ports), _PLAIN_VERDICTS[kind])
        chain.rules.append(_Rule([], line, int(handle) if handle else None, found.group("rule"), "", simple))
        return None

    def _unparsed(self, line: int, tokens: Sequence[str]) -> None:
        self.reading.unparsed.append(Origin(self.file, line, " ".join(tokens)))

    # -- blocks ------------------------------------------------------------------------------------
    def read(self) -> _Reading:
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
                chain = table.chains.get(tokens[1]) or _Chain(tokens[1], sline)
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

    def _chain_body(self, table: _Table, chain: _Chain) -> None:
        run: _Run | None = None
        while True:
            if self._at_line_start():
                line = self.line_no
                fast = self._fast_rule()
                if fast is not None:
                    run = self._add_fast(chain, run, fast, line)
                    continue
            if run is not None:
                _close_run(chain, run)
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

    def _chain_spec(self, chain: _Chain, tokens: list[str], line: int) -> None:
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

    def _set(self, name: str, is_map: bool, body: list[list[str]], line: int, handle: int | None) -> _Set:
        keys: tuple[str, ...] = ()
        flags: tuple[str, ...] = ()
        elements: list[tuple[str, ...]] = []
        verdicts: list[tuple[str, str | None]] | None = [] if is_map else None
        for tokens in body:
            if not tokens:
                continue
            head = tokens[0]
            if head in ("type", "typeof"):
                spec = tokens[1:]
                if is_map and ":" in spec:
                    spec = spec[:spec.index(":")]
                keys = tuple(" ".join(part) for part in _split_on(spec, "."))
            elif head == "flags":
                flags = tuple(t for t in tokens[1:] if t != ",")
            elif head == "elements":
                values = tokens[tokens.index("{"):] if "{" in tokens else []
                plain = values[1:-1:2]
                if verdicts is None and values and values[-1] == "}" and all(
                        t == "," for t in values[2:-1:2]) and not _ELEMENT_SYNTAX.intersection(plain):
                    elements.extend([(t,) for t in plain])     # one-atom elements: the common, long case
                    continue
                for element in _elements(values):
                    key, verdict = _element_key_and_data(element)
                    elements.append(key)
                    if verdicts is not None:
                        verdicts.append(verdict or ("unknown", None))
        return _Set(name, keys, flags, elements, verdicts, is_map, line, handle)

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
            chain = table.chains.setdefault(rest[1], _Chain(rest[1], line))
            spec = [t for t in rest[2:] if t not in ("{", "}")]
            if "hook" in spec:
                self._chain_spec(chain, spec, line)
        elif what in ("set", "map") and len(rest) >= 2 and "{" in rest:
            table = self.reading.table(family, rest[0], line)
            inner = rest[rest.index("{") + 1:-1]
            body = [list(part) for part in _split_on(inner, ";")]
            table.sets[rest[1]] = self._set(rest[1], what == "map", body, line, None)
        elif what == "element" and len(rest) >= 2:
            table = self.reading.table(family, rest[0], line)
            target = table.sets.get(rest[1])
            if target is None:
                raise ConfigError(f"add element: set {rest[1]!r} is not declared before", file=self.file,
                                  line=line)
            for element in _elements(rest[2:]):
                key, verdict = _element_key_and_data(element)
                target.elements.append(key)
                if target.verdicts is not None:
                    target.verdicts.append(verdict or ("unknown", None))
        elif what == "rule" and len(rest) >= 2:
            table = self.reading.table(family, rest[0], line)
            found = table.chains.get(rest[1])
            if found is None:
                raise ConfigError(f"{verb} rule: chain {rest[1]!r} is not declared before", file=self.file,
                                  line=line)
            words = rest[2:]
            position = None
            if len(words) >= 2 and words[0] in ("position", "handle", "index"):
                position, words = words[:2], words[2:]
            rule = self._rule(words, line, None)
            chain = found
            if verb == "insert" and position is None:
                chain.rules.insert(0, rule)
            elif position is not None:
                self._unparsed(line, tokens)   # positions refer to handles of a running ruleset
            else:
                chain.rules.append(rule)
        else:
            self._unparsed(line, tokens)

    def _rule(self, tokens: list[str], line: int, handle: int | None) -> _Rule:
        text = " ".join(tokens).replace(" ,", ",")
        simple = _simple_rule(tokens)
        if simple is not None:
            return _Rule([], line, handle, text, simple[1], simple[0])
        statements, comment = _statements(tokens)
        return _Rule(statements, line, handle, text, comment)


def _atoms(text: str | None) -> tuple[str, ...] | None:
    """`a, b, c` (the inside of a `{ ... }` read by `_FAST_RULE`) as atoms."""
    return tuple(text.split(", ")) if text else None


def _values(tokens: list[str], i: int) -> tuple[tuple[str, ...], int] | None:
    """A single word or a flat `{ a, b }` at `i`: (atoms, index after)."""
    word = tokens[i]
    if word != "{":
        return ((word,), i + 1) if word[0] not in "@$!<>=" else None
    try:
        end = tokens.index("}", i)
    except ValueError:
        return None
    atoms = tokens[i + 1:end:2]
    if not atoms or any(t != "," for t in tokens[i + 2:end:2]) or \
            any(t in (".", ":", "{") for t in atoms):
        return None
    return tuple(atoms), end + 1


def _simple_rule(tokens: list[str]) -> tuple[_Simple, str] | None:
    """The fast path: `tokens` as a _Simple rule (and its comment), or None for anything else."""
    i, n = 0, len(tokens)
    version: int | None = None
    sources: tuple[str, ...] | None = None
    ports: tuple[str, ...] | None = None
    negated = False
    verdict: Verdict | None = None
    comment = ""
    while i < n:
        tok = tokens[i]
        if tok in ("ip", "ip6") and sources is None and i + 2 < n and tokens[i + 1] == "saddr":
            i += 2
            if tokens[i] == "!=":
                negated = True
                i += 1
            found = _values(tokens, i) if i < n else None
            if found is None:
                return None
            sources, i = found
            version = 4 if tok == "ip" else 6
        elif tok == "tcp" and ports is None and i + 2 < n and tokens[i + 1] == "dport":
            found = _values(tokens, i + 2)
            if found is None:
                return None
            ports, i = found
        elif tok == "counter":
            i += 1
            while i + 1 < n and tokens[i] in ("packets", "bytes"):
                i += 2
        elif tok == "comment" and i + 1 < n:
            comment = tokens[i + 1].strip('"')
            i += 2
        elif tok == "log":
            i += 1
            while i + 1 < n and tokens[i] in ("prefix", "level"):
                i += 2
        elif verdict is None and tok in ("accept", "drop", "return", "continue"):
            verdict = Verdict(tok)
            i += 1
        elif verdict is None and tok == "reject":
            verdict = Verdict(tok)
            i += 1
            if i < n and tokens[i] == "with":
                i += 1
                while i < n and tokens[i] not in ("counter", "comment", "log"):
                    i += 1
        elif verdict is None and tok in ("jump", "goto") and i + 1 < n:
            verdict = Verdict(tok, tokens[i + 1])
            i += 2
        else:
            return None
    return _Simple(version, sources, negated, ports, verdict or Verdict("continue")), comment


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


def _statements(tokens: list[str]) -> tuple[list[Statement], str]:
    """A rule's tokens as statements (and its comment)."""
    out: list[Statement] = []
    comment = ""
    i, n = 0, len(tokens)
    while i < n:
        tok = tokens[i]
        if tok in VERDICTS:
            if tok in ("jump", "goto"):
                out.append(Verdict(tok, tokens[i + 1] if i + 1 < n else None))
                i += 2
                continue
            out.append(Verdict(tok))
            i += 1
            if tok == "reject":          # reject [with icmp type x | tcp reset | icmpx ...]
                while i < n and tokens[i] not in VERDICTS and tokens[i] not in ("counter", "log", "comment"):
                    i += 1
            continue
        if tok == "comment":
            comment = tokens[i + 1].strip('"') if i + 1 < n else ""
            i += 2
            continue
        if tok == "counter":
            i += 1
            while i < n and tokens[i] in ("packets", "bytes", "name"):
                i += 2
            continue
        if tok == "log":
            i += 1
            while i < n and tokens[i] in ("prefix", "level", "flags", "group", "snaplen", "queue-threshold"):
                i += 2
                while i < n and tokens[i] == ",":
                    i += 2
            continue
        if tok in ("notrack",):
            i += 1
            continue
        if tok == "limit" and i + 1 < n and tokens[i + 1] == "rate":
            start = i
            i += 2
            over = i < n and tokens[i] == "over"
            i += over
            i += 1                                   # 10/second (or 10 mbytes/second)
            if i < n and "/" in tokens[i]:
                i += 1
            if i + 1 < n and tokens[i] == "burst":
                i += 3 if i + 2 < n and tokens[i + 2] in ("packets", "bytes", "kbytes", "mbytes") else 2
            out.append(RateLimit(" ".join(tokens[start:i]), over))
            continue
        if tok in SELECTOR_HEADS or tok in SINGLE_SELECTORS:
            i = _match_statement(tokens, i, out)
            continue
        # Anything else (limit, quota, meta mark set, queue, xt ...): unsupported up to the next verdict.
        start = i
        while i < n and tokens[i] not in VERDICTS and tokens[i] not in ("counter", "log", "comment"):
            i += 1
        out.append(Unsupported(" ".join(tokens[start:i])))
    return out, comment


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
        j = i + 1
        while j < n and tokens[j] not in VERDICTS and tokens[j] not in ("counter", "log", "comment"):
            j += 1
        return j
    if i < n and tokens[i] == "vmap":
        i += 1
        if i < n and tokens[i].startswith("@"):
            out.append(VerdictMap(tuple(keys), ref=tokens[i][1:]))
            return i + 1
        if i < n and tokens[i] == "{":
            end = _group_end(tokens, i)
            entries = []
            for element in _elements(tokens[i:end]):
                key_atoms, verdict = _element_key_and_data(element)
                entries.append((key_atoms, verdict or ("unknown", None)))
            out.append(VerdictMap(tuple(keys), tuple(entries)))
            return end
        out.append(Unsupported(" ".join(tokens[start:i + 1])))
        return i + 1
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
    if tok in VERDICTS or tok in ("counter", "log", "comment"):
        # A bare key used as a flag test or an unknown form.
        out.append(Unsupported(" ".join(tokens[start:i])))
        return i
    # One value, possibly a comma list (`ct state established,related`) or concatenation `a . b`.
    value_tokens = [tok]
    i += 1
    while i + 1 < n and tokens[i] in (",", "."):
        value_tokens += [tokens[i], tokens[i + 1]]
        i += 2
    if i < n and tokens[i] in ("/", "&", "|", "^", "<<", ">>"):      # bitwise forms: not evaluable
        j = i
        while j < n and tokens[j] not in VERDICTS and tokens[j] not in ("counter", "log", "comment"):
            j += 1
        out.append(Unsupported(" ".join(tokens[start:j])))
        return j
    elements = tuple(tuple(" ".join(p) for p in _split_on(e, ".")) for e in _split_on(value_tokens, ","))
    out.append(Match(tuple(keys), op, elements))
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
        document = jsonfile.loads(text, file)
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


# ---------------------------------------------------------------------------------------------------
# Interpretation: the intermediate form -> model rules.

Relation = list[tuple[int, int, AddressSet]]     # disjoint sorted port intervals -> source addresses
_V4 = AddressSet.all_ipv4()
_V6 = AddressSet.all_ipv6()
_ALL = AddressSet.everything()
_TCP = frozenset({"tcp"})


def _family_set(version: int | None) -> AddressSet:
    return _V4 if version == 4 else _V6 if version == 6 else _ALL


def _addresses(atoms: Iterable[str], version: int | None) -> AddressSet:
    """The union of many atoms, normalised once."""
    if version is not None:
        atoms = list(atoms)
        return AddressSet.from_bounds(version, *_bounds(atoms, version))
    v4: list[tuple[int, int]] = []
    v6: list[tuple[int, int]] = []
    for atom in atoms:
        part = _address(atom, version)
        v4.extend(part.v4)
        v6.extend(part.v6)
    return AddressSet.from_intervals(v4, v6)


def _bounds(atoms: Sequence[str], version: int) -> tuple[Sequence[int], Sequence[int]]:
    """The first and the last address of each atom (one address, prefix or range each); IPv4 in bulk."""
    if version == 4 and "/\n" not in "\n".join(atoms) + "\n":    # ipv4_bounds would read `a/` as `a`
        found = ipv4_bounds(atoms)
        if found is not None:
            return found
    firsts: list[int] = []
    lasts: list[int] = []
    for atom in atoms:
        part = _address(atom, version)
        (first, last), = part.v4 if version == 4 else part.v6
        firsts.append(first)
        lasts.append(last)
    return firsts, lasts


def _address(atom: str, version: int | None) -> AddressSet:
    """`1.2.3.4`, `1.2.3.0/24`, `1.2.3.4-1.2.3.9` (IPv4 fast path; IPv6 via the ipspace parser)."""
    atom = atom.strip('"')
    if ":" not in atom and version != 6:
        try:
            if "/" in atom:
                addr, _, length = atom.partition("/")
                bits = int(length)
                if not 0 <= bits <= 32:
                    raise ValueError(atom)
                value = int.from_bytes(socket.inet_pton(socket.AF_INET, addr), "big")
                size = 1 << (32 - bits)
                first = value & ~(size - 1) & IPV4_MAX
                return AddressSet(v4=((first, first + size - 1),))
            if "-" in atom:
                low, _, high = atom.partition("-")
                a = int.from_bytes(socket.inet_pton(socket.AF_INET, low.strip()), "big")
                b = int.from_bytes(socket.inet_pton(socket.AF_INET, high.strip()), "big")
                if b < a:
                    raise ValueError(f"range {atom} ends before it starts")
                return AddressSet(v4=((a, b),))
            value = int.from_bytes(socket.inet_pton(socket.AF_INET, atom), "big")
            return AddressSet(v4=((value, value),))
        except OSError:
            raise ValueError(f"{atom!r} is not an IPv4 address, prefix or range") from None
    result = AddressSet.parse(atom)
    if version == 4 and result.v6 or version == 6 and result.v4:
        raise ValueError(f"{atom!r} is not an IPv{version} address")
    return result


def _port(atom: str) -> tuple[int, int]:
    atom = atom.strip('"')
    if "-" in atom:
        low, _, high = atom.partition("-")
        a, b = _port_number(low), _port_number(high)
        if b < a:
            raise ValueError(f"port range {atom} ends before it starts")
        return a, b
    value = _port_number(atom)
    return value, value


def _port_number(text: str) -> int:
    text = text.strip()
    if text.isdigit():
        value = int(text)
        if value > 65535:
            raise ValueError(f"port {value} out of range")
        return value
    if text in SERVICE_PORTS:
        return SERVICE_PORTS[text]
    try:
        return socket.getservbyname(text, "tcp")
    except OSError:
        raise ValueError(f"unknown service name {text!r}") from None


def _protocol(atom: str) -> str:
    atom = atom.strip('"').lower()
    atom = PROTOCOL_NUMBERS.get(atom, atom)
    return PROTOCOL_ALIASES.get(atom, atom)


def _key_family(key: str) -> int | None:
    head = key.split(" ", 1)[0]
    return FAMILY_OF_KEY_PROTOCOL.get(head)


def _relation_from_pieces(pieces: list[tuple[AddressSet, tuple[int, int] | None]], negated: bool,
                          domain: AddressSet) -> Relation:
    """The relation of "element matches" (union of address x port pieces), or its complement within
    `domain` x every port when negated."""
    by_interval: dict[tuple[int, int], list[AddressSet]] = {}
    for addresses, ports in pieces:
        by_interval.setdefault(ports or ALL_PORTS, []).append(addresses)
    if not by_interval:
        return [(0, 65535, domain)] if negated else []
    cuts = {0, 65536}
    for low, high in by_interval:
        cuts.add(low)
        cuts.add(high + 1)
    bounds = sorted(cuts)
    grouped = {interval: _union(sets) for interval, sets in by_interval.items()}
    out: Relation = []
    for low, nxt in pairwise(bounds):
        high = nxt - 1
        covering = [s for (a, b), s in grouped.items() if a <= low and high <= b]
        union = _union(covering) if covering else AddressSet.empty()
        addresses = domain - union if negated else union & domain
        if addresses:
            if out and out[-1][2] == addresses and out[-1][1] == low - 1:
                out[-1] = (out[-1][0], high, addresses)
            else:
                out.append((low, high, addresses))
    return out


def _union(sets: Sequence[AddressSet]) -> AddressSet:
    if len(sets) == 1:
        return sets[0]
    v4: list[tuple[int, int]] = []
    v6: list[tuple[int, int]] = []
    for s in sets:
        v4.extend(s.v4)
        v6.extend(s.v6)
    return AddressSet.from_intervals(v4, v6)


def _conjoin(a: Relation, b: Relation) -> Relation:
    out: Relation = []
    i = j = 0
    while i < len(a) and j < len(b):
        low, high = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if low <= high:
            left, right = a[i][2], b[j][2]
            both = right if left is _ALL else left if right is _ALL else left & right
            if both:
                out.append((low, high, both))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return out


@dataclass
class _RuleState:
    """What a rule's matches amount to for a new TCP connection."""

    relation: Relation = field(default_factory=lambda: [(0, 65535, _ALL)])
    protocols: frozenset[str] | None = None
    new_connections: bool = True
    interfaces: list[str] = field(default_factory=list)
    destination: AddressSet | None = None
    unsupported: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    set_refs: list[tuple[str, bool, bool]] = field(default_factory=list)   # (set, negated, simple)
    assumption: str = ""
    assumed_match: bool = True


def _internal_interface(name: str) -> bool:
    """lo, docker0, br-*, ...: interfaces that never carry a connection from the internet (a trailing
    nft wildcard `*` is read like iptables' `+`)."""
    return bool(INTERNAL_INTERFACE.match(name[:-1] + "+" if name.endswith("*") else name))


def _rule_origin(file: str, prefix: str, chain: _Chain, rule: _Rule | _Run) -> Origin:
    """Text rules are located by line; JSON rules by table, chain and handle."""
    if rule.line is not None:
        return Origin(file, rule.line, rule.text)
    return Origin(file, None, f"{prefix}{chain.name} handle {rule.handle}: {rule.text}")


class _Interpreter:
    """Turns one table's intermediate rules into model rules."""

    def __init__(self, file: str, table: _Table) -> None:
        self.file = file
        self.table = table
        self.prefix = f"{table.family} {table.name} "
        self.set_uses: dict[str, list[tuple[str, int, bool]]] = {}
        self.complex_sets: set[str] = set()
        self._set_cache: dict[tuple[str, int | None], AddressSet] = {}

    def chain_rules(self, chain: _Chain, chain_key: str) -> list[Rule]:
        out: list[Rule] = []
        for rule in chain.rules:
            if isinstance(rule, _Run):
                out.append(self._run(rule, chain))
                continue
            origin = _rule_origin(self.file, self.prefix, chain, rule)
            start = len(out)
            try:
                produced, refs = self._rule(rule, origin)
            except ValueError as e:
                raise ConfigError(f"{e} in: {rule.text}", file=self.file, line=rule.line) from None
            out.extend(produced)
            for set_name, negated, simple in refs:
                if not simple:
                    self.complex_sets.add(set_name)
                    continue
                for index in range(start, len(out)):
                    self.set_uses.setdefault(set_name, []).append((chain_key, index, negated))
        return out

    def _run(self, run: _Run, chain: _Chain) -> Rule:
        """A run of rules (`_Run`) as one model rule over the union of their sources."""
        version = run.version
        try:
            starts, ends = _bounds(run.atoms, version)
            ports = PortSet(tuple(_port(atom) for atom in run.ports)) if run.ports is not None else None
        except ValueError:
            for rule in run.rules():           # the rule at fault, named as for any other rule
                self.chain_rules(_Chain(chain.name, chain.line, rules=[rule]), "")
            raise
        source = AddressSet.from_bounds(version, starts, ends)
        if version == 4:
            starts, ends = array("q", starts), array("q", ends)
        numbers: Sequence[int] = run.numbers
        document, offsets = run.document, run.starts
        texts = None
        if run.document is None:
            # JSON rules have no line; they are named by table, chain and handle.
            numbers = cast("Sequence[int]", [None] * len(run))
            texts = [f"{self.prefix}{chain.name} handle {handle}: {text}"
                     for handle, text in zip(run.handles, run.texts)]
        elif run.handles.count(None) != len(run):
            # `# handle N` ends the lines in the text: the index keeps the rules' own text instead.
            texts = [run.rule_text(i) for i in range(len(run))]
        if texts is not None:
            document = "\n".join(texts)
            offsets = array("q", accumulate((len(text) + 1 for text in texts[:-1]), initial=0))
        lines = RuleLines(self.file, version, numbers, starts, ends, document or "", offsets)
        return Rule(VERDICTS[run.verdict.kind], _rule_origin(self.file, self.prefix, chain, run), source=source,
                    protocols=_TCP if ports is not None else None, ports=ports, lines=lines)

    # -- one rule ----------------------------------------------------------------------------------
    def _rule(self, rule: _Rule, origin: Origin) -> tuple[list[Rule], list[tuple[str, bool, bool]]]:
        if rule.simple is not None:
            return [self._simple(rule.simple, origin, rule.comment)], []
        state = _RuleState()
        verdict: Verdict | None = None
        vmaps: list[VerdictMap] = []
        for statement in rule.statements:
            if isinstance(statement, Match):
                self._match(statement, state)
            elif isinstance(statement, VerdictMap):
                vmaps.append(statement)
            elif isinstance(statement, Verdict):
                verdict = statement
                break
            elif isinstance(statement, Unsupported) and statement.text:
                state.unsupported.append(statement.text)
            elif isinstance(statement, RateLimit):
                state.assumption = f"{RATE_LIMIT}: {statement.text}"
                state.assumed_match = not statement.over
        note = "; ".join(state.notes + ([f"comment: {rule.comment}"] if rule.comment else []))
        if vmaps:
            return self._vmap_rules(vmaps[0], state, origin, note), state.set_refs
        verdict = verdict or Verdict("continue")
        return self._emit(state, state.relation, verdict, origin, note), state.set_refs

    def _simple(self, simple: _Simple, origin: Origin, comment: str) -> Rule:
        source = _ALL
        if simple.sources is not None:
            found = [_address(atom, simple.version) for atom in simple.sources]
            source = found[0] if len(found) == 1 else _union(found)
            if simple.negated:
                source = _family_set(simple.version) - source
        ports = PortSet(tuple(_port(atom) for atom in simple.ports)) if simple.ports is not None else None
        verdict = simple.verdict
        target = None
        if verdict.kind in ("jump", "goto"):
            if verdict.target not in self.table.chains:
                raise ValueError(f"{verdict.kind} to chain {verdict.target!r}, which the table does not have")
            target = self.prefix + str(verdict.target)
        return Rule(VERDICTS[verdict.kind], origin, source=source,
                    protocols=_TCP if simple.ports is not None else None, ports=ports, target=target,
                    note=f"comment: {comment}" if comment else "")

    def _emit(self, state: _RuleState, relation: Relation, verdict: Verdict, origin: Origin,
              note: str) -> list[Rule]:
        action = VERDICTS.get(verdict.kind)
        unsupported = list(state.unsupported)
        target = None
        if action is Action.CONTINUE and unsupported:
            # A rule that only counts or logs cannot change a verdict, whatever its conditions.
            note = "; ".join([note] * bool(note) + [f"only counts/logs when {' '.join(unsupported)}"])
            unsupported = []
        if action is None:
            unsupported.append(f"verdict {verdict.kind}")
            action = Action.CONTINUE
        if action in (Action.JUMP, Action.GOTO):
            target = self.prefix + str(verdict.target)
            if verdict.target not in self.table.chains:
                raise ValueError(f"{verdict.kind} to chain {verdict.target!r}, which the table does not have")
        common: dict[str, Any] = {
            "action": action, "origin": origin, "protocols": state.protocols, "target": target,
            "new_connections": state.new_connections, "interface": ", ".join(state.interfaces) or None,
            "destination": state.destination, "unsupported": tuple(unsupported), "note": note,
            "assumption": state.assumption, "assumed_match": state.assumed_match}
        if not state.assumption and state.interfaces:
            common["assumption"] = f"{INTERFACE}: arrives on interface {', '.join(state.interfaces)}"
        if not relation:
            return [Rule(source=AddressSet.empty(), **common)]
        grouped: dict[AddressSet, list[tuple[int, int]]] = {}
        for low, high, addresses in relation:
            grouped.setdefault(addresses, []).append((low, high))
        rules = []
        for addresses, ports in grouped.items():
            port_set = None if ports == [ALL_PORTS] else PortSet(tuple(ports))
            rules.append(Rule(source=addresses, ports=port_set, **common))
        return rules

    def _vmap_rules(self, vmap: VerdictMap, state: _RuleState, origin: Origin, note: str) -> list[Rule]:
        if vmap.ref is not None:
            target = self.table.sets.get(vmap.ref)
            if target is None or target.verdicts is None:
                raise ValueError(f"vmap @{vmap.ref}: no such verdict map in the table")
            entries = list(zip(target.elements, target.verdicts))
        else:
            entries = list(vmap.entries)
        by_verdict: dict[tuple[str, str | None], list[tuple[str, ...]]] = {}
        for key, verdict in entries:
            by_verdict.setdefault(verdict, []).append(key)
        rules: list[Rule] = []
        for (kind, target_chain), elements in by_verdict.items():
            branch = replace(state, unsupported=list(state.unsupported), notes=list(state.notes),
                             interfaces=list(state.interfaces))
            self._concat(vmap.keys, "==", elements, branch)
            rules += self._emit(branch, branch.relation, Verdict(kind, target_chain), origin, note)
        return rules

    # -- matches -----------------------------------------------------------------------------------
    def set_addresses(self, name: str, version: int | None) -> AddressSet:
        """The addresses of a named set of addresses (computed once per set)."""
        key = (name, version)
        if key not in self._set_cache:
            declared = self.table.sets[name]
            if any(len(e) != 1 for e in declared.elements):
                raise ValueError(f"@{name}: its elements are not single addresses")
            self._set_cache[key] = _addresses((e[0] for e in declared.elements), version)
        return self._set_cache[key]

    def _elements_of(self, match: Match, state: _RuleState) -> list[tuple[str, ...]]:
        if match.ref is None:
            return list(match.elements)
        target = self.table.sets.get(match.ref)
        if target is None:
            raise ValueError(f"@{match.ref}: no such set in table {self.table.family} {self.table.name}")
        simple = len(match.keys) == 1 and match.keys[0] in ADDRESS_KEYS and match.op in ("==", "!=")
        state.set_refs.append((match.ref, match.op == "!=", simple))
        if "dynamic" in target.flags or "timeout" in target.flags:
            state.notes.append(f"set @{match.ref} is updated at run time; its listed content was analysed")
        return target.elements

    def _match(self, match: Match, state: _RuleState) -> None:
        keys = match.keys
        if len(keys) > 1:
            self._concat(keys, match.op, self._elements_of(match, state), state)
            return
        key = keys[0]
        text = f"{key} {'' if match.op == '==' else match.op + ' '}" + (
            "@" + match.ref if match.ref else ", ".join(_render_element(e) for e in match.elements))
        if match.op not in ("==", "!="):
            if key in PORT_KEYS and len(match.elements) == 1 and match.ref is None:
                value = _port_number(match.elements[0][0])
                low, high = {"<": (0, value - 1), "<=": (0, value), ">": (value + 1, 65535),
                             ">=": (value, 65535)}[match.op]
                self._protocol_constraint(PORT_KEYS[key], state)
                state.relation = _conjoin(state.relation, [(low, high, _ALL)] if low <= high else [])
                return
            state.unsupported.append(text)
            return
        negated = match.op == "!="
        if key in CTSTATE_KEYS:
            states = {a for e in self._elements_of(match, state) for a in _STATE_ATOM.findall(e[0])}
            if ("new" in states) == negated:
                state.new_connections = False
            return
        if key in PROTOCOL_KEYS and not negated:
            names = frozenset(_protocol(e[0]) for e in self._elements_of(match, state))
            state.protocols = names if state.protocols is None else state.protocols & names
            state.relation = _conjoin(state.relation, [(0, 65535, _family_set(PROTOCOL_KEYS[key]))])
            return
        if key in PORT_KEYS:
            self._protocol_constraint(PORT_KEYS[key], state)
        if key in DESTINATION_KEYS:
            elements = self._elements_of(match, state)
            version = DESTINATION_KEYS[key]
            addresses = _union([_address(e[0], version) for e in elements]) if elements else AddressSet.empty()
            state.destination = (_family_set(version) - addresses) if negated else addresses
            state.relation = _conjoin(state.relation, [(0, 65535, _family_set(version))])
            return
        head = key.partition(" ")[0]
        if head in TRANSPORT_HEADERS and not (key in PORT_KEYS):
            protocol = TRANSPORT_HEADERS[head]
            self._protocol_constraint(protocol, state)
            if protocol == "tcp":
                state.unsupported.append(text)
            return
        if key == "ct status" and not negated and [e[0] for e in self._elements_of(match, state)] == ["dnat"]:
            state.relation = []
            state.notes.append("matches only connections redirected by a DNAT rule, not a connection to "
                               "this host's own address")
            return
        if key in ADDRESS_KEYS:
            version = ADDRESS_KEYS[key]
            if match.ref is not None:
                self._elements_of(match, state)          # records the reference, checks the set exists
                addresses = self.set_addresses(match.ref, version)
            else:
                addresses = _addresses((e[0] for e in match.elements if len(e) == 1), version)
                if any(len(e) != 1 for e in match.elements):
                    raise ValueError(f"{text}: elements do not fit {key}")
            matched = _family_set(version) - addresses if negated else addresses
            state.relation = _conjoin(state.relation, [(0, 65535, matched)])
            return
        if key in INTERFACE_KEYS:
            interfaces = [e[0].strip('"') for e in self._elements_of(match, state)]
            external = [n for n in interfaces if not _internal_interface(n)]
            if negated:
                if external:
                    state.unsupported.append(text + " (which interface PostFinance's traffic arrives on "
                                                    "is unknown)")
                return
            if not external:
                state.relation = []
                state.notes.append("matches only loopback or internal-bridge traffic, never PostFinance's")
                return
            state.interfaces.extend(external)
            state.notes.append(f"assumes PostFinance's traffic arrives on {', '.join(external)}")
            return
        self._concat(keys, match.op, self._elements_of(match, state), state)

    def _protocol_constraint(self, protocol: str | None, state: _RuleState) -> None:
        if protocol is None:
            return
        names = frozenset({protocol})
        state.protocols = names if state.protocols is None else state.protocols & names

    def _concat(self, keys: Sequence[str], op: str, elements: Sequence[tuple[str, ...]],
                state: _RuleState) -> None:
        """General case: each element a conjunction over the keys; the match is their union."""
        kinds = []
        version: int | None = None
        for key in keys:
            family = _key_family(key)
            if family is not None:
                if version is not None and version != family:
                    state.relation = []
                    return
                version = family
            if key in ADDRESS_KEYS:
                kinds.append("address")
            elif key in PORT_KEYS:
                kinds.append("port")
                self._protocol_constraint(PORT_KEYS[key], state)
            elif key in PROTOCOL_KEYS:
                kinds.append("protocol")
            elif key in NFPROTO_KEYS:
                kinds.append("nfproto")
            elif key in CTSTATE_KEYS:
                kinds.append("ctstate")
            elif key in INTERFACE_KEYS:
                kinds.append("interface")
            elif key in PKTTYPE_KEYS:
                kinds.append("pkttype")
            elif key in DESTINATION_KEYS:
                kinds.append("destination")
            else:
                shown = _render_keys(keys) + (" != " if op == "!=" else " ") + (
                    "{ " + ", ".join(_render_element(e) for e in elements[:5]) + (" ..." if len(elements) > 5
                                                                                 else "") + " }")
                state.unsupported.append(shown)
                return
        domain = _family_set(version)
        pieces: list[tuple[AddressSet, tuple[int, int] | None]] = []
        for element in elements:
            if len(element) != len(kinds):
                raise ValueError(f"element {_render_element(element)!r} does not fit {_render_keys(keys)}")
            addresses = domain
            ports: tuple[int, int] | None = None
            matches = True
            for kind, atom, key in zip(kinds, element, keys):
                if kind == "address":
                    addresses = addresses & _address(atom, ADDRESS_KEYS[key])
                elif kind == "port":
                    ports = _port(atom)
                elif kind == "protocol":
                    matches = matches and _protocol(atom) == "tcp"
                elif kind == "nfproto":
                    addresses = addresses & (_V4 if atom == "ipv4" else _V6 if atom == "ipv6" else _ALL)
                elif kind == "ctstate":
                    matches = matches and "new" in _STATE_ATOM.findall(atom)
                elif kind == "interface":
                    name = atom.strip('"')
                    if _internal_interface(name):
                        matches = False
                    elif name not in state.interfaces:
                        state.interfaces.append(name)
                elif kind == "pkttype":
                    matches = matches and atom in ("host", "unicast")
                elif kind == "destination":
                    _address(atom, DESTINATION_KEYS[key])
            if matches and addresses:
                pieces.append((addresses, ports))
        if "protocol" in kinds:
            self._protocol_constraint("tcp", state)
        state.relation = _conjoin(state.relation, _relation_from_pieces(pieces, op == "!=", domain))


# ---------------------------------------------------------------------------------------------------
# Assembly.


def _build(reading: _Reading) -> Ruleset:
    file = reading.file
    chains: dict[str, Chain] = {}
    entries: list[tuple[int, int, int, str]] = []
    notes = list(reading.notes)
    handles: dict[Origin, int] = {}
    chain_info: dict[str, tuple[str, str, str]] = {}
    set_uses: dict[str, list[tuple[str, int, bool]]] = {}
    sets: dict[str, dict[str, Any]] = {}
    order = 0
    for (family, table_name), table in reading.tables.items():
        if family not in FILTER_FAMILIES:
            if any(c.hook for c in table.chains.values()):
                notes.append(f"table {family} {table_name} ignored: only ip, ip6 and inet tables filter "
                             "traffic to this host's sockets (a netdev/bridge table could still drop it)")
            continue
        if table.dormant:
            notes.append(f"table {family} {table_name} is dormant (flags dormant): ignored")
            continue
        interpreter = _Interpreter(file, table)
        for chain in table.chains.values():
            key = f"{family} {table_name} {chain.name}"
            chain_info[key] = (family, table_name, chain.name)
            chain_origin = Origin(file, chain.line, f"chain {chain.name} ({family} {table_name})")
            rules = interpreter.chain_rules(chain, key)
            is_entry = chain.hook in ENTRY_HOOKS and chain.type == "filter"
            if chain.hook and not is_entry and chain.hook in ENTRY_HOOKS:
                notes.append(f"chain {key} (type {chain.type} hook {chain.hook}) not analysed: only filter "
                             "chains decide whether a connection is admitted")
            policy = None
            if chain.hook:
                policy = Action.DROP if (chain.policy or "accept") == "drop" else Action.ACCEPT
            chains[key] = Chain(key, tuple(rules), policy, chain_origin,
                                family={"ip": 4, "ip6": 6}.get(family))
            if is_entry:
                entries.append((ENTRY_HOOKS.index(chain.hook or "input"), chain.priority, order, key))
                order += 1
            for rule_ir in chain.rules:
                if rule_ir.handle is not None:
                    handles[_rule_origin(file, interpreter.prefix, chain, rule_ir)] = rule_ir.handle
        for name, refs in interpreter.set_uses.items():
            set_key = f"{family} {table_name} {name}"
            set_uses[set_key] = refs
            declared = table.sets[name]
            version = 6 if any("ipv6" in k or "ip6" in k for k in declared.keys) else 4
            content = interpreter.set_addresses(name, version)
            sets[set_key] = {"family": family, "table": table_name, "name": name, "version": version,
                             "content": content,
                             "interval": "interval" in declared.flags,
                             "simple": name not in interpreter.complex_sets}
    if not entries:
        notes.append("no base chain on the input hook: nothing filters incoming connections here")
    entries.sort()
    return Ruleset(format=NAME, file=file, chains=chains, entry=tuple(key for *_, key in entries),
                   unparsed=tuple(reading.unparsed), notes=tuple(notes),
                   context={"handles": handles, "chains": chain_info, "set_uses": set_uses, "sets": sets})
