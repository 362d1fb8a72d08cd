"""Fix lines: `iptables -I CHAIN N ...` before the rule that blocks, and how to make them persistent."""

from __future__ import annotations

from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from feedback_check.firewall.evaluate import Decision, LayerEvaluation
from feedback_check.firewall.formats import ParseContext
from feedback_check.firewall.ipspace import AddressSet
from feedback_check.firewall.iptables.syntax import _Line, _Run
from feedback_check.firewall.model import (
    Action,
    FixContext,
    Ruleset,
)


@dataclass(frozen=True)
class IptablesFix(FixContext):
    """What `fix_lines` needs: where each `-A` line is (`iptables -I CHAIN N`), the port the filter
    chains match per family (after DNAT), which families reach the shop through FORWARD (Docker), and
    whether a DOCKER-USER chain exists."""

    positions: Mapping[int, tuple[int, str, int]] = field(default_factory=dict)   # line -> (family, chain, position)
    match_ports: dict[int, int] = field(default_factory=dict)
    forwarded: dict[int, bool] = field(default_factory=dict)
    docker_user: bool = False


class _Positions(Mapping[int, tuple[int, str, int]]):
    """Line number -> (family, chain, position in the chain) of every `-A` line, for `iptables -I`:
    per chain its segments in file order — a run's own line-number array and first position (nothing
    copied per ban-list line), or the lines between runs gathered in two arrays — not a dict entry per
    line."""

    def __init__(self) -> None:
        # (family, chain, first line of each segment, segments as (line numbers, positions or first position))
        self._chains: list[tuple[int, str, array[int], list[tuple[Sequence[int], Sequence[int] | int]]]] = []

    def add(self, family: int, chain: str, items: Iterable[_Line | _Run]) -> None:
        starts: array[int] = array("q")
        segments: list[tuple[Sequence[int], Sequence[int] | int]] = []
        lines: array[int] = array("q")
        numbers: array[int] = array("L")
        for item in items:
            if isinstance(item, _Run):
                if lines:
                    starts.append(lines[0])
                    segments.append((lines, numbers))
                    lines, numbers = array("q"), array("L")
                starts.append(item.numbers[0])
                segments.append((item.numbers, item.number))
            else:
                lines.append(item.line)
                numbers.append(item.number)
        if lines:
            starts.append(lines[0])
            segments.append((lines, numbers))
        self._chains.append((family, chain, starts, segments))

    def __getitem__(self, line: int) -> tuple[int, str, int]:
        for family, chain, starts, segments in self._chains:
            segment = bisect_right(starts, line) - 1
            if segment < 0:
                continue
            lines, numbers = segments[segment]
            index = bisect_left(lines, line)
            if index < len(lines) and lines[index] == line:
                return family, chain, numbers + index if isinstance(numbers, int) else numbers[index]
        raise KeyError(line)

    def __iter__(self) -> Iterator[int]:
        for _, _, _, segments in self._chains:
            for lines, _ in segments:
                yield from lines

    def __len__(self) -> int:
        return sum(len(lines) for _, _, _, segments in self._chains for lines, _ in segments)


# --------------------------------------------------------------------------------------------------
# fix lines


def fix_lines(ruleset: Ruleset, evaluation: LayerEvaluation, missing: AddressSet,
              context: ParseContext) -> list[str]:
    """`iptables -I CHAIN N ...` lines that admit `missing` on the feedback port, inserted just before
    the rule that blocks each part (appended when a chain's default policy blocks it), plus how to
    make the change persistent in the dump's own syntax."""
    fix = ruleset.fix_context(IptablesFix)
    inserts = sorted(_inserts(fix, evaluation, missing, context), key=lambda x: (x.chain, -x.position))
    if UFW_USER_CHAIN in ruleset.chains and not fix.forwarded.get(4) and not fix.forwarded.get(6):
        return _ufw_fix_lines(inserts, fix.match_ports, context.port)
    return _iptables_fix_lines(inserts, fix.match_ports, context.port, ruleset.file)


class _Insert(NamedTuple):
    """One ACCEPT to insert: into `chain` at `position` (0: appended) for `cidrs` of `family`; `where` says
    where its persistent `-A` line goes in the dump."""

    chain: str
    position: int
    family: int
    cidrs: str            # comma-separated
    where: str


