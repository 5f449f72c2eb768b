"""Camera sources: one interface, shared logic here, device calls in each backend.

A :class:`CameraSource` keeps the sensor streaming in its own thread and keeps the last
frames in a ring buffer, so a shot can contain the frame taken at the moment the button
went down (zero shutter lag). Backends implement only the device calls:

- :meth:`CameraSource._open_device` / :meth:`_close_device`;
- :meth:`CameraSource._read_frame`: block for the next frame, copy it out of the device's
  buffer, give the buffer back, return a :class:`FrameRecord` (still packed: decoding to a
  :class:`RawFrame` is left to whoever takes the frame, never done in the streaming thread);
- :meth:`CameraSource._decode`: a record -> :class:`RawFrame`; and, for a backend whose
  payload is not the mosaic itself, :meth:`CameraSource._shape_of` (the mosaic's (H, W));
- :meth:`CameraSource._set_exposure`: manual exposure/gain, or back to auto, and
  :meth:`CameraSource._applied`: the exposure and gain the device really applies for a
  request (a real sensor truncates the time to whole lines and the gain to its gain code);
- optionally :attr:`CameraSource.preview_active` / :meth:`CameraSource.show_overlay`, for a
  backend that shows its stream on a display (the base class has none).

New controls take several frames to reach the sensor (on a Pi, the requests already queued
plus the sensor's own delay: 5 to 7 frames), so the frames right after a manual exposure
may still carry it. Which frames were exposed by the auto exposure is decided from each
frame's own ``ExposureTime`` and ``AnalogueGain``, never from when it was read: only those
are metered (:meth:`CameraSource.metering`) or taken from the ring by a shot
(:meth:`CameraSource.grab_zsl`).

The camera knows nothing about files (picamera2's outputs are a one-method sink; here the
daemon is the sink).
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy.typing as npt

from pipeline.errors import InvalidParameterError, ObscuraError
from pipeline.raw_frame import RawFrame

logger = logging.getLogger(__name__)

#: Share of the memory available at start-up the ring buffer may take.
RING_MEMORY_FRACTION = 0.25
#: How long a capture waits for a frame before it calls the camera stalled.
FRAME_TIMEOUT_S = 2.0
#: A manual exposure counts as applied when the frame's value is within this ratio of the
#: value the device applies for the request (:meth:`CameraSource._applied`).
EXPOSURE_TOLERANCE = 0.05
#: Frames the streaming thread waits for a manual exposure to take effect before giving up.
MAX_SETTLE_FRAMES = 12
#: Frames after auto exposure is restored that may still carry a manual exposure (on a Pi,
#: 5 to 7); later frames count as auto-exposed whatever their exposure.
MAX_CONTROL_LATENCY_FRAMES = 8


class CameraError(ObscuraError, RuntimeError):
    """The camera failed: no frames, a device error."""


class CameraMissingError(CameraError):
    """No camera is connected, or its driver/library is missing."""


class CameraTimeoutError(CameraError, TimeoutError):
    """The camera stopped delivering frames."""


@dataclass(frozen=True)
class CameraMetering:
    """What the camera's auto exposure / white balance last decided (libcamera metadata).

    Attributes
    ----------
    exposure_time_us, analogue_gain : float
        The AE's exposure for the current scene.
    colour_gains : (float, float) or None
        AWB red and blue gains.
    colour_temperature_k : float or None
    lux : float or None
        libcamera's scene illuminance estimate.
    sensor_temperature_c : float or None
    """

    exposure_time_us: float
    analogue_gain: float
    colour_gains: tuple[float, float] | None = None
    colour_temperature_k: float | None = None
    lux: float | None = None
    sensor_temperature_c: float | None = None

    @classmethod
    def from_picamera2(cls, metadata: dict[str, Any]) -> CameraMetering:
        """From libcamera control names (ExposureTime, AnalogueGain, ColourGains, ...)."""
        gains = metadata.get("ColourGains")
        return cls(
            exposure_time_us=float(metadata.get("ExposureTime", 10000.0)),
            analogue_gain=float(metadata.get("AnalogueGain", 1.0)),
            colour_gains=None if gains is None else (float(gains[0]), float(gains[1])),
            colour_temperature_k=_optional_float(metadata.get("ColourTemperature")),
            lux=_optional_float(metadata.get("Lux")),
            sensor_temperature_c=_optional_float(metadata.get("SensorTemperature")),
        )


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)


@dataclass(frozen=True)
class ExposureSettings:
    """A manual exposure for some frames of a shot: time (us) and analogue gain."""

    exposure_time_us: float
    analogue_gain: float = 1.0

    def __post_init__(self) -> None:
        if self.exposure_time_us <= 0:
            raise InvalidParameterError(
                f"exposure_time_us={self.exposure_time_us}: expected > 0"
            )
        if self.analogue_gain < 1.0:
            raise InvalidParameterError(f"analogue_gain={self.analogue_gain}: expected >= 1")


@dataclass(frozen=True, eq=False)
class FrameRecord:
    """One frame as it left the device: a private copy, not yet decoded.

    Attributes
    ----------
    payload : ndarray
        The backend's copy of the frame: a packed raw buffer ((H, stride) uint8) or an
        already decoded (H, W) uint16 mosaic.
    metadata : dict
        libcamera-style metadata (``ExposureTime`` us, ``AnalogueGain``, ...).
    exposure_start_ns, exposure_end_ns : int
        When the exposure began and ended, on the ``time.monotonic_ns()`` clock.
    sequence : int
        Frame counter since the stream started.
    is_auto_exposed : bool
        False for a frame exposed at a manual exposure of a shot (told by its metadata).
    """

    payload: npt.NDArray[Any]
    metadata: dict[str, Any]
    exposure_start_ns: int
    exposure_end_ns: int
    sequence: int = 0
    is_auto_exposed: bool = True

    @property
    def nbytes(self) -> int:
        """Memory the frame holds."""
        return int(self.payload.nbytes)


@dataclass(frozen=True, eq=False)
class CapturedFrame:
    """A frame of a shot: the decoded raw frame and when it was exposed (monotonic ns)."""

    frame: RawFrame
    exposure_start_ns: int
    exposure_end_ns: int
    sequence: int
    metering: CameraMetering


@dataclass(frozen=True)
class CapturedFrames:
    """The frames of one shot and which of them is the reference (the one at the press)."""

    frames: tuple[CapturedFrame, ...]
    reference_index: int
    pressed_at_ns: int | None = None

    @property
    def reference(self) -> CapturedFrame:
        """The frame nearest the press (or the first frame)."""
        return self.frames[self.reference_index]

    @property
    def shutter_lag_s(self) -> float | None:
        """Press -> middle of the reference frame's exposure, seconds (None: not a ZSL shot)."""
        if self.pressed_at_ns is None:
            return None
        ref = self.reference
        middle = (ref.exposure_start_ns + ref.exposure_end_ns) / 2
        return abs(middle - self.pressed_at_ns) / 1e9


