"""nginx: `allow` / `deny` (ngx_http_access_module) for the location that serves the feedback URL.

The parser reads the configuration (comments, quoted strings, multi-line directives, `include` with
globs), picks the server block as nginx does (listen port, then server_name: exact, longest `*.`
wildcard, longest `.*` wildcard, first matching regex, else the default server), then the location as
nginx does (exact `=`, longest prefix, `^~` stops the regex search, nested locations first, then regex
`~` / `~*` in order of appearance). Access rules inherit downwards: the deepest level (http, server,
location, nested location) with any allow/deny of its own holds the whole list; it is first match, and a
request no rule matches is admitted.

`satisfy all` (the default) with `auth_basic` / `auth_request`: an admitted source still has to send
credentials, which PostFinance's post-sale does not: it gets 401 (said in the notes). With `satisfy any`
a source passes on its address or on credentials; without credentials the address decides. Access
rules inside `limit_except` depend on the request method, and `if` blocks testing the client address
(directly, or through `geo` / `map` variables) can refuse requests: both are unsupported (uncertain).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from feedback_check.errors import ConfigError
from feedback_check.firewall._textconf import blocking_decisions, fix_cidrs, single_chain
from feedback_check.firewall.evaluate import LayerEvaluation
from feedback_check.firewall.formats import ParseContext
from feedback_check.firewall.includes import first_included, has_glob
from feedback_check.firewall.ipspace import AddressSet
from feedback_check.firewall.model import Action, FixContext, Origin, Rule, Ruleset
from feedback_check.inputfile import IncludeBudget

NAME = "nginx"
MAX_INCLUDE_DEPTH = 16
DEFAULT_LISTEN_PORT = 80
#: Files nginx packages ship that hold no access rules: a missing copy of them does not matter.
STOCK_INCLUDES = frozenset({"mime.types", "fastcgi_params", "fastcgi.conf", "proxy_params", "uwsgi_params",
                            "scgi_params", "koi-utf", "koi-win", "win-utf"})
CLIENT_ADDRESS_VARIABLES = ("$remote_addr", "$binary_remote_addr", "$realip_remote_addr")


@dataclass
class Directive:
    """One directive, with its block (`None` for a simple directive) and where it was written."""

    name: str
    args: list[str]
    file: str
    line: int
    block: list[Directive] | None = None
    origin_text: str = ""

    @property
    def origin(self) -> Origin:
        return Origin(self.file, self.line, self.origin_text or " ".join([self.name, *self.args]))

    def children(self, name: str) -> list[Directive]:
        return [d for d in self.block or [] if d.name == name]

    def describe(self) -> str:
        words = self.args or [name for d in self.children("server_name") for name in d.args][:3]
        return f"{self.name} {' '.join(words)}".strip() + f" ({self.file}:{self.line})"


@dataclass
class _Reader:
    context: ParseContext
    unparsed: list[Origin] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: include expansion of the whole file: files, depth and bytes in total
    includes: IncludeBudget = field(default_factory=lambda: IncludeBudget(depth=MAX_INCLUDE_DEPTH))


# -- reading --------------------------------------------------------------------------------------------


def _tokens(text: str, file: str) -> list[tuple[str, int, bool]]:
    """(token, line, quoted). `{`, `}` and `;` are tokens of their own; `#` starts a comment. One pass
    over the text: each case below moves on from where the one before stopped (linear time, whatever
    the input)."""
    out: list[tuple[str, int, bool]] = []
    i, line, n = 0, 1, len(text)
    while i < n:
        char = text[i]
        if char == "\n":
            line += 1
            i += 1
        elif char.isspace():
            i += 1
        elif char == "#":
            i = _comment_end(text, i)
        elif char in "{};":
            out.append((char, line, False))
            i += 1
        elif char in "\"'":
            value, i, end_line = _quoted(text, i, line, file)
            out.append((value, line, True))
            line = end_line
        else:
            end = _word_end(text, i)
            out.append((text[i:end], line, False))
            i = end
    return out


def _comment_end(text: str, start: int) -> int:
    """Where the comment at `start` ends: at its line end (left for the caller), or the end of the text."""
    end = text.find("\n", start)
    return len(text) if end < 0 else end


def _quoted(text: str, start: int, line: int, file: str) -> tuple[str, int, int]:
    """The quoted string at `start` (line `line`): its value (a backslash keeps the character after it),
    where the text after the closing quote starts, and the line that is on."""
    quote, n, start_line = text[start], len(text), line
    j, value = start + 1, []
    while j < n and text[j] != quote:
        if text[j] == "\\" and j + 1 < n:
            j += 1
        if text[j] == "\n":
            line += 1
        value.append(text[j])
        j += 1
    if j >= n:
        raise ConfigError("unterminated quoted string", file=file, line=start_line)
    return "".join(value), j + 1, line


def _word_end(text: str, start: int) -> int:
    """Where the bare word at `start` ends: at a space, `;`, `{` or `}`, a `${variable}` included."""
    j, n = start, len(text)
    while j < n and not text[j].isspace() and text[j] not in ";{}":
        j += 1
        if j < n and text[j] == "{" and text[j - 1] == "$":      # ${variable}
            j = text.find("}", j) + 1 or n
    return j


def _parse_block(tokens: list[tuple[str, int, bool]], position: int, file: str, nested: bool
                 ) -> tuple[list[Directive], int]:
    directives: list[Directive] = []
    words: list[tuple[str, int]] = []
    while position < len(tokens):
        token, line, quoted = tokens[position]
        position += 1
        if token == ";" and not quoted:
            if words:
                directives.append(Directive(words[0][0], [w for w, _ in words[1:]], file, words[0][1]))
            words = []
        elif token == "{" and not quoted:
            if not words:
                raise ConfigError("a block without a directive name", file=file, line=line)
            block, position = _parse_block(tokens, position, file, nested=True)
            directives.append(Directive(words[0][0], [w for w, _ in words[1:]], file, words[0][1], block))
            words = []
        elif token == "}" and not quoted:
            if not nested:
                raise ConfigError("unexpected '}'", file=file, line=line)
            if words:
                raise ConfigError(f"directive {words[0][0]!r} is not terminated by ';'", file=file,
                                  line=words[0][1])
            return directives, position
        else:
            words.append((token, line))
    if nested:
        raise ConfigError("unexpected end of file: a block is not closed with '}'", file=file,
                          line=tokens[-1][1] if tokens else None)
    if words:
        raise ConfigError(f"directive {words[0][0]!r} is not terminated by ';'", file=file, line=words[0][1])
    return directives, position


def _read(text: str, file: str, reader: _Reader, depth: int = 0) -> list[Directive]:
    directives, _ = _parse_block(_tokens(text, file), 0, file, nested=False)
    return _expand_includes(directives, file, reader, depth)


def _expand_includes(directives: list[Directive], file: str, reader: _Reader, depth: int) -> list[Directive]:
    out: list[Directive] = []
    for directive in directives:
        if directive.name == "include" and directive.block is None and directive.args:
            out.extend(_include(directive, file, reader, depth))
            continue
        if directive.block is not None:
            directive.block = _expand_includes(directive.block, file, reader, depth)
        out.append(directive)
    return out


def _include_candidates(pattern: str, file: str, context: ParseContext) -> list[Path]:
    """Where an include may be: nginx resolves relative paths against its prefix (/etc/nginx), which
    for a copied configuration is `base_dir`, the file's folder or the folder above it."""
    path = Path(pattern)
    folder = Path(file).parent
    bases = [b for b in (context.base_dir, folder, folder.parent) if b is not None]
    if path.is_absolute():
        relative = [Path(*path.parts[3:])] if path.parts[1:3] == ("etc", "nginx") else []
        fallbacks = relative + [Path(*path.parts[1:])]
        if not has_glob(pattern):
            fallbacks.append(Path(path.name))
        copied = [base / r for base in bases for r in fallbacks]
        # A configuration copied elsewhere (the analysed file is not under /etc/nginx) resolves its
        # absolute includes in the copy first: this machine's own /etc/nginx is another server's.
        inside = Path(file).resolve().is_relative_to(Path(*path.parts[:3]).resolve())
        return [path, *copied] if inside else [*copied, path]
    return [base / path for base in bases]


