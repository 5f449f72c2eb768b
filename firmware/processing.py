"""What happens to a shot after it is on the card: plan, develop, write, retire.

The burst pipeline (:mod:`pipeline.burst`) decides both ends of a shot, so the camera does
exactly what ``obscura merge`` does: :func:`plan_shot` turns the camera's metering into
:func:`pipeline.burst.plan_capture`'s frames, and :func:`develop_shot` merges them and
finishes them by mode (:func:`pipeline.burst.modes.finish_burst`: HDR+ exposure fusion for
hdr and night). A single shot is the single-frame develop.

:class:`ProcessingWorker` is the background thread that develops journaled shots one at a
time (numba kernels release the GIL, so capture keeps going) and reports each result as a
state-machine event. Shots waiting for it are references to their journal entries: their
frames are read back from the card (:func:`read_journal_frames`, as after a crash) when
their turn comes, so memory does not grow with the queue.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import queue
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from firmware.state_machine import ErrorCode, Event, Failed, ProcessingDone, storage_error_code
from hardware.camera import EXPOSURE_TOLERANCE, CameraMetering, ExposurePlan, ExposureSettings
from hardware.storage import (
    JournalEntry,
    PhotoStore,
    ShotName,
    StorageError,
)
from pipeline.burst import BURST_MODES, CaptureLimits, StreamedBurst, align_and_merge, plan_capture
from pipeline.burst import Metering as BurstMetering
from pipeline.burst.modes import finish_burst
from pipeline.colour.output_transform import quantize
from pipeline.develop import DevelopParams, develop
from pipeline.errors import InvalidParameterError, RawFormatError
from pipeline.formats.dng_reader import read_dng
from pipeline.formats.encoders.dng import encode_dng
from pipeline.formats.encoders.jpeg import encode_jpeg
from pipeline.formats.journal_frames import metadata_from_fields, pack_frame, read_packed_frame
from pipeline.raw_frame import CLIP_FRACTION, LensShadingMap, RawFrame

logger = logging.getLogger(__name__)

#: The brightest share of the frame whose clipping means the highlights need headroom
#: (the 0.5% of :class:`pipeline.burst.Metering`'s ``highlight_headroom_ev``).
HIGHLIGHT_SHARE = 0.005
#: Shots queued or being developed below which the worker takes a shot's frames from
#: memory; beyond, a shot waits as its journal entry and is read back from the card. 1: only
#: a shot that goes straight into development (the worker was idle) skips the read.
MAX_SHOTS_IN_MEMORY = 1
#: A shot whose frames take more memory than this is never developed from memory: its
#: frames are read from the journal one at a time as the merge needs them
#: (:func:`journal_burst`). 128 MB keeps a 4-frame 12 MP burst (99 MB) in memory; a
#: 15-frame night shot (370 MB) streams.
MAX_FRAMES_BYTES_IN_MEMORY = 128 * 1024 * 1024
#: How much nicer than the rest of the daemon the processing thread runs, and the numba
#: threads it starts (they inherit it): on a busy CPU, capture (packing and journaling a
#: shot) and the camera's stream come first.
WORKER_NICE_INCREMENT = 10


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
        logger.warning("could not lower the processing thread's priority: %s", exc)


def highlight_headroom_ev(frame: RawFrame | None, limits: CaptureLimits) -> float:
    """How far the brightest :data:`HIGHLIGHT_SHARE` of ``frame`` sits above clipping, EV.

    A frame only shows whether those highlights clip, not by how much: 0 when they do not,
    else the deepest underexposure ``limits`` allow (HDR+ then keeps them, sec. 2).
    """
    if frame is None:
        return 0.0
    black = float(np.mean(frame.metadata.black_level))
    white = float(frame.metadata.white_level)
    sample = frame.cfa[::4, ::4]  # every CFA site still sampled (4 is even)
    bright = float(np.quantile(sample, 1.0 - HIGHLIGHT_SHARE))
    return limits.max_underexposure_ev if bright >= black + CLIP_FRACTION * (white - black) else 0.0


def burst_metering(metering: CameraMetering, newest: RawFrame | None, limits: CaptureLimits,
                   motion_px_per_s: float | None = None) -> BurstMetering:
    """The camera's metering as :func:`pipeline.burst.plan_capture` wants it.

    ``motion_px_per_s`` is the image motion measured on the stream
    (:func:`pipeline.burst.motion.image_motion_px_per_s`); unknown (None), it counts as
    handheld (never a tripod's 1 s frames), i.e. just at ``limits.static_below_px_per_s``.
    """
    return BurstMetering(
        exposure_time_us=metering.exposure_time_us,
        analogue_gain=max(metering.analogue_gain, 1.0),
        motion_px_per_s=limits.static_below_px_per_s if motion_px_per_s is None
        else motion_px_per_s,
        highlight_headroom_ev=highlight_headroom_ev(newest, limits),
    )


def plan_shot(
    mode: str, metering: CameraMetering, limits: CaptureLimits, newest: RawFrame | None = None,
    motion_px_per_s: float | None = None,
) -> ExposurePlan:
    """Which frames a shot in ``mode`` takes.

    single: the frame at the press (zero shutter lag). burst, hdr, night:
    :func:`pipeline.burst.plan_capture`'s frames; when they are all at the auto exposure
    they come from the ring buffer, ending at the press (zero shutter lag), else they are
    captured as manual exposures after it. Night exposures follow ``motion_px_per_s``.
    """
    if mode == "single":
        return ExposurePlan(count=1)
    metered = burst_metering(metering, newest, limits, motion_px_per_s)
    frames = plan_capture(mode, metered, limits)
    if all(_is_metered(time_us, gain, metering) for time_us, gain in frames):
        return ExposurePlan(count=len(frames))
    return ExposurePlan(count=0, exposures=tuple(ExposureSettings(t, g) for t, g in frames))


def _is_metered(time_us: float, gain: float, metering: CameraMetering) -> bool:
    return (abs(time_us - metering.exposure_time_us) <= EXPOSURE_TOLERANCE * time_us + 1
            and abs(gain - metering.analogue_gain) <= EXPOSURE_TOLERANCE * gain)


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

    "jpeg": the shot developed with its look: one frame by the single-frame develop, a
    burst as :func:`pipeline.burst.modes.develop_burst` does (merge, then finish by mode);
    "dng": the reference frame as captured; "merged_dng": the merged raw frame (bursts).
    """
    reference = frames[settings.reference_index]
    keep = settings.keep
    outputs: dict[str, bytes] = {}
    is_burst = settings.mode in BURST_MODES and len(frames) > 1
    merged = align_and_merge(frames) if is_burst and ("jpeg" in keep or "merged_dng" in keep) else None
    if "jpeg" in keep:
        params = DevelopParams(
            look=settings.look, exposure_compensation_ev=settings.exposure_compensation_ev
        )
        if merged is None:
            image = develop(reference, params)
        else:
            image = finish_burst(merged, settings.mode, params)  # type: ignore[arg-type]
        outputs["jpeg"] = encode_jpeg(
            quantize(image, np.uint8), reference.metadata, quality=settings.jpeg_quality
        )
    if "dng" in keep:
        outputs["dng"] = encode_dng(reference)
    if "merged_dng" in keep and merged is not None:
        outputs["merged_dng"] = encode_dng(merged)
    return outputs


#: Manifest field holding the lens shading table every frame of the shot shares.
LENS_SHADING_FIELD = "lens_shading"
#: Manifest field holding, per frame, the fields that read it back
#: (:attr:`pipeline.formats.journal_frames.PackedFrame.fields`).
FRAMES_FIELD = "frame_metadata"
#: Suffix of the journal's frame files (:mod:`pipeline.formats.journal_frames`).
FRAME_SUFFIX = ".raw"
#: Metadata that frames journaled as DNGs (before the packed format) keep in their
#: :data:`FRAMES_FIELD`, as the DNG reader does not return it.
DNG_FRAME_FIELDS = ("analogue_gain", "sensor_timestamp_ns")


def shading_manifest(frame: RawFrame) -> dict[str, Any]:
    """The frame's lens shading table as manifest fields (none without one)."""
    shading = frame.metadata.lens_shading
    if shading is None:
        return {}
    # float32 -> float -> JSON -> float32 is exact: a resumed shot develops as it would have.
    return {LENS_SHADING_FIELD: shading.gains.astype(np.float64).tolist()}


def journal_frames(
    store: PhotoStore, name: ShotName, frames: Sequence[RawFrame], manifest: dict[str, Any]
) -> JournalEntry:
    """Put a shot on the card: each frame packed
    (:func:`pipeline.formats.journal_frames.pack_frame`) and written straight from its
    buffer, then ``manifest`` with the first frame's lens shading table and each frame's
    fields. Durable when this returns."""
    packed = [pack_frame(frame) for frame in frames]
    if frames:
        manifest = {**manifest, **shading_manifest(frames[0]),
                    FRAMES_FIELD: [p.fields for p in packed]}
    return store.journal_shot(name, [p.data for p in packed], manifest, suffix=FRAME_SUFFIX)


def _shot_shading(entry: JournalEntry) -> LensShadingMap | None:
    """The lens shading table the journaled shot's frames share (:func:`shading_manifest`)."""
    gains = entry.manifest.get(LENS_SHADING_FIELD)
    return None if gains is None else LensShadingMap(np.asarray(gains, dtype=np.float32))


def read_journal_frame(entry: JournalEntry, index: int) -> RawFrame:
    """Frame ``index`` of a journaled shot, with the shot's lens shading table.

    Reads the packed frames :func:`journal_frames` writes, and the DNGs earlier firmware
    journaled (with their :data:`DNG_FRAME_FIELDS`, when the manifest has them).
    """
    path = entry.frame_paths[index]
    per_frame = entry.manifest.get(FRAMES_FIELD) or []
    fields = per_frame[index] if index < len(per_frame) else {}
    shading = _shot_shading(entry)
    changes: dict[str, Any] = {} if shading is None else {"lens_shading": shading}
    if path.suffix.lower() == ".dng":
        frame = read_dng(path)
        changes.update((k, v) for k, v in fields.items() if k in DNG_FRAME_FIELDS and v is not None)
    else:
        frame = read_packed_frame(path, fields)
    if not changes:
        return frame
    return RawFrame(frame.cfa, dataclasses.replace(frame.metadata, **changes))


def read_journal_frames(entry: JournalEntry) -> tuple[RawFrame, ...]:
    """Every frame of a journaled shot (:func:`read_journal_frame`), in capture order."""
    return tuple(read_journal_frame(entry, i) for i in range(len(entry.frame_paths)))


def journal_burst(entry: JournalEntry) -> Sequence[RawFrame]:
    """A journaled shot's frames as a :class:`~pipeline.burst.StreamedBurst`: metadata
    from the manifest, each frame read from the card when the merge needs it. Journals of
    earlier firmware (DNG frames, whose metadata is in the files) are read whole."""
    per_frame = entry.manifest.get(FRAMES_FIELD) or []
    paths = entry.frame_paths
    if len(per_frame) != len(paths) or any(p.suffix.lower() == ".dng" for p in paths):
        return read_journal_frames(entry)
    shading = _shot_shading(entry)
    try:
        metadata = [
            dataclasses.replace(metadata_from_fields(fields["metadata"]), lens_shading=shading)
            for fields in per_frame
        ]
        shape = tuple(int(v) for v in per_frame[0]["shape"])
    except (KeyError, TypeError, ValueError) as exc:
        raise RawFormatError(f"{entry.directory}: unreadable frame fields ({exc!r})") from None
    return StreamedBurst(metadata, shape, lambda index: read_journal_frame(entry, index))


@dataclass(frozen=True, eq=False)
class ShotJob:
    """A journaled shot to develop; ``frames`` None means read them from the journal."""

    entry: JournalEntry
    frames: tuple[RawFrame, ...] | None = None


class ProcessingWorker:
    """Develops journaled shots, one at a time, in a background thread that yields the CPU
    to capture (:data:`WORKER_NICE_INCREMENT`).

    Each finished shot is written to DCIM and retired from the journal, then reported with
    ``post(ProcessingDone(shot))``. A shot that cannot be developed keeps its raw frames
    (reference DNG in DCIM when possible, the burst in ``.obscura/failed``) and is reported
    as ``Failed(PROCESSING_FAILED)``; a full or missing card leaves it in the journal, to
    be developed after the next start or recovery.

    Parameters
    ----------
    store : PhotoStore
    post : callable
        Receives each result event (from the worker thread).
    max_shots_in_memory : int
        A shot submitted with its frames keeps them only while fewer shots than this are
        queued or being developed; otherwise it waits as its journal entry alone.
    """

    def __init__(self, store: PhotoStore, post: Callable[[Event], None],
                 max_shots_in_memory: int = MAX_SHOTS_IN_MEMORY) -> None:
        if max_shots_in_memory < 0:
            raise InvalidParameterError(f"max_shots_in_memory={max_shots_in_memory}: expected >= 0")
        self._store = store
        self._post = post
        self._max_shots_in_memory = max_shots_in_memory
        self._queue: queue.Queue[ShotJob | None] = queue.Queue()
        self._lock = threading.Lock()
        self._queued: set[str] = set()
        self.durations_s: dict[str, float] = {}
        self._thread = threading.Thread(target=self._run, name="processing", daemon=True)
        self._closed = False
        self._thread.start()

    def submit(self, entry: JournalEntry, frames: Sequence[RawFrame] | None = None) -> bool:
        """Queue a journaled shot; False if it is already queued or being developed.

        ``frames`` (the shot's frames, still in memory) are kept only within
        ``max_shots_in_memory`` and :data:`MAX_FRAMES_BYTES_IN_MEMORY`; otherwise they are
        dropped here and the worker reads the shot back from the journal when its turn
        comes, one frame at a time (:func:`journal_burst`).
        """
        key = entry.name.key
        if frames is not None and sum(f.cfa.nbytes for f in frames) > MAX_FRAMES_BYTES_IN_MEMORY:
            frames = None
        with self._lock:
            if self._closed or key in self._queued:
                return False
            if frames is not None and len(self._queued) >= self._max_shots_in_memory:
                frames = None
            self._queued.add(key)
            # Inside the lock: the worker cannot take the job and leave the set in between.
            self._queue.put(ShotJob(entry, None if frames is None else tuple(frames)))
        return True

    def waiting(self) -> tuple[ShotJob, ...]:
        """The jobs not yet started, oldest first (status and tests)."""
        with self._queue.mutex:
            return tuple(job for job in self._queue.queue if job is not None)

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
            job = self._queue.get()
            if job is None:
                return
            key = job.entry.name.key
            try:
                self._develop(job)
            except Exception:  # noqa: BLE001 - one bad shot must not stop the worker
                logger.exception("processing %s failed unexpectedly", key)
            finally:
                del job  # its frames must not outlive the shot while the worker waits
                with self._lock:
                    self._queued.discard(key)

    def _develop(self, job: ShotJob) -> None:
        entry = job.entry
        key = entry.name.key
        start = time.monotonic()
        settings = ShotSettings.from_manifest(entry.manifest)
        try:
            frames = job.frames if job.frames is not None else journal_burst(entry)
            outputs = develop_shot(frames, settings)
            for kind, data in outputs.items():
                self._store.write_output(entry.name, kind, data)
            self._store.retire(entry)
        except StorageError as exc:
            logger.error("%s: %s (kept in the journal)", key, exc)
            self._post(Failed(storage_error_code(exc), str(exc), shot=key))
            return
        except Exception as exc:  # noqa: BLE001 - keep the raw, report, carry on
            logger.exception("%s: development failed", key)
            self._keep_raw(entry, job.frames)
            self._post(Failed(ErrorCode.PROCESSING_FAILED, f"{key}: {exc}", shot=key))
            return
        self.durations_s[key] = time.monotonic() - start
        logger.info("%s developed in %.2f s", key, self.durations_s[key])
        self._post(ProcessingDone(key))

    def _keep_raw(self, entry: JournalEntry, frames: Sequence[RawFrame] | None) -> None:
        """Set a shot that failed to develop aside: its reference frame as a DNG in DCIM
        (encoded here, from ``frames`` or read back from the journal), the burst in
        ``.obscura/failed/``. A card error leaves the shot in the journal."""
        key = entry.name.key
        try:
            if not self._store.output_path(entry.name, "dng").exists():
                index = int(entry.manifest.get("reference_index", 0))
                frame = frames[index] if frames is not None else read_journal_frame(entry, index)
                self._store.write_output(entry.name, "dng", encode_dng(frame))
        except OSError as exc:
            logger.error("%s: could not keep the raw frames aside (%s): left in the journal",
                         key, exc)
            return
        except (ValueError, IndexError) as exc:  # an unreadable frame: the burst is still kept
            logger.error("%s: no DNG of the reference frame (%s)", key, exc)
        try:
            self._store.fail(entry)
        except OSError as exc:
            logger.error("%s: could not keep the raw frames aside (%s): left in the journal",
                         key, exc)
