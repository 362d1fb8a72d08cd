"""The merchant profile: shops, their post-sale URLs, SHA-OUT settings and firewall layers.

Loaded once and validated into frozen dataclasses before any network I/O. Every error names the file,
line and field. Secrets are wrapped in `Secret`, whose text forms never show the value.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from feedback_check import inputfile
from feedback_check.errors import ConfigError
from feedback_check.findings import Finding, make_finding
from feedback_check.firewall.formats import FORMAT_MODULES
from feedback_check.platform import Platform
from feedback_check.signature import check_passphrase_encoding, normalise_algorithm, normalise_encoding
from feedback_check.yamlfile import LineDict, line_of, load_yaml_file

DEFAULT_PROFILE = "feedback-check.yaml"
ROLES = ("accepted", "rejected", "status_change")
FIREWALL_TYPES = ("auto", *FORMAT_MODULES)         # the format registry (firewall/formats.py)


class Secret:
    """A SHA-OUT passphrase. `str()`/`repr()` give a mask; `.reveal()` is the only way to the value."""

    __slots__ = ("_value", "source")

    def __init__(self, value: str, source: str) -> None:
        self._value = value
        self.source = source          # e.g. "environment variable SHOP_SHA_OUT" - never the value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret(<from {self.source}>)"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self.source))


@dataclass(frozen=True)
class SignatureSettings:
    algorithm: str
    encoding: str
    passphrase: Secret | None
    test_passphrase: Secret | None = None     # optional: to tell a TEST/PROD swap apart


@dataclass(frozen=True)
class FeedbackUrl:
    role: str                 # accepted | rejected | status_change
    url: str                  # as configured, <PARAMVAR> still in it


@dataclass(frozen=True)
class Origin:
    """Where a value is written in a profile: file, line and field (for errors found after loading)."""

    file: str
    line: int | None
    field: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}" if self.line else self.file

    def error(self, problem: str) -> ConfigError:
        return ConfigError(problem, file=self.file, line=self.line, field=self.field)


@dataclass(frozen=True)
class FirewallLayer:
    type: str
    file: str
    name: str = ""
    line: int | None = None
    port: int | None = None      # the port this layer guards, when it differs from the URL's (port forward)
    origin: Origin | None = None  # where `file:` is written (profile layers)


@dataclass(frozen=True)
class LogSpec:
    """One `logs:` entry of a shop: access-log files (globs), their format and the proxies in front."""

    files: tuple[str, ...]
    format: str | None = None
    trusted_proxies: tuple[str, ...] = ()
    expect_every: str | None = None
    line: int | None = None
    origins: tuple[Origin, ...] = ()   # where each of `files` is written (profile entries)


@dataclass(frozen=True)
class Shop:
    name: str
    timing: str
    method: str
    urls: tuple[FeedbackUrl, ...]
    paramvar: str | None
    parameters: tuple[str, ...]
    signature: SignatureSettings
    firewall: tuple[FirewallLayer, ...] = ()
    check_forgery: bool = True
    order_prefix: str = ""
    test_order: tuple[tuple[str, str], ...] = ()     # an order the shop knows: (parameter, value) pairs
    replay: tuple[tuple[str, str], ...] | None = None  # probe --replay: a captured post-sale to re-sign
    replay_origin: str = ""
    logs: tuple[LogSpec, ...] = ()
    origin: Origin | None = None       # where the shop's `name:` is written (profile shops)


@dataclass(frozen=True)
class Profile:
    file: str
    shops: tuple[Shop, ...]
    findings: tuple[Finding, ...] = field(default=())   # config.inline_secret and the like


class _Reader:
    """Field access with file/line-aware errors."""

    def __init__(self, file: str) -> None:
        self.file = file

    def fail(self, problem: str, node: Any, key: Any, path: str) -> ConfigError:
        return ConfigError(problem, file=self.file, line=line_of(node, key), field=path)

    def mapping(self, node: Any, key: Any, path: str, *, required: bool = True) -> dict[Any, Any] | None:
        if key not in node:
            if required:
                raise self.fail("missing", node, key, path)
            return None
        value = node[key]
        if not isinstance(value, dict):
            raise self.fail("must be a mapping", node, key, path)
        return value

    def string(self, node: Any, key: Any, path: str, *, required: bool = True,
               choices: tuple[str, ...] | None = None, default: str | None = None) -> str | None:
        if key not in node or node[key] is None:
            if required:
                raise self.fail("missing", node, key, path)
            return default
        value = node[key]
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise self.fail("must be a text value", node, key, path)
        text = str(value)
        if choices is not None and text not in choices:
            raise self.fail(f"{text!r} is not one of {', '.join(choices)}", node, key, path)
        return text

    def check_keys(self, node: dict[Any, Any], allowed: set[str], path: str) -> None:
        for key in node:
            if key not in allowed:
                raise self.fail(f"unknown field {key!r} (expected one of: {', '.join(sorted(allowed))})",
                                node, key, f"{path}.{key}" if path else str(key))


def load_profile(path: str | Path, platform: Platform, *, environ: dict[str, str] | None = None) -> Profile:
    """Read and validate a merchant profile. Raises ConfigError (file, line, field, problem)."""
    file = str(path)
    data = load_yaml_file(path)
    return build_profile(data, file, platform, base_dir=Path(path).resolve().parent,
                         environ=os.environ if environ is None else environ)


def build_profile(data: Any, file: str, platform: Platform, *, base_dir: Path,
                  environ: Any) -> Profile:
    r = _Reader(file)
    if not isinstance(data, dict):
        raise ConfigError("a profile must be a YAML mapping with a 'shops' list", file=file, line=1)
    r.check_keys(data, {"version", "shops", "modules"}, "")   # modules: read by `serve` (exporter/config.py)
    version = data.get("version", 1)
    if version != 1:
        raise r.fail(f"unsupported profile version {version!r} (this feedback-check reads version 1)",
                     data, "version", "version")
    shops_node = data.get("shops")
    if not isinstance(shops_node, list) or not shops_node:
        raise r.fail("must be a non-empty list of shops", data, "shops", "shops")
    shops: list[Shop] = []
    findings: list[Finding] = []
    for index, node in enumerate(shops_node):
        path = f"shops[{index}]"
        if not isinstance(node, dict):
            raise r.fail("each shop must be a mapping", shops_node, index, path)
        shop, shop_findings = _build_shop(r, node, path, platform, base_dir, environ)
        shops.append(replace(shop, origin=Origin(file, line_of(node, "name"), f"{path}.name")))
        findings.extend(shop_findings)
    profile = Profile(file=file, shops=tuple(shops), findings=tuple(findings))
    check_unique_shops([profile])
    return profile


def check_unique_shops(profiles: Sequence[Profile]) -> None:
    """Shop names are keys (--shop, --state, metric labels): a name defined twice, in one profile or in
    two, is a ConfigError at the second place naming the first. The same file given twice says so."""
    files: dict[str, str] = {}
    for profile in profiles:
        if profile.file.startswith("<"):
            continue                                   # built in code (probe, exporter modules)
        real = os.path.realpath(profile.file)
        if real in files:
            raise ConfigError(f"this profile is given twice (also as {files[real]})"
                              if files[real] != profile.file else "this profile is given twice", file=profile.file)
        files[real] = profile.file
    seen: dict[str, Shop] = {}
    for profile in profiles:
        for shop in profile.shops:
            first = seen.get(shop.name)
            if first is None:
                seen[shop.name] = shop
                continue
            where = str(first.origin) if first.origin else first.name
            problem = f"shop name {shop.name!r} is already defined at {where}"
            raise shop.origin.error(problem) if shop.origin else ConfigError(problem, file=profile.file)


def check_input_files(shops: Iterable[Shop], *, firewall: bool = True, logs: bool = True) -> None:
    """Every firewall rule file and access log the shops name (globs expanded) exists and is a readable
    regular file within its size limit - checked before any network traffic, without reading the files
    (`inputfile.check_input`). A problem is a ConfigError at the profile's line and field, e.g.
    `shop.yaml:12: shops[0].firewall[0].file: /etc/iptables/rules.v4: file not found`.

    A `logs:` glob that matches no file is an error too, as for `feedback-check logs`: the evidence the
    profile asks for is missing (a wrong folder or name), and a check that skipped it quietly would
    report a shop's logs as clean."""
    import glob

    for shop in shops:
        if firewall:
            for layer in shop.firewall:
                _check_input(layer.file, inputfile.RULES, layer.origin)
        if logs:
            for spec in shop.logs:
                for index, name in enumerate(spec.files):
                    origin = spec.origins[index] if index < len(spec.origins) else None
                    if name == "-":
                        continue
                    name = os.path.expanduser(name)
                    if glob.has_magic(name):
                        matches = sorted(glob.glob(name))
                        if not matches:
                            _fail(ConfigError("no file matches this pattern", file=name), origin)
                        for match in matches:
                            _check_input(match, inputfile.ACCESS_LOG, origin)
                    else:
                        _check_input(name, inputfile.ACCESS_LOG, origin)


