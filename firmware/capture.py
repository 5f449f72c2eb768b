"""The capture worker: the one thread that talks to the camera for shots.

:class:`CaptureWorker` runs the camera's work one step at a time behind a single-thread
executor, so a shot's frames never interleave with another's or with calibration frames:

- :meth:`~CaptureWorker.start_camera`: open the camera, wait for its first frame.
- :meth:`~CaptureWorker.capture`: a shot's life from the decision to its frames in memory:
  meter (what its :class:`~firmware.capture_mode.CaptureMode` needs), plan, check the
  card's space, take the frames (:func:`hardware.camera.take_shot`: the ring buffer at the
  press, then manual brackets), number the shot, stamp the date and lens. Then
  :class:`~firmware.events.FramesCaptured` (the camera may shoot again) and the
  shot goes to the card writer (:mod:`firmware.card_writer`).
- :meth:`~CaptureWorker.recover`: reopen a failed camera, or take a card back (then give
  the writer the shots the card could not take, and resume the journal).
- :meth:`~CaptureWorker.frames`: plain frames for flat-field calibration.

Results go to the daemon through ``post``; nothing here raises into it.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import datetime as dt
import logging
import time
from collections.abc import Callable

from firmware.capture_mode import capture_mode
from firmware.card_writer import CardWriter, failure
from firmware.config import Config
from firmware.journal import Journal
from firmware.lens_profiles import lens_in_use
from firmware.shot import Shot
from firmware.events import (
    CameraStarted,
    CaptureRefused,
    ErrorCode,
    Event,
    Failed,
    FramesCaptured,
    Recovered,
    ShutdownRequested,
)
from hardware.camera import CameraError, CameraSource, CapturedFrames, take_shot
from hardware.device_access import EXIT_RESTART
from hardware.storage import CardFullError, StorageError
from pipeline.burst import CaptureLimits
from pipeline.burst.motion import image_motion_px_per_s
from pipeline.formats.journal_frames import packed_nbytes
from pipeline.raw_frame import RawFrame

logger = logging.getLogger(__name__)

#: Least run time before exiting for a restart (systemd/obscura.service's start limit).
RESTART_AFTER_S = 60.0
#: Card space a file takes beyond its pixels, at most (DNG/JPEG headers, EXIF, a thumbnail).
FILE_OVERHEAD_BYTES = 256 * 1024
#: The errors :meth:`CaptureWorker.recover` clears by taking the card back.
CARD_ERRORS = (ErrorCode.CARD_FULL, ErrorCode.CARD_MISSING, ErrorCode.CARD_READ_ONLY,
               ErrorCode.CARD_FAILED, ErrorCode.OUT_OF_RESOURCES)


def capture_limits(config: Config) -> CaptureLimits:
    """The burst planner's limits: the IMX477's, with the configured frame counts."""
    night_max = config.capture.night_max_frames
    return CaptureLimits(
        burst_frames=config.capture.burst_frames,
        night_max_frames=night_max,
        night_min_frames=min(CaptureLimits.night_min_frames, night_max),
    )


class CaptureWorker:
    """The camera's shots, calibration frames and recovery, one at a time.

    Parameters
    ----------
    camera : CameraSource
        Not yet started.
    journal : Journal
    writer : CardWriter
    config : callable
        The configuration in force (read at each shot).
    post : callable
        Receives each result event.
    pending_shots : callable
        Shots captured or journaled but not yet developed (their outputs need card space).
    resume_journal : callable
        Hands the development worker every journaled shot it does not have.
    blocked_devices : callable, optional
        When the camera cannot be opened, the camera device nodes this process is kept
        from (:func:`hardware.device_access.blocked_camera_devices`); if there are any, it
        asks for a shutdown with exit status ``EXIT_RESTART`` once the process has run
        ``restart_after_s``, so that systemd starts one that may open them.
    """

    def __init__(
        self, camera: CameraSource, journal: Journal, writer: CardWriter, *,
        config: Callable[[], Config], post: Callable[[Event], None],
        pending_shots: Callable[[], int], resume_journal: Callable[[], None],
        blocked_devices: Callable[[], list[str]] | None = None,
        restart_after_s: float = RESTART_AFTER_S,
    ) -> None:
        self._camera = camera
        self._journal = journal
        self._store = journal.store
        self._writer = writer
        self._config = config
        self._post = post
        self._pending_shots = pending_shots
        self._resume_journal = resume_journal
        self._blocked_devices = blocked_devices
        self._restart_after_s = restart_after_s
        self._started_at_s = time.monotonic()
        self._executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="capture")
        self._closed = False

    def close(self) -> None:
        """Finish the step in hand; drop those not started."""
        self._closed = True
        self._executor.shutdown(wait=True, cancel_futures=True)

    # ------------------------------------------------------------ asked by the daemon
    def start_camera(self) -> None:
        """Open the camera (posts CameraStarted, or Failed(NO_CAMERA))."""
        self._executor.submit(self._start_camera)

    def capture(self, shot: Shot) -> None:
        """Take ``shot`` (posts FramesCaptured, CaptureRefused or Failed)."""
        self._executor.submit(self._capture, shot)

    def recover(self, error: ErrorCode) -> None:
        """Check whether ``error`` is gone (posts Recovered when it is)."""
        self._executor.submit(self._recover, error)

    def frames(self, count: int, timeout_s: float) -> CapturedFrames:
        """``count`` frames of the stream, taken between shots (flat-field calibration)."""
        if self._closed:
            raise CameraError("the camera is not running")
        return self._executor.submit(self._camera.next_frames, count).result(timeout_s)

    # ------------------------------------------------------------ the capture thread
    def _start_camera(self) -> None:
        try:
            self._camera.start()
            self._camera.metering()  # the first frame arrived
        except CameraError as exc:
            logger.error("camera: %s", exc)
            self._post(Failed(ErrorCode.NO_CAMERA, str(exc)))
            self._restart_if_devices_blocked()
            return
        self._post(CameraStarted())

    def _restart_if_devices_blocked(self) -> None:
        """Stop for a new process when the camera's devices exist but are closed to this
        one (they appeared after the service started)."""
        blocked = [] if self._blocked_devices is None else self._blocked_devices()
        if blocked and time.monotonic() - self._started_at_s < self._restart_after_s:
            logger.warning("camera devices closed to this process (%s): restarting once it "
                           "has run %.0f s", ", ".join(blocked), self._restart_after_s)
        elif blocked:
            logger.error("camera devices appeared after the service started and are closed "
                         "to it (%s): exiting with status %d for systemd to restart it",
                         ", ".join(blocked), EXIT_RESTART)
            self._post(ShutdownRequested(exit_status=EXIT_RESTART))

    def shot_bytes(self, frames: int, pending: int) -> int:
        """Card space a shot of ``frames`` frames needs, with the outputs still to come.

        Upper bounds: a journaled frame takes at most 2 bytes a pixel (12-bit frames 1.5),
        as does each output (a DNG is the 16-bit mosaic; a JPEG is far smaller).
        """
        height, width = self._camera.frame_shape
        per_frame = packed_nbytes("uint16_le", max(height, 1), max(width, 1)) + FILE_OVERHEAD_BYTES
        outputs = per_frame * len(self._config().output.keep)
        return per_frame * frames + outputs * (1 + pending)

    def _capture(self, shot: Shot) -> None:
        config = self._config()
        assert shot.mode is not None
        mode = capture_mode(shot.mode)
        try:
            newest = self._camera.latest_frame() if mode.meters_highlights else None
            motion = image_motion_px_per_s(*self._camera.ring_ends()) if mode.meters_motion \
                else None
            plan = mode.plan(self._camera.metering(), capture_limits(config), newest, motion)
            if not self._has_space(shot, plan.frames):
                return
            taken = take_shot(self._camera, plan, shot.pressed_at_ns)
            name = self._store.reserve_name()
            lens = lens_in_use(config.lens.name, config.lens.focal_length_mm,
                               config.lens.f_number, config.lens.library_dir)
            now = dt.datetime.now().replace(microsecond=0)
            frames = tuple(
                RawFrame(f.frame.cfa, lens.stamp(
                    dataclasses.replace(f.frame.metadata, datetime_original=now), f.frame.shape))
                for f in taken.frames
            )
        except Exception as exc:  # noqa: BLE001 - a capture bug must not stop the daemon
            self._post(failure(exc, shot))
            return
        shot = dataclasses.replace(
            shot, name=name, reference_index=taken.reference_index,
            exposure_compensation_ev=config.capture.exposure_compensation_ev,
            keep=tuple(config.output.keep), jpeg_quality=config.output.jpeg_quality,
            merge=config.capture.merge, shutter_lag_s=taken.shutter_lag_s,
            captured_at_ns=time.monotonic_ns(),
        ).with_frames(frames)
        self._post(FramesCaptured(shot.without_frames()))
        self._writer.write(shot, self.shot_bytes(len(frames), 0))

    def _has_space(self, shot: Shot, frames: int) -> bool:
        """Whether the card takes a shot of ``frames`` frames besides those not yet
        written; if it is a burst and a single shot still fits, only this one is refused
        (CaptureRefused, False); if nothing fits, CardFullError."""
        pending = self._pending_shots()
        unwritten = self._writer.unwritten_bytes
        try:
            self._store.check_space(self.shot_bytes(frames, pending) + unwritten)
        except CardFullError as exc:
            if frames == 1:
                raise
            self._store.check_space(self.shot_bytes(1, pending) + unwritten)
            self._post(CaptureRefused(shot, f"{exc}: a single shot still fits"))
            return False
        return True

    def _recover(self, error: ErrorCode) -> None:
        try:
            if error in (ErrorCode.NO_CAMERA, ErrorCode.CAPTURE_FAILED):
                self._camera.restart()
                self._camera.metering()
            elif error in CARD_ERRORS:
                self._journal.open()  # the card back (never the folder it was mounted on)
                self._store.check_space(self.shot_bytes(1, self._pending_shots()))
                self._writer.write_stranded()
                self._resume_journal()
        except (CameraError, StorageError) as exc:
            logger.info("still failing: %s", exc)
            if isinstance(exc, CameraError):
                self._restart_if_devices_blocked()
            return
        except Exception:  # noqa: BLE001
            logger.exception("recovery from %s failed", error.value)
            return
        self._post(Recovered())
