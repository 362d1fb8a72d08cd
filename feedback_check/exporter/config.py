"""The exporter's configuration: the merchant profiles (their shops) and their `modules:` sections.

A module probes configured URLs with settings of its own (the blackbox_exporter notion)::

    modules:
      staging:                        # /probe?module=staging&target=https://staging.shop.example/pf
        targets: [https://staging.shop.example/pf]    # the only URLs this module may probe
        role: accepted                # accepted | rejected | status_change
        method: POST                  # GET | POST
        timing: always_deferred       # as a shop's feedback.timing
        algorithm: SHA-512
        encoding: UTF-8
        parameters: [orderID, amount, currency, PM, ACCEPTANCE, STATUS, PAYID, NCERROR, BRAND]
        paramvar: ch
        passphrase_credential: staging-sha-out     # or passphrase_env / passphrase_file
        ca_bundle: /etc/ssl/internal-ca.pem
        lab: true
        check_forgery: false
        test_order: {orderID: "1000042", amount: "49.90", currency: CHF}   # an order the shop knows

`load_config` validates everything before the exporter answers (file, line and field in each error);
`firewall` is a reserved module name (the shop's firewall analysis).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from feedback_check.errors import ConfigError
from feedback_check.findings import Finding
from feedback_check.platform import Platform
from feedback_check.profile import (
    ROLES,
    FeedbackUrl,
    Profile,
    Shop,
    SignatureSettings,
    build_profile,
    check_input_files,
    check_unique_shops,
    read_passphrase,
    read_test_order,
)
from feedback_check.yamlfile import line_of, load_yaml_file

FIREWALL_MODULE = "firewall"
SHOP_MODULE = "postsale"          # the default module of /probe?shop=NAME: the shop's post-sale URLs
MODULE_KEYS = {"targets", "role", "method", "timing", "algorithm", "encoding", "parameters", "paramvar",
               "passphrase_env", "passphrase_file", "passphrase_credential", "ca_bundle", "lab", "check_forgery",
               "order_prefix", "test_order"}


@dataclass(frozen=True)
class Module:
    """Settings to probe the configured `targets` with."""

    name: str
    targets: tuple[str, ...]
    shop: Shop                      # the probe settings as a shop (urls: one per target, all of `role`)
    ca_bundle: str | None = None
    lab: bool = False

    def shop_for(self, target: str) -> Shop:
        from dataclasses import replace
        return replace(self.shop, name=f"module:{self.name}", urls=(FeedbackUrl(self.role, target),))

    @property
    def role(self) -> str:
        return self.shop.urls[0].role


@dataclass(frozen=True)
class ExporterConfig:
    profiles: tuple[Profile, ...]
    modules: Mapping[str, Module]
    files: tuple[str, ...]

    def shop(self, name: str) -> Shop | None:
        return next((s for p in self.profiles for s in p.shops if s.name == name), None)

    @property
    def shop_names(self) -> list[str]:
        return [s.name for p in self.profiles for s in p.shops]


def load_config(files: Sequence[str], platform: Platform, *, environ: Mapping[str, str] | None = None) -> ExporterConfig:
    """Read and validate every profile and its modules. Raises ConfigError."""
    env = os.environ if environ is None else environ
    profiles: list[Profile] = []
    modules: dict[str, Module] = {}
    for file in files:
        data = load_yaml_file(file)
        base_dir = Path(file).resolve().parent
        profile = build_profile(data, file, platform, base_dir=base_dir, environ=env)
        # The rule files the firewall module reads, checked now as `check` checks them before any
        # traffic: a start or reload naming a missing file fails (a reload keeps the loaded profiles)
        # instead of every later /probe?module=firewall. The exporter reads no access logs.
        check_input_files(profile.shops, firewall=True, logs=False)
        profiles.append(profile)
        check_unique_shops(profiles)
        node = data.get("modules") if isinstance(data, Mapping) else None
        if node is None:
            continue
        if not isinstance(node, Mapping):
            raise ConfigError("must be a mapping of module names to settings", file=file,
                              line=line_of(data, "modules"), field="modules")
        for name, settings in node.items():
            if str(name) in modules or str(name) in (FIREWALL_MODULE, SHOP_MODULE):
                raise ConfigError(f"module name {name!r} is used twice or reserved", file=file,
                                  line=line_of(node, name), field=f"modules.{name}")
            modules[str(name)] = _module(str(name), settings, node, file, platform, base_dir, env)
    return ExporterConfig(tuple(profiles), modules, tuple(files))


def _module(name: str, node: Any, parent: Any, file: str, platform: Platform, base_dir: Path,
            environ: Mapping[str, str]) -> Module:
    path = f"modules.{name}"
    fields = _ModuleFields(node, parent, name, file)
    if not isinstance(node, Mapping):
        raise fields.fail("must be a mapping of settings")
    for key in node:
        if key not in MODULE_KEYS:
            raise fields.fail(f"unknown field {key!r} (expected one of: {', '.join(sorted(MODULE_KEYS))})", key)
    targets = fields.targets()
    role = fields.choice("role", ROLES, "accepted")
    timing = fields.choice("timing", platform.timings, "always_deferred")
    method = str(node.get("method", "POST")).upper()
    if method not in platform.methods:
        raise fields.fail(f"{node.get('method')!r} is not one of {', '.join(platform.methods)}", "method")
    algorithm, encoding = fields.signing(platform)
    parameters = fields.parameters(platform)
    for key in ("lab", "check_forgery"):
        if key in node and not isinstance(node[key], bool):
            raise fields.fail("must be true or false", key)
    ca_bundle = fields.ca_bundle(base_dir)
    findings: list[Finding] = []
    settings: dict[Any, Any] = node if isinstance(node, dict) else dict(node)    # a LineDict keeps its lines
    secret = read_passphrase(settings, path, file, base_dir, environ, findings)
    paramvar = node.get("paramvar")
    shop = Shop(name=f"module:{name}", timing=timing, method=method, urls=(FeedbackUrl(role, targets[0]),),
                paramvar=str(paramvar) if paramvar is not None else None, parameters=tuple(parameters),
                signature=SignatureSettings(algorithm, encoding, secret),
                check_forgery=bool(node.get("check_forgery", True)) and secret is not None,
                order_prefix=str(node.get("order_prefix", platform.test_order_prefix)),
                test_order=read_test_order(settings, path, file))
    return Module(name=name, targets=tuple(t.strip() for t in targets), shop=shop, ca_bundle=ca_bundle,
                  lab=bool(node.get("lab", False)))


class _ModuleFields:
    """The settings of one module (`modules.NAME`), each read and checked; a problem names its line."""

    def __init__(self, node: Any, parent: Any, name: str, file: str) -> None:
        self.node, self.parent, self.name, self.file = node, parent, name, file
        self.path = f"modules.{name}"

    def fail(self, problem: str, key: Any = None) -> ConfigError:
        return ConfigError(problem, file=self.file,
                           line=line_of(self.node if key is not None else self.parent, key or self.name),
                           field=f"{self.path}.{key}" if key is not None else self.path)

    def targets(self) -> list[str]:
        targets = self.node.get("targets")
        if not isinstance(targets, list) or not targets or not all(isinstance(t, str) and t for t in targets):
            raise self.fail("must be a non-empty list of the URLs this module may probe", "targets")
        return targets

    def choice(self, key: str, choices: Sequence[str], default: str) -> str:
        value = self.node.get(key, default)
        if not isinstance(value, str) or value not in choices:
            raise self.fail(f"{value!r} is not one of {', '.join(choices)}", key)
        return value

    def signing(self, platform: Platform) -> tuple[str, str]:
        """The SHA-OUT algorithm and encoding (the platform's defaults when not given)."""
        from feedback_check.signature import normalise_algorithm, normalise_encoding
        try:
            algorithm = normalise_algorithm(str(self.node.get("algorithm", platform.default_algorithm)))
        except ValueError as e:
            raise self.fail(str(e), "algorithm") from None
        try:
            encoding = normalise_encoding(str(self.node.get("encoding", platform.default_encoding)))
        except ValueError as e:
            raise self.fail(str(e), "encoding") from None
        return algorithm, encoding

    def parameters(self, platform: Platform) -> list[str]:
        parameters = self.node.get("parameters", list(platform.default_parameters))
        if not isinstance(parameters, list) or not all(isinstance(p, str) for p in parameters):
            raise self.fail("must be a list of parameter names", "parameters")
        return parameters

    def ca_bundle(self, base_dir: Path) -> str | None:
        """The CA bundle file, relative to the configuration file's folder unless absolute."""
        ca_bundle = self.node.get("ca_bundle")
        if ca_bundle is None:
            return None
        if not isinstance(ca_bundle, str):
            raise self.fail("must be a file name", "ca_bundle")
        return str((base_dir / ca_bundle).expanduser()) if not Path(ca_bundle).is_absolute() else ca_bundle
