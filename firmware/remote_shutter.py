"""The remote shutter: ``obscura shoot`` presses the shutter and waits for the answer.

Each request gets a ticket that travels in its :class:`~firmware.shot.Shot`; the daemon
answers it when the state machine acknowledges the shot (on the card) or refuses it.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from typing import Any

from firmware.events import Event, ShutterPressed
from firmware.shot import Shot


class RemoteShutter:
    """Tickets for shots asked over the control socket, and their answers; thread-safe.

    ``post`` queues an event without waiting and returns False when the queue is full.
    """

    def __init__(self, post: Callable[[Event], bool]) -> None:
        self._post = post
        self._lock = threading.Lock()
        self._tickets = itertools.count(1)
        self._waiters: dict[int, tuple[threading.Event, dict[str, Any]]] = {}

    def shoot(self, mode: str | None, timeout_s: float) -> dict[str, Any]:
        """Press the shutter (``mode`` None: the camera's) and wait for the answer:
        ``{"taken": True, "shot": ..., "files": [...], "mode": ...}`` or
        ``{"taken": False, "reason": ...}``."""
        ticket = next(self._tickets)
        done = threading.Event()
        result: dict[str, Any] = {}
        with self._lock:
            self._waiters[ticket] = (done, result)
        if not self._post(ShutterPressed(Shot(time.monotonic_ns(), mode=mode, source="socket",
                                              ticket=ticket))):
            self._forget(ticket)
            return {"taken": False, "reason": "busy: too many requests"}
        if not done.wait(timeout_s):
            self._forget(ticket)
            return {"taken": False, "reason": f"no answer within {timeout_s} s"}
        return dict(result)

    def answer(self, request: Shot, **fields: Any) -> None:
        """Answer the request ``request`` came from (nothing for a button's shot)."""
        if request.ticket is None:
            return
        waiter = self._forget(request.ticket)
        if waiter is not None:
            done, result = waiter
            result.update(fields)
            done.set()

    def refuse_all(self, reason: str) -> None:
        """Answer every request still waiting (the daemon stops)."""
        with self._lock:
            waiters = list(self._waiters.values())
            self._waiters.clear()
        for done, result in waiters:
            result.update(taken=False, reason=reason)
            done.set()

    def _forget(self, ticket: int) -> tuple[threading.Event, dict[str, Any]] | None:
        with self._lock:
            return self._waiters.pop(ticket, None)
