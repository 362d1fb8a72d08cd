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

import gc
import re
from collections.abc import Iterator
from contextlib import contextmanager

from feedback_check.firewall.formats import ParseContext
from feedback_check.firewall.model import Ruleset
from feedback_check.firewall.nftables.fixes import fix_lines
from feedback_check.firewall.nftables.interpreter import _build
from feedback_check.firewall.nftables.ir import NAME
from feedback_check.firewall.nftables.jsonform import _read_json
from feedback_check.firewall.nftables.text import TextReader


def detect(text: str) -> bool:
    """nft text (`table inet filter {`, `add rule ...`) or `nft -j` JSON."""
    head = text.lstrip()[:4096]
    if head.startswith("{") and '"nftables"' in head:
        return True
    return bool(re.search(r"^\s*(table\s+(ip|ip6|inet|arp|bridge|netdev)\s+\S+\s*\{"
                          r"|(add|insert)\s+rule\s+(ip|ip6|inet)\s)", text, re.MULTILINE))


def parse(text: str, file: str, context: ParseContext | None = None) -> Ruleset:
    """The ruleset in `text` (nft text or JSON). Unreadable input raises ConfigError(file, line)."""
    with _collector_paused():
        stripped = text.lstrip()
        if stripped.startswith(("{", "[")):
            reading = _read_json(text, file)
        else:
            reading = TextReader(text, file).read()
        return _build(reading)


@contextmanager
def _collector_paused() -> Iterator[None]:
    """The cyclic garbage collector off while a ruleset is read: reading allocates many small objects
    and no cycles, so the collections it would trigger find nothing (measured on the 100,000-rule
    benchmark files: 7 % of the parse time for `nft -j` JSON, 6 % for text; decoding every JSON
    object, without the fast path, 1.29 s with the collector on, 1.20 s off)."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()




__all__ = ["NAME", "detect", "fix_lines", "parse"]
