"""The typed result of the firewall analysis: what reaches the port, per layer and per published range.

`firewall.analysis.summarise` builds one `FirewallVerdict` per analysed path; it travels in
`report.FirewallSummary.analysis` to the reporters, which read its attributes (only
`reporters/json.py` turns it into the JSON document's `firewall[]` entries). Addresses are minimal
CIDR texts, outermost layer first, as the analysis found them.
"""

from __future__ import annotations

from dataclasses import dataclass

#: RangeVerdict.state values.
ADMITTED = "admitted"
BLOCKED = "blocked"
PARTLY_BLOCKED = "partly blocked"
UNCERTAIN = "uncertain"


@dataclass(frozen=True, slots=True)
class LayerVerdict:
    """One layer judged on its own against the published addresses."""

    name: str
    file: str
    format: str
    entry: tuple[str, ...]                 # the chains/hooks where new connections enter
    admits_published: tuple[str, ...]
    blocks_published: tuple[str, ...]
    open_to_world: bool
    unparsed: tuple[str, ...]              # "file:line: text" of what could not be interpreted
    notes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class DecidingRule:
    """A rule (or a chain's default policy) that refuses part of a published range in one layer."""

    layer: str
    file: str
    rule: str                              # file:line, or "file (chain)" for a policy
    text: str                              # the rule as written ("" for a policy)
    chain: str
    action: str                            # drop, reject, deny, ...
    by_policy: bool
    blocked: tuple[str, ...]
    first_blocking_layer: bool


@dataclass(frozen=True, slots=True)
class RangeVerdict:
    """One published range through every layer together."""

    cidr: str
    state: str                             # ADMITTED | BLOCKED | PARTLY_BLOCKED | UNCERTAIN
    admitted: tuple[str, ...]
    blocked: tuple[str, ...]
    uncertain: tuple[str, ...]
    deciding: tuple[DecidingRule, ...]
    fix_lines: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class FirewallVerdict:
    """Every layer and every published range of one analysis, and the combined fix."""

    layers: tuple[LayerVerdict, ...] = ()
    ranges: tuple[RangeVerdict, ...] = ()
    ranges_source: str = ""
    admitted: tuple[str, ...] = ()         # published addresses that pass every layer
    blocked: tuple[str, ...] = ()
    uncertain_addresses: tuple[str, ...] = ()
    open_to_world: bool = False
    fix_lines: tuple[str, ...] = ()        # grouped by layer, outermost first
    path: str | None = None                # the post-sale URL's path and host the analysis was made for
    host: str | None = None

    def all_fix_lines(self) -> tuple[str, ...]:
        """The combined fix, or (for a verdict built without one) the ranges' own fix lines."""
        return self.fix_lines or tuple(line for r in self.ranges for line in r.fix_lines)
