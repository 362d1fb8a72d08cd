"""Address sets for the firewall formats: `feedback_check.ipspace`, where the platform profile (which
is not part of the firewall analysis) can use it too, re-exported under its old name."""

from feedback_check.ipspace import IPV4_MAX, IPV6_MAX, AddressSet, Interval, ipv4_bounds, parse_interval

__all__ = ["IPV4_MAX", "IPV6_MAX", "AddressSet", "Interval", "ipv4_bounds", "parse_interval"]
