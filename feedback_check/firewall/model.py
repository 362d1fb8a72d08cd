"""The common rule model every firewall format is parsed into.

A `Ruleset` is chains of ordered rules with first-match semantics and a default policy, which is how
iptables, nftables, ufw, nginx (allow/deny), cloud security groups (allow-only, default deny) and
Azure NSGs (by priority) all behave. Formats with boolean logic (Apache `Require` blocks) compute their
admitted set and express it as rules. What a parser could not read is kept in `unparsed`; a match it
could not evaluate is kept on the rule in `unsupported`, so the verdict can say it is uncertain.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

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
    assumption: str = ""
    assumed_match: bool = True

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
    # Context a fix generator needs (e.g. nginx location, ufw rule numbers, security-group id).
    context: dict[str, object] = field(default_factory=dict)