def _include(directive: Directive, file: str, reader: _Reader, depth: int) -> list[Directive]:
    pattern = directive.args[0]
    if depth >= MAX_INCLUDE_DEPTH:
        raise ConfigError(f"includes nest deeper than {MAX_INCLUDE_DEPTH} (a loop?)", file=directive.file,
                          line=directive.line)
    matches = first_included(_include_candidates(pattern, file, reader.context), pattern)
    out: list[Directive] = []
    for match in matches:
        text = reader.includes.read(match, file=directive.file, line=directive.line, depth=depth)
        out.extend(_read(text, match, reader, depth + 1))
    if not matches and not has_glob(pattern) and Path(pattern).name not in STOCK_INCLUDES:
        reader.unparsed.append(directive.origin)
        reader.notes.append(f"include {pattern} ({directive.file}:{directive.line}) was not found next to the "
                            "file: allow/deny rules in it are not analysed.")
    return out


# -- choosing the server and the location ---------------------------------------------------------------


def _listen_port(args: list[str]) -> int | None:
    spec = args[0] if args else ""
    if spec.startswith("unix:"):
        return None
    if spec.isdigit():
        return int(spec)
    match = re.search(r":(\d+)$", spec)
    return int(match.group(1)) if match else DEFAULT_LISTEN_PORT


