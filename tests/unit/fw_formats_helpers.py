"""Shared by the tests of the ufw, nginx, Apache, cloud and plain-list parsers: load an example from
examples/firewall/, evaluate it for the feedback port, and describe the result against the published
ranges in the shipped platform profile."""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType

from feedback_check.firewall.evaluate import LayerEvaluation, evaluate
from feedback_check.firewall.formats import FORMAT_MODULES, ParseContext
from feedback_check.firewall.ipspace import AddressSet
from feedback_check.firewall.model import Ruleset
from feedback_check.platform import load_platform

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "firewall"
PUBLISHED = load_platform().ranges.addresses


def example(relative: str) -> Path:
    return EXAMPLES / relative


def analyse(module: ModuleType, relative: str, port: int = 443, **context: object
            ) -> tuple[Ruleset, LayerEvaluation, ParseContext]:
    path = example(relative)
    ctx = ParseContext(port=port, base_dir=path.parent, **context)  # type: ignore[arg-type]
    ruleset = module.parse(path.read_text(encoding="utf-8"), str(path), ctx)
    return ruleset, evaluate(ruleset, port), ctx


def admitted(evaluation: LayerEvaluation) -> list[str]:
    """The admitted part of the published ranges, as minimal CIDRs."""
    return (evaluation.admitted & PUBLISHED).cidrs()


def blocked(evaluation: LayerEvaluation) -> list[str]:
    """The blocked part of the published ranges, as minimal CIDRs."""
    return (PUBLISHED - evaluation.admitted).cidrs()


def missing(evaluation: LayerEvaluation) -> AddressSet:
    return PUBLISHED - evaluation.admitted


def deciding_lines(evaluation: LayerEvaluation, cidr: str) -> list[int | None]:
    """Line numbers of the rules (or policy) that decide the addresses of `cidr`."""
    return [d.origin.line if d.origin else None for d in evaluation.deciding(AddressSet.parse(cidr))]


def detected_formats(text: str) -> list[str]:
    """Every format whose detect() claims `text` (formats not written yet are skipped)."""
    found = []
    for name, module_name in FORMAT_MODULES.items():
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError:
            continue
        if module.detect(text):
            found.append(name)
    return found
