"""The platform profile: every PostFinance fact and assumption, loaded from config/postfinance.yaml.

No platform number is written anywhere else in the code: modules take a `Platform`.
`load_platform(path)` reads a replacement profile of the same shape (`--platform FILE`).
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from feedback_check import inputfile
from feedback_check.errors import ConfigError
from feedback_check.ipspace import AddressSet
from feedback_check.signature import normalise_encoding
from feedback_check.yamlfile import line_of, load_yaml_file, load_yaml_text

SHIPPED_PROFILE = "postfinance.yaml"


@dataclass(frozen=True)
class PublishedRange:
    cidr: str
    provenance: str = "doc"

    @property
    def addresses(self) -> AddressSet:
        return AddressSet.parse(self.cidr)


@dataclass(frozen=True)
class RangeList:
    """Published source ranges of post-sale requests, with where and when they were read."""

    ranges: tuple[PublishedRange, ...]
    source: str
    retrieved: dt.date | None
    max_age_days: int
    note: str = ""
    custom: bool = False          # a user-supplied list (--ranges) rather than the shipped one
    origin_file: str = ""

    @property
    def addresses(self) -> AddressSet:
        result = AddressSet.empty()
        for r in self.ranges:
            result = result | r.addresses
        return result

    def age_days(self, today: dt.date | None = None) -> int | None:
        if self.retrieved is None:
            return None
        return ((today or dt.date.today()) - self.retrieved).days

    def is_stale(self, today: dt.date | None = None) -> bool:
        age = self.age_days(today)
        return age is not None and age > self.max_age_days


@dataclass(frozen=True)
class Assumption:
    key: str
    text: str


@dataclass(frozen=True)
class RoleInfo:
    statuses: tuple[int, ...]
    description: str


@dataclass(frozen=True)
class ParameterList:
    """A named SHA-OUT parameter list other than the current one (an older variant still found in
    integrations), with where it was seen."""

    name: str
    parameters: tuple[str, ...]
    source: str
    provenance: str = "code"


@dataclass(frozen=True)
class LegacyConcatenation:
    """The old Ogone SHA-1 rule: the values of fixed fields in a fixed order, passphrase once at the end."""

    sha_out: tuple[str, ...]
    sha_in: tuple[str, ...]
    source: str
    provenance: str = "code"


@dataclass(frozen=True)
class Platform:
    name: str
    ranges: RangeList
    legacy_ranges: tuple[str, ...]
    legacy_source: str
    feedback_ports: tuple[int, ...]
    other_ports_reachable: bool
    tls_min_version: str
    weak_ciphers: tuple[str, ...]
    cert_warning_days: int
    cert_critical_days: int
    expected_status: int
    redirect_fails: bool | None          # None: not known (after-processing redirect = warning)
    max_body_bytes: int
    budget_seconds: float
    slow_seconds: float
    dns_timeout_seconds: float
    assumptions: tuple[Assumption, ...]
    sha_out_parameters: tuple[str, ...]
    algorithms: tuple[str, ...]
    default_algorithm: str
    encodings: tuple[str, ...]
    default_encoding: str
    weak_algorithms: tuple[str, ...]
    timings: tuple[str, ...]
    methods: tuple[str, ...]
    roles: dict[str, RoleInfo]
    default_parameters: tuple[str, ...]
    test_order_prefix: str
    client_ip: str
    statuses: dict[int, str]
    ncerror_families: dict[str, str]
    origin_file: str
    sha_out_list_variants: tuple[ParameterList, ...] = ()
    legacy_concatenation: LegacyConcatenation | None = None
    status_second_digit: dict[int, str] = field(default_factory=dict)
    success: str = "2xx"                 # "2xx": any 2xx counts as success; "200": only 200
    tls_public_ca_required: bool = True
    tls_intermediates_required: bool = True
    tls_hostname_must_match: bool = True
    tls_min_version_since: dt.date | None = None   # when the platform began to require tls_min_version

    def is_success_status(self, code: int | None) -> bool:
        """Whether the platform counts this HTTP status as a successful post-sale (http.success)."""
        if code is None:
            return False
        return code == self.expected_status if self.success == "200" else 200 <= code < 300

    @functools.cached_property
    def legacy_addresses(self) -> AddressSet:
        return AddressSet.from_specs(self.legacy_ranges)

    def describe(self, assumption: Assumption) -> str:
        """The assumption's text with the values in force ({budget_seconds}, {slow_seconds}, ...)."""
        redirect = {None: "Whether the platform counts a redirect to another page after the handler ran (Odoo, "
                          "Magento) as a process error is not documented; assumed not, reported as a warning "
                          "(http.redirect_fails: true makes it critical, false info).",
                    True: "A redirect to another page after the handler ran is taken to fail the post-sale "
                          "(http.redirect_fails: true in the platform profile).",
                    False: "A redirect to another page after the handler ran is taken to count as success "
                           "(http.redirect_fails: false in the platform profile)."}[self.redirect_fails]
        success = (f"Only {self.expected_status} counts as success (http.success: \"200\")." if self.success == "200"
                   else f"Any 2xx counts as success, {self.expected_status} is expected (http.success: \"2xx\").")
        values = {**self.facts(), "redirect_fails": redirect, "success_text": success}
        try:
            return assumption.text.format(**values)
        except (KeyError, IndexError, ValueError):
            return assumption.text

    def facts(self) -> Mapping[str, str]:
        """The platform's values as a sentence says them, by name: assumption texts and the findings
        catalogue write `{name}` where one of them belongs, so each value lives in this profile only."""
        return self._facts

    @functools.cached_property
    def _facts(self) -> Mapping[str, str]:
        # Computed once per profile: every templated finding asks for them (per URL, per shop).
        ports = [str(p) for p in self.feedback_ports]
        legacy = self.legacy_addresses
        new_ranges = [r.cidr for r in self.ranges.ranges if not AddressSet.parse(r.cidr) & legacy]
        since = self.tls_min_version_since
        return {  # a plain dict: the platform is pickled for worker processes
            "budget_seconds": f"{self.budget_seconds:g}", "slow_seconds": f"{self.slow_seconds:g}",
            "feedback_ports": _listed(ports, "and"), "feedback_ports_or": _listed(ports, "or"),
            "preferred_port": ports[-1] if ports else "",
            "other_feedback_ports": _listed(ports[:-1], "or"),
            "tls_min_version": self.tls_min_version,
            "tls_min_version_since": f" since {since.day} {since:%B %Y}" if since else "",
            "cert_warning_days": str(self.cert_warning_days), "cert_critical_days": str(self.cert_critical_days),
            "new_ranges": _listed(new_ranges, "and"),
        }

    def assumption(self, key: str) -> Assumption | None:
        return next((a for a in self.assumptions if a.key == key), None)

    def summary(self) -> dict[str, Any]:
        """What a report says about the platform facts it used: the `platform` block of every command's
        JSON (one shape for all; a command adds its own keys beside these, never changes them)."""
        ranges = self.ranges
        return {
            "name": self.name,
            "profile": self.origin_file,
            "ranges": {"cidrs": [r.cidr for r in ranges.ranges], "source": ranges.source,
                       "retrieved": ranges.retrieved.isoformat() if ranges.retrieved else None,
                       "age_days": ranges.age_days(), "custom": ranges.custom},
            "budget_seconds": self.budget_seconds,
            "slow_seconds": self.slow_seconds,
            "tls_min_version": self.tls_min_version,
            "cert_warning_days": self.cert_warning_days,
            "cert_critical_days": self.cert_critical_days,
            "feedback_ports": list(self.feedback_ports),
        }

    def with_ranges(self, ranges: RangeList) -> Platform:
        return replace(self, ranges=ranges)

    def with_budget(self, seconds: float) -> Platform:
        if seconds == self.budget_seconds and self.slow_seconds <= seconds:
            return self                  # the same profile object: its computed facts stay cached
        return replace(self, budget_seconds=seconds, slow_seconds=min(self.slow_seconds, seconds))


