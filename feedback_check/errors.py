"""The exceptions of feedback-check.

Exceptions are only for fatal problems; network outcomes are data (phase results), never exceptions.
The tree::

    FeedbackCheckError          every error the CLI reports as one line, exit 3 (UNKNOWN)
    ├── ConfigError             a profile, rule file, range list or parameter file cannot be used
    │                           (carries file, line and field)
    └── UsageError              options that do not fit together

Third-party errors (PyYAML, OSError, ...) are translated at the boundary with ``raise ... from e``.
No message may contain a SHA-OUT passphrase: messages name where a secret came from, never its value.
"""

from __future__ import annotations


class FeedbackCheckError(Exception):
    """Base of every error feedback-check reports to the user as one line (exit code 3)."""


class ConfigError(FeedbackCheckError):
    """A file or value cannot be used. The message names file, line and field where known."""

    def __init__(self, problem: str, *, file: str | None = None, line: int | None = None,
                 field: str | None = None) -> None:
        self.problem = problem
        self.file = file
        self.line = line
        self.field = field
        super().__init__(self.one_line())

    def __reduce__(self) -> tuple[object, ...]:
        # Keyword-only fields: pickled by hand, so the error crosses from a worker process whole.
        return _config_error, (self.problem, self.file, self.line, self.field)

    def one_line(self) -> str:
        where = ""
        if self.file:
            where = self.file + (f":{self.line}" if self.line else "")
        parts = [p for p in (where, self.field) if p]
        return ": ".join(parts + [self.problem])


def _config_error(problem: str, file: str | None, line: int | None, field: str | None) -> ConfigError:
    return ConfigError(problem, file=file, line=line, field=field)


class UsageError(FeedbackCheckError):
    """Options or arguments that do not fit together."""
