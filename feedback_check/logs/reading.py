"""Reading access logs: which files, in what order, and their lines in bounded chunks.

A log is never loaded whole: `LogSource.chunks()` yields lists of complete lines read
`CHUNK_BYTES` at a time, so memory stays flat whatever the file's size. Gzip-compressed files
(`access.log.2.gz`) are recognised by their magic bytes; a truncated or corrupt stream ends that file
with a problem noted at the last line read, never an exception. A line longer than `MAX_LINE_BYTES`
is skipped (and noted) without being kept. Only regular files and `-` (standard input) are read:
a FIFO, device or directory is refused before anything is read. Nothing is ever written.
"""

from __future__ import annotations

import glob
import os
import re
import stat
import sys
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from feedback_check.errors import ConfigError

CHUNK_BYTES = 1 << 20
MAX_LINE_BYTES = 256 * 1024
STDIN = "-"
_GZIP_MAGIC = b"\x1f\x8b"
_ROTATION = re.compile(r"\.(\d+)(?:\.gz)?$")
_DATED = re.compile(r"[-_.](\d{8}|\d{4}-\d{2}-\d{2})(?:\.gz)?$")


@dataclass(frozen=True)
class LineProblem:
    """A line that could not be read, where it is and why."""

    file: str
    line: int
    problem: str
    #: what kind of problem, for the fix: "line" (not the log's shape), "binary", "too_long", "format"
    #: (the file's format is not recognised), "truncated" / "corrupt" (a compressed file), "deadline"
    kind: str = "line"

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass
class LogSource:
    """One log file (or standard input). `lines_read` and `problems` fill while it is read."""

    name: str
    compressed: bool = False
    lines_read: int = 0
    problems: list[LineProblem] = field(default_factory=list)

    def _open(self) -> BinaryIO:
        if self.name == STDIN:
            return sys.stdin.buffer
        # A regular file only: a FIFO would block open() and /dev/zero never ends (feedback_check.inputfile).
        from feedback_check import inputfile
        handle, _ = inputfile.open_input(self.name, inputfile.ACCESS_LOG)
        return handle

    def head(self, limit: int = 1 << 16) -> bytes:
        """The first bytes of the (decompressed) file, for detection and ordering. Not for stdin."""
        with self._open() as raw:
            if raw.peek(2)[:2] == _GZIP_MAGIC:   # type: ignore[attr-defined]
                out = b""
                try:
                    for piece in _gunzip(raw):
                        out += piece
                        if len(out) >= limit:
                            break
                except (EOFError, zlib.error):
                    pass
                return out[:limit]
            return raw.read(limit)

    def chunks(self) -> Iterator[list[bytes]]:
        """Lists of lines (without line ends). Line numbers follow from `lines_read` (1-based)."""
        raw = self._open()
        try:
            start = raw.peek(2)[:2] if hasattr(raw, "peek") else b""
            if start == _GZIP_MAGIC:
                self.compressed = True
                yield from self._split(_gunzip(raw))
            else:
                yield from self._split(iter(lambda: raw.read(CHUNK_BYTES), b""))
        finally:
            if raw is not sys.stdin.buffer:
                raw.close()

    def _split(self, pieces: Iterator[bytes]) -> Iterator[list[bytes]]:
        pending = b""
        skipping = False             # inside an over-long line: drop bytes until its end
        while True:
            try:
                chunk = next(pieces, b"")
            except EOFError:
                # The piece after the last line end was cut in the middle of a line: it is not a line.
                self._problem(self.lines_read + 1, "the compressed file is truncated: the rest cannot be read",
                              "truncated")
                pending = b""
                break
            except (OSError, zlib.error) as e:
                self._problem(self.lines_read + 1, f"the compressed data is corrupt ({e}): the rest cannot be read",
                              "corrupt")
                pending = b""
                break
            if not chunk:
                break
            if skipping:
                end = chunk.find(b"\n")
                if end < 0:
                    continue
                chunk = chunk[end + 1:]
                skipping = False
                self.lines_read += 1
            lines = (pending + chunk).split(b"\n") if pending else chunk.split(b"\n")
            pending = lines.pop()
            if len(pending) > MAX_LINE_BYTES:
                self._problem(self.lines_read + len(lines) + 1,
                              f"line longer than {MAX_LINE_BYTES // 1024} KiB: skipped", "too_long")
                pending = b""
                skipping = True
            if lines:
                self.lines_read += len(lines)
                yield lines
        if pending and not skipping:
            self.lines_read += 1
            yield [pending]
        elif skipping:
            self.lines_read += 1

    def _problem(self, line: int, problem: str, kind: str = "line") -> None:
        self.problems.append(LineProblem(self.name, line, problem, kind))


