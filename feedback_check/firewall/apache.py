"""Apache httpd: 2.4 `Require` (mod_authz_core, mod_authz_host) and 2.2 `Order` / `Allow` / `Deny` /
`Satisfy` (mod_access_compat), for the request the feedback URL makes.

The configuration (or an .htaccess file) is read with continuation lines, comments, quoted arguments,
`Include` / `IncludeOptional` (globs, relative to base_dir, the file's folder or the one above) and
`<IfModule>` (a module is assumed loaded, `!module` sections are skipped). The virtual host is chosen
by port and ServerName/ServerAlias (else the first one for the port). The sections that apply to the
path are merged in Apache's order: `<Directory>` (shortest first, under DocumentRoot or an Alias),
`<DirectoryMatch>`, `<Files>`/`<FilesMatch>`, `<Location>`/`<LocationMatch>` (in order of appearance),
those inside the virtual host after those outside. A section with authorization directives replaces
what it inherits (AuthMerging Off, the default; `And`/`Or` combine).

Apache's Require logic is boolean, not first match. Each Require yields granted / denied / neutral per
address; `<RequireAll>`, `<RequireAny>`, `<RequireNone>` and `Require not` combine them as Apache does,
with exact address sets. The result is expressed as one chain: DROP rules for the refused part of each
refusing line, ACCEPT rules for the admitted part of each granting line, policy DROP, so a blocked range
names the lines that decide it. `Require valid-user` and other user-based requirements refuse the
post-sale (it sends no credentials); `Require host`, `env`, `expr`, `method` and `<If>` sections cannot be
evaluated: unsupported (uncertain).
"""

from __future__ import annotations

import fnmatch
import posixpath
import re
from dataclasses import dataclass, field
from pathlib import Path

from feedback_check.errors import ConfigError
from feedback_check.firewall._textconf import fix_cidrs, layer_missing, single_chain
from feedback_check.firewall.evaluate import LayerEvaluation
from feedback_check.firewall.formats import ParseContext
from feedback_check.firewall.includes import first_included, has_glob
from feedback_check.firewall.ipspace import AddressSet
from feedback_check.firewall.model import Action, FixContext, Origin, Rule, Ruleset
from feedback_check.firewall.words import split_words
from feedback_check.inputfile import IncludeBudget

NAME = "apache"
MAX_INCLUDE_DEPTH = 16
LOCAL_ADDRESSES = ("127.0.0.0/8", "::1")
#: Providers that need a user: the post-sale sends no credentials, so they refuse it (401).
USER_PROVIDERS = frozenset({"valid-user", "user", "group", "file-owner", "file-group", "ldap-user",
                            "ldap-group", "ldap-dn", "ldap-attribute", "ldap-filter", "dbd-group"})
_TRANSPARENT = frozenset({"ifmodule", "ifdefine", "ifversion", "ifdirective", "iffile", "ifsection"})
_AUTHZ_CONTAINERS = {"requireany": "any", "requireall": "all", "requirenone": "none"}
_COMPAT = frozenset({"order", "allow", "deny"})


@dataclass
class Node:
    """A directive or a section (`children` is None for a directive)."""

    name: str             # lower case
    args: list[str]
    file: str
    line: int
    text: str
    children: list[Node] | None = None

    @property
    def origin(self) -> Origin:
        return Origin(self.file, self.line, self.text)

    def describe(self) -> str:
        return f"{self.text} ({self.file}:{self.line})"


@dataclass
class _Reader:
    context: ParseContext
    unparsed: list[Origin] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: include expansion of the whole file: files, depth and bytes in total
    includes: IncludeBudget = field(default_factory=lambda: IncludeBudget(depth=MAX_INCLUDE_DEPTH))
    unsupported: list[Rule] = field(default_factory=list)


# -- reading --------------------------------------------------------------------------------------------


def _logical_lines(text: str) -> list[tuple[int, str]]:
    out: list[tuple[int, str]] = []
    pending, start = "", 0
    for number, raw in enumerate(text.splitlines(), start=1):
        if not pending:
            start = number
        line = raw.rstrip()
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = (pending + line).strip()
        pending = ""
        if line and not line.startswith("#"):
            out.append((start, line))
    if pending.strip():
        out.append((start, pending.strip()))
    return out


def _split_args(text: str, file: str, line: int) -> list[str]:
    try:
        return split_words(text)
    except ValueError:
        raise ConfigError("unbalanced quotes", file=file, line=line) from None


