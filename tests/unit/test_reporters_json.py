"""reporters/json.py: the streamed document is the document, byte for byte, however it is cut."""

from __future__ import annotations

import json

import pytest

from feedback_check.reporters import json as json_reporter
from feedback_check.reporters import render, render_chunks
from tests.unit.test_reporters_samples import SAMPLES

SAMPLE_NAMES = sorted(SAMPLES)


@pytest.mark.parametrize("sample", SAMPLE_NAMES)
@pytest.mark.parametrize("chunk_chars", [1, 200, json_reporter.CHUNK_CHARS])
def test_chunks_join_to_the_whole_document(sample: str, chunk_chars: int, monkeypatch: pytest.MonkeyPatch) -> None:
    report = SAMPLES[sample]()
    monkeypatch.setattr(json_reporter, "CHUNK_CHARS", chunk_chars)
    pieces = list(json_reporter.chunks(report))
    expected = json.dumps(json_reporter.document(report), ensure_ascii=False, default=str) + "\n"
    assert "".join(pieces) == expected == json_reporter.render(report)
    assert json.loads(expected)["schema_version"] == json_reporter.SCHEMA_VERSION
    if chunk_chars == 1 and len(report.targets) > 1:
        assert len(pieces) > len(report.targets)       # one piece per item at least: never held whole


def test_a_large_run_comes_in_bounded_pieces() -> None:
    report = SAMPLES["many"]()
    pieces = list(render_chunks(report, "json"))
    assert len(pieces) > 1
    # a piece holds at most one item beyond the threshold
    assert max(len(p) for p in pieces) < json_reporter.CHUNK_CHARS + 4096
    assert "".join(pieces) == json_reporter.render(report)


def test_formats_without_chunks_come_whole() -> None:
    report = SAMPLES["critical"]()
    assert list(render_chunks(report, "text", width=80)) == [render(report, "text", width=80)]
