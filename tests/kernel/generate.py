"""Random but reproducible firewall rulesets for the kernel ground-truth tests, and the source
addresses worth trying against them (published-range edges, addresses just outside, the edges of every
network a ruleset names, the 2019 hosts and a few unrelated addresses)."""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Iterable
from dataclasses import dataclass, field

from feedback_check.firewall.ipspace import AddressSet
from feedback_check.platform import load_platform

PLATFORM = load_platform()
PUBLISHED = [str(r.cidr) for r in PLATFORM.ranges.ranges]
LEGACY = list(PLATFORM.legacy_ranges)
OUTSIDE = ["198.51.100.7", "203.0.113.9", "10.1.2.3", "192.0.2.77", "100.64.3.4"]
IPV6_SOURCES = ["2001:db8:1::5", "2001:db8:2::1", "2001:db8:1:ffff::9"]
# Addresses a client may not use as a source (or that the lab's routing owns).
UNUSABLE = AddressSet.from_specs(["0.0.0.0/8", "127.0.0.0/8", "224.0.0.0/3", "198.18.0.0/15",
                                  "169.254.0.0/16"])


def edges(cidr: str) -> list[str]:
    """First and last address of a network or range, and the addresses just outside it."""
    network = AddressSet.parse(cidr)
    out = []
    for first, last in network.v4:
        for value in (first - 1, first, (first + last) // 2, last, last + 1):
            if 0 <= value <= 0xFFFFFFFF:
                out.append(str(ipaddress.IPv4Address(value)))
    return out


def sample_sources(named: Iterable[str]) -> list[str]:
    candidates: list[str] = []
    for cidr in [*PUBLISHED, *LEGACY, *named]:
        candidates += edges(cidr)
    candidates += OUTSIDE + IPV6_SOURCES
    usable = [a for a in dict.fromkeys(candidates) if ":" in a or a not in UNUSABLE]
    return usable


@dataclass
class Generated:
    name: str
    text: str
    named: list[str] = field(default_factory=list)     # networks the ruleset names (for edge sampling)
    ipsets: str | None = None                          # iptables: `ipset save` text
    rules_v6: str | None = None                        # iptables: ip6tables-restore text

    @property
    def sources(self) -> list[str]:
        return sample_sources(self.named)


class _Picker:
    def __init__(self, seed: int) -> None:
        self.random = random.Random(seed)
        self.named: list[str] = []

    def network(self) -> str:
        """A network inside, around or outside the published ranges."""
        r = self.random
        choice = r.random()
        if choice < 0.6:
            base = ipaddress.ip_network(r.choice(PUBLISHED))
            prefix = r.randint(base.prefixlen, 30)
            subnets = 1 << (prefix - base.prefixlen)
            index = r.randrange(subnets)
            network = ipaddress.ip_network((int(base.network_address) + index * (1 << (32 - prefix)), prefix))
        elif choice < 0.75:
            base = ipaddress.ip_network(r.choice(PUBLISHED))
            network = base.supernet(r.randint(1, 3))                 # covers a published range and more
        elif choice < 0.85:
            network = ipaddress.ip_network(r.choice(LEGACY))
        else:
            network = ipaddress.ip_network(r.choice(["198.51.100.0/24", "203.0.113.0/25", "10.0.0.0/8",
                                                     "192.0.2.64/26"]))
        text = str(network)
        self.named.append(text)
        return text

    def address_range(self) -> str:
        network = ipaddress.ip_network(self.random.choice(PUBLISHED))
        size = network.num_addresses
        a = self.random.randrange(size)
        b = self.random.randrange(a, size)
        first, last = network.network_address + a, network.network_address + b
        self.named.append(f"{first}-{last}")
        return f"{first}-{last}"

    def disjoint_networks(self, count: int) -> list[str]:
        chosen: list[str] = []
        taken = AddressSet.empty()
        for _ in range(count * 5):
            candidate = self.network()
            as_set = AddressSet.parse(candidate)
            if not as_set & taken:
                chosen.append(candidate)
                taken = taken | as_set
            if len(chosen) == count:
                break
        return chosen


PORT_SPECS_NFT = ["443", "{ 80, 443 }", "400-500", "1-1024", "8443", "!= 22", "{ 22, 8080 }", "443-443"]
VERDICTS_NFT = ["accept"] * 4 + ["drop"] * 2 + ["reject", "reject with tcp reset",
                                                 "reject with icmpx admin-prohibited"]


def nftables_ruleset(seed: int) -> Generated:
    """An nftables ruleset with variety: named/anonymous sets, intervals, negation, port sets and
    ranges, ct state, jumps/gotos to user chains with return, concatenations, verdict maps, ip6,
    inet and ip tables, several base chains on the input hook."""
    p = _Picker(seed)
    r = p.random
    set_elements = [p.network() for _ in range(r.randint(1, 3))] + [p.address_range()]
    chains: dict[str, list[str]] = {"input": []}
    user_chains = [f"c{i}" for i in range(r.randint(1, 3))]
    for name in user_chains:
        chains[name] = []

    def source_clause() -> str:
        kind = r.random()
        if kind < 0.35:
            return f"ip saddr {p.network()}"
        if kind < 0.5:
            return f"ip saddr {{ {p.network()}, {p.network()} }}"
        if kind < 0.6:
            return f"ip saddr {p.address_range()}"
        if kind < 0.72:
            return "ip saddr @allow"
        if kind < 0.82:
            return f"ip saddr != {p.network()}"
        if kind < 0.88:
            return "ip6 saddr 2001:db8:1::/48"
        return ""

    def port_clause() -> str:
        kind = r.random()
        if kind < 0.7:
            return f"tcp dport {r.choice(PORT_SPECS_NFT)}"
        if kind < 0.8:
            return f"meta l4proto tcp th dport {r.choice(['443', '{ 443, 80 }', '440-450'])}"
        if kind < 0.85:
            return "udp dport 443"
        return ""

    def rule(chain: str, depth: int) -> str:
        kind = r.random()
        parts = [source_clause(), port_clause()]
        if r.random() < 0.15 and not parts[0].startswith("ip6"):
            parts.insert(0, r.choice(["ct state new", "ct state { new, established }", "meta nfproto ipv4",
                                      'iifname "fbks0"', 'iif "lo"', "ct state established,related"]))
        if r.random() < 0.15:
            parts.append(r.choice(["counter", 'log prefix "fbk "']))
        later = [c for c in user_chains if user_chains.index(c) > depth - 1 and c != chain]
        if kind < 0.12 and later:
            verdict = f"{r.choice(['jump', 'goto'])} {r.choice(later)}"
        elif kind < 0.2 and chain != "input":
            verdict = "return"
        elif kind < 0.26:
            pair = p.disjoint_networks(2)
            if len(pair) < 2:
                return f"ip saddr {pair[0]} accept"
            a, b = pair
            return f"ip saddr vmap {{ {a} : accept, {b} : drop }}"
        elif kind < 0.32:
            a = p.network()
            b = p.network()
            return f"ip saddr . tcp dport {{ {a} . 443, {b} . 80 }} {r.choice(['accept', 'drop'])}"
        elif kind < 0.36:
            return "counter"
        else:
            verdict = r.choice(VERDICTS_NFT)
        comment = ' comment "generated"' if r.random() < 0.1 else ""
        return " ".join(x for x in (*parts, verdict) if x) + comment

    for depth, chain in enumerate(["input", *user_chains]):
        for _ in range(r.randint(2, 7)):
            chains[chain].append(rule(chain, depth))
    # Make sure the user chains are reached.
    chains["input"].insert(r.randrange(len(chains["input"]) + 1), f"tcp dport {{ 80, 443 }} jump {user_chains[0]}")
    policy = r.choice(["accept", "drop"])
    lines = ["table inet fbk {",
             "  set allow {", "    type ipv4_addr", "    flags interval",
             f"    elements = {{ {', '.join(_disjoint(set_elements))} }}", "  }",
             "  chain input {",
             f"    type filter hook input priority {r.choice(['0', 'filter', '-5'])}; policy {policy};"]
    lines += [f"    {x}" for x in chains["input"]]
    lines.append("  }")
    for chain in user_chains:
        lines.append(f"  chain {chain} {{")
        lines += [f"    {x}" for x in chains[chain]]
        lines.append("  }")
    lines.append("}")
    if r.random() < 0.5:
        # A second base chain on the input hook (another table, another family), with its own policy.
        other = p.network()
        lines += ["table ip fbk4 {", "  chain input {",
                  f"    type filter hook input priority {r.choice(['10', '-10'])}; policy accept;",
                  f"    ip saddr {other} tcp dport 443 {r.choice(['drop', 'reject', 'accept'])}",
                  f"    ip saddr != {p.network()} tcp dport 80 drop",
                  "  }", "}"]
    return Generated(f"nft-{seed}", "\n".join(lines) + "\n", p.named)


def _disjoint(specs: list[str]) -> list[str]:
    """nft refuses overlapping elements in an interval set without auto-merge: merge them first."""
    return AddressSet.from_specs(specs).cidrs()


PORT_SPECS_IPT = ["--dport 443", "--dport 80", "--dport 400:500", "-m multiport --dports 80,443",
                  "! --dport 22", "--dport 1:1024"]


def iptables_ruleset(seed: int) -> Generated:
    """iptables-restore text (and ipset data) with variety: -s with !, port ranges, multiport, user
    chains with -j/-g and RETURN, conntrack states, ipset hash:net with nomatch, REJECT and DROP."""
    p = _Picker(seed)
    r = p.random
    set_entries = [p.network() for _ in range(r.randint(1, 3))]
    nomatch = p.network()
    ipsets = ("create pf hash:net family inet hashsize 1024 maxelem 65536\n"
              + "".join(f"add pf {e}\n" for e in set_entries)
              + f"add pf {nomatch} nomatch\n")
    user = [f"U{i}" for i in range(r.randint(1, 3))]

    def rule(chain: str, depth: int) -> str:
        parts = [f"-A {chain}"]
        kind = r.random()
        if kind < 0.45:
            parts.append(f"{'! ' if r.random() < 0.2 else ''}-s {p.network()}")
        elif kind < 0.55:
            parts.append(f"-s {p.network()},{p.network()}")
        elif kind < 0.7:
            parts.append(f"-m set {'! ' if r.random() < 0.15 else ''}--match-set pf src")
        if r.random() < 0.75:
            parts.append("-p tcp")
            if r.random() < 0.85:
                parts.append(r.choice(PORT_SPECS_IPT))
        if r.random() < 0.15:
            parts.append(r.choice(["-m conntrack --ctstate NEW", "-m state --state ESTABLISHED,RELATED",
                                   "-m conntrack --ctstate NEW,ESTABLISHED", "-i lo", "-i fbks0"]))
        later = [c for c in user if user.index(c) > depth - 1 and c != chain]
        target = r.random()
        if target < 0.12 and later:
            parts.append(f"-{r.choice(['j', 'g'])} {r.choice(later)}")
        elif target < 0.2 and chain != "INPUT":
            parts.append("-j RETURN")
        elif target < 0.25:
            parts.append('-j LOG --log-prefix "fbk "')
        else:
            parts.append(r.choice(["-j ACCEPT"] * 4 + ["-j DROP"] * 2 + ["-j REJECT",
                                                                        "-j REJECT --reject-with tcp-reset"]))
        text = " ".join(parts)
        if "-p tcp" not in text:
            text = text.replace("-j REJECT --reject-with tcp-reset", "-j REJECT")    # needs -p tcp
        if "-p tcp" not in text and ("--dport" in text or "--dports" in text):
            text = text.replace(f"-A {chain}", f"-A {chain} -p tcp", 1)
        return text

    policy = r.choice(["ACCEPT", "DROP"])
    lines = ["*filter", f":INPUT {policy} [0:0]", ":FORWARD DROP [0:0]", ":OUTPUT ACCEPT [0:0]"]
    lines += [f":{c} - [0:0]" for c in user]
    body: list[str] = []
    for depth, chain in enumerate(["INPUT", *user]):
        body += [rule(chain, depth) for _ in range(r.randint(2, 6))]
    body.insert(r.randrange(len([b for b in body if b.startswith("-A INPUT")]) + 1),
                f"-A INPUT -p tcp -m multiport --dports 80,443 -j {user[0]}")
    lines += body + ["COMMIT"]
    rules_v6 = "*filter\n:INPUT DROP [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n" \
               "-A INPUT -s 2001:db8:1::/48 -p tcp --dport 443 -j ACCEPT\nCOMMIT\n"
    return Generated(f"iptables-{seed}", "\n".join(lines) + "\n", p.named + set_entries + [nomatch], ipsets,
                     rules_v6)