def _read(text: str, file: str, reader: _Reader, depth: int = 0) -> list[Node]:
    root: list[Node] = []
    stack: list[tuple[Node | None, list[Node]]] = [(None, root)]
    for line_number, line in _logical_lines(text):
        if line.startswith("</"):
            name = line[2:].rstrip(">").strip().lower()
            section = stack[-1][0]
            if section is None or section.name != name:
                raise ConfigError(f"</{name}> without a matching opening section", file=file, line=line_number)
            stack.pop()
            continue
        if line.startswith("<"):
            if not line.endswith(">"):
                raise ConfigError("section line does not end with '>'", file=file, line=line_number)
            words = _split_args(line[1:-1], file, line_number)
            children: list[Node] = []
            node = Node(words[0].lower(), words[1:], file, line_number, line, children)
            stack[-1][1].append(node)
            stack.append((node, children))
            continue
        words = _split_args(line, file, line_number)
        node = Node(words[0].lower(), words[1:], file, line_number, line)
        if node.name in ("include", "includeoptional") and node.args:
            stack[-1][1].extend(_include(node, file, reader, depth))
        else:
            stack[-1][1].append(node)
    if len(stack) > 1:
        open_section = stack[-1][0]
        assert open_section is not None
        raise ConfigError(f"<{open_section.name}> is not closed", file=file, line=open_section.line)
    return root


def _include(node: Node, file: str, reader: _Reader, depth: int) -> list[Node]:
    if depth >= MAX_INCLUDE_DEPTH:
        raise ConfigError(f"includes nest deeper than {MAX_INCLUDE_DEPTH} (a loop?)", file=node.file,
                          line=node.line)
    pattern = node.args[0]
    matches = first_included(_include_candidates(pattern, file, reader.context), pattern)
    out: list[Node] = []
    for match in matches:
        text = reader.includes.read(match, file=node.file, line=node.line, depth=depth)
        out.extend(_read(text, match, reader, depth + 1))
    if not matches and node.name == "include" and not has_glob(pattern):
        reader.unparsed.append(node.origin)
        reader.notes.append(f"Include {pattern} ({node.file}:{node.line}) was not found next to the file: "
                            "access rules in it are not analysed.")
    return out


def _include_candidates(pattern: str, file: str, context: ParseContext) -> list[Path]:
    """Where an Include may be: Apache resolves relative paths against its ServerRoot (/etc/apache2),
    which for a copied configuration is `base_dir`, the file's folder or the folder above it; an
    absolute path is also looked for in the copy (below ServerRoot's place, and by its name alone)."""
    path = Path(pattern)
    folder = Path(file).parent
    bases = [b for b in (context.base_dir, folder, folder.parent) if b is not None]
    if not path.is_absolute():
        return [base / path for base in bases]
    candidates = [path] + [base / Path(*path.parts[1:]) for base in bases]
    if len(path.parts) > 3:
        candidates += [base / Path(*path.parts[3:]) for base in bases]       # /etc/apache2/<here>
    if not has_glob(pattern):
        candidates += [base / path.name for base in bases]                  # a copy next to the file
    if not Path(file).resolve().is_relative_to(Path(*path.parts[:3]).resolve()):
        # A configuration copied elsewhere resolves its absolute includes in the copy first: this
        # machine's own /etc/apache2 belongs to another server.
        candidates = [*candidates[1:], path]
    return candidates


def _flatten(nodes: list[Node]) -> list[Node]:
    """Splice `<IfModule>`-like sections into their parent (a `!` condition is taken as false)."""
    out: list[Node] = []
    for node in nodes:
        if node.children is not None and node.name in _TRANSPARENT:
            if not (node.args and node.args[0].startswith("!")):
                out.extend(_flatten(node.children))
            continue
        if node.children is not None:
            node.children = _flatten(node.children)
        out.append(node)
    return out


# -- choosing what applies -----------------------------------------------------------------------------


def _vhost_ports(vhost: Node) -> set[int | None]:
    ports: set[int | None] = set()
    for address in vhost.args:
        match = re.search(r":(\d+|\*)$", address)
        ports.add(int(match.group(1)) if match and match.group(1) != "*" else None)
    return ports


