"""The simulated ids come from one generator per process; a forked child reseeds it (as `random` does for
its own), so parent and child never draw the same order ids."""

from __future__ import annotations

import os

import pytest

from feedback_check import payload


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_forked_child_draws_other_ids_than_its_parent() -> None:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:                                    # the child: its next draw, then out
        os.close(read)
        os.write(write, str(payload._RNG.getrandbits(64)).encode())
        os._exit(0)
    os.close(write)
    parent = payload._RNG.getrandbits(64)
    with os.fdopen(read) as pipe:
        child = int(pipe.read())
    os.waitpid(pid, 0)
    assert child != parent