def ring_capacity(
    ring_frames: int, frame_bytes: int, available_bytes: int | None,
    fraction: float = RING_MEMORY_FRACTION,
) -> int:
    """Frames the ring may keep: ``ring_frames`` capped so it takes at most ``fraction`` of
    ``available_bytes`` (never fewer than 1).

    >>> ring_capacity(8, 18_580_000, 1_600_000_000)   # Pi 4 2 GB, 12 MP CSI2P frames
    8
    >>> ring_capacity(8, 18_580_000, 300_000_000)     # 512 MB Pi
    4
    """
    if ring_frames < 1:
        raise InvalidParameterError(f"ring_frames={ring_frames}: expected >= 1")
    if available_bytes is None or frame_bytes <= 0:
        return ring_frames
    return max(1, min(ring_frames, int(available_bytes * fraction) // frame_bytes))


def available_memory_bytes() -> int | None:
    """``MemAvailable`` from /proc/meminfo, or None where there is none."""
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


class CameraSource:
    """A streaming camera with a zero-shutter-lag ring buffer; subclasses do device calls.

    Parameters
    ----------
    ring_frames : int
        Frames to keep (capped by memory, see :func:`ring_capacity`).
    frame_timeout_s : float
        A capture fails with :class:`CameraTimeoutError` after this long without a frame.

    Use as a context manager, or call :meth:`start` and :meth:`close` (idempotent).
    """

    #: Backend name for status and logs.
    name = "camera"

    def __init__(self, *, ring_frames: int = 8, frame_timeout_s: float = FRAME_TIMEOUT_S) -> None:
        if ring_frames < 1:
            raise InvalidParameterError(f"ring_frames={ring_frames}: expected >= 1")
        self._requested_ring_frames = ring_frames
        self._frame_timeout_s = frame_timeout_s
        self._ring: collections.deque[FrameRecord] = collections.deque(maxlen=ring_frames)
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._failure: BaseException | None = None
        self._sequence = 0
        self._metering: CameraMetering | None = None
        # Manual exposures (as applied) whose frames may still arrive, and the sequence
        # number at which auto exposure was asked back (None: a shot is still running).
        self._manual_in_flight: tuple[ExposureSettings, ...] = ()
        self._auto_restored_at: int | None = None
        self._device_lock = threading.Lock()  # serialises manual/auto exposure changes
        self._is_open = False
        self._closed = False
        self._frame_shape = (0, 0)

    # ----------------------------------------------------------------- device calls
    def _open_device(self) -> None:
        """Open and start the device; raise :class:`CameraMissingError` if there is none."""
        raise NotImplementedError

    def _close_device(self) -> None:
        """Stop and release the device (called once, after the streaming thread ended)."""
        raise NotImplementedError

    def _read_frame(self, timeout_s: float) -> FrameRecord:
        """The next frame, copied out; raise :class:`CameraTimeoutError` after ``timeout_s``."""
        raise NotImplementedError

    def _decode(self, record: FrameRecord) -> RawFrame:
        """A record's payload and metadata as a :class:`RawFrame`."""
        raise NotImplementedError

    def _shape_of(self, record: FrameRecord) -> tuple[int, int]:
        """(H, W) of a record's mosaic: its payload's shape, where that is the mosaic."""
        return (int(record.payload.shape[0]), int(record.payload.shape[1]))

    def _set_exposure(self, settings: ExposureSettings | None, metering: CameraMetering | None) -> None:
        """Switch to a manual exposure (AE/AWB off, AWB gains held at ``metering``'s), or,
        with ``settings=None``, back to automatic."""
        raise NotImplementedError

    def _applied(self, settings: ExposureSettings) -> ExposureSettings:
        """The exposure and gain a frame shows when ``settings`` are asked for (as asked,
        for a device that applies them exactly)."""
        return settings

    # --------------------------------------------------------------------- lifecycle
    def start(self) -> CameraSource:
        """Open the device and start streaming into the ring buffer."""
        if self._closed:
            raise CameraError(f"{self.name}: closed")
        if self._is_open:
            return self
        self._open_device()
        self._is_open = True
        self._failure = None
        self._stopping.clear()
        self._thread = threading.Thread(target=self._stream, name=f"{self.name}-stream", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop streaming and release the device; safe to call more than once."""
        if self._closed:
            return
        self._closed = True
        self._stop_stream()

    def _stop_stream(self) -> None:
        self._stopping.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout=self._frame_timeout_s + 2.0)
        if self._is_open:
            self._is_open = False
            try:
                self._close_device()
            except Exception:  # noqa: BLE001 - closing must not raise
                logger.exception("%s: error while closing", self.name)
        with self._cond:
            self._ring.clear()
            self._cond.notify_all()

    def restart(self) -> None:
        """Close and reopen the device (after a stall); raises if it is still missing."""
        self._stop_stream()
        self._closed = False
        self.start()

    def __enter__(self) -> CameraSource:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def is_streaming(self) -> bool:
        """True while frames are arriving."""
        return self._thread is not None and self._thread.is_alive() and self._failure is None

    @property
    def frame_shape(self) -> tuple[int, int]:
        """(H, W) of the frames' mosaic ((0, 0) before the first frame)."""
        return self._frame_shape

    @property
    def ring_frames(self) -> int:
        """Frames the ring buffer currently keeps."""
        return self._ring.maxlen or 0

    # ------------------------------------------------------------------ display
    @property
    def preview_active(self) -> bool:
        """True while the camera shows its stream on a display (never, for sources without
        one: the simulator, replay)."""
        return False

    def show_overlay(self, rgba: npt.NDArray[Any] | None) -> None:
        """Lay ``rgba`` ((h, w, 4) uint8, scaled to the preview) over the preview, or
        remove the overlay with None; does nothing while no preview is shown."""

    # ----------------------------------------------------------------- streaming thread
    def _stream(self) -> None:
        first = True
        while not self._stopping.is_set():
            try:
                record = self._read_frame(self._frame_timeout_s)
            except BaseException as exc:  # noqa: BLE001 - reported to capturers
                if self._stopping.is_set():
                    break
                logger.error("%s: streaming stopped: %s", self.name, exc)
                with self._cond:
                    self._failure = exc
                    self._cond.notify_all()
                return
            if first:
                self._frame_shape = self._shape_of(record)
                self._size_ring(record.nbytes)
                first = False
            with self._cond:
                self._sequence += 1
                record = dataclasses.replace(
                    record, sequence=self._sequence,
                    is_auto_exposed=self._is_auto_exposed(record.metadata, self._sequence),
                )
                self._ring.append(record)
                if record.is_auto_exposed:
                    self._metering = CameraMetering.from_picamera2(record.metadata)
                self._cond.notify_all()

    def _is_auto_exposed(self, metadata: dict[str, Any], sequence: int) -> bool:
        """Whether frame ``sequence`` was exposed by the auto exposure: it does not show a
        manual exposure still in flight (called holding ``_cond``). Once auto exposure is
        back, the first frame that shows none ends them (or, should the auto exposure
        equal one, :data:`MAX_CONTROL_LATENCY_FRAMES` frames do)."""
        if not self._manual_in_flight:
            return True
        is_manual = any(_matches(metadata, s) for s in self._manual_in_flight)
        restored = self._auto_restored_at
        if restored is not None and (
            not is_manual or sequence - restored > MAX_CONTROL_LATENCY_FRAMES
        ):
            self._manual_in_flight, self._auto_restored_at = (), None
            return True
        return not is_manual

    def _size_ring(self, frame_bytes: int) -> None:
        capacity = ring_capacity(self._requested_ring_frames, frame_bytes, available_memory_bytes())
        if capacity != self._requested_ring_frames:
            logger.warning(
                "%s: ring buffer limited to %d frames of %.1f MB by available memory",
                self.name, capacity, frame_bytes / 1e6,
            )
        with self._cond:
            self._ring = collections.deque(self._ring, maxlen=capacity)

    # ------------------------------------------------------------------- capturing
    def metering(self, timeout_s: float | None = None) -> CameraMetering:
        """The auto exposure's latest decision (waits for a first frame)."""
        deadline = time.monotonic() + (self._frame_timeout_s if timeout_s is None else timeout_s)
        with self._cond:
            while self._metering is None:
                self._check_alive()
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise CameraTimeoutError(f"{self.name}: no frame within {self._frame_timeout_s} s")
                self._cond.wait(remaining)
            return self._metering

    def latest_frame(self, timeout_s: float | None = None) -> RawFrame:
        """The newest auto-exposed frame of the stream, decoded (waits for one); for meters
        that look at the live stream (focus assist, highlight metering)."""
        deadline = time.monotonic() + (self._frame_timeout_s if timeout_s is None else timeout_s)
        with self._cond:
            self._wait_for(lambda: bool(self._auto_records()), deadline)
            record = self._auto_records()[-1]
        return self._decode(record)

    def ring_ends(self, timeout_s: float | None = None) -> tuple[RawFrame, RawFrame]:
        """The oldest and the newest auto-exposed frame in the ring since its last manual
        one, decoded (the same frame twice when there is one): the two furthest apart in
        time, for motion metering."""
        deadline = time.monotonic() + (self._frame_timeout_s if timeout_s is None else timeout_s)
        with self._cond:
            self._wait_for(lambda: bool(self._auto_records()), deadline)
            records = self._auto_records()
        return self._decode(records[0]), self._decode(records[-1])

    def _auto_records(self, after_sequence: int = 0) -> list[FrameRecord]:
        """The ring's auto-exposed frames since its last manual one (those before belong to
        the time before an earlier shot), newer than ``after_sequence``, oldest first
        (called holding ``_cond``)."""
        records = list(self._ring)
        manual = [i for i, r in enumerate(records) if not r.is_auto_exposed]
        since = records[manual[-1] + 1 :] if manual else records
        return [r for r in since if r.sequence > after_sequence]

    def _check_alive(self) -> None:
        if self._failure is not None:
            if isinstance(self._failure, CameraError):
                raise self._failure
            raise CameraError(f"{self.name}: {self._failure}") from self._failure
        if not self._is_open:
            raise CameraError(f"{self.name}: not started")

    def _wait_for(self, predicate: Callable[[], bool], deadline: float) -> None:
        """Wait (holding ``_cond``) until ``predicate()``; raise on failure or timeout."""
        while not predicate():
            self._check_alive()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise CameraTimeoutError(
                    f"{self.name}: no frame within {self._frame_timeout_s:.1f} s"
                )
            self._cond.wait(remaining)

    def grab_zsl(self, count: int, pressed_at_ns: int | None = None) -> CapturedFrames:
        """The frame nearest ``pressed_at_ns`` and the ``count - 1`` frames before it.

        The reference is the frame whose exposure's middle is nearest the press, among
        those delivered once the frame being exposed at the press is in: the one begun
        before the press, or the next when that is nearer (with exposures much shorter
        than the frame interval, the press falls between exposures). Frames come from the
        ring buffer; when it holds too few, later frames make up the number. Without
        ``pressed_at_ns``, the newest frame is the reference. Only auto-exposed frames
        taken since the ring's last manual frame count: a shot never takes a frame at an
        earlier shot's manual exposure, nor one from before it.

        Raises
        ------
        CameraTimeoutError
            No frame arrived within the frame timeout.
        """
        if count < 1:
            raise InvalidParameterError(f"count={count}: expected >= 1")
        press = time.monotonic_ns() if pressed_at_ns is None else pressed_at_ns
        deadline = time.monotonic() + self._frame_timeout_s
        with self._cond:
            # Wait until the frame being exposed at the press (or, when that was a manual
            # frame, the next auto-exposed one) has been delivered.
            self._wait_for(
                lambda: any(r.exposure_end_ns >= press for r in self._auto_records()), deadline
            )
            ring = self._auto_records()
            reference = min(ring, key=lambda r: abs(_middle_ns(r) - press))
            ref_pos = ring.index(reference)
            chosen = ring[max(0, ref_pos - count + 1) : ref_pos + 1]
            chosen += ring[ref_pos + 1 :][: count - len(chosen)]
            while len(chosen) < count:
                last_seq = chosen[-1].sequence
                deadline = time.monotonic() + self._frame_timeout_s
                self._wait_for(lambda: bool(self._auto_records(last_seq)), deadline)
                chosen += self._auto_records(last_seq)[: count - len(chosen)]
            reference_index = chosen.index(reference)
        frames = tuple(self._captured(r) for r in chosen)
        return CapturedFrames(frames, reference_index, pressed_at_ns)

    def capture_exposures(
        self, exposures: Sequence[ExposureSettings], pressed_at_ns: int | None = None
    ) -> CapturedFrames:
        """One frame per manual exposure of ``exposures``, then back to auto exposure.

        A frame counts once its metadata shows the exposure and gain the device applies
        for the asked ones (within :data:`EXPOSURE_TOLERANCE`), as the controls take a few
        frames to apply. The reference is the first frame.
        """
        if not exposures:
            raise InvalidParameterError("exposures is empty: expected at least one")
        with self._device_lock:
            metering = self.metering()
            applied = tuple(self._applied(s) for s in exposures)
            with self._cond:
                self._manual_in_flight += applied
                self._auto_restored_at = None
            records: list[FrameRecord] = []
            try:
                for settings, target in zip(exposures, applied):
                    self._set_exposure(settings, metering)
                    records.append(self._next_matching(settings, target))
            finally:
                try:
                    self._set_exposure(None, metering)
                except Exception:  # noqa: BLE001 - report the capture error, not this one
                    logger.exception("%s: could not restore auto exposure", self.name)
                with self._cond:
                    self._auto_restored_at = self._sequence
        frames = tuple(self._captured(r) for r in records)
        return CapturedFrames(frames, 0, pressed_at_ns)

    def next_frames(self, count: int, pressed_at_ns: int | None = None) -> CapturedFrames:
        """The next ``count`` frames to arrive, as they come (reference: the first)."""
        records: list[FrameRecord] = []
        with self._cond:
            last_seq = self._ring[-1].sequence if self._ring else 0
            while len(records) < count:
                deadline = time.monotonic() + self._frame_timeout_s
                self._wait_for(lambda: bool(self._ring) and self._ring[-1].sequence > last_seq,
                               deadline)
                new = [r for r in self._ring if r.sequence > last_seq]
                records += new[: count - len(records)]
                last_seq = records[-1].sequence
        return CapturedFrames(tuple(self._captured(r) for r in records), 0, pressed_at_ns)

    def _next_matching(self, settings: ExposureSettings, target: ExposureSettings) -> FrameRecord:
        """The next frame showing ``target``, what the device applies for ``settings``."""
        with self._cond:
            last_seq = self._ring[-1].sequence if self._ring else 0
            for _ in range(MAX_SETTLE_FRAMES):
                deadline = time.monotonic() + self._frame_timeout_s
                self._wait_for(lambda: bool(self._ring) and self._ring[-1].sequence > last_seq,
                               deadline)
                record = self._ring[-1]
                last_seq = record.sequence
                if _matches(record.metadata, target):
                    return record
        raise CameraTimeoutError(
            f"{self.name}: exposure {settings.exposure_time_us:.0f} us x"
            f"{settings.analogue_gain:.2f} (applied as {target.exposure_time_us:.1f} us x"
            f"{target.analogue_gain:.3f}) not seen within {MAX_SETTLE_FRAMES} frames"
        )

    def _captured(self, record: FrameRecord) -> CapturedFrame:
        return CapturedFrame(
            frame=self._decode(record),
            exposure_start_ns=record.exposure_start_ns,
            exposure_end_ns=record.exposure_end_ns,
            sequence=record.sequence,
            metering=CameraMetering.from_picamera2(record.metadata),
        )


def _middle_ns(record: FrameRecord) -> float:
    return (record.exposure_start_ns + record.exposure_end_ns) / 2


def _matches(metadata: dict[str, Any], settings: ExposureSettings) -> bool:
    """Whether a frame's metadata shows ``settings`` (as the device applies them)."""
    exposure = float(metadata.get("ExposureTime", 0.0))
    gain = float(metadata.get("AnalogueGain", 0.0))
    return (
        abs(exposure - settings.exposure_time_us) <= EXPOSURE_TOLERANCE * settings.exposure_time_us + 1
        and abs(gain - settings.analogue_gain) <= EXPOSURE_TOLERANCE * settings.analogue_gain
    )


@dataclass(frozen=True)
class ExposurePlan:
    """How to take a shot: ``count`` zero-shutter-lag frames (from the ring, at the auto
    exposure, ending at the press), then one frame per manual exposure of ``exposures``."""

    count: int = 1
    exposures: tuple[ExposureSettings, ...] = field(default=())

    def __post_init__(self) -> None:
        if self.count < 0 or self.count + len(self.exposures) < 1:
            raise InvalidParameterError(
                f"count={self.count} with {len(self.exposures)} exposures: expected a frame"
            )

    @property
    def frames(self) -> int:
        """Frames the shot takes."""
        return self.count + len(self.exposures)


def take_shot(camera: CameraSource, plan: ExposurePlan, pressed_at_ns: int | None) -> CapturedFrames:
    """Run ``plan`` on ``camera``; the reference is the frame at the press when there is one."""
    zsl = camera.grab_zsl(plan.count, pressed_at_ns) if plan.count else None
    if not plan.exposures:
        assert zsl is not None
        return zsl
    manual = camera.capture_exposures(plan.exposures, pressed_at_ns)
    if zsl is None:
        return manual
    return CapturedFrames(zsl.frames + manual.frames, zsl.reference_index, pressed_at_ns)
