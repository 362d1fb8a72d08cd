"""The wheel holds every package of the source tree, and the declared dependencies are the imported ones.

A package missing from `[tool.setuptools] packages` is absent from a non-editable install (the tests run
editable, so nothing else would notice); a dependency imported but not declared breaks a fresh install,
one declared but never imported is dead weight."""

from __future__ import annotations

import ast
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "feedback_check"
#: Distribution name -> the top-level module it provides, where the two differ.
MODULE_OF = {"PyYAML": "yaml", "pyahocorasick": "ahocorasick", "dnspython": "dns"}


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _distribution(requirement: str) -> str:
    for stop in "<>=!~[; ":
        requirement = requirement.split(stop, 1)[0]
    return requirement


def test_every_package_directory_is_in_the_wheel() -> None:
    listed = set(_pyproject()["tool"]["setuptools"]["packages"])
    found = {".".join(init.parent.relative_to(ROOT).parts) for init in PACKAGE.rglob("__init__.py")}
    assert found - listed == set(), "add these to [tool.setuptools] packages in pyproject.toml"
    assert listed - found - {"feedback_check.config"} == set(), "listed packages that do not exist"


def _imported_top_levels() -> set[str]:
    names: set[str] = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return {n for n in names if n not in sys.stdlib_module_names and n not in ("feedback_check", "__future__")}


def test_declared_dependencies_are_the_imported_ones() -> None:
    project = _pyproject()["project"]
    declared = [_distribution(r) for r in project["dependencies"]]
    assert len(declared) == len(set(declared)), "a dependency is declared twice"
    optional = {_distribution(r) for r in project["optional-dependencies"]["fast"]}
    modules = {MODULE_OF.get(d, d.lower().replace("-", "_")) for d in declared}
    optional_modules = {MODULE_OF.get(d, d.lower()) for d in optional}
    imported = _imported_top_levels()
    assert imported - modules - optional_modules == set(), "imported but not declared"
    assert modules - imported == set(), "declared but never imported"


@pytest.mark.parametrize("extra", ["fast"])
def test_optional_extras_are_imported_guarded(extra: str) -> None:
    """An optional extra (uvloop) is imported only inside a try/except ImportError: never required."""
    for requirement in _pyproject()["project"]["optional-dependencies"][extra]:
        module = _distribution(requirement)
        for path in PACKAGE.rglob("*.py"):
            tree = ast.parse(path.read_text(), str(path))
            guarded = {id(n) for t in ast.walk(tree) if isinstance(t, ast.Try)
                       if any(isinstance(h.type, ast.Name) and h.type.id in ("ImportError", "ModuleNotFoundError")
                              for h in t.handlers)
                       for n in ast.walk(t)}
            for node in ast.walk(tree):
                if isinstance(node, ast.Import) and any(a.name.split(".")[0] == module for a in node.names):
                    assert id(node) in guarded, f"{path}: {module} imported without an ImportError guard"
