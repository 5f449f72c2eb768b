"""What happens to a shot after it is on the card: plan, merge, develop, write, retire.

Three functions are the seams to the burst pipeline (issue 4), so wiring it is one place:
:func:`plan_exposures` (which frames a mode takes), :func:`merge_burst` (frames -> one raw
frame, through ``pipeline.align_and_merge`` when it exists) and :func:`develop_shot`.

:class:`ProcessingWorker` is the background thread that develops journaled shots one at a
time (numba kernels release the GIL, so capture keeps going) and reports each result as a
state-machine event.
"""

from __future__ import annotations

import dataclasses
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from firmware.state_machine import ErrorCode, Event, Failed, ProcessingDone
from hardware.camera import ExposurePlan, ExposureSettings, Metering
from hardware.storage import (
    CardFullError,
    CardMissingError,
    JournalEntry,
    PhotoStore,
    StorageError,
)
from pipeline.develop import DevelopParams, develop
from pipeline.dng_reader import read_dng
from pipeline.encoders.dng import encode_dng
from pipeline.encoders.jpeg import encode_jpeg
from pipeline.output_transform import quantize
from pipeline.raw_frame import RawFrame

logger = logging.getLogger(__name__)

#: Longest exposure of one night-mode frame (us): handheld-ish, and ten of them stay short.
NIGHT_MAX_EXPOSURE_US = 250_000.0
#: How much shorter the short frames of an HDR bracket are (EV).
HDR_SHORT_EV = 2.0
#: Analogue gain limits of the IMX477 tuning.
GAIN_LIMITS = (1.0, 16.0)


def plan_exposures(mode: str, metering: Metering, burst_frames: int) -> ExposurePlan:
    """Which frames a shot in ``mode`` takes.

    - single: the frame at the press (zero shutter lag);
    - burst: the ``burst_frames`` frames up to the press, at the auto exposure (HDR+'s
      constant exposure, merged for noise);
    - hdr: the frames at the press (about half the burst) plus manual frames
      :data:`HDR_SHORT_EV` shorter, which keep the highlights;
    - night: ``burst_frames`` manual frames trading gain for time: the auto exposure's
      total (time x gain) with the time stretched up to :data:`NIGHT_MAX_EXPOSURE_US`.
    """
    if mode == "single":
        return ExposurePlan(count=1)
    if mode == "burst":
        return ExposurePlan(count=burst_frames)
    if mode == "hdr":
        long_count = (burst_frames + 1) // 2
        short = ExposureSettings(
            max(metering.exposure_time_us / 2.0**HDR_SHORT_EV, 114.0), metering.analogue_gain
        )
        return ExposurePlan(count=long_count, exposures=(short,) * (burst_frames - long_count))
    if mode == "night":
        total = metering.exposure_time_us * metering.analogue_gain
        exposure = min(max(total / GAIN_LIMITS[0], metering.exposure_time_us), NIGHT_MAX_EXPOSURE_US)
        gain = float(np.clip(total / exposure, *GAIN_LIMITS))
        return ExposurePlan(count=0, exposures=(ExposureSettings(exposure, gain),) * burst_frames)
    raise ValueError(f"mode={mode!r}: expected single, burst, hdr or night")


def merge_burst(frames: Sequence[RawFrame], reference_index: int = 0) -> RawFrame:
    """One raw frame from a shot's frames: ``pipeline.align_and_merge`` (issue 4) when
    there are several and it is available, else the reference frame alone."""
    if len(frames) == 1:
        return frames[0]
    import pipeline

    align_and_merge = getattr(pipeline, "align_and_merge", None)
    if align_and_merge is None:
        logger.warning("pipeline.align_and_merge is not available: developing one frame")
        return frames[reference_index]
    return align_and_merge(frames)


@dataclass(frozen=True)
class ShotSettings:
    """How a shot is developed; recorded in its journal manifest at capture time."""

    mode: str = "single"
    look: str = "standard"
    exposure_compensation_ev: float = 0.0
    keep: tuple[str, ...] = ("jpeg", "dng")
    jpeg_quality: int = 92
    reference_index: int = 0

    def to_manifest(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return {**dataclasses.asdict(self), "keep": list(self.keep)}

    @classmethod
    def from_manifest(cls, manifest: dict[str, Any]) -> ShotSettings:
        """The inverse of :meth:`to_manifest` (unknown fields ignored)."""
        names = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in manifest.items() if k in names}
        if "keep" in values:
            values["keep"] = tuple(values["keep"])
        return cls(**values)


