"""The files a web server's `include` names (nginx `include`, Apache `Include` / `IncludeOptional`).

Each reader lists where the included file may be in a copied configuration (its own rules: the
server's prefix, the file's folder, the folder above it); the first place that names a file wins.
How much may be read in total is `inputfile.IncludeBudget`'s part.
"""

from __future__ import annotations

import glob
from collections.abc import Iterable
from pathlib import Path

from feedback_check.firewall._textconf import is_file

GLOB_CHARACTERS = "*?["


def has_glob(pattern: str) -> bool:
    """Whether an include pattern is a glob (then no match is not an error: the server skips it)."""
    return any(c in pattern for c in GLOB_CHARACTERS)


def first_included(candidates: Iterable[Path], pattern: str) -> list[str]:
    """The files of the first candidate that names any: a glob's matches in sorted order (the order the
    server reads them in), else the candidate itself when it is a file. Empty: none of them does."""
    glob_pattern = has_glob(pattern)
    for candidate in candidates:
        matches = sorted(glob.glob(str(candidate))) if glob_pattern else [str(candidate)]
        matches = [m for m in matches if is_file(m)]
        if matches:
            return matches
    return []