def _listed(items: list[str], word: str) -> str:
    """'a', 'a or b', 'a, b or c'."""
    return f"{', '.join(items[:-1])} {word} {items[-1]}" if len(items) > 1 else "".join(items)


def _get(data: Any, path: str, file: str) -> Any:
    node = data
    parent: Any = None
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            raise ConfigError("missing", file=file, line=line_of(node, part) if parent is not None else None,
                              field=path)
        parent, node = node, node[part]
    return node


def _date(value: Any, file: str, line: int | None, field: str) -> dt.date | None:
    if value is None:
        return None
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise ConfigError(f"{value!r} is not a date (YYYY-MM-DD)", file=file, line=line, field=field) from None


def _checked_cidr(value: Any) -> str:
    AddressSet.parse(str(value))          # ValueError: reported as a malformed platform profile
    return str(value)


def _days(node: Any, default: int, file: str) -> int:
    """`max_age_days` of a ranges mapping: a whole number of days."""
    value = node.get("max_age_days", default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"{value!r} is not a number of days", file=file, line=line_of(node, "max_age_days"),
                          field="ranges.max_age_days")
    return value


def _range_entries(entries: Any, file: str, field: str) -> tuple[PublishedRange, ...]:
    if not isinstance(entries, list) or not entries:
        raise ConfigError("must be a non-empty list", file=file, line=line_of(entries, 0), field=field)
    out = []
    for i, entry in enumerate(entries):
        cidr = entry.get("cidr") if isinstance(entry, dict) else entry
        provenance = entry.get("provenance", "doc") if isinstance(entry, dict) else "user"
        try:
            AddressSet.parse(str(cidr))
        except ValueError as e:
            raise ConfigError(str(e), file=file, line=line_of(entries, i), field=f"{field}[{i}]") from None
        out.append(PublishedRange(str(cidr), str(provenance)))
    return tuple(out)