def _choose_vhost(top: list[Node], context: ParseContext, reader: _Reader) -> Node | None:
    vhosts = [n for n in top if n.name == "virtualhost" and n.children is not None]
    if not vhosts:
        return None
    listening = [v for v in vhosts if context.port in _vhost_ports(v) or None in _vhost_ports(v)]
    if not listening:
        reader.notes.append(f"No <VirtualHost> in this configuration is for port {context.port}: only the "
                            "main server's sections are analysed.")
        return None
    if context.host:
        host = context.host.lower()
        for vhost in listening:
            names = [a.lower() for n in vhost.children or [] if n.name in ("servername", "serveralias")
                     for a in n.args]
            if any(fnmatch.fnmatchcase(host, name.split(":")[0]) for name in names):
                return vhost
    reader.notes.append(f"{'No ServerName/ServerAlias matches the host' if context.host else 'No host given'}: "
                        f"the first virtual host for port {context.port} serves the request.")
    return listening[0]


def _directive_arg(nodes: list[Node], name: str) -> str | None:
    found = [n.args[0] for n in nodes if n.name == name and n.children is None and n.args]
    return found[-1] if found else None


def _filesystem_path(path: str, scopes: list[list[Node]]) -> str | None:
    """The file the URL path maps to: an Alias, else under DocumentRoot (inner scope wins)."""
    for scope in reversed(scopes):
        for node in scope:
            if node.name in ("alias", "scriptalias") and len(node.args) >= 2 and path.startswith(node.args[0]):
                return node.args[1].rstrip("/") + "/" + path[len(node.args[0]):].lstrip("/")
    for scope in reversed(scopes):
        root = _directive_arg(scope, "documentroot")
        if root:
            return posixpath.normpath(root.rstrip("/") + "/" + path.lstrip("/"))
    return None


def _is_regex(node: Node) -> tuple[bool, str]:
    if node.name.endswith("match"):
        return True, node.args[0] if node.args else ""
    if node.args and node.args[0] == "~":
        return True, node.args[1] if len(node.args) > 1 else ""
    return False, node.args[0] if node.args else ""


def _regex_matches(pattern: str, value: str, node: Node, reader: _Reader) -> bool:
    try:
        return re.search(re.sub(r"\(\?<(?=[A-Za-z_])", "(?P<", pattern), value) is not None
    except re.error:
        reader.unparsed.append(node.origin)
        return False


def _directory_matches(node: Node, fs_path: str, reader: _Reader) -> bool:
    regex, pattern = _is_regex(node)
    if regex:
        return _regex_matches(pattern, fs_path, node, reader)
    pattern = pattern.rstrip("/") or "/"
    parts = fs_path.split("/")
    return any(fnmatch.fnmatchcase("/".join(parts[:i]) or "/", pattern) for i in range(1, len(parts) + 1))


def _location_matches(node: Node, path: str, reader: _Reader) -> bool:
    regex, pattern = _is_regex(node)
    if regex:
        return _regex_matches(pattern, path, node, reader)
    if any(c in pattern for c in "*?["):
        return fnmatch.fnmatchcase(path, pattern) or fnmatch.fnmatchcase(path, pattern.rstrip("/") + "/*")
    return path.startswith(pattern) and (pattern.endswith("/") or len(path) == len(pattern)
                                         or path[len(pattern)] == "/")


def _sections(top: list[Node], vhost: Node | None, path: str, reader: _Reader) -> list[Node]:
    """The sections that apply to `path`, in Apache's merge order: directories, files (at the top of
    each scope, then inside the directories that apply), locations; in each, those outside the
    virtual host before those inside."""
    scopes = [top] + ([vhost.children or []] if vhost else [])
    fs_path = _filesystem_path(path, scopes)
    base_name = (fs_path or path).rstrip("/").rsplit("/", 1)[-1]
    directories = _directory_sections(scopes, fs_path, reader)
    files = [n for nodes in scopes + [d.children or [] for d in directories]
             for n in _nested_files(nodes, base_name, reader)]
    locations = [n for scope in scopes for n in scope if _is_section(n, "location", "locationmatch")
                 and _location_matches(n, path, reader)]
    return directories + files + locations


def _is_section(node: Node, *names: str) -> bool:
    return node.children is not None and node.name in names