def _server_ports(server: Directive) -> dict[int, bool]:
    """Listen port -> default_server flag."""
    listens = server.children("listen")
    if not listens:
        return {DEFAULT_LISTEN_PORT: False}
    ports: dict[int, bool] = {}
    for listen in listens:
        port = _listen_port(listen.args)
        if port is not None:
            ports[port] = ports.get(port, False) or any(a in ("default_server", "default") for a in listen.args)
    return ports


def _names(server: Directive) -> list[str]:
    return [name for d in server.children("server_name") for name in d.args]


def _name_match(host: str, servers: list[Directive]) -> Directive | None:
    """nginx's order: exact, longest leading wildcard, longest trailing wildcard, first regex."""
    host = host.lower().rstrip(".")
    best: tuple[int, int, Directive] | None = None       # (kind rank, length, server): lower rank wins
    for server in servers:
        for name in _names(server):
            name_l = name.lower()
            if name_l.startswith("~"):
                continue
            if name_l == host:
                return server
            if name_l.startswith(".") and (host == name_l[1:] or host.endswith(name_l)) or name_l.startswith("*.") and host.endswith(name_l[1:]):
                candidate = (1, len(name_l), server)
            elif name_l.endswith(".*") and host.startswith(name_l[:-1]):
                candidate = (2, len(name_l), server)
            else:
                continue
            if best is None or (candidate[0], -candidate[1]) < (best[0], -best[1]):
                best = candidate
    if best is not None:
        return best[2]
    for server in servers:
        for name in _names(server):
            if name.startswith("~"):
                try:
                    if re.search(_python_regex(name[1:]), host):
                        return server
                except re.error:
                    continue
    return None


def _python_regex(pattern: str) -> str:
    return re.sub(r"\(\?<(?=[A-Za-z_])", "(?P<", pattern)


def _choose_server(servers: list[Directive], context: ParseContext, reader: _Reader) -> Directive | None:
    listening = [s for s in servers if context.port in _server_ports(s)]
    if not listening:
        if servers:
            reader.notes.append(f"No server block in this configuration listens on port {context.port}; "
                                "the server was chosen among all of them by name.")
        listening = servers
    if not listening:
        return None
    chosen = _name_match(context.host, listening) if context.host else None
    if chosen is None:
        defaults = [s for s in listening if _server_ports(s).get(context.port)]
        chosen = defaults[0] if defaults else listening[0]
        why = "no server_name matches the host" if context.host else "no host was given"
        reader.notes.append(f"{why}: the default server for port {context.port} serves the request.")
    return chosen


@dataclass(frozen=True)
class _Location:
    directive: Directive
    modifier: str          # "", "=", "^~", "~", "~*"
    pattern: str


def _locations(block: list[Directive] | None, reader: _Reader) -> list[_Location]:
    out = []
    for d in block or []:
        if d.name != "location" or d.block is None or not d.args:
            continue
        args = list(d.args)
        if len(args) == 1:
            match = re.match(r"^(=|\^~|~\*|~)(.+)$", args[0])
            args = [match.group(1), match.group(2)] if match else ["", args[0]]
        modifier, pattern = args[0], args[-1]
        if pattern.startswith("@"):
            continue                              # named locations serve only internal redirects
        out.append(_Location(d, modifier if len(args) > 1 else "", pattern))
    return out