def _log_origins(file: str, node: Any, index: int, entry: dict[Any, Any], mapping: bool, lpath: str,
                 count: int) -> tuple[Origin, ...]:
    """Where each file of a `logs:` entry is written: the list item, `files: [...]` items, or `file:`."""
    if not mapping:
        return (Origin(file, line_of(node, index), lpath),)
    key = "files" if "files" in entry else "file"
    if isinstance(entry[key], list):
        return tuple(Origin(file, line_of(entry[key], i), f"{lpath}.{key}[{i}]") for i in range(count))
    return (Origin(file, line_of(entry, key), f"{lpath}.{key}"),) * count


def _check_input(name: str, kind: inputfile.InputKind, origin: Origin | None) -> None:
    try:
        inputfile.check_input(name, kind)
    except ConfigError as e:
        _fail(e, origin)


def _fail(error: ConfigError, origin: Origin | None) -> None:
    if origin is None:
        raise error
    raise origin.error(error.one_line()) from None


def _build_shop(r: _Reader, node: dict[Any, Any], path: str, platform: Platform, base_dir: Path,
                environ: Any) -> tuple[Shop, list[Finding]]:
    r.check_keys(node, {"name", "feedback", "signature", "firewall", "check_forgery", "order_prefix", "test_order",
                        "logs"}, path)
    name = r.string(node, "name", f"{path}.name")
    assert name is not None
    feedback = r.mapping(node, "feedback", f"{path}.feedback")
    assert feedback is not None
    fpath = f"{path}.feedback"
    r.check_keys(feedback, {"timing", "method", "urls", "paramvar", "parameters"}, fpath)
    timing = r.string(feedback, "timing", f"{fpath}.timing", required=False, choices=platform.timings,
                      default="always_deferred")
    method_text = r.string(feedback, "method", f"{fpath}.method", required=False, default="POST")
    assert method_text is not None
    method = method_text.upper()
    if method not in platform.methods:
        raise r.fail(f"{method_text!r} is not one of {', '.join(platform.methods)}", feedback, "method",
                     f"{fpath}.method")
    urls_node = r.mapping(feedback, "urls", f"{fpath}.urls")
    assert urls_node is not None
    r.check_keys(urls_node, set(ROLES), f"{fpath}.urls")
    urls = []
    for role in ROLES:
        url = r.string(urls_node, role, f"{fpath}.urls.{role}", required=False)
        if url:
            urls.append(FeedbackUrl(role, url.strip()))
    if not urls and timing != "no_request":
        raise r.fail("no post-sale URL configured (accepted, rejected or status_change)", urls_node, None,
                     f"{fpath}.urls")
    paramvar = r.string(feedback, "paramvar", f"{fpath}.paramvar", required=False)
    parameters_node = feedback.get("parameters")
    if parameters_node is None:
        parameters = platform.default_parameters
    else:
        if not isinstance(parameters_node, list) or not all(isinstance(p, str) for p in parameters_node):
            raise r.fail("must be a list of parameter names", feedback, "parameters", f"{fpath}.parameters")
        parameters = tuple(parameters_node)
    signature, findings = _build_signature(r, node, path, platform, base_dir, environ)
    layers = _build_firewall(r, node, path, base_dir)
    check_forgery = node.get("check_forgery", True)
    if not isinstance(check_forgery, bool):
        raise r.fail("must be true or false", node, "check_forgery", f"{path}.check_forgery")
    prefix = r.string(node, "order_prefix", f"{path}.order_prefix", required=False,
                      default=platform.test_order_prefix)
    shop = Shop(name=name, timing=timing or "always_deferred", method=method, urls=tuple(urls),
                paramvar=paramvar, parameters=parameters, signature=signature, firewall=layers,
                check_forgery=check_forgery, order_prefix=prefix or platform.test_order_prefix,
                test_order=_test_order(r, node, f"{path}.test_order"),
                logs=_build_logs(r, node, path, base_dir))
    return shop, [replace(f, shop=name) for f in findings]


