"""Plain allowlists: one address, CIDR or range (`a-b`) per line, `#` and `;` comments.

Such a list is what a sysadmin pastes into a web panel or a `deny all` front end: every listed source is
admitted, everything else is refused (policy deny). Lines that are not an address are kept as unparsed
with their line numbers; a file with no usable line at all is a ConfigError.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from feedback_check.errors import ConfigError
from feedback_check.firewall._textconf import fix_cidrs, parse_addresses, single_chain, strip_comment
from feedback_check.firewall.evaluate import LayerEvaluation
from feedback_check.firewall.formats import ParseContext
from feedback_check.firewall.ipspace import AddressSet, parse_interval
from feedback_check.firewall.model import Action, Origin, Rule, Ruleset
from feedback_check.inputfile import text_lines

NAME = "plain"
COMMENT_MARKERS = "#;"


def _entries(lines: Iterable[tuple[int, str]]) -> Iterator[tuple[int, str, str]]:
    """(line number, entry, raw line) of every non-empty line once comments are removed."""
    for number, raw in lines:
        entry = strip_comment(raw, COMMENT_MARKERS)
        if entry:
            yield number, entry, raw


def _is_address(entry: str) -> bool:
    try:
        parse_interval(entry)
    except ValueError:
        return False
    return True


def detect(text: str) -> bool:
    """A plain list: at least one address line, and every non-comment line is an address."""
    entries = list(_entries(text_lines(text)))
    return bool(entries) and all(_is_address(entry) for _, entry, _ in entries)


def parse(text: str, file: str, context: ParseContext) -> Ruleset:
    """Each address line becomes an ACCEPT rule; the list's default is to refuse everything else."""
    return parse_lines(text_lines(text), file, context)


def parse_lines(lines: Iterable[tuple[int, str]], file: str, context: ParseContext) -> Ruleset:
    """`parse` over (number, line) pairs read once (`inputfile.iter_lines`)."""
    rules: list[Rule] = []
    unparsed: list[Origin] = []
    for number, entry, raw in _entries(lines):
        addresses, bad = parse_addresses([entry])
        origin = Origin(file, number, raw.strip())
        if bad:
            unparsed.append(origin)
        else:
            rules.append(Rule(Action.ACCEPT, origin, source=addresses))
    if not rules:
        first_bad = unparsed[0].line if unparsed else None
        problem = ("no address, CIDR or range on any line" if unparsed
                   else "the list is empty (no address, CIDR or range)")
        raise ConfigError(problem, file=file, line=first_bad)
    notes = ["A plain list is read as an allowlist: every source not listed is refused."]
    return single_chain(NAME, file, rules, Action.DROP, policy_origin=Origin(file, None, "(not listed)"),
                        unparsed=unparsed, notes=notes)


def fix_lines(ruleset: Ruleset, evaluation: LayerEvaluation, missing: AddressSet,
              context: ParseContext) -> list[str]:
    """The lines to add to the list (order does not matter in an allowlist)."""
    if not missing:
        return []
    return [f"# add to {ruleset.file}:"] + fix_cidrs(missing, evaluation, context.published)
