"""What a new TCP connection from the internet to the shop matches: the vocabulary every firewall format
shares (formats import this module, not each other).

* Internal interfaces (`lo`, Docker and other container bridges, tunnels) never carry such a connection:
  a rule limited to one of them never matches PostFinance's traffic.
* Any other input interface is assumed to be the one the connection arrives on; a rate limit is assumed
  not to be reached by one post-sale request. Rules decided that way carry an `Assumption`
  (`model.Rule.assumption`) so the analysis can say where the verdict depends on it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from feedback_check.firewall.model import Assumption, AssumptionKind

#: Interfaces that never carry a connection from the internet to the shop (iptables wildcard `+`).
INTERNAL_INTERFACE = re.compile(
    r"^(lo|docker\d*|br-.*|veth.*|virbr.*|lxcbr.*|lxdbr.*|cni.*|flannel.*|cali.*|weave|kube-.*|podman.*|"
    r"cilium.*|vxlan\.calico|tunl0)\+?$")


def internal_interface(name: str) -> bool:
    """Whether interface `name` (a trailing `+` or nftables `*` is a wildcard) is internal."""
    return bool(INTERNAL_INTERFACE.match(name[:-1] + "+" if name.endswith("*") else name))


def arrives_on(interfaces: Sequence[str]) -> Assumption:
    """The assumption of a rule that matches only traffic arriving on `interfaces` (none internal)."""
    return Assumption(AssumptionKind.INTERFACE, f"arrives on interface {', '.join(interfaces)}")


def under_rate_limit(limit: str) -> Assumption:
    """The assumption of a rule whose match depends on rate limit `limit` (its own words)."""
    return Assumption(AssumptionKind.RATE_LIMIT, limit)