def develop_shot(frames: Sequence[RawFrame], settings: ShotSettings) -> dict[str, bytes]:
    """The files a shot leaves (``settings.keep``), as bytes by kind.

    "jpeg": the merged (or single) frame developed with the shot's look; "dng": the
    reference frame as captured; "merged_dng": the merged raw frame (bursts only).
    """
    reference = frames[settings.reference_index]
    outputs: dict[str, bytes] = {}
    needs_merge = "jpeg" in settings.keep or "merged_dng" in settings.keep
    merged = merge_burst(frames, settings.reference_index) if needs_merge else reference
    if "jpeg" in settings.keep:
        params = DevelopParams(
            look=settings.look, exposure_compensation_ev=settings.exposure_compensation_ev
        )
        image = quantize(develop(merged, params), np.uint8)
        outputs["jpeg"] = encode_jpeg(image, reference.metadata, quality=settings.jpeg_quality)
    if "dng" in settings.keep:
        outputs["dng"] = encode_dng(reference)
    if "merged_dng" in settings.keep and len(frames) > 1 and merged is not reference:
        outputs["merged_dng"] = encode_dng(merged)
    return outputs


@dataclass(frozen=True, eq=False)
class ShotJob:
    """A journaled shot to develop; ``frames`` None means read them from the journal."""

    entry: JournalEntry
    frames: tuple[RawFrame, ...] | None = None


class ProcessingWorker:
    """Develops journaled shots, one at a time, in a background thread.

    Each finished shot is written to DCIM and retired from the journal, then reported with
    ``post(ProcessingDone(shot))``. A shot that cannot be developed keeps its raw frames
    (reference DNG in DCIM when possible, the burst in ``.obscura/failed``) and is reported
    as ``Failed(PROCESSING_FAILED)``; a full or missing card leaves it in the journal, to
    be developed after the next start or recovery.
    """

    def __init__(self, store: PhotoStore, post: Callable[[Event], None]) -> None:
        self._store = store
        self._post = post
        self._queue: queue.Queue[ShotJob | None] = queue.Queue()
        self._lock = threading.Lock()
        self._queued: set[str] = set()
        self._busy: str | None = None
        self.durations_s: dict[str, float] = {}
        self._thread = threading.Thread(target=self._run, name="processing", daemon=True)
        self._closed = False
        self._thread.start()

    def submit(self, job: ShotJob) -> bool:
        """Queue a shot; False if it is already queued or being developed."""
        key = job.entry.name.key
        with self._lock:
            if self._closed or key in self._queued:
                return False
            self._queued.add(key)
        self._queue.put(job)
        return True

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
        while True:
            job = self._queue.get()
            if job is None:
                return
            key = job.entry.name.key
            try:
                self._develop(job)
            except Exception:  # noqa: BLE001 - one bad shot must not stop the worker
                logger.exception("processing %s failed unexpectedly", key)
            finally:
                with self._lock:
                    self._queued.discard(key)

    def _develop(self, job: ShotJob) -> None:
        entry = job.entry
        key = entry.name.key
        start = time.monotonic()
        settings = ShotSettings.from_manifest(entry.manifest)
        try:
            frames = job.frames or tuple(read_dng(path) for path in entry.frame_paths)
            outputs = develop_shot(frames, settings)
            for kind, data in outputs.items():
                self._store.write_output(entry.name, kind, data)
            self._store.retire(entry)
        except CardFullError as exc:
            logger.error("%s: %s (kept in the journal)", key, exc)
            self._post(Failed(ErrorCode.CARD_FULL, str(exc), shot=key))
            return
        except (CardMissingError, StorageError) as exc:
            logger.error("%s: %s (kept in the journal)", key, exc)
            self._post(Failed(ErrorCode.CARD_MISSING, str(exc), shot=key))
            return
        except Exception as exc:  # noqa: BLE001 - keep the raw, report, carry on
            logger.exception("%s: development failed", key)
            self._keep_raw(entry)
            self._post(Failed(ErrorCode.PROCESSING_FAILED, f"{key}: {exc}", shot=key))
            return
        self.durations_s[key] = time.monotonic() - start
        logger.info("%s developed in %.2f s", key, self.durations_s[key])
        self._post(ProcessingDone(key))

    def _keep_raw(self, entry: JournalEntry) -> None:
        try:
            if not self._store.output_path(entry.name, "dng").exists():
                index = int(entry.manifest.get("reference_index", 0))
                data = entry.frame_paths[index].read_bytes()
                self._store.write_output(entry.name, "dng", data)
            self._store.fail(entry)
        except (OSError, IndexError) as exc:
            logger.error("%s: could not keep the raw frames aside (%s): left in the journal",
                         entry.name.key, exc)