def _test_order(r: _Reader, node: dict[Any, Any], path: str) -> tuple[tuple[str, str], ...]:
    """`test_order: {orderID: ..., amount: ..., currency: ..., PAYID: ...}`: parameters as the platform
    spells them (any case), scalar values (quote an amount such as "49.90" to keep its zeros)."""
    order = r.mapping(node, "test_order", path, required=False)
    if order is None:
        return ()
    pairs: list[tuple[str, str]] = []
    for key, value in order.items():
        if not isinstance(key, str) or not key.strip() or not key.strip().replace("_", "").isalnum():
            raise r.fail(f"{str(key)[:40]!r} is not a parameter name", order, key, path)
        if isinstance(value, bool) or value is None or isinstance(value, (dict, list)):
            raise r.fail("must be a single value (text or number)", order, key, f"{path}.{key}")
        pairs.append((key.strip(), str(value)))
    if not pairs:
        raise r.fail("names no parameter (give at least orderID)", node, "test_order", path)
    return tuple(pairs)


def _build_signature(r: _Reader, shop_node: dict[Any, Any], path: str, platform: Platform, base_dir: Path,
                     environ: Any) -> tuple[SignatureSettings, list[Finding]]:
    spath = f"{path}.signature"
    node = r.mapping(shop_node, "signature", spath, required=False) or LineDict()
    allowed = {"algorithm", "encoding", "passphrase_env", "passphrase_file", "passphrase", "passphrase_credential",
               "test_passphrase_env", "test_passphrase_file", "test_passphrase", "test_passphrase_credential"}
    r.check_keys(node, allowed, spath)
    try:
        algorithm = normalise_algorithm(str(node.get("algorithm", platform.default_algorithm)))
    except ValueError as e:
        raise r.fail(str(e), node, "algorithm", f"{spath}.algorithm") from None
    try:
        encoding = normalise_encoding(str(node.get("encoding", platform.default_encoding)))
    except ValueError as e:
        raise r.fail(str(e), node, "encoding", f"{spath}.encoding") from None
    findings: list[Finding] = []
    passphrase = _secret(r, node, spath, "", base_dir, environ, findings)
    test_passphrase = _secret(r, node, spath, "test_", base_dir, environ, findings)
    if passphrase is not None:
        try:
            check_passphrase_encoding(passphrase.reveal(), encoding)
        except ValueError as e:
            key = next(k for k in ("passphrase_env", "passphrase_file", "passphrase_credential", "passphrase")
                       if k in node)
            raise r.fail(str(e), node, key, f"{spath}.{key}") from None
    return SignatureSettings(algorithm, encoding, passphrase, test_passphrase), findings