def _gunzip(raw: BinaryIO) -> Iterator[bytes]:
    """Decompressed pieces of a gzip file (several members too), at most CHUNK_BYTES each, so a small
    file that expands enormously stays bounded. What precedes a truncation is still yielded, then
    EOFError."""
    decompressor = zlib.decompressobj(wbits=31)
    fresh = True
    while True:
        data = raw.read(CHUNK_BYTES)
        if not data:
            if not fresh:
                raise EOFError("truncated")
            return
        while data:
            out = decompressor.decompress(data, CHUNK_BYTES)
            fresh = False
            if out:
                yield out
            data = decompressor.unconsumed_tail
            if decompressor.eof:
                rest = decompressor.unused_data
                decompressor, fresh = zlib.decompressobj(wbits=31), True
                if rest and not rest.startswith(_GZIP_MAGIC):
                    if rest.strip(b"\0"):
                        raise zlib.error("data after the end of the compressed stream")
                    return                           # zero padding after the last member
                data = rest
            elif not data:
                break


def _rotation_key(name: str) -> tuple[int, str]:
    """Older first: access.log.3.gz, access.log.2.gz, access.log.1, access.log; dated names by date."""
    number = _ROTATION.search(name)
    if number:
        return (-int(number.group(1)), "")
    dated = _DATED.search(name)
    if dated:
        return (-(10 ** 9), dated.group(1).replace("-", ""))
    return (0, "")


def expand(arguments: Iterable[str], base_dir: str | None = None) -> list[str]:
    """File arguments (globs expanded, `-` kept) checked to be readable regular files.

    Raises ConfigError naming the file for a missing file or one that is not a regular file."""
    names: list[str] = []
    for argument in arguments:
        if argument == STDIN:
            names.append(STDIN)
            continue
        path = os.path.expanduser(argument)
        if base_dir and not os.path.isabs(path):
            path = os.path.join(base_dir, path)
        matches = sorted(glob.glob(path)) if glob.has_magic(path) else [path]
        if not matches:
            raise ConfigError("no file matches this pattern", file=argument)
        names.extend(matches)
    for name in names:
        if name == STDIN:
            continue
        try:
            mode = os.stat(name).st_mode
        except FileNotFoundError:
            raise ConfigError("file not found", file=name) from None
        except (OSError, ValueError) as e:
            raise ConfigError(f"cannot read: {getattr(e, 'strerror', None) or e}", file=name) from None
        if stat.S_ISDIR(mode):
            raise ConfigError("is a directory, not a log file", file=name)
        if not stat.S_ISREG(mode):
            raise ConfigError("not a regular file (FIFO, socket or device): give a log file, or - for "
                              "standard input", file=name)
        if not os.access(name, os.R_OK):
            raise ConfigError("cannot read: permission denied", file=name)
    if names.count(STDIN) > 1:
        raise ConfigError("standard input (-) named twice", file=STDIN)
    seen: set[str] = set()
    unique = []
    for name in names:
        key = name if name == STDIN else os.path.realpath(name)
        if key not in seen:
            seen.add(key)
            unique.append(name)
    return unique


def in_rotation_order(names: list[str]) -> list[str]:
    """Files of one rotation set oldest first (the ordering logrotate's names imply). The analysis
    orders by the times inside the files afterwards; this is the tie-breaker."""
    return sorted(names, key=lambda n: (os.path.dirname(n), _ROTATION.sub("", _DATED.sub("", n)),
                                        _rotation_key(n)))
