"""Writing a file that cannot destroy what it replaces (`--output`, `--state`).

- A regular file (or a new one) is replaced atomically: a temporary file in the same folder, flushed
  to disk, then renamed over it. Readers (a Prometheus textfile collector, the next run) see the old
  file or the new one, never half of one; a run killed mid-write leaves the old file as it was.
  A new file gets the permissions the umask allows (0666 & ~umask); a replaced one keeps its own.
- A symbolic link is followed: the file it points to is replaced, the link stays.
- A device, FIFO or socket (`/dev/null`, `/dev/stdout`, a named pipe read by another program) is never
  replaced: the text is written into it as a stream where `streams` allows it, else refused. Without
  this, `--output /dev/null` run as root would have replaced the system's /dev/null with a regular file.
- A directory, a FIFO nobody reads and every OS error (full disk, permissions) is a `ConfigError`
  naming the file.

The text may come as one string or as pieces (`Iterable[str]`, e.g. the JSON report's chunks): pieces
are encoded and written one at a time, so the whole text is never held in memory.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from collections.abc import Iterable, Iterator

from feedback_check.errors import ConfigError


def write_file(path: str, text: str | Iterable[str], *, what: str = "report", streams: bool = True) -> None:
    """Write `text` (UTF-8; a string or its pieces) to `path` as described above. Raises ConfigError naming `path`."""
    prepare_file(path, text, what=what, streams=streams).commit()


class PreparedWrite:
    """A write made ready: for a regular file, the temporary file holds the whole text and `commit()`
    renames it into place; for a stream, `commit()` writes it. `discard()` leaves the target as it was."""

    def __init__(self, path: str, data: Iterable[bytes], what: str, *, temp: str | None = None,
                 target: str | None = None) -> None:
        self.path = path
        self._data = data
        self._what = what
        self._temp = temp
        self._target = target

    def commit(self) -> None:
        if self._temp is None:
            _write_stream(self.path, self._data, self._what)
            return
        assert self._target is not None
        try:
            os.replace(self._temp, self._target)
        except OSError as e:
            self.discard()
            raise ConfigError(f"cannot write {self._what}: {e.strerror}", file=self.path) from None
        self._temp = None

    def discard(self) -> None:
        if self._temp is not None:
            with contextlib.suppress(OSError):
                os.unlink(self._temp)
            self._temp = None


def prepare_file(path: str, text: str | Iterable[str], *, what: str = "report", streams: bool = True) -> PreparedWrite:
    """Everything of `write_file` but the last step (see PreparedWrite). Raises ConfigError naming `path`.
    Pieces of a stream target are made and written by `commit()`."""
    data = _encoded(text)
    try:
        info = os.stat(path)
    except FileNotFoundError:
        info = None
    except OSError as e:
        raise ConfigError(f"cannot write {what}: {e.strerror}", file=path) from None
    if info is not None and not stat.S_ISREG(info.st_mode):
        if stat.S_ISDIR(info.st_mode):
            raise ConfigError(f"cannot write {what}: is a directory", file=path)
        if not streams:
            raise ConfigError(f"cannot write {what}: not a regular file (a device or pipe is never replaced)",
                              file=path)
        return PreparedWrite(path, data, what)
    if _is_process_stream(path):
        if not streams:
            raise ConfigError(f"cannot write {what}: not a regular file", file=path)
        return PreparedWrite(path, data, what)
    # Through symbolic links to the file itself, so the link stays a link.
    target = os.path.realpath(path)
    return PreparedWrite(path, data, what, temp=_temporary_copy(target, data, what, path, info), target=target)


def _encoded(text: str | Iterable[str]) -> Iterator[bytes]:
    if isinstance(text, str):
        yield text.encode("utf-8")
        return
    for piece in text:
        yield piece.encode("utf-8")


def _is_process_stream(path: str) -> bool:
    """/dev/stdout, /dev/fd/N, /proc/self/fd/N: the process's own descriptors, written to as they are
    (replacing the file behind a shell redirection would leave the shell writing to the old one)."""
    real = os.path.realpath(path)
    return path in ("/dev/stdout", "/dev/stderr") or real.startswith("/proc/") or path.startswith("/dev/fd/")


def _write_stream(path: str, data: Iterable[bytes], what: str) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as e:
        if e.errno == errno.ENXIO:
            raise ConfigError(f"cannot write {what}: no program reads this named pipe", file=path) from None
        raise ConfigError(f"cannot write {what}: {e.strerror}", file=path) from None
    try:
        os.set_blocking(fd, True)
        for piece in data:
            view = memoryview(piece)
            while view:
                written = os.write(fd, view)
                view = view[written:]
    except OSError as e:
        raise ConfigError(f"cannot write {what}: {e.strerror}", file=path) from None
    finally:
        os.close(fd)


def current_umask() -> int:
    """The process's umask (read from /proc where possible: setting it to read it is not thread-safe)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _temporary_copy(target: str, data: Iterable[bytes], what: str, shown: str, info: os.stat_result | None) -> str:
    """A temporary file next to `target` holding `data`, flushed to disk, with the final permissions."""
    directory = os.path.dirname(target) or "."
    temp_name: str | None = None
    try:
        fd, temp_name = tempfile.mkstemp(prefix=f".{os.path.basename(target)}.", suffix=".tmp", dir=directory)
        with os.fdopen(fd, "wb") as handle:
            for piece in data:
                handle.write(piece)
            handle.flush()
            os.fsync(handle.fileno())
            mode = stat.S_IMODE(info.st_mode) if info is not None else 0o666 & ~current_umask()
            os.fchmod(handle.fileno(), mode)
            if info is not None and os.geteuid() == 0:
                with contextlib.suppress(OSError):
                    os.fchown(handle.fileno(), info.st_uid, info.st_gid)
    except OSError as e:
        if temp_name is not None:
            with contextlib.suppress(OSError):
                os.unlink(temp_name)
        raise ConfigError(f"cannot write {what}: {e.strerror}", file=shown) from None
    except BaseException:            # the pieces' maker failed (or the run was interrupted): no stray file
        if temp_name is not None:
            with contextlib.suppress(OSError):
                os.unlink(temp_name)
        raise
    return temp_name
