"""Options shared by several commands, and the one place where a report leaves the program."""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import click

from feedback_check.reporters import FORMATS

F = TypeVar("F", bound=Callable[..., Any])


if TYPE_CHECKING:
    _NumberType = click.ParamType[float]   # generic from click 8.2 on; 8.1's is not subscriptable
else:
    _NumberType = click.ParamType


class Seconds(_NumberType):
    """A duration in seconds: a finite number from `minimum` to `maximum` (inf, nan, 0 and negative values
    are usage errors: `--timeout inf` would remove every deadline; a week is the most any deadline takes)."""

    name = "seconds"

    def __init__(self, minimum: float = 0.1, maximum: float = 7 * 86400) -> None:
        self.minimum = minimum
        self.maximum = maximum

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        if isinstance(value, float):
            number = value
        else:
            try:
                number = float(value)
            except (TypeError, ValueError):
                self.fail(f"{value!r} is not a number of seconds", param, ctx)
        if not math.isfinite(number) or not self.minimum <= number <= self.maximum:
            self.fail(f"{value!r} is not a number of seconds from {self.minimum:g} to {self.maximum:g}", param, ctx)
        return number


def checked_ca_bundle(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """`--ca-bundle FILE`: read (through feedback_check.inputfile, as the probe reads it) before anything
    runs, for http:// URLs too - a missing file, a directory, a FIFO or a file without a PEM certificate
    is a usage error (exit 3), never silently ignored."""
    if value is None:
        return None
    from feedback_check.errors import ConfigError, UsageError
    from feedback_check.probe.tls import load_trust

    try:
        load_trust(value)
    except ConfigError as e:
        raise UsageError(f"--ca-bundle {e}") from None
    return value


def network_options(func: F) -> F:
    """--resolver, --ca-bundle, -t/--timeout, -w/-c/-C (check_curl-style thresholds), --lab, --platform."""
    decorators = [
        click.option("--resolver", "resolvers", multiple=True, metavar="ADDR[:PORT]",
                     help="DNS server to ask (repeatable; several are compared). Default: the system's."),
        click.option("--ca-bundle", type=click.Path(dir_okay=False), default=None, callback=checked_ca_bundle,
                     help="Trust store (PEM). Default: the public CA bundle."),
        click.option("--timeout", "-t", type=Seconds(), default=None,
                     help="Time budget for one post-sale request in seconds, connect to last byte: a later answer "
                          "fails it, critical (default: the platform's, assumed 20; with -c the smaller counts)."),
        click.option("--warning-time", "-w", type=Seconds(minimum=0.001), default=None,
                     metavar="SECONDS", help="Warn when an answer takes longer (default: the platform's, 5)."),
        click.option("--critical-time", "-c", type=Seconds(), default=None, metavar="SECONDS",
                     help="check_curl's name for the same budget as --timeout: an answer later than this fails "
                          "the post-sale, critical (default: the platform's, 20)."),
        click.option("--certificate", "-C", default=None, metavar="DAYS[,DAYS]",
                     help="Certificate warning[,critical] windows in days (default: the platform's, 21,7)."),
        click.option("--lab", is_flag=True,
                     help="Staging/test server on an internal network: private addresses and other ports are info."),
        platform_option,
    ]
    for decorator in reversed(decorators):
        func = decorator(func)
    return func


platform_option = click.option("--platform", "platform_file", type=click.Path(dir_okay=False), default=None,
                               help="Platform profile replacing the shipped config/postfinance.yaml.")


#: Where `--width` leaves its value for `emit` (an option without a parameter: no command signature changes).
_WIDTH_KEY = "feedback_check.width"


def _remember_width(ctx: click.Context, param: click.Parameter, value: int | None) -> None:
    if value is not None:
        ctx.meta[_WIDTH_KEY] = value


width_option = click.option(
    "--width", type=click.IntRange(min=40, max=1000), default=None, expose_value=False, callback=_remember_width,
    metavar="COLUMNS", help="Wrap the text report to COLUMNS (default: the terminal's width, 80 when not a terminal).")


def output_options(func: F) -> F:
    """--format, --output, --quiet, --fail-on, --width."""
    decorators = [
        click.option("--format", "output_format", type=click.Choice(FORMATS), default="text", show_default=True,
                     help="Report format."),
        click.option("--output", type=click.Path(dir_okay=False), default=None,
                     help="Write the report to FILE (atomically) instead of stdout."),
        click.option("--quiet", "-q", is_flag=True, help="Print nothing when the verdict is OK (for cron)."),
        click.option("--fail-on", type=click.Choice(["warning", "critical"]), default="warning",
                     show_default=True,
                     help="Lowest verdict that gives a non-zero exit code (critical: warnings exit 0)."),
        width_option,
    ]
    for decorator in reversed(decorators):
        func = decorator(func)
    return func


@dataclass(frozen=True)
class OutputOptions:
    format: str = "text"
    output: str | None = None
    quiet: bool = False
    fail_on: str = "warning"
    color: bool | None = None


def write_atomically(path: str, text: str | Iterable[str]) -> None:
    """`--output`: a regular file is replaced atomically (textfile collectors never see half a file), a
    device or pipe is written as a stream, never replaced (feedback_check.outputfile). `text` may come
    in pieces (the JSON report's chunks), written as they come."""
    from feedback_check.outputfile import write_file

    write_file(path, text, what="report")


def echo(text: str | Iterable[str], *, markup: bool = False) -> None:
    """Print `text` (or its pieces, one at a time) on stdout, each fitted to stdout's encoding
    (reporters.terminal.fit_encoding; `markup`: HTML/XML); a closed or failing stdout (EPIPE, a full disk)
    is one ConfigError. A newline ends the output when the text does not end with one."""
    from feedback_check.errors import ConfigError
    from feedback_check.reporters.terminal import fit_encoding

    if sys.stdout is None:
        raise ConfigError("standard output is closed: nothing can be printed (use --output FILE)")
    encoding = getattr(sys.stdout, "encoding", None)
    try:
        last = ""
        for piece in [text] if isinstance(text, str) else text:
            if piece:
                click.echo(fit_encoding(piece, encoding, markup=markup), nl=False)
                last = piece
        if not last.endswith("\n"):
            click.echo("")
        sys.stdout.flush()
    except OSError as e:
        raise ConfigError(f"cannot write to standard output: {e.strerror or e}") from None
    except ValueError:               # "I/O operation on closed file"
        raise ConfigError("standard output is closed: nothing can be printed (use --output FILE)") from None


def exit_code_for(verdict_code: int, fail_on: str) -> int:
    """The process exit code for a verdict, honouring --fail-on."""
    if verdict_code == 1 and fail_on == "critical":
        return 0
    return verdict_code


def _width(to_terminal: bool) -> int:
    """--width, else the terminal's width (COLUMNS first, as shutil does), else 80."""
    ctx = click.get_current_context(silent=True)
    if ctx is not None:
        for context in (ctx, *_parents(ctx)):
            if _WIDTH_KEY in context.meta:
                return int(context.meta[_WIDTH_KEY])
    if not to_terminal:
        return 80
    import shutil
    return max(shutil.get_terminal_size((80, 24)).columns, 40)


def _parents(ctx: click.Context) -> list[click.Context]:
    out = []
    while ctx.parent is not None:
        ctx = ctx.parent
        out.append(ctx)
    return out


def exit_code_with_problems(code: int, problems: Sequence[str]) -> int:
    """A run whose result could not be stored (unwritable --state or --output) exits UNKNOWN, as a plugin
    that cannot keep its state does - except a CRITICAL, which stays CRITICAL: a real failure of the
    post-sale must never hide behind a write error."""
    return code if not problems or code == 2 else 3


def emit(report: Any, options: OutputOptions, problems: Sequence[str] = (),
         on_delivered: Callable[[], None] | None = None) -> int:
    """Render the report, send it where it belongs and return the exit code.

    `on_delivered` runs once the report reached its destination (the --output file written, or stdout
    when there is no --output): `check` commits its --state there, so a report that was not delivered
    leaves the state as it was. A ConfigError it raises is one more problem.

    `problems` are errors that happened after the check (e.g. the state file could not be written). The
    report is printed anyway (on stdout when --output cannot be written), then each problem as one line
    on stderr; the exit code follows `exit_code_with_problems`. The report goes out in pieces where its
    format makes them (`reporters.render_chunks`: the JSON document is never held whole)."""
    from feedback_check.findings import Verdict

    problems = list(problems)
    quiet_ok = options.quiet and report.verdict is Verdict.OK
    if quiet_ok and options.output is None and not problems:
        if on_delivered is not None:       # nothing to print: the run is complete
            _deliver(on_delivered, problems)
    else:
        color = options.color if options.color is not None else _stdout_colors(options)
        written = bool(options.output) and _write_output(report, options, problems, color, on_delivered)
        if not written and not (quiet_ok and not problems):
            pieces = _render(report, options, problems, color and options.output is None, _width(True))
            echo(pieces, markup=options.format == "html")   # a closed or full stdout raises: nothing was delivered
            if options.output is None and on_delivered is not None:
                _deliver(on_delivered, problems)
    for problem in problems:
        click.echo(f"feedback-check: error: {problem}", err=True)
    return exit_code_with_problems(exit_code_for(report.verdict.exit_code, options.fail_on), problems)


def _stdout_colors(options: OutputOptions) -> bool:
    """Colour by default only on a terminal, without --output and without NO_COLOR."""
    return (options.output is None and sys.stdout is not None and sys.stdout.isatty()
            and "NO_COLOR" not in os.environ)


def _write_output(report: Any, options: OutputOptions, problems: list[str], color: bool,
                  on_delivered: Callable[[], None] | None) -> bool:
    """Write --output; False (the error one more problem) when it cannot be written."""
    from feedback_check.errors import ConfigError

    assert options.output is not None
    try:
        write_atomically(options.output, _render(report, options, problems, color, _width(False)))
    except ConfigError as e:
        problems.append(str(e))
        return False
    if on_delivered is not None:
        _deliver(on_delivered, problems)
    return True


def _deliver(on_delivered: Callable[[], None], problems: list[str]) -> None:
    from feedback_check.errors import ConfigError

    try:
        on_delivered()
    except ConfigError as e:
        problems.append(str(e))


def _render(report: Any, options: OutputOptions, problems: Sequence[str], color: bool, width: int) -> Iterable[str]:
    from feedback_check.findings import Verdict
    from feedback_check.reporters import render_chunks

    if options.format == "nagios":
        # The status word follows the exit code actually used (--fail-on, problems), not the bare verdict.
        from feedback_check.reporters import nagios
        code = exit_code_with_problems(exit_code_for(report.verdict.exit_code, options.fail_on), problems)
        return (nagios.render(report, state=Verdict(code), problems=problems),)
    if options.format == "junit":
        from feedback_check.reporters import junit
        return (junit.render(report, warnings_fail=options.fail_on == "warning"),)
    return render_chunks(report, options.format, color=color, width=width)