def _directory_sections(scopes: list[list[Node]], fs_path: str | None, reader: _Reader) -> list[Node]:
    """The `<Directory>` sections holding `fs_path` (shortest path first), then the regex ones
    (`<DirectoryMatch>`, `<Directory ~>`) in order of appearance."""
    if fs_path is None:
        if any(n.name in ("directory", "directorymatch") for scope in scopes for n in scope):
            reader.notes.append("No DocumentRoot or Alias maps the path to a directory: <Directory> sections "
                                "are not analysed.")
        return []
    ordered: list[Node] = []
    for regex_pass in (False, True):
        for scope in scopes:
            candidates = [n for n in scope if _is_section(n, "directory", "directorymatch")
                          and _is_regex(n)[0] == regex_pass]
            if not regex_pass:
                candidates.sort(key=lambda n: len(_is_regex(n)[1].rstrip("/").split("/")))
            ordered += [n for n in candidates if _directory_matches(n, fs_path, reader)]
    return ordered


def _files_matches(node: Node, name: str, reader: _Reader) -> bool:
    regex, pattern = _is_regex(node)
    if regex:
        return _regex_matches(pattern, name, node, reader)
    return fnmatch.fnmatchcase(name, pattern)


def _nested_files(nodes: list[Node], base_name: str, reader: _Reader) -> list[Node]:
    return [n for n in nodes if n.name in ("files", "filesmatch") and n.children is not None
            and _files_matches(n, base_name, reader)]


# -- authorization logic --------------------------------------------------------------------------------


@dataclass
class _Result:
    """Granted and denied addresses (the rest is neutral), and which lines grant or deny what."""

    granted: AddressSet
    denied: AddressSet
    grants: list[tuple[AddressSet, Origin]]
    denies: list[tuple[AddressSet, Origin]]


def _leaf(granted: AddressSet, denied: AddressSet, origin: Origin) -> _Result:
    return _Result(granted, denied, [(granted, origin)] if granted else [], [(denied, origin)] if denied else [])


def _combine(kind: str, results: list[_Result]) -> _Result:
    granted_union = AddressSet.empty()
    denied_union = AddressSet.empty()
    for r in results:
        granted_union, denied_union = granted_union | r.granted, denied_union | r.denied
    grants = [g for r in results for g in r.grants]
    denies = [d for r in results for d in r.denies]
    if kind == "any":
        return _Result(granted_union, denied_union - granted_union, grants, denies)
    if kind == "all":
        return _Result(granted_union - denied_union, denied_union, grants, denies)
    return _Result(AddressSet.empty(), granted_union, [], grants)           # none: a grant refuses


def _ip_set(specs: list[str], node: Node, reader: _Reader) -> AddressSet:
    result = AddressSet.empty()
    for spec in specs:
        text = spec
        if re.fullmatch(r"\d{1,3}(\.\d{1,3}){0,2}\.?", spec):             # partial address: 10.1 = 10.1.0.0/16
            octets = [o for o in spec.split(".") if o]
            text = ".".join(octets + ["0"] * (4 - len(octets))) + f"/{8 * len(octets)}"
        try:
            result = result | AddressSet.parse(text)
        except ValueError:
            reader.unparsed.append(node.origin)
    return result


def _unsupported(node: Node, why: str, reader: _Reader) -> _Result:
    reader.unsupported.append(Rule(Action.CONTINUE, node.origin, unsupported=(why,)))
    return _Result(AddressSet.empty(), AddressSet.empty(), [], [])


def _require(node: Node, reader: _Reader) -> _Result:
    args = list(node.args)
    negated = bool(args) and args[0].lower() == "not"
    if negated:
        args = args[1:]
    if not args:
        reader.unparsed.append(node.origin)
        return _Result(AddressSet.empty(), AddressSet.empty(), [], [])
    provider, values = args[0].lower(), args[1:]
    everything = AddressSet.everything()
    if provider == "all" and values and values[0].lower() in ("granted", "denied"):
        result = _leaf(everything, AddressSet.empty(), node.origin) if values[0].lower() == "granted" \
            else _leaf(AddressSet.empty(), everything, node.origin)
    elif provider == "ip":
        addresses = _ip_set(values, node, reader)
        result = _leaf(addresses, everything - addresses, node.origin)
    elif provider == "local":
        addresses = AddressSet.from_specs(LOCAL_ADDRESSES)
        result = _leaf(addresses, everything - addresses, node.origin)
    elif provider in USER_PROVIDERS:
        reader.notes.append(f"{node.describe()}: needs a user; PostFinance's post-sale sends no credentials "
                            "(401 where this decides).")
        result = _leaf(AddressSet.empty(), everything, node.origin)
    else:
        why = "needs reverse DNS" if provider in ("host", "forward-dns") else "cannot be evaluated from the file"
        return _unsupported(node, f"Require {provider}: {why}", reader)
    if negated:                                     # granted -> denied, denied -> neutral
        return _Result(AddressSet.empty(), result.granted, [], [(g, o) for g, o in result.grants])
    return result