def _find_location(block: list[Directive] | None, path: str, reader: _Reader) -> list[Directive]:
    """The chain of location blocks (outermost first) nginx picks for `path` inside `block`."""
    locations = _locations(block, reader)
    for location in locations:
        if location.modifier == "=" and location.pattern == path:
            return [location.directive]
    prefixes = [loc for loc in locations if loc.modifier in ("", "^~") and path.startswith(loc.pattern)]
    best = max(prefixes, key=lambda loc: len(loc.pattern), default=None)
    chosen: list[Directive] = []
    if best is not None:
        chosen = [best.directive]
        nested = _find_location(best.directive.block, path, reader)
        if nested and _is_final(nested[-1], path, reader):
            return chosen + nested
        chosen += nested
        if best.modifier == "^~":
            return chosen
    for location in locations:
        if location.modifier in ("~", "~*"):
            flags = re.IGNORECASE if location.modifier == "~*" else 0
            try:
                if re.search(_python_regex(location.pattern), path, flags):
                    return [location.directive]
            except re.error:
                reader.unparsed.append(location.directive.origin)
                reader.notes.append(f"location regex {location.pattern!r} ({location.directive.file}:"
                                    f"{location.directive.line}) could not be evaluated.")
    return chosen


def _is_final(directive: Directive, path: str, reader: _Reader) -> bool:
    """Whether a nested match ends the search (an exact or regex location)."""
    location = next(iter(_locations([directive], reader)), None)
    return location is not None and location.modifier in ("=", "~", "~*")


# -- access rules ---------------------------------------------------------------------------------------


def _access_rules(level: Directive) -> list[Directive]:
    return [d for d in level.block or [] if d.name in ("allow", "deny") and d.block is None]


def _last_setting(levels: list[Directive], name: str) -> Directive | None:
    found = None
    for level in levels:
        for d in level.children(name):
            found = d
    return found


def _rule(directive: Directive, reader: _Reader) -> Rule | None:
    action = Action.ACCEPT if directive.name == "allow" else Action.DROP
    spec = directive.args[0] if directive.args else ""
    if spec == "all":
        return Rule(action, directive.origin)
    if spec.startswith("unix:"):
        return Rule(action, directive.origin, source=AddressSet.empty(), note="unix socket clients only")
    try:
        return Rule(action, directive.origin, source=AddressSet.parse(spec))
    except ValueError:
        reader.unparsed.append(directive.origin)
        return None


def _address_variables(top: list[Directive]) -> set[str]:
    """Variables computed from the client address by `geo` or `map $remote_addr` blocks."""
    names: set[str] = set()
    stack = list(top)
    while stack:
        d = stack.pop()
        if d.name == "geo" and d.args:
            names.add(d.args[-1])
        if d.name == "map" and len(d.args) >= 2 and d.args[0] in CLIENT_ADDRESS_VARIABLES:
            names.add(d.args[1])
        if d.block is not None and d.name in ("http", "server"):
            stack.extend(d.block)
    return names


def _uncertain_rules(levels: list[Directive], address_variables: set[str]) -> list[Rule]:
    out = []
    watched = CLIENT_ADDRESS_VARIABLES + tuple(address_variables)
    for level in levels:
        for d in level.block or []:
            if d.name == "limit_except" and d.block and _access_rules(d):
                out.append(Rule(Action.CONTINUE, d.origin, unsupported=(
                    f"limit_except {' '.join(d.args)}: its allow/deny rules apply to other request methods",)))
            if d.name == "if" and any(v in " ".join(d.args) for v in watched):
                out.append(Rule(Action.CONTINUE, d.origin, unsupported=(
                    f"if {' '.join(d.args)}: a condition on the client address may refuse the request",)))
    return out


def detect(text: str) -> bool:
    """nginx syntax: server/location/http blocks, or allow/deny directives ending in `;`."""
    head = text[:100000]
    if re.search(r"^\s*(server|http|location\s+[^{;]*|upstream\s+\S+)\s*\{", head, re.MULTILINE):
        return True
    return bool(re.search(r"^\s*(allow|deny)\s+(all|[0-9a-fA-F:.]+(/\d+)?)\s*;", head, re.MULTILINE))


