"""ufw: `ufw status verbose`, `ufw status numbered` (and plain `ufw status`) output, and ufw's own rule
files /etc/ufw/user.rules and user6.rules.

ufw is first match in the order it lists its rules; IPv4 and IPv6 rules live in separate kernel tables but
cover disjoint addresses, so one ordered chain models both. The default incoming policy comes from
`status verbose` ("Default: deny (incoming), ..."); the other forms do not show it, and ufw's own default
(deny incoming) is assumed and said in the notes.

Decisions worth knowing:
- `LIMIT` admits a source until it opens 6 connections within 30 seconds, then drops it. A burst of
  post-sale requests (retries, online plus deferred) can hit that. As for iptables/nftables rate limits,
  a LIMIT rule admits under a stated assumption (`Rule.assumption`, kind "rate-limit": one post-sale
  request stays under the limit); the analysis reports every place where such an assumption decides
  (firewall.rate_limited), so it is never a silent accept.
- A rule bound to an interface (`443/tcp on eth0`) is assumed to see the post-sale traffic (kind
  "interface"), as the iptables parser does.
- Application profiles (`Nginx Full`, `OpenSSH`, ...) are resolved for the common profiles shipped by
  Debian/Ubuntu packages; an unknown profile is unsupported and treated as not matching.
- Rule numbers (for `ufw insert N`) are the numbered positions: explicit in `status numbered`, the
  listing order otherwise (that is how ufw numbers them).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import unquote

from feedback_check.firewall._textconf import first_blocking_rule, fix_cidrs, port_ranges, single_chain
from feedback_check.firewall.connection import arrives_on, under_rate_limit
from feedback_check.firewall.evaluate import LayerEvaluation
from feedback_check.firewall.formats import ParseContext
from feedback_check.firewall.ipspace import AddressSet
from feedback_check.firewall.model import Action, FixContext, Origin, PortSet, Rule, Ruleset

NAME = "ufw"

#: Ports of the application profiles Debian/Ubuntu packages install in /etc/ufw/applications.d.
APP_PROFILES: dict[str, tuple[str, frozenset[str] | None]] = {
    "OpenSSH": ("22", frozenset({"tcp"})),
    "Nginx HTTP": ("80", frozenset({"tcp"})),
    "Nginx HTTPS": ("443", frozenset({"tcp"})),
    "Nginx Full": ("80,443", frozenset({"tcp"})),
    "Nginx QUIC": ("443", frozenset({"udp"})),
    "Apache": ("80", frozenset({"tcp"})),
    "Apache Secure": ("443", frozenset({"tcp"})),
    "Apache Full": ("80,443", frozenset({"tcp"})),
    "WWW": ("80", frozenset({"tcp"})),
    "WWW Secure": ("443", frozenset({"tcp"})),
    "WWW Full": ("80,443", frozenset({"tcp"})),
    "WWW Cache": ("8080", frozenset({"tcp"})),
    "Postfix": ("25", frozenset({"tcp"})),
    "Postfix SMTPS": ("465", frozenset({"tcp"})),
    "Postfix Submission": ("587", frozenset({"tcp"})),
    "Dovecot IMAP": ("143", frozenset({"tcp"})),
    "Dovecot Secure IMAP": ("993", frozenset({"tcp"})),
    "Dovecot POP3": ("110", frozenset({"tcp"})),
    "Dovecot Secure POP3": ("995", frozenset({"tcp"})),
    "Bind9": ("53", None),
    "CUPS": ("631", None),
    "Samba": ("137,138,139,445", None),
}

LIMIT_NOTE = "ufw LIMIT: a source opening 6 connections within 30 s is dropped"
ASSUMED_POLICY_NOTE = ("The default incoming policy is not in this output; ufw's default (deny incoming) is "
                       "assumed. `ufw status verbose` shows it.")

_ACTIONS = {"allow": Action.ACCEPT, "deny": Action.DROP, "reject": Action.REJECT, "limit": Action.ACCEPT}
_POLICIES = {"allow": Action.ACCEPT, "deny": Action.DROP, "reject": Action.REJECT}

_STATUS_LINE = re.compile(r"^Status:\s*(active|inactive)\b", re.IGNORECASE)
_DEFAULT_LINE = re.compile(r"^Default:\s*(allow|deny|reject)\s*\(incoming\)", re.IGNORECASE)
_NUMBER = re.compile(r"^\[\s*(\d+)\]\s*")
_ACTION_COLUMN = re.compile(r"\s(ALLOW|DENY|REJECT|LIMIT)(?:\s+(IN|OUT|FWD))?(?:\s+|$)")
_PORT_SPEC = re.compile(r"^(\d+(?:[:-]\d+)?(?:,\d+(?:[:-]\d+)?)*)(?:/(tcp|udp|any))?$")
_TUPLE = re.compile(r"^###\s*tuple\s*###\s*(.*)$")


def detect(text: str) -> bool:
    """`ufw status` output (Status: line plus the To/Action/From header) or a ufw rules file."""
    head = text[:20000]
    status = re.search(r"^Status:\s*(active|inactive)\b", head, re.MULTILINE | re.IGNORECASE)
    if status and (status.group(1).lower() == "inactive"
                   or re.search(r"^\s*To\s+Action\s+From\s*$", head, re.MULTILINE)):
        return True
    # Only ufw writes these markers; an iptables-save dump of a ufw host has the ufw chains but never them.
    return "### tuple ###" in head or "### RULES ###" in head


def parse(text: str, file: str, context: ParseContext) -> Ruleset:
    """Parse either form into one first-match chain with ufw's default incoming policy."""
    if "### tuple ###" in text or "### RULES ###" in text:
        return _parse_rules_file(text, file)
    return _parse_status(text, file)


