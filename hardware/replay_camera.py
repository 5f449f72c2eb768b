"""A folder of real DNGs served as a camera stream (``camera.source = "replay"``).

Files play in name order, one per frame interval, looping; consecutive files make up a
burst. Manual exposures cannot change what was recorded: a shot asking for them gets the
next frames as they are, and the metadata says what they really were.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from hardware.camera import (
    CameraMetering,
    CameraMissingError,
    CameraSource,
    ExposureSettings,
    FrameRecord,
)
from pipeline.errors import RawFormatError
from pipeline.formats.dng_reader import read_dng
from pipeline.raw_frame import RawFrame

logger = logging.getLogger(__name__)

_FRAME_KEY = "obscura.RawFrame"


class ReplayCamera(CameraSource):
    """Streams the DNGs of ``folder`` in name order, looping.

    Parameters
    ----------
    folder : path
        A folder of ``*.dng`` files (case-insensitive suffix).
    frame_interval_s : float
        Time between frames.
    ring_frames, frame_timeout_s :
        See :class:`hardware.camera.CameraSource`.

    Raises (on :meth:`start`)
    ------
    CameraMissingError
        The folder is missing or holds no readable DNG.
    """

    name = "replay"

    def __init__(
        self,
        folder: str | Path,
        *,
        frame_interval_s: float = 0.1,
        ring_frames: int = 8,
        frame_timeout_s: float = 2.0,
    ) -> None:
        super().__init__(ring_frames=ring_frames, frame_timeout_s=frame_timeout_s)
        self._folder = Path(folder)
        self._frame_interval_s = frame_interval_s
        self._frames: list[RawFrame] = []
        self._index = 0
        self._next_frame_at = 0.0

    def _open_device(self) -> None:
        if not self._folder.is_dir():
            raise CameraMissingError(f"replay: {self._folder} is not a folder")
        paths = sorted(p for p in self._folder.iterdir() if p.suffix.lower() == ".dng")
        frames = []
        for path in paths:
            try:
                frames.append(read_dng(path))
            except (RawFormatError, OSError) as exc:
                logger.warning("replay: skipping %s", exc)
        if not frames:
            raise CameraMissingError(f"replay: no readable DNG in {self._folder}")
        self._frames = frames
        self._index = 0
        self._next_frame_at = time.monotonic()
        logger.info("replay: %d frames from %s", len(frames), self._folder)

    def _close_device(self) -> None:
        self._frames = []

    def _read_frame(self, timeout_s: float) -> FrameRecord:
        frame = self._frames[self._index % len(self._frames)]
        self._index += 1
        self._next_frame_at = max(self._next_frame_at + self._frame_interval_s, time.monotonic())
        delay = self._next_frame_at - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        meta = frame.metadata
        exposure_us = 1e6 * (meta.exposure_time_s or self._frame_interval_s / 2)
        end_ns = time.monotonic_ns()
        metadata = {
            "ExposureTime": exposure_us,
            "AnalogueGain": meta.analogue_gain or ((meta.iso or 100.0) / 100.0),
            _FRAME_KEY: frame,
        }
        if meta.as_shot_neutral is not None:
            neutral = meta.as_shot_neutral
            metadata["ColourGains"] = (neutral[1] / neutral[0], neutral[1] / neutral[2])
        return FrameRecord(frame.cfa, metadata, end_ns - int(exposure_us * 1000), end_ns)

    def _decode(self, record: FrameRecord) -> RawFrame:
        return record.metadata[_FRAME_KEY]

    def _set_exposure(self, settings: ExposureSettings | None, metering: CameraMetering | None) -> None:
        if settings is not None:
            logger.info("replay: manual exposure asked for; frames are replayed as recorded")

    def capture_exposures(self, exposures, pressed_at_ns=None):  # type: ignore[no-untyped-def]
        """Recorded frames cannot be re-exposed: the next ``len(exposures)`` frames."""
        return self.next_frames(len(exposures), pressed_at_ns)
