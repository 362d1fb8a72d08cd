"""Helpers shared by the ufw, nginx, Apache, cloud and plain-list parsers.

Kept small: line-numbered JSON documents for the cloud formats, address parsing that reports
instead of raising, the single-chain rulesets most of these formats reduce to, and the lookup of the
rule that blocks the missing addresses (where a fix has to go).
"""

from __future__ import annotations

import functools
import ipaddress
import json
import os
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

from feedback_check import jsonfile
from feedback_check.errors import ConfigError
from feedback_check.firewall.evaluate import Decision, LayerEvaluation
from feedback_check.firewall.ipspace import AddressSet
from feedback_check.firewall.model import Action, Chain, Origin, Rule, Ruleset
from feedback_check.yamlfile import line_of, load_yaml_text

#: The chain name of formats that reduce to one ordered list of rules.
MAIN_CHAIN = "input"


def load_json_document(text: str, file: str) -> Any:
    """Parse a JSON document, keeping line numbers where possible.

    JSON is checked with the json module first, so a broken file gets JSON's own error and line. The
    document is then read through the line-numbered YAML loader (JSON is YAML), so rules can name
    their line; when that fails (e.g. tab indentation YAML rejects), the plain JSON data is used and
    lines are unknown.
    """
    try:
        plain = jsonfile.loads(text, file)
    except json.JSONDecodeError as e:
        raise ConfigError(f"not valid JSON: {e.msg}", file=file, line=e.lineno) from None
    try:
        with_lines = load_yaml_text(text, file=file)
    except ConfigError:
        return plain
    return with_lines if with_lines == plain else plain


def is_file(path: str) -> bool:
    """Whether an `include`d path is a file; a name the OS refuses (too long, a NUL byte) is none."""
    try:
        return os.path.isfile(path)
    except (OSError, ValueError):
        return False


ParseFunction = TypeVar("ParseFunction", bound=Callable[..., Any])


def checks_json_shape(format_name: str) -> Callable[[ParseFunction], ParseFunction]:
    """For a cloud parser's `parse(text, file, context)`: valid JSON of the wrong shape (a number where
    a list belongs, a string where an object belongs) becomes a ConfigError naming the file, not a
    TypeError from deep inside the parser. The parser's own ConfigErrors (with lines) pass through."""
    def decorate(parse: ParseFunction) -> ParseFunction:
        @functools.wraps(parse)
        def checked(text: str, file: str, *args: Any, **kwargs: Any) -> Any:
            try:
                return parse(text, file, *args, **kwargs)
            except (TypeError, ValueError, AttributeError, KeyError, IndexError) as e:
                raise ConfigError(f"not the JSON structure {format_name} expects: a value has the wrong "
                                  f"type ({e})", file=file) from None
        return checked  # type: ignore[return-value]
    return decorate


def origin_in(container: Any, key: Any, file: str, text: str) -> Origin:
    """Origin of `container[key]` in a document loaded by `load_json_document`."""
    return Origin(file, line_of(container, key), text)


def parse_addresses(specs: Iterable[str]) -> tuple[AddressSet, list[str]]:
    """Parse address specs; returns the set of the good ones and the bad ones (never raises)."""
    result = AddressSet.empty()
    bad: list[str] = []
    for spec in specs:
        try:
            result = result | AddressSet.parse(spec)
        except ValueError:
            bad.append(spec)
    return result, bad


def single_chain(format_name: str, file: str, rules: Sequence[Rule], policy: Action, *,
                 policy_origin: Origin | None = None, unparsed: Sequence[Origin] = (),
                 notes: Sequence[str] = (), context: dict[str, object] | None = None) -> Ruleset:
    """A ruleset made of one first-match chain with a default policy."""
    chain = Chain(MAIN_CHAIN, tuple(rules), policy=policy, origin=policy_origin)
    return Ruleset(format=format_name, file=file, chains={MAIN_CHAIN: chain}, entry=(MAIN_CHAIN,),
                   unparsed=tuple(unparsed), notes=tuple(dict.fromkeys(notes)), context=dict(context or {}))


def blocking_decisions(evaluation: LayerEvaluation, missing: AddressSet) -> list[Decision]:
    """The decisions (in evaluation order) that refuse part of `missing`."""
    return [d for d in evaluation.deciding(missing) if d.action is not Action.ACCEPT]


def first_blocking_rule(evaluation: LayerEvaluation, missing: AddressSet) -> Decision | None:
    """The earliest rule (not a default policy) that refuses part of `missing`: a fix goes before it."""
    return next((d for d in blocking_decisions(evaluation, missing) if not d.by_policy), None)


def fix_cidrs(missing: AddressSet, evaluation: LayerEvaluation, published: AddressSet | None = None
              ) -> list[str]:
    """The CIDRs a fix should admit: `missing`, widened into whole networks where the rest of the
    network is already admitted (185.8.52.0/22 rather than 25 fragments around the three hosts an old
    list admitted). Admitting an address twice changes nothing, so the fix stays exact.

    With `published` (ParseContext.published), a published network whose every refused address is in
    `missing` is given whole; otherwise widening never goes beyond the coarsest network of `missing`.
    """
    out: list[str] = []
    rest = missing
    for network in published.networks() if published is not None else ():
        whole = AddressSet.parse(str(network))
        if whole & missing and (whole - evaluation.admitted).issubset(missing):
            out.append(str(network))
            rest = rest - whole
    merged = rest | evaluation.admitted
    floors: dict[int, int] = {}
    for network in rest.networks():
        floors[network.version] = min(floors.get(network.version, 128), network.prefixlen)
    for network in merged.networks():
        part = AddressSet.parse(str(network)) & rest
        if not part:
            continue
        if network.prefixlen >= floors[network.version]:
            out.append(str(network))
        else:
            out.extend(part.cidrs())
    networks = sorted(ipaddress.ip_network(cidr) for cidr in out if ipaddress.ip_network(cidr).version == 4)
    networks6 = sorted(ipaddress.ip_network(cidr) for cidr in out if ipaddress.ip_network(cidr).version == 6)
    return [str(n) for n in networks] + [str(n) for n in networks6]


def layer_missing(missing: AddressSet, evaluation: LayerEvaluation, published: AddressSet | None) -> AddressSet:
    """Every published address this layer refuses, plus `missing`.

    The analysis asks for a fix range by range and merges the lines; formats whose fix is one named
    object (a cloud rule with a name and a priority) or a multi-line block must give the same, complete
    fix at every call, or the merged fix would repeat names and priorities or split blocks.
    """
    if published is None:
        return missing
    return missing | (published - evaluation.admitted)


def strip_comment(line: str, markers: str = "#") -> str:
    """`line` without a trailing comment started by one of `markers` (no quoting in these formats)."""
    cut = len(line)
    for marker in markers:
        index = line.find(marker)
        if index != -1:
            cut = min(cut, index)
    return line[:cut].strip()


def port_ranges(spec: str) -> list[tuple[int, int]]:
    """`443`, `80,443`, `1000:2000` or `1000-2000` (and lists of them) as port intervals.

    Raises ValueError for anything else.
    """
    out: list[tuple[int, int]] = []
    for part in spec.split(","):
        part = part.strip()
        for separator in (":", "-"):
            if separator in part:
                low_text, high_text = part.split(separator, 1)
                low, high = int(low_text), int(high_text)
                break
        else:
            low = high = int(part)
        if not 0 <= low <= high <= 65535:
            raise ValueError(f"port range {part!r} is out of order or out of range")
        out.append((low, high))
    return out
