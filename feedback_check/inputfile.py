"""The one way feedback-check reads an input file: regular files only, within a size limit per kind.

Every file a user names (profile, `--platform`, `--ranges`, `--state`, `--ca-bundle`, a passphrase
file, firewall rule files and their includes, `ipset save` data, `sign`/`verify -f`) is opened here:

- the file is opened with O_NONBLOCK and checked with fstat *after* opening, so a FIFO or a device
  is refused at once (a FIFO without writer would block `open()` forever; `/dev/zero` never ends)
  and the check cannot race with a rename;
- a file larger than its kind's limit is refused before a byte is read, and reading stops at the
  limit too (a file that grows while it is read);
- what is refused is one `ConfigError` naming the file and the problem.

The limits (README "Limits") are generous for real files and can be raised per kind with an
environment variable, e.g. ``FEEDBACK_CHECK_MAX_RULES_MB=4096``. `-`/stdin is not handled here: only
options that document it (`sign -f -`) read stdin, through `read_stream`.
"""

from __future__ import annotations

import errno
import fcntl
import mmap
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from feedback_check.errors import ConfigError

MB = 1024 * 1024


@dataclass(frozen=True)
class InputKind:
    """A kind of input file: what it is called in messages, its default size limit, its override."""

    name: str                 # "profile", "rule file", ...
    default_mb: float
    env: str                  # environment variable raising (or lowering) the limit, in MB

    @property
    def a_name(self) -> str:
        """The name with its article: "a rule file", "an access log"."""
        return ("an " if self.name[:1] in "aeiou" else "a ") + self.name

    @property
    def limit_bytes(self) -> int:
        raw = os.environ.get(self.env)
        if raw:
            try:
                value = float(raw)
            except ValueError:
                value = -1.0
            if not (value > 0 and value < 1e9):
                raise ConfigError(f"{self.env}={raw!r} is not a size in MB (a positive number)")
            return int(value * MB)
        return int(self.default_mb * MB)


PROFILE = InputKind("profile", 50, "FEEDBACK_CHECK_MAX_PROFILE_MB")
PLATFORM = InputKind("platform profile", 50, "FEEDBACK_CHECK_MAX_PLATFORM_MB")
RANGES = InputKind("range list", 50, "FEEDBACK_CHECK_MAX_RANGES_MB")
RULES = InputKind("rule file", 1024, "FEEDBACK_CHECK_MAX_RULES_MB")
STATE = InputKind("state file", 100, "FEEDBACK_CHECK_MAX_STATE_MB")
CA_BUNDLE = InputKind("CA bundle", 50, "FEEDBACK_CHECK_MAX_CA_BUNDLE_MB")
PASSPHRASE = InputKind("passphrase file", 1, "FEEDBACK_CHECK_MAX_PASSPHRASE_MB")
PARAMETERS = InputKind("parameter file", 50, "FEEDBACK_CHECK_MAX_PARAMETERS_MB")
#: Access logs are read as a stream (memory does not grow with them): only their type is checked.
ACCESS_LOG = InputKind("access log", 1024 * 1024 * 1024, "FEEDBACK_CHECK_MAX_ACCESS_LOG_MB")

_TYPE_NAMES = {stat.S_IFIFO: "a named pipe (FIFO)", stat.S_IFCHR: "a character device",
               stat.S_IFBLK: "a block device", stat.S_IFSOCK: "a socket", stat.S_IFDIR: "a directory"}


def describe_size(size: int) -> str:
    """`size` in the unit a person reads: 512 bytes, 3.2 MB, 1.5 GB."""
    if size < 10 * 1024:
        return f"{size} bytes"
    if size < 1024 * MB:
        return f"{size / MB:.1f} MB"
    return f"{size / (1024 * MB):.1f} GB"


def _too_big(kind: InputKind, size: str) -> str:
    return (f"is {size}, more than the {describe_size(kind.limit_bytes)} {kind.a_name} may have "
            f"(raise the limit with {kind.env}=<MB>)")


def open_input(path: str | os.PathLike[str], kind: InputKind) -> tuple[BinaryIO, int]:
    """The open regular file at `path` (binary, blocking) and its size. Raises ConfigError naming the
    file when it is missing, unreadable, not a regular file or larger than `kind`'s limit."""
    name = os.fsdecode(path)
    limit = kind.limit_bytes
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | getattr(os, "O_NOCTTY", 0))
    except FileNotFoundError:
        raise ConfigError("file not found", file=name) from None
    except IsADirectoryError:
        raise ConfigError(f"is a directory, not {kind.a_name}", file=name) from None
    except (OSError, ValueError) as e:
        raise ConfigError(f"cannot read: {_reason(e)}", file=name) from None
    try:
        info = os.fstat(fd)
        file_type = stat.S_IFMT(info.st_mode)
        if file_type != stat.S_IFREG:
            what = _TYPE_NAMES.get(file_type, "not a regular file")
            raise ConfigError(f"is {what}, not {kind.a_name} (only regular files are read)", file=name)
        if info.st_size > limit:
            raise ConfigError(_too_big(kind, describe_size(info.st_size)), file=name)
        flags = fcntl.fcntl(fd, fcntl.F_GETFL)
        fcntl.fcntl(fd, fcntl.F_SETFL, flags & ~os.O_NONBLOCK)
        handle = os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
    return handle, info.st_size


