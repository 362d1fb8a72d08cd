"""The `feedback-check` command line: a thin layer that turns options into calls of the core.

Commands live in small modules loaded only when used, so `--help` and `--version` start fast.
Every FeedbackCheckError becomes one line on stderr and exit code 3 (UNKNOWN); an unexpected error
also becomes one line (the traceback only with FEEDBACK_CHECK_DEBUG=1).
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

import click

from feedback_check import __version__

#: command name -> (module, attribute, one-line help). Help text here so `--help` imports nothing.
COMMANDS: dict[str, tuple[str, str, str]] = {
    "check": ("feedback_check.cli.check", "check", "Probe every post-sale URL of the profile and analyse its firewall layers."),
    "probe": ("feedback_check.cli.check", "probe", "Send a simulated, signed post-sale request to one URL."),
    "firewall": ("feedback_check.cli.firewall", "firewall", "Which published PostFinance ranges reach the feedback port?"),
    "ranges": ("feedback_check.cli.ranges", "ranges", "Show the published PostFinance ranges in use, their source and age."),
    "explain": ("feedback_check.cli.signature", "explain", "Decode unknown order/... errors, STATUS, NCERROR and finding codes."),
    "sign": ("feedback_check.cli.signature", "sign", "Compute a SHA-OUT (or SHA-IN) signature, showing what was hashed."),
    "verify": ("feedback_check.cli.signature", "verify", "Check a SHASIGN; when it does not match, name the mistake."),
    "demo": ("feedback_check.cli.check", "demo", "Run the whole check against built-in local sample endpoints."),
    "init": ("feedback_check.cli.init", "init", "Write a commented starter profile."),
    "serve": ("feedback_check.cli.serve", "serve", "Prometheus exporter: /probe?shop=NAME like blackbox_exporter."),
    "logs": ("feedback_check.cli.logs", "logs", "Did PostFinance's post-sales arrive? Evidence from the access logs."),
}


class LazyGroup(click.Group):
    """A group whose commands are imported on first use (click documentation's lazy-loading pattern)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module_name, attribute, _ = COMMANDS[cmd_name]
        command = getattr(importlib.import_module(module_name), attribute)
        if not isinstance(command, click.Command):
            raise TypeError(f"{module_name}.{attribute} is not a click command")
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with formatter.section("Commands"):
            formatter.write_dl([(name, help_text) for name, (_, _, help_text) in COMMANDS.items()])


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="feedback-check")
def cli() -> None:
    """feedback-check: will PostFinance's post-sale feedback reach your shop, and if not, why?

    Exit codes (Nagios): 0 OK, 1 WARNING, 2 CRITICAL (a post-sale would fail), 3 UNKNOWN.
    """


#: click 8.2+ raises this (a UsageError whose message is the whole help text) for a bare group.
_NO_ARGS_IS_HELP: tuple[type[click.UsageError], ...] = tuple(
    getattr(click.exceptions, name) for name in ("NoArgsIsHelpError",) if hasattr(click.exceptions, name))


def _fail(argv: list[str], line: str) -> None:
    """The one error line on stderr, and the run's failure to the consumer of its format (cli/failure.py)."""
    from feedback_check.cli.failure import report_failure

    click.echo(f"feedback-check: {line}", err=True)
    report_failure(argv, line.removeprefix("error: "))


def main(argv: list[str] | None = None) -> Any:
    from feedback_check.errors import FeedbackCheckError

    args = list(sys.argv[1:] if argv is None else argv)

    if os.environ.get("FEEDBACK_CHECK_DEBUG"):
        import logging
        logging.basicConfig(level=logging.DEBUG, format="%(asctime)s %(name)s %(levelname)s %(message)s")
        # httpcore's debug lines carry raw response headers, which a shop may fill with its SHA-OUT setting
        # (reports mask it, log lines cannot): feedback-check's own debug lines are enough.
        logging.getLogger("httpcore").setLevel(logging.INFO)
    try:
        code = cli.main(args=args, prog_name="feedback-check", standalone_mode=False)
    except click.exceptions.Abort:
        _fail(args, "aborted")
        sys.exit(3)
    except _NO_ARGS_IS_HELP as e:
        e.show()                   # bare `feedback-check`: the help text, as before
        sys.exit(3)
    except click.UsageError as e:
        # Bad options or arguments (a directory given as a file, a port out of range): one line, like
        # every other input error, instead of click's usage block; exit 3 (UNKNOWN) as Nagios expects.
        command = e.ctx.command_path if e.ctx is not None else "feedback-check"
        _fail(args, f"error: {' '.join(e.format_message().split())} (see '{command} --help')")
        sys.exit(3)
    except click.ClickException as e:
        e.show()
        from feedback_check.cli.failure import report_failure
        report_failure(args, e.format_message())
        sys.exit(3)
    except FeedbackCheckError as e:
        _fail(args, f"error: {e}")
        sys.exit(3)
    except KeyboardInterrupt:
        _fail(args, "interrupted")
        sys.exit(3)
    except Exception as e:
        if os.environ.get("FEEDBACK_CHECK_DEBUG"):
            raise
        _fail(args, f"internal error: {type(e).__name__}: {e} (set FEEDBACK_CHECK_DEBUG=1 for details)")
        sys.exit(3)
    sys.exit(code if isinstance(code, int) else 0)
