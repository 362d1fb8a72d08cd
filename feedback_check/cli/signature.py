"""`sign`, `verify` and `explain`: thin click commands over feedback_check.signature and feedback_check.explain.

Passphrases come from an environment variable, a file or a hidden prompt, never from a plain option
(it would land in the shell history). Every line this module writes passes through `redact`, so a
passphrase never reaches stdout or stderr, even when it also appears as a parameter value.
Exit codes: sign 0; verify 0 match, 2 mismatch (explained or not); explain 0 documented, 3 not
documented; bad input 3 (one line, via the CLI's main()).
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import click

from feedback_check import __version__
from feedback_check.errors import ConfigError, FeedbackCheckError, UsageError
from feedback_check.redact import MASK as PASSPHRASE_MASK
from feedback_check.redact import NOTHING, Masker, masking
from feedback_check.signature.params import KINDS

F = TypeVar("F", bound=Callable[..., Any])
FORMATS = ("text", "json")
SCHEMA_VERSION = 1


def _common_options(func: F) -> F:
    decorators = [
        click.argument("params", nargs=-1),
        click.option("--file", "-f", "input_file", metavar="FILE",
                     help="Read the parameters from FILE ('-' for stdin): a query string, a form body, "
                          "key=value lines or a captured HTTP request."),
        click.option("--input-format", type=click.Choice(KINDS),
                     default="auto", show_default=True, help="Shape of the parameters (auto detects it)."),
        click.option("--sha-in", is_flag=True,
                     help="Payment request rule (SHA-IN): every parameter is hashed, not only the SHA-OUT list."),
        click.option("--algorithm", default=None, metavar="SHA-1|SHA-256|SHA-512",
                     help="The account's hash algorithm."),
        click.option("--encoding", default=None, metavar="UTF-8|ISO-8859-1",
                     help="The account's character encoding (default: the platform's, UTF-8)."),
        click.option("--passphrase-env", metavar="VAR", help="Environment variable holding the passphrase."),
        click.option("--passphrase-file", metavar="FILE", help="File whose first line is the passphrase."),
        click.option("--format", "output_format", type=click.Choice(FORMATS), default="text", show_default=True),
        click.option("--platform", "platform_file", type=click.Path(dir_okay=False), default=None,
                     help="Platform profile replacing the shipped config/postfinance.yaml."),
    ]
    for decorator in reversed(decorators):
        func = decorator(func)
    return func


# -- helpers -------------------------------------------------------------------------------------------

def _passphrase(env: str | None, file: str | None, *, what: str, required: bool = True) -> str | None:
    """The passphrase from VAR, FILE or a hidden prompt (only on a terminal)."""
    if env and file:
        raise UsageError(f"give the {what} either by environment variable or by file, not both")
    if env:
        value = os.environ.get(env)
        if value is None:
            raise UsageError(f"environment variable {env} ({what}) is not set")
        if value == "":
            raise UsageError(f"environment variable {env} ({what}) is empty")
        return value
    if file:
        from feedback_check.findings import Finding
        from feedback_check.profile import read_secret_file
        warnings: list[Finding] = []
        secret = read_secret_file(Path(file), warnings)
        for finding in warnings:
            click.echo(f"feedback-check: warning: {finding.detail} ({finding.fix})", err=True)
        return secret.reveal()
    if not required:
        return None
    if sys.stdin.isatty():
        value = click.prompt(f"{what.capitalize()}", hide_input=True, err=True)
        return str(value)
    raise UsageError(f"no {what}: use --passphrase-env VAR or --passphrase-file FILE "
                     "(a prompt needs a terminal)")


@contextmanager
def _redacted_errors(secrets: Masker) -> Iterator[None]:
    """Errors raised while handling the input are shown with every passphrase masked (excerpts of the
    input in them are masked before they are cut)."""
    try:
        with masking(secrets):
            yield
    except ConfigError as e:
        raise ConfigError(secrets.mask(e.problem), file=e.file, line=e.line, field=e.field) from None
    except FeedbackCheckError as e:
        raise UsageError(secrets.mask(str(e))) from None


def _load_input(params: tuple[str, ...], input_file: str | None, kind: str, encoding: str) -> Any:
    from feedback_check.signature.params import parse_text, read_parameters
    if params and input_file is not None:
        raise UsageError("give the parameters either as arguments or with --file, not both")
    if input_file is not None:
        from feedback_check import inputfile
        stdin = inputfile.read_stream(sys.stdin.buffer, inputfile.PARAMETERS, "<stdin>") if input_file == "-" else None
        return read_parameters(input_file, kind=kind, encoding=encoding, stdin=stdin)
    if not params:
        raise UsageError("no parameters: give a query string or NAME=VALUE arguments, or --file FILE")
    if len(params) == 1:
        return parse_text(params[0], kind=kind, encoding=encoding)
    return parse_text(_joined(params, kind), kind="lines" if kind == "auto" else kind, encoding=encoding,
                      origin="<arguments>")


def _joined(params: tuple[str, ...], kind: str) -> str:
    """Several arguments, one NAME=VALUE each (`sign orderID=1 amount=2`), as one input.

    They are joined as key=value lines, so each value is taken literally: a value with '&', '=' or
    '%' in it (`'CN=Anna & Co'`) stays whole, as the shell quoted it. With --input-format query or
    form the arguments are query-string pieces and are joined with '&' (and URL-decoded)."""
    if kind not in ("auto", "lines", "query", "form"):
        raise UsageError(f"--input-format {kind} takes one argument (or --file), not {len(params)}")
    for param in params:
        name, equals, _ = param.partition("=")
        if not equals or not name.strip():
            raise UsageError(f"argument {param!r} is not NAME=VALUE (several arguments are one parameter each)")
        if "\n" in param or "\r" in param:
            raise UsageError(f"argument {name.strip()!r}: a value on several lines needs --file")
    return ("&" if kind in ("query", "form") else "\n").join(params)


def _settings(platform_file: str | None, algorithm: str | None, encoding: str | None) -> tuple[Any, str | None, str]:
    from feedback_check.platform import load_platform
    from feedback_check.signature import normalise_algorithm, normalise_encoding
    platform = load_platform(platform_file)
    try:
        algo = normalise_algorithm(algorithm) if algorithm else None
        enc = normalise_encoding(encoding or platform.default_encoding)
    except ValueError as e:
        raise UsageError(str(e)) from None
    return platform, algo, enc


def _emit(text: str, secrets: Masker) -> None:
    from feedback_check.cli.options import echo
    echo(secrets.mask(text))


def _json(command: str, body: dict[str, Any], secrets: Masker) -> str:
    document = {"schema_version": SCHEMA_VERSION, "tool": {"name": "feedback-check", "version": __version__},
                "command": command, **body}
    return json.dumps(secrets.mask_data(document), indent=2, ensure_ascii=False)


def _input_dict(inp: Any) -> dict[str, Any]:
    return {"kind": inp.kind_name, "origin": inp.origin, "method": inp.method, "notes": list(inp.notes),
            "parameters": [{"name": n, "value": v} for n, v in inp.pairs]}


def _pairs_block(masked: str, indent: str = "  ") -> list[str]:
    """A hashed string split after each mask, one pair per line (the string itself has no separators)."""
    # A pair ends after the mask and any whitespace shown with it (\\n, \\r, a space).
    parts = re.findall(re.escape(PASSPHRASE_MASK) + r"(?:\\r|\\n| )*|.+?(?=" + re.escape(PASSPHRASE_MASK) + "|$)",
                       masked)
    lines: list[str] = []
    for part in parts:
        if lines and part.startswith(PASSPHRASE_MASK) and not lines[-1].endswith(PASSPHRASE_MASK):
            lines[-1] += part
        else:
            lines.append(part)
    return [f"{indent}{line}" for line in lines] or [f"{indent}(empty)"]


def _header(inp: Any) -> str:
    source = inp.kind_name + (f" ({inp.method})" if inp.method else "")
    return f"{len(inp.pairs)} parameters from {source}, {inp.origin}"


# -- sign ----------------------------------------------------------------------------------------------

@click.command("sign")
@_common_options
def sign(params: tuple[str, ...], input_file: str | None, input_format: str, sha_in: bool, algorithm: str | None,
         encoding: str | None, passphrase_env: str | None, passphrase_file: str | None, output_format: str,
         platform_file: str | None) -> int:
    """Compute the SHA-OUT (or --sha-in: SHA-IN) signature of PARAMS and show exactly what was hashed.

    PARAMS is a query string (or a URL with one) or several NAME=VALUE arguments (each value taken
    literally); --file reads a query string, a form body, key=value lines or a captured HTTP request. The passphrase is shown masked as ********.
    Without --algorithm, a SHASIGN among PARAMS names the algorithm by its length (as for verify);
    otherwise the platform's default is used.
    """
    from feedback_check.signature import signing_algorithm
    from feedback_check.signature.doctor import SHA_IN, SHA_OUT, compute
    platform, algo, enc = _settings(platform_file, algorithm, encoding)
    passphrase = _passphrase(passphrase_env, passphrase_file, what="passphrase")
    assert passphrase is not None
    secrets = Masker.from_secrets((passphrase,))
    with _redacted_errors(secrets):
        inp = _load_input(params, input_file, input_format, enc)
        algo, inferred = (algo, False) if algo else signing_algorithm(inp.shasign, platform.default_algorithm)
        result = compute(inp, passphrase, rule=SHA_IN if sha_in else SHA_OUT, algorithm=algo, encoding=enc,
                         platform=platform)
    given = inp.shasign
    given_matches = None if not given else given.strip().upper() == result.digest
    if output_format == "json":
        body = {"input": _input_dict(inp), **result.to_dict(), "algorithm_inferred": inferred,
                "input_shasign_matches": given_matches}
        _emit(_json("sign", body, secrets), secrets)
        return 0
    how = " (from the input's SHASIGN length)" if inferred else ""
    lines = [f"{result.rule} signature · {result.algorithm}{how} · {result.encoding} · {_header(inp)}"]
    lines += [f"note: {n}" for n in inp.notes]
    lines.append(f"String hashed (passphrase shown as {PASSPHRASE_MASK}, one pair per line, joined without "
                 "separators):")
    lines += _pairs_block(result.masked)
    if result.signed.dropped:
        lines.append("Left out:")
        width = max(len(n) for n, _ in result.signed.dropped)
        lines += [f"  {n.ljust(width)}  {reason}" for n, reason in result.signed.dropped]
    lines.append(f"SHASIGN: {result.digest}")
    if given_matches is not None:
        lines.append("The input's SHASIGN matches." if given_matches else
                     "The input's SHASIGN does NOT match: run `feedback-check verify` to find out why.")
    _emit("\n".join(lines), secrets)
    return 0


# -- verify --------------------------------------------------------------------------------------------

@click.command("verify")
@_common_options
@click.option("--shasign", default=None, metavar="HEX",
              help="The signature to check instead of the SHASIGN parameter (e.g. what your handler computed).")
@click.option("--test-passphrase-env", metavar="VAR",
              help="The other environment's passphrase (e.g. TEST), to recognise a TEST/PROD swap.")
@click.option("--test-passphrase-file", metavar="FILE", help="The same, from a file.")
def verify(params: tuple[str, ...], input_file: str | None, input_format: str, sha_in: bool, algorithm: str | None,
           encoding: str | None, passphrase_env: str | None, passphrase_file: str | None, output_format: str,
           platform_file: str | None, shasign: str | None, test_passphrase_env: str | None,
           test_passphrase_file: str | None) -> int:
    """Check the SHASIGN of PARAMS; when it does not match, name the mistake that reproduces it.

    Without --algorithm the algorithm is taken from the SHASIGN's length. Exit 0 match, 2 mismatch
    (explained or not: a request signed so fails), 3 bad input.
    """
    from feedback_check.signature.doctor import SHA_IN, SHA_OUT, CheckStatus, diagnose
    platform, algo, enc = _settings(platform_file, algorithm, encoding)
    passphrase = _passphrase(passphrase_env, passphrase_file, what="passphrase")
    assert passphrase is not None
    other = _passphrase(test_passphrase_env, test_passphrase_file, what="second (TEST) passphrase", required=False)
    secrets = Masker.from_secrets((passphrase, other))
    with _redacted_errors(secrets):
        inp = _load_input(params, input_file, input_format, enc)
        check = diagnose(inp, passphrase, platform=platform, shasign=shasign, rule=SHA_IN if sha_in else SHA_OUT,
                         algorithm=algo, encoding=enc, other_passphrase=other)
    if output_format == "json":
        _emit(_json("verify", {"input": _input_dict(inp), **check.to_dict()}, secrets), secrets)
        return check.status.exit_code
    exp = check.expected
    settings = f"{exp.rule}, {exp.algorithm}{' (from the SHASIGN length)' if check.algorithm_inferred else ''}, " \
               f"{exp.encoding}"
    lines = [f"{_header(inp)}"]
    lines += [f"note: {n}" for n in inp.notes]
    if check.status is CheckStatus.MATCH:
        lines.append(f"OK: SHASIGN matches ({settings}).")
    else:
        lines.append(f"MISMATCH: SHASIGN does not match ({settings}).")
    lines.append(f"  given:    {check.given}")
    if check.status is not CheckStatus.MATCH:
        lines.append(f"  expected: {exp.digest}")
    for m in check.mistakes:
        lines += [f"Cause: {m.title} [{m.code}]", f"  {m.detail}", f"  Fix: {m.fix}"]
    if check.reproduced_masked is not None and check.reproduced_masked != exp.masked:
        lines.append("The given SHASIGN is what hashing this string gives:")
        lines += _pairs_block(check.reproduced_masked)
        lines.append("The platform's rule hashes:")
        lines += _pairs_block(exp.masked)
    elif check.status is not CheckStatus.MATCH:
        lines.append("The platform's rule hashes" + (" the same string as shown masked (the difference is in the "
                                                     "passphrase, the encoding or the algorithm):"
                                                     if check.reproduced_masked is not None else ":"))
        lines += _pairs_block(exp.masked)
    for alt in check.alternatives:
        lines.append("Equally possible: " + " + ".join(f"{m.title} [{m.code}]" for m in alt))
        # The detail tells two variants of one mistake apart (e.g. two different outdated lists).
        lines += [f"  {m.detail}" for m in alt]
    lines += [f"note: {n}" for n in check.notes]
    if check.status is not CheckStatus.MATCH:
        lines.append(f"({check.variants_tried} ways of signing tried.)")
    _emit("\n".join(lines), secrets)
    return check.status.exit_code


# -- explain -------------------------------------------------------------------------------------------

@click.command("explain")
@click.argument("text", nargs=-1, required=True)
@click.option("--format", "output_format", type=click.Choice(FORMATS), default="text", show_default=True)
@click.option("--platform", "platform_file", type=click.Path(dir_okay=False), default=None,
              help="Platform profile replacing the shipped config/postfinance.yaml.")
def explain(text: tuple[str, ...], output_format: str, platform_file: str | None) -> int:
    """Decode unknown order/... errors, STATUS and NCERROR codes, and feedback-check finding codes.

    Exit 0 when everything in TEXT is documented, 3 when something is not (never a guess).
    """
    from feedback_check.explain import explain as explain_text
    from feedback_check.platform import load_platform
    result = explain_text(" ".join(text), load_platform(platform_file))
    if output_format == "json":
        _emit(_json("explain", result.to_dict(), NOTHING), NOTHING)
        return result.exit_code
    blocks = []
    for e in result.explanations:
        lines = [e.title if e.documented else f"{e.query}: not documented"]
        if e.meaning:
            lines.append(f"  {e.meaning}")
        if e.kind == "finding":
            lines.insert(1, f"  [{e.details['code']}, {e.details['severity']}]")
        lines += [f"  Check next: {step}" if e.kind in ("unknown_order", "platform_message") else f"  Fix: {step}"
                  for step in e.check_next]
        blocks.append("\n".join(lines))
    _emit("\n\n".join(blocks), NOTHING)
    return result.exit_code