def check_input(path: str | os.PathLike[str], kind: InputKind) -> int:
    """The size of the regular file at `path`, checked as `open_input` checks it (found, readable, a
    regular file, within `kind`'s limit) without reading a byte: for checks up front, before the file
    is read where it is used. Raises the same ConfigError as `open_input`."""
    handle, size = open_input(path, kind)
    handle.close()
    return size


def read_bytes(path: str | os.PathLike[str], kind: InputKind) -> bytes:
    """The whole content of a regular file within `kind`'s limit."""
    handle, size = open_input(path, kind)
    with handle:
        return _read_limited(handle, kind, os.fsdecode(path), size)


def read_stream(stream: BinaryIO, kind: InputKind, name: str) -> bytes:
    """Everything from an already open stream (stdin, where an option documents `-`), within the limit."""
    return _read_limited(stream, kind, name, 0)


def _read_limited(handle: BinaryIO, kind: InputKind, name: str, size: int) -> bytes:
    limit = kind.limit_bytes
    try:
        data = handle.read(limit + 1)
    except OSError as e:
        raise ConfigError(f"cannot read: {_reason(e)}", file=name) from None
    if len(data) > limit:
        raise ConfigError(_too_big(kind, f"more than {describe_size(limit)}"), file=name)
    return data


def read_text(path: str | os.PathLike[str], kind: InputKind, *, encoding: str = "utf-8",
              errors: str = "strict") -> str:
    """The file decoded (UTF-8 by default); undecodable content names the file and line."""
    data = read_bytes(path, kind)
    return decode(data, os.fsdecode(path), encoding=encoding, errors=errors)


def read_large_text(path: str | os.PathLike[str], kind: InputKind, *, encoding: str = "utf-8") -> str:
    """Like `read_text`, for files that may be large (rule files): the text is decoded straight from a
    memory map, so the file's bytes are never copied into the process's own memory next to the text."""
    handle, size = open_input(path, kind)
    name = os.fsdecode(path)
    with handle:
        if size == 0:
            return decode(_read_limited(handle, kind, name, size), name, encoding=encoding)
        try:
            mapped = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
        except (OSError, ValueError):
            return decode(_read_limited(handle, kind, name, size), name, encoding=encoding)
        with mapped:
            if len(mapped) > kind.limit_bytes:
                raise ConfigError(_too_big(kind, describe_size(len(mapped))), file=name)
            try:
                return str(mapped, encoding)
            except UnicodeDecodeError as e:
                line = mapped[:e.start].count(b"\n") + 1
                raise ConfigError(f"not {encoding.upper()} text ({e.reason})", file=name, line=line) from None


def decode(data: bytes, name: str, *, encoding: str = "utf-8", errors: str = "strict") -> str:
    try:
        return data.decode(encoding, errors)
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise ConfigError(f"not {encoding.upper()} text ({e.reason})", file=name, line=line) from None


#: How much of a file `iter_lines` decodes at once (cut after its last newline): memory stays within a
#: few times this, or the longest line, whichever is larger.
LINE_BLOCK = 1 << 20


def iter_lines(path: str | os.PathLike[str], kind: InputKind, *,
               encoding: str = "utf-8") -> Iterator[tuple[int, str]]:
    """The file's lines as (line number, line without its end), read and decoded a block at a time, so
    a large rule file is never held whole. Lines and their numbers are exactly `str.splitlines()`'s on
    the whole text. The file is opened and checked (regular, within `kind`'s limit) before this
    returns; reading stops with a ConfigError past the limit (a file that grows) and at undecodable
    content (naming the line, as `read_text` does)."""
    handle, _ = open_input(path, kind)
    return _file_lines(handle, os.fsdecode(path), kind, encoding)


