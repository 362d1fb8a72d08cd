"""Worker processes for work the run deadline must be able to stop.

A firewall analysis is CPU work in Python: a thread running it cannot be stopped, so a 1 GB rule file
kept `check --max-runtime` waiting, and `asyncio.run` waited for the thread again at exit. With a run
deadline, the runner hands such work to a small pool of processes (`multiprocessing`, forkserver start:
no fork of a process with threads) and terminates the pool when the deadline passes.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
from collections.abc import Callable
from typing import Any

#: Imported once by the fork server, so each worker starts with the firewall code already loaded.
PRELOAD = ["feedback_check.firewall.analysis"]


class Workers:
    """A lazily started process pool whose tasks are awaited from asyncio and which can be killed."""

    def __init__(self, size: int) -> None:
        self.size = max(1, min(size, os.cpu_count() or 1))
        self._pool: Any = None

    def _started(self) -> Any:
        if self._pool is None:
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload(PRELOAD)
            self._pool = context.Pool(processes=self.size)
        return self._pool

    async def run(self, function: Callable[..., Any], *args: Any) -> Any:
        """`function(*args)` in a worker; its exception is raised here."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()

        def settle(value: Any, failed: bool) -> None:
            if future.done():
                return
            if failed:
                future.set_exception(value)
            else:
                future.set_result(value)

        self._started().apply_async(
            function, args,
            callback=lambda value: loop.call_soon_threadsafe(settle, value, False),
            error_callback=lambda error: loop.call_soon_threadsafe(settle, error, True))
        return await future

    def close(self, *, kill: bool) -> None:
        """Stop the pool: terminate the workers (`kill`, the deadline passed) or let them exit."""
        if self._pool is None:
            return
        if kill:
            self._pool.terminate()
        else:
            self._pool.close()
        self._pool.join()
        self._pool = None


def run_with_deadline(seconds: float, function: Callable[..., Any], *args: Any, what: str) -> Any:
    """`function(*args)` in a worker process, terminated after `seconds`: then a ConfigError naming `what`
    (the synchronous counterpart of `Workers.run` for one-shot commands such as `firewall`)."""
    from feedback_check.errors import ConfigError

    workers = Workers(1)
    pool = workers._started()
    try:
        return pool.apply_async(function, args).get(timeout=seconds)
    except multiprocessing.TimeoutError:
        raise ConfigError(f"{what} did not finish in time") from None
    finally:
        workers.close(kill=True)
