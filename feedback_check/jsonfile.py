"""JSON decoding with a bounded nesting depth (cloud rule exports, `nft -j`, the state file).

`json.loads` recurses once per level: a document nested 5,000 deep ends in RecursionError, and one
nested 900 deep still drives every later walker of the data towards it. `loads` refuses nesting
deeper than MAX_DEPTH with a ConfigError naming the file and the line where it gets too deep.
Syntax errors stay `json.JSONDecodeError` (callers word them for their kind of file).
"""

from __future__ import annotations

import json
import re
from typing import Any

from feedback_check.errors import ConfigError

#: Real exports nest about ten levels; AWS/Azure/GCP and nft -j stay far below this.
MAX_DEPTH = 64

_STRUCTURE = re.compile(r'"(?:[^"\\]++|\\.)*+"|[\[\]{}]')


def loads(text: str, file: str, *, max_depth: int = MAX_DEPTH) -> Any:
    """`json.loads(text)`; ConfigError (file, line) when arrays/objects nest deeper than `max_depth`."""
    try:
        data = json.loads(text)
    except RecursionError:
        raise _too_deep(text, file, max_depth) from None
    if _depth_exceeds(data, max_depth):
        raise _too_deep(text, file, max_depth)
    return data


def _depth_exceeds(data: Any, max_depth: int) -> bool:
    """Whether decoded data nests deeper than `max_depth` (iterative: no recursion on hostile data)."""
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            children: Any = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        if depth > max_depth:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def _too_deep(text: str, file: str, max_depth: int) -> ConfigError:
    """The error for a document nested too deep, with the line where the depth passes the limit
    (one linear scan; only run when the document is refused)."""
    depth = 0
    for match in _STRUCTURE.finditer(text):
        token = match.group()
        if token in "[{":
            depth += 1
            if depth > max_depth:
                line = text.count("\n", 0, match.start()) + 1
                return ConfigError(f"JSON nested deeper than {max_depth} levels", file=file, line=line)
        elif token in "]}":
            depth -= 1
    return ConfigError(f"JSON nested deeper than {max_depth} levels", file=file)