def _inserts(fix: IptablesFix, evaluation: LayerEvaluation, missing: AddressSet,
             context: ParseContext) -> Iterator[_Insert]:
    """One insert per family of each decision that blocks part of `missing`."""
    for decision in evaluation.deciding(missing):
        if decision.action is Action.ACCEPT:
            continue
        for family, part in ((4, decision.addresses.ipv4()), (6, decision.addresses.ipv6())):
            if part:
                chain, position, where = _insertion_point(decision, family, fix)
                yield _Insert(chain, position, family, ",".join(_coarse(part, context.published)), where)


def _insertion_point(decision: Decision, family: int, fix: IptablesFix) -> tuple[str, int, str]:
    """(chain, position, where the persistent line goes) for an ACCEPT ahead of `decision`: the top of
    DOCKER-USER on Docker's FORWARD path, the blocking rule's own position, or the end of the chain
    when its policy blocks (or the rule's line is not known)."""
    chain = decision.chain.removeprefix("ip6:")
    if fix.forwarded.get(family) and fix.docker_user and (decision.by_policy or chain != "DOCKER-USER"):
        return "DOCKER-USER", 1, "at the top of DOCKER-USER (Docker evaluates it first for published ports)"
    line = decision.origin.line if decision.origin is not None else None
    if decision.by_policy or line is None or line not in fix.positions:
        return chain, 0, f"at the end of the {chain} chain, before the COMMIT of its filter table"
    _, chain, position = fix.positions[line]
    return chain, position, f"before line {line}"


def _iptables_fix_lines(inserts: list[_Insert], match_ports: dict[int, int], port: int, file: str) -> list[str]:
    """`iptables -I` (or `-A`) per CIDR, each but fail2ban's with its persistent line; a fail2ban jail's
    chain gets how to unban and ignore the addresses instead (fail2ban rebuilds its chains)."""
    lines: list[str] = []
    done: set[tuple[str, int, str]] = set()
    for chain, position, family, cidrs, where in inserts:
        command = "iptables" if family == 4 else "ip6tables"
        match_port = match_ports.get(family, port)
        fail2ban = chain.startswith("f2b-")
        if fail2ban:
            jail = chain.removeprefix("f2b-")
            lines.append(f"# fail2ban banned a PostFinance address in jail {jail}: unban it "
                         f"(fail2ban-client set {jail} unbanip ADDRESS) and add {cidrs.replace(',', ' ')} to "
                         f"ignoreip in /etc/fail2ban/jail.local; the line below takes effect at once, but "
                         f"fail2ban rebuilds {chain} when it restarts")
        for cidr in cidrs.split(","):
            if (chain, position, cidr) in done:
                continue
            done.add((chain, position, cidr))
            spec = f"-p tcp -s {cidr} --dport {match_port} -j ACCEPT"
            lines.append(f"{command} -I {chain} {position} {spec}" if position else f"{command} -A {chain} {spec}")
            if not fail2ban:
                lines.append(f"#   persist: in {file}, {where}: -A {chain} -s {cidr} -p tcp -m tcp "
                             f"--dport {match_port} -j ACCEPT")
    return lines


#: The chain ufw keeps its user rules in: its presence means ufw manages this dump.
UFW_USER_CHAIN = "ufw-user-input"


def _ufw_fix_lines(inserts: list[_Insert], match_ports: dict[int, int],
                   port: int) -> list[str]:
    """On a ufw-managed host, the fix goes through ufw: rules added with iptables directly are lost at
    the next `ufw reload`. `ufw insert 1` puts the rule first among the user rules, ahead of any deny."""
    lines = [("# ufw manages these rules: change them through ufw (direct iptables changes are lost at the "
              "next `ufw reload`)")]
    seen: set[str] = set()
    for _, _, family, cidrs, _ in inserts:
        for cidr in cidrs.split(","):
            if cidr not in seen:
                seen.add(cidr)
                lines.append(f"ufw insert 1 allow proto tcp from {cidr} to any port "
                             f"{match_ports.get(family, port)}")
    return lines


def _coarse(part: AddressSet, published: Any) -> list[str]:
    """The published networks that contain blocked addresses (whole ranges read better than fragments);
    the fragments themselves when the published ranges are unknown or do not cover them."""
    if not isinstance(published, AddressSet) or not part.issubset(published):
        return part.cidrs()
    networks = [n for n in published.networks() if AddressSet.parse(str(n)) & part]
    return [str(n) for n in networks]

