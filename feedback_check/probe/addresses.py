"""What kind of address or name a post-sale URL points to, seen from PostFinance on the internet.

`address_class` names why an address cannot be reached from the internet (private, loopback, ...);
`is_local_name` recognises names that only resolve inside a network; `this_machine_addresses` lists the
addresses of the machine running the probe (so the probe can say it may have bypassed the perimeter).
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from pathlib import Path

logger = logging.getLogger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Ranges PostFinance's servers on the internet cannot reach, most specific reason first. The order
# matters where ranges nest (e.g. 192.0.0.0/24 inside nothing else, but 0.0.0.0/32 inside 0.0.0.0/8).
_CLASSES: tuple[tuple[str, str], ...] = (
    # IPv4
    ("0.0.0.0/32", "unspecified"),
    ("0.0.0.0/8", "reserved (\"this network\", RFC 791)"),
    ("127.0.0.0/8", "loopback"),
    ("10.0.0.0/8", "private (RFC 1918)"),
    ("172.16.0.0/12", "private (RFC 1918)"),
    ("192.168.0.0/16", "private (RFC 1918)"),
    ("100.64.0.0/10", "CGNAT (RFC 6598)"),
    ("169.254.0.0/16", "link-local"),
    ("192.0.0.0/24", "reserved (IETF protocol assignments, RFC 6890)"),
    ("192.0.2.0/24", "documentation"),
    ("198.51.100.0/24", "documentation"),
    ("203.0.113.0/24", "documentation"),
    ("198.18.0.0/15", "benchmarking (RFC 2544)"),
    ("224.0.0.0/4", "multicast"),
    ("255.255.255.255/32", "broadcast"),
    ("240.0.0.0/4", "reserved"),
    # IPv6
    ("::/128", "unspecified"),
    ("::1/128", "loopback"),
    ("fe80::/10", "link-local"),
    ("fec0::/10", "site-local (deprecated)"),
    ("fc00::/7", "unique local (IPv6)"),
    ("2001:db8::/32", "documentation"),
    ("3fff::/20", "documentation"),
    ("100::/64", "discard-only (RFC 6666)"),
    ("64:ff9b:1::/48", "local-use NAT64 (RFC 8215)"),
    ("2001:2::/48", "benchmarking (RFC 5180)"),
    ("ff00::/8", "multicast"),
)
_NETWORKS = tuple((ipaddress.ip_network(cidr), reason) for cidr, reason in _CLASSES)

#: Suffixes of names that only resolve inside a network (RFC 6761, RFC 6762 appendix G, RFC 8375)
#: or on the local machine.
LOCAL_SUFFIXES = ("localhost", "local", "internal", "lan", "home.arpa", "intranet", "corp", "home",
                  "private", "localdomain")


def parse_address(ip: str) -> IPAddress:
    """An IPv4/IPv6 address from text; brackets and an IPv6 zone (`%eth0`) are accepted and dropped."""
    text = ip.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    text = text.split("%", 1)[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        raise ValueError(f"not an IP address: {ip!r}") from None


def address_class(ip: str) -> str | None:
    """None when `ip` is a public (globally routable) address, else a short reason why PostFinance's
    servers cannot reach it ("loopback", "private (RFC 1918)", ...). Raises ValueError for non-addresses."""
    address = parse_address(ip)
    if isinstance(address, ipaddress.IPv6Address):
        # An IPv4-mapped or 6to4 address is as reachable as the IPv4 address inside it.
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is not None:
            inner = address_class(str(embedded))
            return f"{inner}, embedded IPv4 {embedded}" if inner else None
        if address in ipaddress.ip_network("64:ff9b::/96"):
            inner = address_class(str(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)))
            return f"{inner}, via NAT64" if inner else None
    for network, reason in _NETWORKS:
        if address.version == network.version and address in network:
            return reason
    if not address.is_global:
        # Anything else the IANA special-purpose registries mark as not globally reachable.
        return "reserved"
    return None


def is_local_name(host: str) -> bool:
    """True for names that only resolve on this machine or inside a network: localhost, *.localhost,
    *.local, *.internal, *.lan, *.home.arpa (and similar), and single-label names such as `shop`."""
    name = host.strip().rstrip(".").lower()
    if not name:
        return False
    try:
        parse_address(name)
        return False  # an address is not a name; address_class judges it
    except ValueError:
        pass
    if "." not in name:
        return True
    return any(name == suffix or name.endswith("." + suffix) for suffix in LOCAL_SUFFIXES)


def this_machine_addresses() -> frozenset[str]:
    """Addresses of this machine's interfaces, best effort and without sending any packet: the kernel's
    local routing table (Linux), the IPv6 interface list, the host name's addresses and the source address
    the kernel would pick for outbound traffic. Loopback addresses are always included."""
    found: set[str] = {"127.0.0.1", "::1"}
    found |= _linux_ipv4_local()
    found |= _linux_ipv6_local()
    found |= _hostname_addresses()
    found |= _outbound_source_addresses()
    normalised = set()
    for text in found:
        try:
            normalised.add(str(parse_address(text)))
        except ValueError:
            continue
    return frozenset(normalised)


def _linux_ipv4_local(path: str = "/proc/net/fib_trie") -> set[str]:
    """IPv4 addresses marked `/32 host LOCAL` in the kernel's local table."""
    try:
        lines = Path(path).read_text(encoding="ascii", errors="replace").splitlines()
    except OSError:
        return set()
    out: set[str] = set()
    previous = ""
    for line in lines:
        stripped = line.strip()
        if stripped == "/32 host LOCAL" and previous.startswith("|-- "):
            out.add(previous[4:].strip())
        previous = stripped
    return out


def _linux_ipv6_local(path: str = "/proc/net/if_inet6") -> set[str]:
    try:
        lines = Path(path).read_text(encoding="ascii", errors="replace").splitlines()
    except OSError:
        return set()
    out: set[str] = set()
    for line in lines:
        fields = line.split()
        if fields and len(fields[0]) == 32:
            try:
                out.add(str(ipaddress.IPv6Address(int(fields[0], 16))))
            except ValueError:
                continue
    return out


def _hostname_addresses() -> set[str]:
    try:
        infos = socket.getaddrinfo(socket.gethostname(), None, proto=socket.IPPROTO_TCP)
    except OSError:
        return set()
    return {str(info[4][0]) for info in infos}


def _outbound_source_addresses() -> set[str]:
    """The source address the kernel picks towards the internet. Connecting a UDP socket only selects
    a route; no packet is sent. The destinations are documentation addresses."""
    out: set[str] = set()
    for family, destination in ((socket.AF_INET, "192.0.2.1"), (socket.AF_INET6, "2001:db8::1")):
        try:
            with socket.socket(family, socket.SOCK_DGRAM) as sock:
                sock.connect((destination, 9))
                out.add(str(sock.getsockname()[0]))
        except OSError as e:
            logger.debug("no outbound route for %s: %s", destination, e)
    return out