def _secret(r: _Reader, node: dict[Any, Any], spath: str, prefix: str, base_dir: Path, environ: Any,
            findings: list[Finding]) -> Secret | None:
    env_key, file_key, inline_key = f"{prefix}passphrase_env", f"{prefix}passphrase_file", f"{prefix}passphrase"
    credential_key = f"{prefix}passphrase_credential"
    given = [k for k in (env_key, file_key, credential_key, inline_key) if k in node]
    if len(given) > 1:
        raise r.fail(f"give only one of {', '.join(given)}", node, given[1], f"{spath}.{given[1]}")
    if not given:
        return None
    key = given[0]
    value = node[key]
    if not isinstance(value, str) or not value:
        raise r.fail("must be a non-empty text value", node, key, f"{spath}.{key}")
    if key == env_key:
        if value not in environ:
            if not looks_like_variable_name(value):
                raise r.fail("the environment variable named here is not set (the value is not shown: it does "
                             "not look like a variable name and may be the passphrase itself)",
                             node, key, f"{spath}.{key}")
            raise r.fail(f"environment variable {value} is not set", node, key, f"{spath}.{key}")
        return Secret(environ[value], f"environment variable {value}")
    if key == file_key:
        secret_path = (base_dir / value).expanduser()
        return read_secret_file(secret_path, findings, where=(r.file, line_of(node, key), f"{spath}.{key}"),
                                written=value)
    if key == credential_key:
        # A systemd credential (LoadCredential=NAME:/path): readable by the service's DynamicUser= while the
        # source file stays root-only. systemd passes the folder in $CREDENTIALS_DIRECTORY.
        folder = environ.get("CREDENTIALS_DIRECTORY")
        if not folder:
            # The value is not echoed: a passphrase written here by mistake must not reach a log.
            raise r.fail("$CREDENTIALS_DIRECTORY is not set (run under systemd with LoadCredential=NAME:/path/to/"
                         "passphrase, or use passphrase_file)", node, key, f"{spath}.{key}")
        if "/" in value or value in (".", ".."):
            raise r.fail("must be a credential name, not a path", node, key, f"{spath}.{key}")
        return read_secret_file(Path(folder) / value, findings, where=(r.file, line_of(node, key), f"{spath}.{key}"),
                                written=value)
    findings.append(make_finding(
        "config.inline_secret", f"{r.file}:{line_of(node, key)}",
        detail=f"{spath}.{key} holds the passphrase in the profile itself.",
        evidence={"file": r.file, "line": line_of(node, key), "field": f"{spath}.{key}"}))
    return Secret(value, f"{r.file} ({spath}.{key})")