def _build(data: Any, file: str) -> Platform:
    if not isinstance(data, dict):
        raise ConfigError("a platform profile must be a mapping", file=file)
    def g(path: str) -> Any:
        return _get(data, path, file)

    ranges_node = g("ranges")
    ranges = RangeList(
        ranges=_range_entries(g("ranges.published"), file, "ranges.published"),
        source=str(g("ranges.source")),
        retrieved=_date(ranges_node.get("retrieved"), file, line_of(ranges_node, "retrieved"), "ranges.retrieved"),
        max_age_days=_days(ranges_node, 365, file),
        note=str(ranges_node.get("note", "")),
        origin_file=file,
    )
    legacy = ranges_node.get("legacy") or {}
    try:
        return Platform(
            name=str(data.get("name", "PostFinance e-Commerce")),
            ranges=ranges,
            legacy_ranges=tuple(_checked_cidr(c) for c in legacy.get("cidrs", ())),
            legacy_source=str(legacy.get("source", "")),
            feedback_ports=tuple(int(p) for p in g("ports.feedback")),
            other_ports_reachable=bool(g("ports.other_ports_reachable")),
            tls_min_version=str(g("tls.min_version")),
            weak_ciphers=tuple(str(c) for c in g("tls.weak_ciphers")),
            cert_warning_days=int(g("tls.cert_warning_days")),
            cert_critical_days=int(g("tls.cert_critical_days")),
            expected_status=int(g("http.expected_status")),
            redirect_fails=_optional_bool(g("http"), "redirect_fails", file),
            success=_success(g("http"), file),
            tls_public_ca_required=_flag(g("tls"), "public_ca_required", file),
            tls_intermediates_required=_flag(g("tls"), "intermediates_required", file),
            tls_hostname_must_match=_flag(g("tls"), "hostname_must_match", file),
            tls_min_version_since=_date(g("tls").get("min_version_since"), file,
                                        line_of(g("tls"), "min_version_since"), "tls.min_version_since"),
            max_body_bytes=int(g("http.max_body_bytes")),
            budget_seconds=float(g("timing.budget_seconds")),
            slow_seconds=float(g("timing.slow_seconds")),
            dns_timeout_seconds=float(g("dns.timeout_seconds")),
            assumptions=tuple(Assumption(str(a["key"]), str(a["text"])) for a in g("assumptions")),
            sha_out_parameters=tuple(str(p).upper() for p in g("signature.sha_out_parameters")),
            algorithms=tuple(str(a) for a in g("signature.algorithms")),
            default_algorithm=str(g("signature.default_algorithm")),
            encodings=tuple(normalise_encoding(str(e)) for e in g("signature.encodings")),
            default_encoding=normalise_encoding(str(g("signature.default_encoding"))),
            weak_algorithms=tuple(str(a) for a in g("signature.weak_algorithms")),
            timings=tuple(str(t) for t in g("feedback.timings")),
            methods=tuple(str(m) for m in g("feedback.methods")),
            roles={str(name): RoleInfo(tuple(int(s) for s in info["statuses"]), str(info.get("description", "")))
                   for name, info in g("feedback.roles").items()},
            default_parameters=tuple(str(p) for p in g("feedback.default_parameters")),
            test_order_prefix=str(g("feedback.test_order_prefix")),
            client_ip=str(g("feedback.client_ip")),
            statuses={int(k): str(v) for k, v in g("statuses").items()},
            ncerror_families={str(k): str(v) for k, v in g("ncerror_families").items()},
            origin_file=file,
            sha_out_list_variants=tuple(
                ParameterList(str(v["name"]), tuple(str(p).upper() for p in v["parameters"]),
                              str(v.get("source", "")), str(v.get("provenance", "code")))
                for v in (g("signature").get("sha_out_list_variants") or ())),
            legacy_concatenation=_legacy_concatenation(g("signature").get("legacy_value_concatenation")),
            status_second_digit={int(k): str(v) for k, v in (data.get("status_second_digit") or {}).items()},
        )
    except (TypeError, ValueError, KeyError, AttributeError) as e:
        raise ConfigError(f"malformed platform profile ({e})", file=file) from None