def _authz_tree(nodes: list[Node], kind: str, reader: _Reader) -> _Result | None:
    """The result of the Require lines and Require containers among `nodes` (None: there are none)."""
    parts: list[_Result] = []
    for node in nodes:
        if node.children is None and node.name == "require":
            parts.append(_require(node, reader))
        elif node.children is not None and node.name in _AUTHZ_CONTAINERS:
            inner = _authz_tree(node.children, _AUTHZ_CONTAINERS[node.name], reader)
            if inner is not None:
                parts.append(inner)
    return _combine(kind, parts) if parts else None


@dataclass
class _Compat:
    """Apache 2.2 host access (mod_access_compat) of one section."""

    order: str
    order_origin: Origin | None
    section: Origin
    allow: list[tuple[AddressSet, Origin]]
    deny: list[tuple[AddressSet, Origin]]

    def result(self) -> _Result:
        allowed = AddressSet.empty()
        denied = AddressSet.empty()
        for addresses, _ in self.allow:
            allowed = allowed | addresses
        for addresses, _ in self.deny:
            denied = denied | addresses
        default = self.order_origin or Origin(self.section.file, self.section.line,
                                              f"Order {self.order} (the default) in {self.section.text}")
        everything = AddressSet.everything()
        if self.order == "deny,allow":            # allowed by default; Allow overrides Deny
            admitted = (everything - denied) | allowed
            return _Result(admitted, everything - admitted, self.allow + [(everything, default)], self.deny)
        admitted = allowed - denied               # allow,deny / mutual-failure: denied by default, Deny wins
        return _Result(admitted, everything - admitted, self.allow, self.deny + [(everything, default)])


def _compat(section: Node, reader: _Reader) -> _Compat | None:
    own = [n for n in section.children or [] if n.children is None and n.name in _COMPAT]
    if not own:
        return None
    compat = _Compat("deny,allow", None, section.origin, [], [])
    for node in own:
        if node.name == "order":
            compat.order = "".join(node.args).lower().replace(" ", "")
            compat.order_origin = node.origin
            continue
        specs = node.args[1:] if node.args and node.args[0].lower() == "from" else node.args
        addresses = AddressSet.empty()
        for spec in specs:
            if spec.lower() == "all":
                addresses = AddressSet.everything()
            elif spec.lower().startswith("env="):
                _unsupported(node, f"{node.name} from {spec}: depends on an environment variable", reader)
            elif re.fullmatch(r"[0-9a-fA-F:.]+(/[0-9.]+)?", spec):
                addresses = addresses | _ip_set([spec], node, reader)
            else:
                _unsupported(node, f"{node.name} from {spec}: a host name needs reverse DNS", reader)
        (compat.allow if node.name == "allow" else compat.deny).append((addresses, node.origin))
    if compat.order not in ("allow,deny", "deny,allow", "mutual-failure"):
        reader.unparsed.append(compat.order_origin or own[0].origin)
    return compat


@dataclass
class _Effective:
    require: _Result | None = None
    require_section: Node | None = None
    require_kind: str = "any"
    require_merged: bool = False      # the last section combined its rules with inherited ones
    compat: _Compat | None = None
    compat_section: Node | None = None
    satisfy: str = "all"

    def merge_require(self, section: Node, tree: _Result) -> None:
        """`section`'s Require rules (`tree`) after the inherited ones: they replace them (AuthMerging
        Off, the default) or combine with them (And: both must grant, Or: either)."""
        nodes = section.children or []
        merging = (_directive_arg(nodes, "authmerging") or "off").lower()
        if merging in ("and", "or") and self.require is not None:
            tree = _combine("all" if merging == "and" else "any", [self.require, tree])
            self.require_merged = True
        else:
            self.require_merged = False
        self.require, self.require_section = tree, section
        self.require_kind = _require_kind(nodes)


