"""Developing journaled shots into their files, one at a time, behind the camera.

:func:`develop_shot` is what ``obscura merge`` and ``obscura develop`` do, for a shot:
a merging mode (:mod:`firmware.capture_mode`) merges the burst and finishes it by mode
(:func:`pipeline.burst.modes.finish_burst`: HDR+ exposure fusion for hdr and night); a
single shot is the single-frame develop.

:class:`DevelopmentWorker` is the background thread that develops journaled shots in turn
(numba kernels release the GIL, so capture keeps going) and reports each result as a
state-machine event. Shots waiting for it are journal entries without their frames: these
are read back from the card (:func:`firmware.journal.read_burst`, as after a crash) when
their turn comes, so memory does not grow with the queue.
"""

from __future__ import annotations

import logging
import os
import queue
import sys
import threading
import time
from collections.abc import Callable, Sequence

import numpy as np

from firmware.capture_mode import capture_mode
from firmware.journal import Journal, read_burst, read_frame
from firmware.shot import Shot
from firmware.events import ErrorCode, Event, Failed, ProcessingDone, storage_error_code
from hardware.storage import StorageError
from pipeline.burst import BurstParams, align_and_merge
from pipeline.burst.modes import finish_burst
from pipeline.colour.output_transform import quantize
from pipeline.develop import DevelopParams, develop
from pipeline.errors import InvalidParameterError
from pipeline.formats.encoders.dng import encode_dng
from pipeline.formats.encoders.jpeg import encode_jpeg
from pipeline.raw_frame import RawFrame

logger = logging.getLogger(__name__)

#: Shots queued or being developed below which the worker takes a shot's frames from
#: memory; beyond, a shot waits as its journal entry and is read back from the card. 1: only
#: a shot that goes straight into development (the worker was idle) skips the read.
MAX_SHOTS_IN_MEMORY = 1
#: A shot whose frames take more memory than this is never developed from memory: its
#: frames are read from the journal one at a time as the merge needs them
#: (:func:`firmware.journal.read_burst`). 128 MB keeps a 4-frame 12 MP burst (99 MB) in
#: memory; a 15-frame night shot (370 MB) streams.
MAX_FRAMES_BYTES_IN_MEMORY = 128 * 1024 * 1024
#: How much nicer than the rest of the daemon the development thread runs, and the numba
#: threads it starts (they inherit it): on a busy CPU, capture (packing and journaling a
#: shot) and the camera's stream come first.
WORKER_NICE_INCREMENT = 10


def develop_shot(frames: Sequence[RawFrame], shot: Shot) -> dict[str, bytes]:
    """The files a shot leaves (``shot.keep``), as bytes by kind.

    "jpeg": the shot developed with its look (merged and finished by mode if its mode
    merges and it has several frames); "dng": the reference frame as captured;
    "merged_dng": the merged raw frame (bursts).
    """
    assert shot.mode is not None
    reference = frames[shot.reference_index]
    keep = shot.keep
    outputs: dict[str, bytes] = {}
    merges = capture_mode(shot.mode).merges and len(frames) > 1
    merged = align_and_merge(frames, BurstParams.for_merge(shot.merge)) \
        if merges and ("jpeg" in keep or "merged_dng" in keep) else None
    if "jpeg" in keep:
        params = DevelopParams(look=shot.look or "standard",
                               exposure_compensation_ev=shot.exposure_compensation_ev)
        if merged is None:
            image = develop(reference, params)
        else:
            image = finish_burst(merged, shot.mode, params)  # type: ignore[arg-type]
        outputs["jpeg"] = encode_jpeg(
            quantize(image, np.uint8), reference.metadata, quality=shot.jpeg_quality
        )
    if "dng" in keep:
        outputs["dng"] = encode_dng(reference)
    if "merged_dng" in keep and merged is not None:
        outputs["merged_dng"] = encode_dng(merged)
    return outputs


def _lower_thread_priority(increment: int) -> None:
    """Raise the calling thread's nice by ``increment`` (Linux schedules threads one by
    one); nothing elsewhere, a warning where the system refuses."""
    if not sys.platform.startswith("linux"):
        return  # elsewhere a thread id is no process id: it could renice another process
    thread = threading.get_native_id()
    try:
        nice = os.getpriority(os.PRIO_PROCESS, thread)
        os.setpriority(os.PRIO_PROCESS, thread, min(19, nice + increment))
    except OSError as exc:
        logger.warning("could not lower the development thread's priority: %s", exc)


