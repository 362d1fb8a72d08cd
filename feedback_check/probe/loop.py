"""The event loop a check runs on: uvloop when it is installed (`pip install feedback-check[fast]`),
else asyncio's own; FEEDBACK_CHECK_NO_UVLOOP=1 forces asyncio's (e.g. to compare the two).

Before the loop starts, everything imported and loaded so far is moved out of the garbage collector's
sight (`gc.freeze()`: the modules, the profile, the platform facts live as long as the run) and the
youngest generation's threshold is raised: a run creates many short-lived objects, and collecting
after every 700 of them re-walks the same young objects again and again.
"""

from __future__ import annotations

import asyncio
import gc
import os
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")
GC_YOUNG_THRESHOLD = 20_000


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    if os.environ.get("FEEDBACK_CHECK_NO_UVLOOP"):
        return None
    try:
        import uvloop
    except ImportError:
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run `coroutine` to its end on a new event loop (see the module docstring)."""
    gc.freeze()
    _, second, third = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, second, third)
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        return runner.run(coroutine)