def _merge(sections: list[Node], reader: _Reader) -> _Effective:
    """What the sections say together, merged in their order: a section's Require rules replace (or
    with AuthMerging And/Or, combine with) the inherited ones; its Order/Allow/Deny and Satisfy
    replace the inherited ones."""
    effective = _Effective()
    for section in sections:
        nodes = section.children or []
        _flag_conditional_access(nodes, reader)
        tree = _authz_tree(nodes, "any", reader)
        if tree is not None:
            effective.merge_require(section, tree)
        compat = _compat(section, reader)
        if compat is not None:
            effective.compat, effective.compat_section = compat, section
        satisfy = _directive_arg(nodes, "satisfy")
        if satisfy:
            effective.satisfy = satisfy.lower()
    return effective


def _flag_conditional_access(nodes: list[Node], reader: _Reader) -> None:
    """`<If>` / `<ElseIf>` / `<Else>` sections with access rules: they depend on the request, so they
    are unsupported (what they hold is read on a scratch reader, only to know that it is there)."""
    for node in nodes:
        if _is_section(node, "if", "elseif", "else"):
            scratch = _Reader(reader.context)
            if _authz_tree(node.children or [], "any", scratch) or _compat(node, scratch):
                _unsupported(node, f"<{node.name}> section: its access rules depend on the request", reader)


def _require_kind(nodes: list[Node]) -> str:
    """How a section combines its Require rules: the kind of its one container when it holds nothing
    else, else "any" (a plain list of Require lines is an implicit RequireAny)."""
    containers = [n.name for n in nodes if _is_section(n, *_AUTHZ_CONTAINERS)]
    requires = [n for n in nodes if n.children is None and n.name == "require"]
    return _AUTHZ_CONTAINERS[containers[0]] if len(containers) == 1 and not requires else "any"


def _final(effective: _Effective) -> _Result | None:
    parts = [r for r in (effective.require, effective.compat.result() if effective.compat else None) if r]
    if not parts:
        return None
    if len(parts) == 1:
        return parts[0]
    return _combine("any" if effective.satisfy == "any" else "all", parts)


# -- the module protocol -------------------------------------------------------------------------------


def detect(text: str) -> bool:
    """Apache syntax: sections like <VirtualHost>/<Directory>/<Location>/<Files>, or Require / Order /
    Allow from / Deny from lines."""
    head = text[:100000]
    if re.search(r"^\s*</?(VirtualHost|Directory|DirectoryMatch|Location|LocationMatch|Files|FilesMatch|"
                 r"IfModule|RequireAll|RequireAny|RequireNone)\b", head, re.MULTILINE | re.IGNORECASE):
        return True
    return bool(re.search(r"^\s*(Require\s+(not\s+)?(ip|all|host|valid-user|local)\b|Order\s+(allow|deny)\s*,|"
                          r"(Allow|Deny)\s+from\s)", head, re.MULTILINE | re.IGNORECASE))


def parse(text: str, file: str, context: ParseContext) -> Ruleset:
    """The admitted set of the request to context.path on the virtual host for context.host/port."""
    reader = _Reader(context)
    top = _flatten(_read(text, file, reader))
    vhost = _choose_vhost(top, context, reader)
    path = (context.path or "/").split("?", 1)[0] or "/"
    effective = _merge(_applied_sections(top, vhost, file, path, reader), reader)
    final = _final(effective)
    if final is None:
        reader.notes.append("No Require or Allow/Deny applies: Apache 2.4 grants access (unless the main "
                            "configuration, not in this file, denies it, as Debian's <Directory /> does).")
        final = _leaf(AddressSet.everything(), AddressSet.empty(), Origin(file, None, "no access rules: granted"))
    holder = effective.require_section or effective.compat_section
    policy_origin = holder.origin if holder is not None else Origin(file, None, "no access rules")
    return single_chain(NAME, file, [*reader.unsupported, *_decisions(final)], Action.DROP,
                        policy_origin=policy_origin, unparsed=reader.unparsed, notes=reader.notes,
                        fix=_fix_context(effective, vhost, top))


def _applied_sections(top: list[Node], vhost: Node | None, file: str, path: str, reader: _Reader) -> list[Node]:
    """The directives outside any section, those of the virtual host outside its sections, then the
    sections that apply to `path` (`_sections`); the notes name the sections."""
    sections = [Node("(file)", [], file, 0, "top level of the file", [n for n in top if n.children is None])]
    if vhost:
        sections.append(Node("virtualhost", vhost.args, vhost.file, vhost.line, vhost.text,
                             [n for n in vhost.children or [] if n.children is None]))
    sections += _sections(top, vhost, path, reader)
    applied = [s.describe() for s in sections[1:]]
    reader.notes.append(f"{path} on port {reader.context.port}: sections applied in order: "
                        f"{'; '.join(applied) or 'none'}.")
    return sections