def parse(text: str, file: str, context: ParseContext) -> Ruleset:
    """The access rules of the location serving context.path on the server chosen for context.host."""
    reader = _Reader(context)
    top = _read(text, file, reader)
    levels = _levels(top, file, context, reader)
    holder = next((level for level in reversed(levels) if _access_rules(level)), None)
    rules: list[Rule] = _uncertain_rules(levels, _address_variables(top))
    if holder is not None:
        rules += _holder_rules(holder, levels[-1], reader)
    _auth_notes(levels, reader)
    policy_origin = Origin(levels[-1].file, levels[-1].line or None, "no allow/deny rule matched: admitted")
    return single_chain(NAME, file, rules, Action.ACCEPT, policy_origin=policy_origin,
                        unparsed=reader.unparsed, notes=reader.notes,
                        fix=NginxFix(holder.describe() if holder else None,
                                     levels[-1].describe() if len(levels) > 1 else None))


def _levels(top: list[Directive], file: str, context: ParseContext, reader: _Reader) -> list[Directive]:
    """The levels access rules are inherited through, outermost first: http (else the main context),
    the server chosen for the host and port, the location chain chosen for the path."""
    http = next((d for d in top if d.name == "http" and d.block is not None), None)
    http_level = http if http is not None else Directive("(main)", [], file, 0, top)
    servers = [d for d in http_level.block or [] if d.name == "server" and d.block is not None]
    server = _choose_server(servers, context, reader)
    path = (context.path or "/").split("?", 1)[0] or "/"
    levels = [http_level]
    if server is not None:
        levels.append(server)
    levels += _find_location((server or http_level).block, path, reader)
    served_by = " > ".join(level.describe() for level in levels[1:]) or "the main configuration"
    reader.notes.append(f"{path} on port {context.port} is served by {served_by}.")
    return levels


def _holder_rules(holder: Directive, innermost: Directive, reader: _Reader) -> list[Rule]:
    """The allow/deny rules of the level that holds them (the deepest level with any of its own)."""
    rules = [r for r in (_rule(d, reader) for d in _access_rules(holder)) if r is not None]
    if holder is not innermost:
        reader.notes.append(f"The allow/deny rules are inherited from {holder.describe()}.")
    return rules


def _auth_notes(levels: list[Directive], reader: _Reader) -> None:
    satisfy = _last_setting(levels, "satisfy")
    mode = satisfy.args[0].lower() if satisfy and satisfy.args else "all"
    for name in ("auth_basic", "auth_request"):
        auth = _last_setting(levels, name)
        if auth is None or (auth.args and auth.args[0] == "off"):
            continue
        if mode == "all":
            reader.notes.append(f"{name} ({auth.file}:{auth.line}) with satisfy all: even an admitted source gets "
                                "401 without credentials, and PostFinance's post-sale sends none.")
        else:
            reader.notes.append(f"{name} ({auth.file}:{auth.line}) with satisfy any: a source passes on its "
                                "address or on credentials; PostFinance sends no credentials, so the address "
                                "decides (refused sources get 401).")


@dataclass(frozen=True)
class NginxFix(FixContext):
    """Where an `allow` line goes: the block holding the access rules, else the innermost one."""

    holder: str | None = None
    innermost: str | None = None


def fix_lines(ruleset: Ruleset, evaluation: LayerEvaluation, missing: AddressSet,
              context: ParseContext) -> list[str]:
    """`allow <cidr>;` lines for the block holding the access rules, before the first `deny` that
    refuses them."""
    if not missing:
        return []
    blockers = [d for d in blocking_decisions(evaluation, missing) if not d.by_policy and d.origin]
    fix = ruleset.fix_context(NginxFix)
    holder = fix.holder or fix.innermost or "the server block"
    where = f"# in {holder}"
    if blockers and blockers[0].origin is not None:
        where += f", before `{blockers[0].origin.text};` ({blockers[0].origin})"
    return [where + ":"] + [f"allow {cidr};" for cidr in fix_cidrs(missing, evaluation, context.published)]
