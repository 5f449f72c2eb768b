"""The card writer: captured shots onto the card's journal, in the order taken.

A shot is acknowledged (:class:`~firmware.events.CaptureDone`: the ``shoot``
answer, the shot count) only once its raw frames are durable in the journal
(:meth:`firmware.journal.Journal.write`). Meanwhile the camera shoots on (write-behind):
:attr:`CardWriter.unwritten_bytes` is what the shots in hand will take on the card.

A missing or full card keeps the shot in memory ("stranded") until the card is back; it is
then written under a new number (the card now in the camera may be another one): a shot
the camera took is only lost if the daemon stops first. On shutdown the writer finishes
every shot it was given.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import logging
import threading
import time
from collections.abc import Callable

from firmware.journal import Journal
from firmware.shot import Shot
from firmware.events import CaptureDone, ErrorCode, Event, Failed, storage_error_code
from hardware.camera import CameraError
from hardware.storage import StorageError

logger = logging.getLogger(__name__)


def failure(exc: Exception, shot: Shot, unsaved: bool = False) -> Failed:
    """The event for a capture or journal write of ``shot`` that raised ``exc``."""
    if isinstance(exc, StorageError):
        error = storage_error_code(exc)
    elif isinstance(exc, CameraError):
        error = ErrorCode.NO_CAMERA
    else:
        logger.error("capture failed", exc_info=exc)
        error = ErrorCode.CAPTURE_FAILED
    return Failed(error, str(exc), request=shot, unsaved=unsaved)


class CardWriter:
    """Journals captured shots one at a time, in a thread of its own.

    Parameters
    ----------
    journal : Journal
    post : callable
        Receives CaptureDone for each shot on the card, or Failed.
    """

    def __init__(self, journal: Journal, post: Callable[[Event], None]) -> None:
        self._journal = journal
        self._post = post
        self._executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="card-writer")
        self._lock = threading.Lock()
        self._unwritten_bytes = 0
        self._stranded: list[tuple[Shot, int]] = []
        self._handing_over: set[str] = set()

    @property
    def unwritten_bytes(self) -> int:
        """Card space the shots in hand (queued or stranded) will take."""
        with self._lock:
            return self._unwritten_bytes

    def write(self, shot: Shot, card_bytes: int) -> None:
        """Queue a captured shot (with its frames) that takes ``card_bytes`` in the journal."""
        with self._lock:
            self._unwritten_bytes += card_bytes
        self._executor.submit(self._write, shot, card_bytes)

    def write_stranded(self) -> None:
        """Queue again, under new numbers, the shots the card could not take."""
        with self._lock:
            stranded, self._stranded = self._stranded, []
        for shot, card_bytes in stranded:
            name = self._journal.store.reserve_name()
            logger.info("%s: writing it as %s", shot.key, name.key)
            self._executor.submit(self._write, dataclasses.replace(shot, name=name), card_bytes)

    def is_handing_over(self, key: str) -> bool:
        """True between a shot's journaling and :meth:`handed_over`: its CaptureDone is on
        its way to development, so the journal must not be resumed for it."""
        with self._lock:
            return key in self._handing_over

    def handed_over(self, key: str) -> None:
        """Development has shot ``key`` (see :meth:`is_handing_over`)."""
        with self._lock:
            self._handing_over.discard(key)

    def close(self) -> None:
        """Write every shot in hand; log those only a card could have saved."""
        self._executor.shutdown(wait=True)
        for shot, _ in self._stranded:
            logger.error("%s: lost: the card never came back before the daemon stopped", shot.key)

    def _write(self, shot: Shot, card_bytes: int) -> None:
        try:
            journaled = self._journal.write(shot)
        except StorageError as exc:
            logger.error("%s: not written (%s): kept in memory until the card is back",
                         shot.key, exc)
            with self._lock:
                self._stranded.append((shot, card_bytes))
            self._post(dataclasses.replace(failure(exc, shot), request=None))
            return
        except Exception as exc:  # noqa: BLE001 - a card bug must not stop the daemon
            logger.error("%s: lost writing it to the card: %s", shot.key, exc)
            with self._lock:
                self._unwritten_bytes -= card_bytes
            self._post(failure(exc, shot, unsaved=True))
            return
        journaled = dataclasses.replace(journaled, acknowledged_at_ns=time.monotonic_ns())
        with self._lock:
            self._unwritten_bytes -= card_bytes
            self._handing_over.add(shot.key)
        logger.info("%s: %s, %d frame(s) on the card", shot.key, shot.mode, shot.frame_count)
        self._post(CaptureDone(journaled))