def _file_lines(handle: BinaryIO, name: str, kind: InputKind, encoding: str) -> Iterator[tuple[int, str]]:
    limit = kind.limit_bytes
    number = 0
    newlines = 0                   # b"\n" before the block being decoded: for a decoding error's line
    total = 0
    pending = bytearray()          # the start of a line whose end was not read yet
    with handle:
        while True:
            try:
                block = handle.read(LINE_BLOCK)
            except OSError as e:
                raise ConfigError(f"cannot read: {_reason(e)}", file=name) from None
            total += len(block)
            if total > limit:
                raise ConfigError(_too_big(kind, f"more than {describe_size(limit)}"), file=name)
            if block:
                cut = block.rfind(b"\n") + 1
                if cut == 0:
                    pending += block
                    continue
                data = bytes(pending + block[:cut]) if pending else block[:cut]
                pending = bytearray(block[cut:])
            else:
                data, pending = bytes(pending), bytearray()
            try:
                text = data.decode(encoding)
            except UnicodeDecodeError as e:
                at = newlines + data.count(b"\n", 0, e.start) + 1
                raise ConfigError(f"not {encoding.upper()} text ({e.reason})", file=name, line=at) from None
            newlines += data.count(b"\n")
            del data
            for line in text.splitlines():
                number += 1
                yield number, line
            if not block:
                return


def text_lines(text: str) -> Iterator[tuple[int, str]]:
    """`iter_lines` for a text already in memory (`--live`, tests): the same lines and numbers, split a
    block at a time rather than into one list."""
    number = 0
    start = 0
    size = len(text)
    while start < size:
        end = text.rfind("\n", start, start + LINE_BLOCK) + 1
        if end <= start:
            found = text.find("\n", start + LINE_BLOCK)
            end = size if found < 0 else found + 1
        for line in text[start:end].splitlines():
            number += 1
            yield number, line
        start = end


def read_head(path: str | os.PathLike[str], kind: InputKind, size: int) -> tuple[str, bool]:
    """The file's first `size` bytes or so, cut after a newline and decoded leniently (for detecting a
    format), and whether that is the whole file. Type and size are checked as by `open_input`."""
    handle, total = open_input(path, kind)
    name = os.fsdecode(path)
    with handle:
        data = _read_limited(handle, kind, name, total) if total <= size else _read_some(handle, name, size)
    whole = len(data) >= total and total <= size
    if not whole:
        data = data[:data.rfind(b"\n") + 1]
    return data.decode("utf-8", "replace"), whole


def _read_some(handle: BinaryIO, name: str, size: int) -> bytes:
    try:
        return handle.read(size)
    except OSError as e:
        raise ConfigError(f"cannot read: {_reason(e)}", file=name) from None


def read_first_line(path: str | os.PathLike[str], kind: InputKind, *, encoding: str = "utf-8") -> str:
    """The first line of a small file (a passphrase file), without reading the rest beyond the limit."""
    handle, _ = open_input(path, kind)
    name = os.fsdecode(path)
    with handle:
        try:
            line = handle.readline(kind.limit_bytes + 1)
        except OSError as e:
            raise ConfigError(f"cannot read: {_reason(e)}", file=name) from None
    if len(line) > kind.limit_bytes:
        raise ConfigError(_too_big(kind, f"more than {describe_size(kind.limit_bytes)} on its first line"),
                          file=name)
    return decode(line, name, encoding=encoding)


@dataclass
class IncludeBudget:
    """How much `include` expansion one rule file may cause (nginx, Apache): files, depth and bytes in
    total, so a file including three files each including three, fourteen deep, is an error instead
    of 4.7 million reads."""

    files: int = 10_000
    depth: int = 16
    bytes: int | None = None           # default: the rule-file limit
    used_files: int = 0
    used_bytes: int = 0

    def take(self, size: int, *, file: str, line: int | None, depth: int) -> None:
        """Count one more included file of `size` bytes; ConfigError past the budget."""
        total_limit = self.bytes if self.bytes is not None else RULES.limit_bytes
        if depth > self.depth:
            raise ConfigError(f"includes nest deeper than {self.depth} (a loop?)", file=file, line=line)
        self.used_files += 1
        self.used_bytes += size
        if self.used_files > self.files:
            raise ConfigError(f"includes expand to more than {self.files} files in total (a loop, or one "
                              "include repeated?)", file=file, line=line)
        if self.used_bytes > total_limit:
            raise ConfigError(f"includes expand to more than {describe_size(total_limit)} in total "
                              f"(raise the limit with {RULES.env}=<MB>)", file=file, line=line)

    def read(self, path: str, *, file: str, line: int, depth: int) -> str:
        """The text of a file included at file:line, read through the bounded reader and counted."""
        try:
            text = read_large_text(path, RULES)
        except ConfigError as e:
            raise ConfigError(f"include {path}: {e.problem}", file=file, line=line) from None
        self.take(len(text), file=file, line=line, depth=depth + 1)
        return text


def _reason(e: BaseException) -> str:
    if isinstance(e, OSError):
        if e.errno == errno.ELOOP:
            return "too many levels of symbolic links"
        return e.strerror or str(e)
    return str(e)