# -- ufw status --------------------------------------------------------------------------------------


def _parse_status(text: str, file: str) -> Ruleset:
    rules: list[Rule] = []
    unparsed: list[Origin] = []
    notes: list[str] = []
    numbers: dict[int, int] = {}
    policy: Action | None = None
    policy_line: int | None = None
    inactive = False
    in_table = False
    position = 0
    for line_number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        if match := _STATUS_LINE.match(line):
            inactive = match.group(1).lower() == "inactive"
            continue
        if match := _DEFAULT_LINE.match(line):
            policy, policy_line = _POLICIES[match.group(1).lower()], line_number
            continue
        if re.match(r"^To\s+Action\s+From$", line):
            in_table = True
            continue
        if not in_table or re.fullmatch(r"[-\s]+", line):
            continue            # Logging:, New profiles:, the dashes under the header
        number_match = _NUMBER.match(line)
        body = line[number_match.end():] if number_match else line
        position = int(number_match.group(1)) if number_match else position + 1
        origin = Origin(file, line_number, raw.strip())
        rule = _status_rule(body, origin, notes)
        if rule is None:
            unparsed.append(origin)
            continue
        numbers[line_number] = position
        if rule.action is not Action.CONTINUE or rule.unsupported:
            rules.append(rule)
    if inactive:
        notes.append("ufw is inactive: it filters nothing, every source is admitted.")
        return single_chain(NAME, file, [], Action.ACCEPT, policy_origin=Origin(file, None, "ufw inactive"),
                            notes=notes)
    if policy is None:
        policy = Action.DROP
        notes.append(ASSUMED_POLICY_NOTE)
    policy_origin = Origin(file, policy_line, "Default incoming policy")
    return single_chain(NAME, file, rules, policy, policy_origin=policy_origin, unparsed=unparsed, notes=notes,
                        fix=UfwFix(numbers))


