"""Fix lines: `iptables -I CHAIN N ...` before the rule that blocks, and how to make them persistent."""

from __future__ import annotations

from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from feedback_check.firewall.evaluate import LayerEvaluation
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
    positions, match_ports, forwarded, docker_user = fix.positions, fix.match_ports, fix.forwarded, fix.docker_user
    inserts: list[tuple[str, int, int, str, str]] = []    # (chain, position, family, cidrs, where)
    lines: list[str] = []
    for decision in evaluation.deciding(missing):
        if decision.action is Action.ACCEPT:
            continue
        for family, part in ((4, decision.addresses.ipv4()), (6, decision.addresses.ipv6())):
            if not part:
                continue
            chain = decision.chain.removeprefix("ip6:")
            position = 0
            if forwarded.get(family) and docker_user and (decision.by_policy or chain != "DOCKER-USER"):
                chain, position = "DOCKER-USER", 1
                where = "at the top of DOCKER-USER (Docker evaluates it first for published ports)"
            elif decision.by_policy or decision.origin is None or decision.origin.line is None \
                    or decision.origin.line not in positions:
                where = f"at the end of the {chain} chain, before the COMMIT of its filter table"
            else:
                _, chain, position = positions[decision.origin.line]
                where = f"before line {decision.origin.line}"
            inserts.append((chain, position, family, ",".join(_coarse(part, context.published)), where))
    inserts.sort(key=lambda x: (x[0], -x[1]))
    if UFW_USER_CHAIN in ruleset.chains and not forwarded.get(4) and not forwarded.get(6):
        return _ufw_fix_lines(inserts, match_ports, context.port)
    done: set[tuple[str, int, str]] = set()
    for chain, position, family, cidrs, where in inserts:
        command = "iptables" if family == 4 else "ip6tables"
        port = match_ports.get(family, context.port)
        if chain.startswith("f2b-"):
            jail = chain.removeprefix("f2b-")
            lines.append(f"# fail2ban banned a PostFinance address in jail {jail}: unban it "
                         f"(fail2ban-client set {jail} unbanip ADDRESS) and add {cidrs.replace(',', ' ')} to "
                         f"ignoreip in /etc/fail2ban/jail.local; the line below takes effect at once, but "
                         f"fail2ban rebuilds {chain} when it restarts")
        for cidr in cidrs.split(","):
            if (chain, position, cidr) in done:
                continue
            done.add((chain, position, cidr))
            spec = f"-p tcp -s {cidr} --dport {port} -j ACCEPT"
            if position:
                lines.append(f"{command} -I {chain} {position} {spec}")
            else:
                lines.append(f"{command} -A {chain} {spec}")
            if not chain.startswith("f2b-"):
                lines.append(f"#   persist: in {ruleset.file}, {where}: -A {chain} -s {cidr} -p tcp -m tcp "
                             f"--dport {port} -j ACCEPT")
    return lines


#: The chain ufw keeps its user rules in: its presence means ufw manages this dump.
UFW_USER_CHAIN = "ufw-user-input"


def _ufw_fix_lines(inserts: list[tuple[str, int, int, str, str]], match_ports: dict[int, int],
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

