"""`--format json`: one versioned JSON document (interface.md) on one line.

Compact on purpose: Python's C encoder only runs without `indent` (pretty-printing 500 shops cost
0.17 s); pipe through `jq` or `python -m json.tool` to read it.
"""

from __future__ import annotations

import json
from typing import Any


def render(report: Any, *, color: bool = False) -> str:
    return json.dumps(report.to_dict(), ensure_ascii=False, default=str) + "\n"