def _status_rule(body: str, origin: Origin, notes: list[str]) -> Rule | None:
    """One rule line of `ufw status` (`To  Action  From  # comment`), or None when it cannot be read."""
    body = re.sub(r"\s+#.*$", "", " " + body).strip()
    match = _ACTION_COLUMN.search(" " + body + " ")
    if match is None:
        return None
    to_text = (" " + body)[:match.start()].strip()
    from_text = (" " + body + " ")[match.end():].strip()
    verb, direction = match.group(1).lower(), (match.group(2) or "IN").upper()
    if direction != "IN":
        # Outgoing and routed rules never see an incoming connection to this host: listed, not evaluated.
        return Rule(Action.CONTINUE, origin, source=AddressSet.empty(), note=f"{direction} rule")
    v6 = "(v6)" in to_text or "(v6)" in from_text
    to_text = to_text.replace("(v6)", "").strip()
    from_text = from_text.replace("(v6)", "").strip()
    interface = None
    if on := re.search(r"\s+on\s+(\S+)$", to_text):
        interface, to_text = on.group(1), to_text[:on.start()].strip()
    destination_part = _endpoint(to_text, v6)
    source_part = _endpoint(from_text, v6)
    if destination_part is None or source_part is None:
        return None
    destination, ports, protocols, app_problem = destination_part
    source, source_ports, _, source_app_problem = source_part
    unsupported: list[str] = []
    action = _ACTIONS[verb]
    assumption = under_rate_limit(LIMIT_NOTE) if verb == "limit" else None
    if interface and not assumption:
        assumption = arrives_on([interface])
    if app_problem or source_app_problem:
        unsupported.append(app_problem or source_app_problem)
        action = Action.CONTINUE
    if source_ports is not None:
        # The platform connects from an ephemeral port: a rule bound to a source port is not judged.
        unsupported.append(f"source port {source_ports}")
        action = Action.CONTINUE
    return Rule(action, origin, source=source, protocols=protocols, ports=ports, interface=interface,
                destination=None if destination in (AddressSet.all_ipv4(), AddressSet.all_ipv6()) else destination,
                unsupported=tuple(unsupported), assumption=assumption)


def _endpoint(text: str, v6: bool) -> tuple[AddressSet, PortSet | None, frozenset[str] | None, str] | None:
    """A To/From column: `Anywhere`, an address, a port spec, `address port-spec`, or an app profile.

    Returns (addresses, ports, protocols, problem) or None when unreadable. Addresses stay empty for a
    destination given only as ports (the server's own address is not analysed).
    """
    family = AddressSet.all_ipv6() if v6 else AddressSet.all_ipv4()
    if text in ("", "Anywhere"):
        return family, None, None, ""
    words = text.split(None, 1)
    addresses = family
    rest = text
    try:
        addresses = AddressSet.parse(words[0]) & family
        rest = words[1] if len(words) > 1 else ""
    except ValueError:
        pass
    if words[0] == "Anywhere" and len(words) > 1:
        rest = words[1]
    if not rest:
        return addresses, None, None, ""
    if port_match := _PORT_SPEC.match(rest):
        protocol = port_match.group(2)
        protocols = None if protocol in (None, "any") else frozenset({protocol})
        try:
            ports = PortSet.of(*port_ranges(port_match.group(1)))
        except ValueError:
            return None
        return addresses, ports, protocols, ""
    if rest in APP_PROFILES:
        spec, protocols = APP_PROFILES[rest]
        return addresses, PortSet.of(*port_ranges(spec)), protocols, ""
    if re.fullmatch(r"[\w .+-]+", rest):
        return addresses, None, None, f"unknown application profile {rest!r} (its ports are not known here)"
    return None


# -- /etc/ufw/user.rules, user6.rules ----------------------------------------------------------------