def _optional_bool(node: Any, key: str, file: str) -> bool | None:
    value = node.get(key) if isinstance(node, dict) else None
    if value is None or isinstance(value, bool):
        return value
    raise ConfigError(f"{value!r} is not true, false or null", file=file, line=line_of(node, key), field=f"http.{key}")


def _flag(node: Any, key: str, file: str) -> bool:
    value = node.get(key, True) if isinstance(node, dict) else True
    if isinstance(value, bool):
        return value
    raise ConfigError(f"{value!r} is not true or false", file=file, line=line_of(node, key), field=f"tls.{key}")


def _success(node: Any, file: str) -> str:
    value = str(node.get("success", "2xx")).strip().lower() if isinstance(node, dict) else "2xx"
    if value in ("2xx", "200"):
        return value
    raise ConfigError(f"{value!r} is not \"2xx\" or \"200\"", file=file, line=line_of(node, "success"),
                      field="http.success")


def _legacy_concatenation(node: Any) -> LegacyConcatenation | None:
    if not node:
        return None
    return LegacyConcatenation(tuple(str(f) for f in node.get("sha_out", ())),
                               tuple(str(f) for f in node.get("sha_in", ())),
                               str(node.get("source", "")), str(node.get("provenance", "code")))


def load_platform(path: str | Path | None = None) -> Platform:
    """The shipped platform profile, or the one at `path` (`--platform FILE`)."""
    if path is not None:
        return _build(load_yaml_file(path, inputfile.PLATFORM), str(path))
    return _build(load_yaml_text(_shipped_text(), file=f"<shipped {SHIPPED_PROFILE}>"), f"config/{SHIPPED_PROFILE}")


def _shipped_text() -> str:
    """The shipped profile's text, read on every run (never a cached copy that could go stale). An installed
    package has it next to this module (feedback_check/config/); only elsewhere (an editable install maps
    config/ at the repository root) is importlib.resources asked: importing it costs ~8 ms of a probe's start."""
    beside = Path(__file__).parent / "config" / SHIPPED_PROFILE
    try:
        return beside.read_text(encoding="utf-8")
    except FileNotFoundError:
        from importlib import resources
        return resources.files("feedback_check.config").joinpath(SHIPPED_PROFILE).read_text(encoding="utf-8")


#: Where a comment starts on a line of a plain range list: `#`, or `;` as in the plain allowlists the
#: firewall reads (feedback_check/firewall/plain.py), so one file serves as both.
_RANGE_COMMENT = re.compile("[#;]")


def load_range_list(path: str | Path, platform: Platform) -> RangeList:
    """A user-supplied range list (`--ranges FILE`): YAML in the platform profile's shape
    (a `ranges:` mapping, or a bare `published:` list) or plain text, one address/CIDR/range (`a-b`) per
    line with `#` or `;` comments."""
    name = str(path)
    text = inputfile.read_text(path, inputfile.RANGES)
    stripped = [_RANGE_COMMENT.split(ln, 1)[0].strip() for ln in text.splitlines()]
    # A YAML key ("ranges:", "published: [...]") or list item; never an IPv6 address, bad or good.
    looks_yaml = any(_YAML_LINE.match(ln) for ln in stripped if ln)
    if looks_yaml:
        data = load_yaml_text(text, file=name)
        node = data.get("ranges", data) if isinstance(data, dict) else data
        entries = node.get("published") if isinstance(node, dict) else node
        published = _range_entries(entries, name, "ranges.published")
        meta = node if isinstance(node, dict) else {}
        return RangeList(
            ranges=published, source=str(meta.get("source", name)),
            retrieved=_date(meta.get("retrieved"), name, line_of(meta, "retrieved"), "ranges.retrieved"),
            max_age_days=_days(meta, platform.ranges.max_age_days, name),
            note=str(meta.get("note", "")), custom=True, origin_file=name)
    ranges = []
    for number, line in enumerate(stripped, start=1):
        if not line:
            continue
        try:
            addresses = AddressSet.parse(line)
        except ValueError as e:
            raise ConfigError(str(e), file=name, line=number) from None
        # An `a-b` range is listed as the CIDRs it covers: reports and fix lines name networks.
        cidrs = addresses.cidrs() if "-" in line else [line]
        ranges += [PublishedRange(cidr, "user") for cidr in cidrs]
    if not ranges:
        raise ConfigError("no address or CIDR in the file", file=name)
    modified = dt.date.fromtimestamp(Path(path).stat().st_mtime)
    return RangeList(ranges=tuple(ranges), source=name, retrieved=modified,
                     max_age_days=platform.ranges.max_age_days, custom=True, origin_file=name)


_YAML_LINE = re.compile(r"^(-\s|[{\[]|[A-Za-z_][\w-]*\s*:(\s|$))")