def read_test_order(node: dict[Any, Any], path: str, file: str) -> tuple[tuple[str, str], ...]:
    """`node["test_order"]` validated as a shop's (for other parts of a profile: the exporter's modules)."""
    return _test_order(_Reader(file), node, path)


def read_passphrase(node: dict[Any, Any], path: str, file: str, base_dir: Path, environ: Any,
                    findings: list[Finding]) -> Secret | None:
    """The passphrase a mapping names with passphrase_env, passphrase_file, passphrase_credential or
    passphrase (the shape of a shop's `signature:`), for other parts of a profile (the exporter's modules)."""
    return _secret(_Reader(file), node, path, "", base_dir, environ, findings)


_VARIABLE_NAME = re.compile(r"[A-Z_][A-Z0-9_]{0,127}")
_FILE_NAME = re.compile(r"[\w.~/@+-]{1,4096}")


def looks_like_variable_name(value: str) -> bool:
    """Whether `value` may be shown as the name of an environment variable: the usual upper-case spelling.
    Anything else (a value written by mistake where a name belongs) may be the passphrase itself."""
    return _VARIABLE_NAME.fullmatch(value) is not None


def looks_like_file_name(value: str) -> bool:
    """Whether `value` may be shown as a file name: a path (with a `/`) or a name with an extension, of
    plain file-name characters. Anything else may be the passphrase written where its file belongs."""
    if _FILE_NAME.fullmatch(value) is None:
        return False
    return "/" in value or re.search(r"\.[A-Za-z0-9]{1,8}$", value) is not None


