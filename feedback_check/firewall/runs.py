"""Runs of same-shape lines, shared by the iptables and nftables readers.

Large rulesets are mostly ban lists and allowlists: thousands of consecutive lines of one chain that
differ only in their source (`-A bans -s 203.0.113.7/32 -j DROP`, `ip saddr 203.0.113.7 counter drop`).
A reader keys each line by its *shape* (the line without its source) and reads a shape once (a
dict from shape to what reading it gave); consecutive lines of one shape form a `Run`, kept as arrays (line numbers, where each
line starts in the text, the sources as written) rather than an object per line. The rule the shape
stands for is interpreted once, and the whole run becomes one model rule whose source is the union of
the lines' sources when first-match over the lines is simply that union (`merge`); `Rule.lines`
(`model.RuleLines`) then names the line that decides each address. Otherwise the run is taken apart
into one rule per line.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Sequence
from dataclasses import replace

from feedback_check.firewall.evaluate import mergeable
from feedback_check.firewall.ipspace import AddressSet, ipv4_bounds
from feedback_check.firewall.model import Action, Rule, RuleLines

_EVERYTHING = AddressSet.everything()


class Run:
    """Consecutive lines of one chain with the same `shape` and `family` (4 or 6), differing only in
    their plain source. Sources are kept as written (`sources`) until `convert` turns them all into
    intervals at once (`firsts`, `lasts`)."""

    __slots__ = ("family", "firsts", "lasts", "numbers", "offsets", "shape", "sources")

    def __init__(self, shape: object, family: int) -> None:
        self.shape = shape
        self.family = family
        self.numbers: array[int] = array("q")    # line numbers
        self.offsets: array[int] = array("q")    # where each line's text starts
        self.sources: list[str] = []             # not yet converted
        # IPv4 bounds in 4-byte unsigned arrays ("I"); IPv6 ones need Python ints
        self.firsts: Sequence[int] = array("I") if family == 4 else []
        self.lasts: Sequence[int] = array("I") if family == 4 else []

    def __len__(self) -> int:
        return len(self.numbers)

    def convert(self, one: Callable[[int, str], tuple[int, int]]) -> None:
        """Turn the pending sources into intervals: IPv4 in bulk (`ipv4_bounds`); otherwise, or when one
        of them does not read, each by `one(index, source)`, which raises for the first unreadable one."""
        pending = self.sources
        if not pending:
            return
        found = ipv4_bounds(pending) if self.family == 4 else None
        if found is None:
            start = len(self) - len(pending)
            pairs = [one(index, source) for index, source in enumerate(pending, start=start)]
            found = [p[0] for p in pairs], [p[1] for p in pairs]
        self.firsts.extend(found[0])     # type: ignore[attr-defined]
        self.lasts.extend(found[1])      # type: ignore[attr-defined]
        self.sources = []


def can_merge(shape: Rule) -> bool:
    """Whether consecutive rules of this shape may become one rule over the union of their sources:
    first-match over them is that union (`evaluate.mergeable`), or they never decide (a plain
    CONTINUE: counting or logging)."""
    return mergeable(shape) or (shape.action is Action.CONTINUE and not shape.unsupported
                                and not shape.assumption)


def merge(shape: Rule, lines: RuleLines) -> Rule | None:
    """The run of `lines` with rule `shape` (source: what the shape itself requires) as one rule whose
    source is the union of the lines' sources; None when no line can match. Its origin is the first
    line that can match, as when each line was a rule of its own."""
    union = AddressSet.from_bounds(lines.family, lines.starts, lines.ends)
    first = 0
    if shape.source is _EVERYTHING or shape.source == _EVERYTHING:
        source = union
    else:
        source = shape.source & union
        if not source:
            return None
        first = next(i for i, (low, high) in enumerate(zip(lines.starts, lines.ends))
                     if shape.source.overlaps(lines.family, low, high))
    return replace(shape, source=source, origin=lines.origin(first), lines=lines)
