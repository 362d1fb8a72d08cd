"""The README's `feedback-check demo` sample is the real report (audit 13).

The sample is abridged (`…` lines) and its run-dependent values (ports, times, order references, the
temporary folder) differ from run to run; everything else must be what `demo --width 80` prints now.
Lines whose wrapping depends on a timing's length are compared without their line breaks.
"""

from __future__ import annotations

import re
from pathlib import Path

from tests.acceptance.test_cli_check import assert_no_traceback, run_cli

README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
_VARYING = [
    (re.compile(r"127\.0\.0\.1:\d+"), "127.0.0.1:PORT"),
    (re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC"), "TIME"),
    (re.compile(r"FBCHECK-\d{6}-[0-9A-F]{6}"), "FBCHECK-ID"),
    (re.compile(r"feedback-check-demo-[^/\s]+"), "feedback-check-demo-DIR"),
    (re.compile(r"\d+(?:\.\d+)? (?:ms|s)\b"), "T"),
]


def normalised(text: str) -> str:
    for pattern, replacement in _VARYING:
        text = pattern.sub(replacement, text)
    return text


def sample() -> list[str]:
    start = README.index("## Example: `feedback-check demo`")
    block = README[README.index("```\n", start) + 4:]
    return block[:block.index("```\n")].splitlines()


def test_the_readme_demo_sample_is_the_real_report() -> None:
    result = run_cli("demo", "--width", "80")
    assert_no_traceback(result)
    assert result.returncode == 0
    real = normalised(result.stdout)
    flat = " ".join(real.split())
    lines = sample()
    assert len(lines) > 40 and lines.count("…") >= 1
    for part in "\n".join(lines).split("\n…\n"):
        # Each abridged part is a run of the real report, words in the same order.
        words = " ".join(normalised(part).split())
        assert words in flat, f"README sample part not in the real demo output:\n{part[:400]}"
    assert "A 3xx answer is assumed to fail the post-sale" not in "\n".join(lines)
