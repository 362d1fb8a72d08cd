"""`--format json`: one versioned JSON document (interface.md)."""

from __future__ import annotations

import json
from typing import Any


def render(report: Any, *, color: bool = False) -> str:
    return json.dumps(report.to_dict(), indent=2, ensure_ascii=False, default=str) + "\n"
