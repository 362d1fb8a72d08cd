"""A run that stopped before it had a report (bad profile, bad option, internal error), told to the
consumer that waits for the answer - not only to stderr:

- ``--format nagios``: one ``FEEDBACK-CHECK UNKNOWN - <reason>`` line on stdout (Nagios shows stdout; a
  plugin with no output shows "(No output on stdout)");
- ``--format prometheus --output FILE``: the textfile is still replaced, atomically, with
  ``feedback_check_up{reason="..."} 0`` and ``feedback_check_run_verdict 3``, so the previous run's
  metrics do not linger until a staleness alert.

The options are read from the raw arguments, because the error may come from parsing them.
"""

from __future__ import annotations

from collections.abc import Sequence

import click


def requested(argv: Sequence[str], long: str, short: str | None = None) -> str | None:
    """The value of `long`/`short` in argv (last one wins), or None; tolerates any other garbage."""
    value: str | None = None
    args = list(argv)
    for index, arg in enumerate(args):
        if arg == "--":
            break
        if arg.startswith(long + "="):
            value = arg[len(long) + 1:]
        elif (arg == long or (short is not None and arg == short)) and index + 1 < len(args):
            value = args[index + 1]
    return value


def report_failure(argv: Sequence[str], reason: str) -> None:
    """Tell the waiting consumer that the run failed (see the module docstring). Never raises."""
    output_format = requested(argv, "--format")
    if output_format == "nagios":
        from feedback_check.reporters.nagios import unknown_line
        click.echo(unknown_line(reason))
    elif output_format == "prometheus":
        output = requested(argv, "--output")
        if output:
            from feedback_check.cli.options import write_atomically
            from feedback_check.errors import FeedbackCheckError
            from feedback_check.reporters.prometheus import render_failure
            try:
                write_atomically(output, render_failure(reason))
            except FeedbackCheckError as e:
                click.echo(f"feedback-check: error: {e}", err=True)