def read_secret_file(path: Path, findings: list[Finding],
                     where: tuple[str | None, int | None, str | None] = (None, None, None),
                     written: str | None = None) -> Secret:
    """A passphrase from a file (first line, surrounding whitespace and newline removed); warns when
    group or others can read it."""
    file, line, fieldname = where
    # `written`: the value as the profile has it; when it does not look like a file name it is never shown.
    hidden = written is not None and not looks_like_file_name(written)
    shown = "(named there)" if hidden else str(path)
    try:
        first = inputfile.read_first_line(path, inputfile.PASSPHRASE)
        mode = path.stat().st_mode
    except ConfigError as e:
        if e.problem == "file not found" and hidden:
            raise ConfigError("no such passphrase file (the value is not shown: it does not look like a file "
                              "name and may be the passphrase itself)", file=file, line=line,
                              field=fieldname) from None
        problem = "is not UTF-8 text" if e.problem.startswith("not UTF-8") else e.problem
        raise ConfigError(f"cannot read passphrase file {shown}: {problem}", file=file, line=line, field=fieldname) from None
    except OSError as e:
        raise ConfigError(f"cannot read passphrase file {shown}: {e.strerror}", file=file, line=line,
                          field=fieldname) from None
    lines = first.splitlines()
    value = lines[0].strip("\r\n") if lines else ""
    if not value:
        raise ConfigError(f"passphrase file {path} is empty", file=file, line=line, field=fieldname)
    if mode & (stat.S_IRGRP | stat.S_IROTH):
        findings.append(make_finding(
            "config.secret_file_permissions", str(path),
            detail=f"{path} has mode {stat.filemode(mode)}: group or others can read the SHA-OUT passphrase.",
            evidence={"file": str(path), "mode": oct(mode & 0o777)},
            fix=f"chmod 600 {path}"))
    return Secret(value, f"file {path}")


def _build_firewall(r: _Reader, shop_node: dict[Any, Any], path: str, base_dir: Path) -> tuple[FirewallLayer, ...]:
    node = shop_node.get("firewall")
    if node is None:
        return ()
    if not isinstance(node, list):
        raise r.fail("must be a list of layers, outermost first", shop_node, "firewall", f"{path}.firewall")
    layers = []
    for index, layer in enumerate(node):
        lpath = f"{path}.firewall[{index}]"
        if not isinstance(layer, dict):
            raise r.fail("each layer must be a mapping like {type: iptables, file: rules.v4}", node, index, lpath)
        r.check_keys(layer, {"type", "file", "name", "port"}, lpath)
        kind = r.string(layer, "type", f"{lpath}.type", required=False, choices=FIREWALL_TYPES,
                        default="auto")
        file = r.string(layer, "file", f"{lpath}.file")
        assert file is not None
        resolved = Path(file).expanduser()
        if not resolved.is_absolute():
            resolved = base_dir / resolved
        port = layer.get("port")
        if port is not None and (isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536):
            raise r.fail("must be a TCP port number (1-65535)", layer, "port", f"{lpath}.port")
        layers.append(FirewallLayer(type=kind or "auto", file=str(resolved),
                                    name=str(layer.get("name", "")), line=line_of(node, index), port=port,
                                    origin=Origin(r.file, line_of(layer, "file"), f"{lpath}.file")))
    return tuple(layers)


def _build_logs(r: _Reader, shop_node: dict[Any, Any], path: str, base_dir: Path) -> tuple[LogSpec, ...]:
    """`logs:` - a list of entries, each a file/glob or {files: [...], format:, trusted_proxies: [...],
    expect_every:}. Formats, proxies and durations are checked here, so a typo fails before any I/O."""
    node = shop_node.get("logs")
    if node is None:
        return ()
    if not isinstance(node, list):
        raise r.fail("must be a list of access-log files or {files: ..., format: ...} entries", shop_node,
                     "logs", f"{path}.logs")
    return tuple(_log_spec(r, node, index, f"{path}.logs[{index}]", base_dir) for index in range(len(node)))


