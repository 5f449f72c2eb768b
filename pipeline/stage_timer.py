"""Timing the stages of a develop or a merge, for ``bench/`` and ``--timings``.

A stage is timed with ``with timer("demosaic"): ...``: any callable that takes the stage's
name and returns a context manager is a :data:`Timer`. :class:`StageTimer` adds up
wall-clock seconds per stage; :func:`untimed` times nothing and costs nothing.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from typing import ContextManager

#: ``timer(stage_name)`` -> a context manager around the stage.
Timer = Callable[[str], ContextManager[None]]


def untimed(name: str) -> ContextManager[None]:
    """A timer that times nothing."""
    return contextlib.nullcontext()


class StageTimer:
    """Wall-clock seconds per stage (``seconds``), added up over repeated stages."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextlib.contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start