def _parse_rules_file(text: str, file: str) -> Ruleset:
    """The `### tuple ###` comments describe each rule completely; the -A lines under them implement it."""
    rules: list[Rule] = []
    unparsed: list[Origin] = []
    numbers: dict[int, int] = {}
    notes = [ASSUMED_POLICY_NOTE.replace("`ufw status verbose` shows it.",
                                         "The rules file does not hold it (see /etc/default/ufw).")]
    position = 0
    for line_number, raw in enumerate(text.splitlines(), start=1):
        match = _TUPLE.match(raw.strip())
        if not match:
            continue
        origin = Origin(file, line_number, raw.strip())
        rule = _tuple_rule(match.group(1).split(), origin)
        if rule is None:
            unparsed.append(origin)
            continue
        position += 1           # ufw numbers outgoing rules too
        numbers[line_number] = position
        if rule.note != "out":
            rules.append(rule)
    if re.search(r"^:ufw6-user-input\b", text, re.MULTILINE) and rules:
        notes.append("IPv6 rules file: ufw numbers these rules after all IPv4 rules, so `ufw insert` positions "
                     "below count from the first IPv6 rule; check them with `ufw status numbered`.")
    policy_origin = Origin(file, None, "Default incoming policy (assumed deny)")
    return single_chain(NAME, file, rules, Action.DROP, policy_origin=policy_origin, unparsed=unparsed,
                        notes=notes, fix=UfwFix(numbers))


def _tuple_rule(fields: list[str], origin: Origin) -> Rule | None:
    """`ACTION PROTO DPORT DST SPORT SRC [DAPP SAPP] DIRECTION[_IFACE] [comment=...]`."""
    fields = [f for f in fields if not f.startswith("comment=")]
    if len(fields) not in (7, 9):
        return None
    verb = fields[0].split("_", 1)[0].lower()        # allow_log, deny_log-all: logging does not change it
    direction = fields[-1].split("_", 1)[0].lower()
    if verb not in _ACTIONS or direction not in ("in", "out", "fwd", "route"):
        return None
    if direction != "in":
        return Rule(Action.CONTINUE, origin, source=AddressSet.empty(), note="out")
    protocol, dport, _destination, sport, source_text = fields[1:6]
    try:
        source = AddressSet.parse(source_text)
        ports = None if dport == "any" else PortSet.of(*port_ranges(dport))
    except ValueError:
        return None
    unsupported: list[str] = []
    action = _ACTIONS[verb]
    assumption = under_rate_limit(LIMIT_NOTE) if verb == "limit" else None
    if sport != "any":
        unsupported.append(f"source port {sport}")
        action = Action.CONTINUE
    if len(fields) == 9 and fields[6] != "-":
        app = unquote(fields[6])
        if app not in APP_PROFILES and dport == "any":
            unsupported.append(f"unknown application profile {app!r}")
            action = Action.CONTINUE
    protocols = None if protocol == "any" else frozenset({protocol})
    return Rule(action, origin, source=source, protocols=protocols, ports=ports,
                unsupported=tuple(unsupported), assumption=assumption)


# -- fixes ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class UfwFix(FixContext):
    """Each rule's number as `ufw insert N` counts, by line."""

    numbers: dict[int, int] = field(default_factory=dict)


def fix_lines(ruleset: Ruleset, evaluation: LayerEvaluation, missing: AddressSet,
              context: ParseContext) -> list[str]:
    """`ufw insert N allow ...` before the first rule that refuses them, or `ufw allow` when only the
    default policy refuses them (appending is enough)."""
    if not missing:
        return []
    blocker = first_blocking_rule(evaluation, missing)
    numbers = ruleset.fix_context(UfwFix).numbers
    position = numbers.get(blocker.origin.line) if blocker and blocker.origin and blocker.origin.line else None
    lines = []
    if blocker is not None and blocker.origin is not None:
        lines.append(f"# before the rule that refuses them: {blocker.origin} {blocker.origin.text}")
    for cidr in fix_cidrs(missing, evaluation, context.published):
        command = f"allow from {cidr} to any port {context.port} proto tcp"
        lines.append(f"ufw insert {position} {command}" if position else f"ufw {command}")
    return lines