def _log_spec(r: _Reader, node: list[Any], index: int, lpath: str, base_dir: Path) -> LogSpec:
    """One entry of `logs:`: a file name (or glob), or a mapping with the files and how to read them."""
    entry = node[index]
    holder: Any
    if isinstance(entry, str):
        entry, holder = {"files": [entry]}, node
    elif isinstance(entry, dict):
        r.check_keys(entry, {"file", "files", "format", "trusted_proxies", "expect_every"}, lpath)
        holder = entry
    else:
        raise r.fail("each entry must be a file name or a mapping", node, index, lpath)
    files = entry.get("files", entry.get("file"))
    if isinstance(files, str):
        files = [files]
    if not isinstance(files, list) or not files or not all(isinstance(f, str) and f for f in files):
        raise r.fail("files: must name one or more log files (globs allowed)", holder,
                     "files" if "files" in entry else "file" if holder is entry else index, f"{lpath}.files")
    resolved = tuple(f if f == "-" or Path(f).expanduser().is_absolute() else str(base_dir / f) for f in files)
    origins = _log_origins(r.file, node, index, entry, holder is entry, lpath, len(files))
    if holder is not entry:                  # a plain file name: the format detected, no proxies, no rhythm
        return LogSpec(resolved, None, (), None, line_of(node, index), origins)
    return LogSpec(resolved, _log_format(r, entry, lpath, base_dir), _log_proxies(r, entry, lpath),
                   _log_expect_every(r, entry, lpath), line_of(node, index), origins)


def _log_format(r: _Reader, entry: dict[Any, Any], lpath: str, base_dir: Path) -> str | None:
    """`format:`: a known format's name or a web server's definition (checked now), or a file holding one."""
    from feedback_check.errors import FeedbackCheckError
    from feedback_check.logs.formats import definition_format

    fmt = r.string(entry, "format", f"{lpath}.format", required=False)
    if fmt and not Path(fmt).expanduser().is_file() and not (base_dir / fmt).is_file():
        try:
            definition_format(fmt)
        except FeedbackCheckError as e:
            raise r.fail(str(e), entry, "format", f"{lpath}.format") from None
    elif fmt and not Path(fmt).expanduser().is_absolute() and (base_dir / fmt).is_file():
        fmt = str(base_dir / fmt)
    return fmt


def _log_proxies(r: _Reader, entry: dict[Any, Any], lpath: str) -> tuple[str, ...]:
    """`trusted_proxies:`: CIDRs or preset names (one, or a list), checked now."""
    from feedback_check.errors import FeedbackCheckError
    from feedback_check.logs.sources import TrustedProxies

    proxies = entry.get("trusted_proxies", [])
    if isinstance(proxies, str):
        proxies = [proxies]
    if not isinstance(proxies, list):
        raise r.fail("must be a list of CIDRs or presets", entry, "trusted_proxies", f"{lpath}.trusted_proxies")
    try:
        TrustedProxies.parse([str(p) for p in proxies], where="trusted_proxies")
    except FeedbackCheckError as e:
        raise r.fail(str(e), entry, "trusted_proxies", f"{lpath}.trusted_proxies") from None
    return tuple(str(p) for p in proxies)


def _log_expect_every(r: _Reader, entry: dict[Any, Any], lpath: str) -> str | None:
    """`expect_every:`: how often post-sale requests should arrive (a duration, checked now)."""
    from feedback_check.logs.timespec import parse_duration

    every = r.string(entry, "expect_every", f"{lpath}.expect_every", required=False)
    if every:
        try:
            parse_duration(every)
        except ValueError as e:
            raise r.fail(str(e), entry, "expect_every", f"{lpath}.expect_every") from None
    return every
