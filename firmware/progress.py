"""Progress of long command-line work on one self-erasing line of stderr, on a terminal only.

A :class:`Progress` is also a pipeline stage timer (``timer=`` of
:func:`pipeline.develop.develop` and :func:`pipeline.burst.align_and_merge`): each stage
the pipeline enters is shown as it starts. Off a terminal, or with ``--json``, it prints
nothing, so scripts and pipes see only the command's output.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator
from typing import TextIO

#: Carriage return and "erase to end of line" (ECMA-48 EL): the next step overwrites.
_ERASE_LINE = "\r\x1b[K"


class Progress:
    """Shows ``task: step (12 s)`` on ``stream`` when it is a terminal.

    Parameters
    ----------
    task : str
        What the command does, shown before each step ("merging 4 frames").
    stream : text stream, optional
        Where to show it (default ``sys.stderr``).
    is_shown : bool, optional
        Force showing or not; by default only when ``stream`` is a terminal.
    """

    def __init__(self, task: str, stream: TextIO | None = None,
                 is_shown: bool | None = None) -> None:
        self.task = task
        self._stream = stream if stream is not None else sys.stderr
        self.is_shown = self._stream.isatty() if is_shown is None else is_shown
        self._started = time.monotonic()
        self._has_line = False
        self._counts: dict[str, int] = {}

    def step(self, message: str) -> None:
        """Replace the line with ``message``."""
        if not self.is_shown:
            return
        elapsed_s = time.monotonic() - self._started
        self._stream.write(f"{_ERASE_LINE}{self.task}: {message} ({elapsed_s:.0f} s)")
        self._stream.flush()
        self._has_line = True

    @contextlib.contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        """A pipeline stage (the stage-timer interface); a repeated stage shows its count."""
        count = self._counts[stage] = self._counts.get(stage, 0) + 1
        self.step(stage if count == 1 else f"{stage} #{count}")
        yield

    def close(self) -> None:
        """Erase the line (idempotent)."""
        if self._has_line:
            self._stream.write(_ERASE_LINE)
            self._stream.flush()
            self._has_line = False

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