class DevelopmentWorker:
    """Develops journaled shots, one at a time, in a background thread that yields the CPU
    to capture (:data:`WORKER_NICE_INCREMENT`).

    Each finished shot is written to DCIM and retired from the journal, then reported with
    ``post(ProcessingDone(key))``. A shot that cannot be developed keeps its raw frames
    (reference DNG in DCIM when possible, the burst in ``.obscura/failed``) and is reported
    as ``Failed(PROCESSING_FAILED)``; a full or missing card leaves it in the journal, to
    be developed after the next start or recovery.

    Parameters
    ----------
    journal : Journal
    post : callable
        Receives each result event (from the worker thread).
    max_shots_in_memory : int
        A shot submitted with its frames keeps them only while fewer shots than this are
        queued or being developed; otherwise it waits as its journal entry alone.
    """

    def __init__(self, journal: Journal, post: Callable[[Event], None],
                 max_shots_in_memory: int = MAX_SHOTS_IN_MEMORY) -> None:
        if max_shots_in_memory < 0:
            raise InvalidParameterError(f"max_shots_in_memory={max_shots_in_memory}: expected >= 0")
        self._journal = journal
        self._store = journal.store
        self._post = post
        self._max_shots_in_memory = max_shots_in_memory
        self._queue: queue.Queue[Shot | None] = queue.Queue()
        self._lock = threading.Lock()
        self._queued: set[str] = set()
        self.durations_s: dict[str, float] = {}
        self._thread = threading.Thread(target=self._run, name="development", daemon=True)
        self._closed = False
        self._thread.start()

    def submit(self, shot: Shot) -> bool:
        """Queue a journaled shot; False if it is already queued or being developed.

        The shot's frames (still in memory) are kept only within ``max_shots_in_memory``
        and :data:`MAX_FRAMES_BYTES_IN_MEMORY`; otherwise they are dropped here and the
        worker reads the shot back from the journal when its turn comes, one frame at a
        time (:func:`firmware.journal.read_burst`).
        """
        key = shot.key
        keep_frames = sum(f.cfa.nbytes for f in shot.frames) <= MAX_FRAMES_BYTES_IN_MEMORY
        with self._lock:
            if self._closed or key in self._queued:
                return False
            if len(self._queued) >= self._max_shots_in_memory:
                keep_frames = False
            self._queued.add(key)
            # Inside the lock: the worker cannot take the job and leave the set in between.
            self._queue.put(shot if keep_frames else shot.without_frames())
        return True

    def waiting(self) -> tuple[Shot, ...]:
        """The shots not yet started, oldest first (status and tests)."""
        with self._queue.mutex:
            return tuple(shot for shot in self._queue.queue if shot is not None)

    def is_queued(self, key: str) -> bool:
        """True while shot ``key`` waits or is being developed."""
        with self._lock:
            return key in self._queued

    @property
    def queue_length(self) -> int:
        """Shots waiting or being developed."""
        with self._lock:
            return len(self._queued)

    def close(self, timeout_s: float = 30.0) -> None:
        """Finish the shot in hand and stop (queued shots stay journaled); idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        # Drop what has not started: it is on the card and resumes at the next start.
        try:
            while True:
                self._queue.get_nowait()
        except queue.Empty:
            pass
        self._queue.put(None)
        self._thread.join(timeout_s)

    def _run(self) -> None:
        _lower_thread_priority(WORKER_NICE_INCREMENT)
        while True:
            shot = self._queue.get()
            if shot is None:
                return
            key = shot.key
            try:
                self._develop(shot)
            except Exception:  # noqa: BLE001 - one bad shot must not stop the worker
                logger.exception("developing %s failed unexpectedly", key)
            finally:
                del shot  # its frames must not outlive the shot while the worker waits
                with self._lock:
                    self._queued.discard(key)

    def _develop(self, shot: Shot) -> None:
        key = shot.key
        start = time.monotonic()
        try:
            frames = shot.frames or read_burst(shot)
            outputs = develop_shot(frames, shot)
            for kind, data in outputs.items():
                self._store.write_output(shot.name, kind, data)  # type: ignore[arg-type]
            self._journal.retire(shot)
        except StorageError as exc:
            logger.error("%s: %s (kept in the journal)", key, exc)
            self._post(Failed(storage_error_code(exc), str(exc), shot=key))
            return
        except Exception as exc:  # noqa: BLE001 - keep the raw, report, carry on
            logger.exception("%s: development failed", key)
            self._keep_raw(shot)
            self._post(Failed(ErrorCode.PROCESSING_FAILED, f"{key}: {exc}", shot=key))
            return
        self.durations_s[key] = time.monotonic() - start
        logger.info("%s developed in %.2f s", key, self.durations_s[key])
        self._post(ProcessingDone(key))

    def _keep_raw(self, shot: Shot) -> None:
        """Set a shot that failed to develop aside: its reference frame as a DNG in DCIM
        (encoded here, from its frames or read back from the journal), the burst in
        ``.obscura/failed/``. A card error leaves the shot in the journal."""
        key = shot.key
        name = shot.name
        assert name is not None
        try:
            if not self._store.output_path(name, "dng").exists():
                index = shot.reference_index
                frame = shot.frames[index] if shot.frames else read_frame(shot, index)
                self._store.write_output(name, "dng", encode_dng(frame))
        except OSError as exc:
            logger.error("%s: could not keep the raw frames aside (%s): left in the journal",
                         key, exc)
            return
        except (ValueError, IndexError) as exc:  # an unreadable frame: the burst is still kept
            logger.error("%s: no DNG of the reference frame (%s)", key, exc)
        try:
            self._journal.set_aside(shot)
        except OSError as exc:
            logger.error("%s: could not keep the raw frames aside (%s): left in the journal",
                         key, exc)

