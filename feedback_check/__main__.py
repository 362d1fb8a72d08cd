"""`python -m feedback_check`, and the `feedback-check` console script (`run`).

`feedback-check --version` is answered here without importing click or the CLI (a monitoring system
may call it before every check): the same line click's version option prints.
"""

from __future__ import annotations

import sys
from typing import Any


def run() -> Any:
    if sys.argv[1:] == ["--version"]:
        from feedback_check import __version__

        sys.stdout.write(f"feedback-check, version {__version__}\n")
        return 0
    from feedback_check.cli import main

    return main()


if __name__ == "__main__":
    sys.exit(run())
