"""Help for the photographer between shots: focus assist, focus peaking, flat fields.

- :class:`FocusAssist` (asked over the control socket, ``obscura focus``): the focus measure
  of the newest streamed frame and its peak so far; each measure goes to the state
  machine (``post(FocusMeasured)``), which blinks the LED faster near the peak.
- :class:`FocusPeaking` (a preview worker, busy only while the camera shows a preview on
  a display): every :data:`PEAKING_INTERVAL_S` the daemon's loop calls
  :meth:`FocusPeaking.update`, which hands the worker newest frame -> grey preview ->
  overlay -> :meth:`~hardware.camera.CameraSource.show_overlay`, unless the last update
  is still running, so a slow Pi shows fewer updates and nothing waits for it. Peaking is
  on whenever the preview is: with a screen, focusing needs no ``obscura focus``.
- :func:`calibrate_flat` (``obscura calibrate flat``): frames of an evenly lit white
  surface -> the lens's flat-field shading table in the lens library.
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from firmware.focus_assist import FocusMeter
from firmware.lens_profiles import LensLibrary
from firmware.events import Event, FocusMeasured
from firmware.state_machine import FOCUS_HOLD_S
from hardware.camera import CameraError, CameraSource, CapturedFrames
from pipeline.errors import InvalidParameterError
from pipeline.focus.measure import CENTRE, Region, focus_measure
from pipeline.focus.peaking import focus_peaking_overlay, grey_preview_from_raw
from pipeline.stages.flat_field import lens_shading_from_flat

logger = logging.getLogger(__name__)

#: Seconds between focus-peaking updates of a preview.
PEAKING_INTERVAL_S = 0.25
#: Largest (height, width) focus peaking works at; picamera2 scales the overlay to the preview.
PEAKING_SIZE = (540, 720)
#: Frames of the evenly lit surface a flat-field calibration averages, by default and at most.
FLAT_FRAMES = 4
MAX_FLAT_FRAMES = 16


class FocusAssist:
    """The focus measure and its peak, for ``obscura focus``; thread-safe."""

    def __init__(self, camera: CameraSource, post: Callable[[Event], Any]) -> None:
        self._camera = camera
        self._post = post
        self._lock = threading.Lock()
        self._meter = FocusMeter()
        self._region: Region = CENTRE
        self._last_s = float("-inf")

    def measure(self, region: Region | None = None, reset: bool = False) -> dict[str, Any]:
        """The focus measure of the newest streamed frame, its peak and their ratio.

        ``region`` is (top, left, height, width) in fractions of the frame (default: the
        central ninth). The peak restarts with ``reset``, a new region, or after
        :data:`~firmware.state_machine.FOCUS_HOLD_S` without requests.
        """
        region = CENTRE if region is None else tuple(float(v) for v in region)  # type: ignore[assignment]
        if len(region) != 4:
            raise InvalidParameterError(f"region={list(region)}: expected top, left, height, width")
        measure = focus_measure(self._camera.latest_frame(), region)
        now = time.monotonic()
        with self._lock:
            if reset or region != self._region or now - self._last_s > FOCUS_HOLD_S:
                self._meter, self._region = FocusMeter(), region
            fraction = self._meter.update(measure)
            peak = self._meter.peak
            self._last_s = now
        self._post(FocusMeasured(fraction, now))
        return {"measure": measure, "peak": peak, "fraction": fraction, "region": list(region)}


class FocusPeaking:
    """Focus peaking over the camera's preview, in a worker thread of its own."""

    def __init__(self, camera: CameraSource) -> None:
        self._camera = camera
        self._executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="preview")
        self._running: concurrent.futures.Future[None] | None = None
        self._failures = 0
        #: Overlays shown so far.
        self.overlays_shown = 0
        #: When the daemon's loop should call :meth:`update` next (``time.monotonic()``).
        self.next_update_s = 0.0

    @property
    def is_active(self) -> bool:
        """Whether the camera shows a preview (and so wants peaking updates)."""
        return self._camera.preview_active

    def update(self, now_s: float) -> None:
        """Hand the worker an update unless the last is still running; never waits."""
        self.next_update_s = now_s + PEAKING_INTERVAL_S
        if not self._camera.preview_active:
            return
        if self._running is not None and not self._running.done():
            return  # the last update is still running: skip this one
        self._running = self._executor.submit(self._show)

    def close(self) -> None:
        """Stop the worker (an update in hand finishes)."""
        self._executor.shutdown(wait=True, cancel_futures=True)

    def _show(self) -> None:
        try:
            frame = self._camera.latest_frame(timeout_s=PEAKING_INTERVAL_S)
            overlay = focus_peaking_overlay(grey_preview_from_raw(frame, PEAKING_SIZE))
            self._camera.show_overlay(overlay)
        except Exception as exc:  # noqa: BLE001 - the preview must never stop the daemon
            # Warn about the first failure of a run of them; the rest at debug level.
            self._failures += 1
            level = logging.WARNING if self._failures == 1 else logging.DEBUG
            logger.log(level, "focus peaking: %s", exc, exc_info=not isinstance(exc, CameraError))
            return
        self._failures = 0
        self.overlays_shown += 1


def calibrate_flat(library_dir: str | Path, lens: str, frames: int,
                   take_frames: Callable[[int], CapturedFrames]) -> dict[str, Any]:
    """Store lens ``lens``'s flat-field shading table, from ``frames`` frames of an evenly
    lit white surface (``take_frames(count)``), in the lens library at ``library_dir``."""
    library = LensLibrary(Path(library_dir))
    library.get(lens)
    if not 1 <= frames <= MAX_FLAT_FRAMES:
        raise InvalidParameterError(f"frames={frames}: expected 1..{MAX_FLAT_FRAMES}")
    shot = take_frames(frames)
    shading = lens_shading_from_flat([f.frame for f in shot.frames])
    path = library.save_shading(lens, shading)
    logger.info("%s: flat-field shading table saved to %s", lens, path)
    return {"lens": lens, "path": str(path), "frames": frames,
            "corner_gain": float(shading.gains[:, 0, 0].mean())}