def _decisions(final: _Result) -> list[Rule]:
    """The boolean result as first-match rules: DROP for the refused part of each refusing line, then
    ACCEPT for the admitted part of each granting line (the chain's policy drops the rest)."""
    admitted = final.granted
    # The narrowest refusing line is named first (`Require not ip X` rather than the complement of
    # another line's `Require ip`); admitted and refused parts are disjoint, so order decides only that.
    denies = sorted(final.denies, key=lambda item: item[0].size())
    rules = [Rule(Action.DROP, origin, source=addresses - admitted)
             for addresses, origin in denies if addresses - admitted]
    rules += [Rule(Action.ACCEPT, origin, source=addresses & admitted)
              for addresses, origin in final.grants if addresses & admitted]
    return rules


def _fix_context(effective: _Effective, vhost: Node | None, top: list[Node]) -> ApacheFix:
    """Where `fix_lines` puts the fix: the sections holding the rules that decide, and how they decide."""
    require_section, compat, compat_section = effective.require_section, effective.compat, effective.compat_section
    return ApacheFix(
        require_section=require_section.describe() if require_section else None,
        require_kind=effective.require_kind,
        require_merged=bool(effective.require_merged),
        vhost=vhost.describe() if vhost else None,
        htaccess=vhost is None and not any(
            n.name in ("location", "locationmatch", "directory", "directorymatch") for n in top),
        compat_section=compat_section.describe() if compat_section else None,
        compat_order=compat.order if compat else None,
        compat_denies=tuple(str(o) for a, o in compat.deny if a) if compat else (),
        satisfy=effective.satisfy)


@dataclass(frozen=True)
class ApacheFix(FixContext):
    """Where the fix goes: the section holding the Require rules (its kind, whether it is merged), the
    virtual host, whether the file is an .htaccess, the Apache 2.2 section (its Order and the Deny
    lines that win over an Allow) and the Satisfy mode."""

    require_section: str | None = None
    require_kind: str | None = None
    require_merged: bool = False
    vhost: str | None = None
    htaccess: bool = False
    compat_section: str | None = None
    compat_order: str | None = None
    compat_denies: tuple[str, ...] = ()
    satisfy: str | None = None


def fix_lines(ruleset: Ruleset, evaluation: LayerEvaluation, missing: AddressSet,
              context: ParseContext) -> list[str]:
    """Apache lines admitting `missing` for the feedback path.

    2.4: `Require ip <cidrs>` in the section holding the rules when it is a plain list of Require lines
    (an implicit RequireAny); otherwise a section merged after it with `AuthMerging Or`, which admits
    the CIDRs whatever the existing RequireAll/RequireNone/merged logic says. 2.2: `Allow from <cidrs>`
    (with Order allow,deny a matching Deny line still wins: it is named). With `Satisfy Any` one of the
    two is enough.
    """
    if not missing:
        return []
    missing = layer_missing(missing, evaluation, context.published)      # the same block at every call
    cidrs = " ".join(fix_cidrs(missing, evaluation, context.published))
    info = ruleset.fix_context(ApacheFix)
    section, compat_section = info.require_section, info.compat_section
    lines: list[str] = []
    if section or not compat_section:
        if section and info.require_kind == "any" and not info.require_merged:
            lines += [f"# in {section}:", f"Require ip {cidrs}"]
        else:
            path = (context.path or "/").split("?", 1)[0]
            if info.htaccess:
                name = path.rstrip("/").rsplit("/", 1)[-1] or "*"
                lines += [f"# at the end of {ruleset.file}:", f'<Files "{name}">']
            else:
                lines += [(f"# at the end of {info.vhost or 'the server configuration'}, after the other "
                          "<Location> sections:"), f'<Location "{path}">']
            lines += ["    AuthMerging Or", f"    Require ip {cidrs}",
                      "</Files>" if info.htaccess else "</Location>"]
    if compat_section and (not section or info.satisfy != "any"):
        lines.append(f"# in {compat_section} (Apache 2.2 access control):")
        if info.compat_order != "deny,allow":
            for denial in info.compat_denies:
                lines.append(f"# with Order allow,deny a Deny line wins over Allow: narrow or remove {denial}")
        lines.append(f"Allow from {cidrs}")
    return lines
