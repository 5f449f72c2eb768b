"""The IMX477 simulator as a streaming camera source (chosen explicitly: ``camera.source``).

Frames are rendered by :class:`hardware.imx477_simulator.Imx477Simulator` at the sensor's
frame rate. Auto exposure puts white just at the clipping point (the simulator knows its
scene); manual exposures render at the asked time and gain. To keep a laptop's cores for
the ISP, each exposure renders ``distinct_frames`` frames once and then serves them in
turn with fresh timestamps (noise and hand shake still differ from frame to frame).

It applies exposures as the HQ camera's full-resolution mode does on a Pi: new exposures
reach the frames :data:`CONTROL_LATENCY_FRAMES` frames late, the time is truncated to whole
lines and the gain to the sensor's gain code
(:func:`hardware.picamera2_metadata.imx477_applied_exposure`), and the metadata reports
the applied values (``ExposureTime`` as an integer), never whether AE was on.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from hardware.camera import (
    CameraMetering,
    CameraMissingError,
    CameraSource,
    CameraTimeoutError,
    ExposureSettings,
    FrameRecord,
)
from hardware.imx477_simulator import (
    ANALOGUE_GAIN_LIMITS,
    EXPOSURE_LIMITS_US,
    Imx477Simulator,
    SensorSettings,
    render_colorchecker,
)
from hardware.picamera2_metadata import IMX477_MODES, imx477_applied_exposure
from pipeline.errors import InvalidParameterError
from pipeline.raw_frame import RawFrame

logger = logging.getLogger(__name__)

# The rendered frame's full metadata (noise profile, lens shading) rides along here.
_RAW_METADATA_KEY = "obscura.CameraMetadata"
#: Frames until a new exposure shows: the IMX477's 2 frames of exposure and gain delay
#: (libcamera ``CamHelperImx477::getDelays``) after the 3 requests picamera2 has already
#: queued with its 4 buffers.
CONTROL_LATENCY_FRAMES = 5
#: Line time of the simulated mode, the IMX477's 4056x3040 (us).
LINE_TIME_US = IMX477_MODES[0].line_time_us


@dataclass
class SimulatedFaults:
    """Switches a test flips to make the simulated camera misbehave.

    ``missing``: opening fails as with no camera attached; ``stalled``: frames stop coming
    (reads time out).
    """

    missing: bool = False
    stalled: bool = False


def default_scene() -> npt.NDArray[np.float32]:
    """A ColorChecker on black, with a bright grey ramp along the bottom: colour and tone."""
    chart = render_colorchecker(patch_size_px=48, border_px=12).image_srgb
    height, width, _ = chart.shape
    ramp = np.linspace(0.0, 1.2, width, dtype=np.float32)[None, :, None]
    ramp = np.broadcast_to(ramp, (height // 4, width, 3))
    return np.ascontiguousarray(np.concatenate([chart, ramp], axis=0))


def gaussian_blur(image: npt.NDArray[Any], sigma_px: float) -> npt.NDArray[np.float32]:
    """(H, W, C) ``image`` blurred by a Gaussian of ``sigma_px`` (separable, edges repeated):
    a lens out of focus, for focus-assist tests."""
    image = np.asarray(image, dtype=np.float32)
    if sigma_px <= 0:
        return image
    radius = int(np.ceil(3.0 * sigma_px))
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma_px) ** 2).astype(np.float32)
    taps /= taps.sum()
    for axis in (0, 1):
        pad = [(0, 0)] * image.ndim
        pad[axis] = (radius, radius)
        padded = np.pad(image, pad, mode="edge")
        length = image.shape[axis]
        image = sum(w * np.take(padded, range(i, i + length), axis=axis) for i, w in enumerate(taps))
    return np.ascontiguousarray(image, dtype=np.float32)


class SimulatedCamera(CameraSource):
    """Streams simulated IMX477 raw frames.

    Parameters
    ----------
    scene_srgb : (H, W, 3) array, optional
        The scene (default :func:`default_scene`).
    output_size : (int, int)
        (H, W) of the frames, both even.
    frame_interval_s : float
        Time between frames (0.1 s = the HQ camera's 10 fps at full resolution).
    seed : int
    distinct_frames : int
        Frames rendered per exposure before they are reused.
    faults : SimulatedFaults, optional
        Failure switches for tests.
    reports_lens_shading : bool
        True: frames carry the exact lens shading map of the simulated vignetting; False:
        none, as the Pi's raw frames (the lens's flat-field calibration must supply it).
    ring_frames, frame_timeout_s :
        See :class:`hardware.camera.CameraSource`.
    simulator_options :
        Passed to :class:`Imx477Simulator` (``illuminance_lux``, ``motion_px``...).
    """

    name = "simulator"

    def __init__(
        self,
        scene_srgb: npt.ArrayLike | None = None,
        *,
        output_size: tuple[int, int] = (760, 1014),
        frame_interval_s: float = 0.1,
        seed: int = 0,
        distinct_frames: int = 4,
        faults: SimulatedFaults | None = None,
        reports_lens_shading: bool = True,
        ring_frames: int = 8,
        frame_timeout_s: float = 2.0,
        **simulator_options: object,
    ) -> None:
        super().__init__(ring_frames=ring_frames, frame_timeout_s=frame_timeout_s)
        self._scene = default_scene() if scene_srgb is None else np.asarray(scene_srgb)
        self._sharp_scene = self._scene
        self._new_scene: npt.NDArray[Any] | None = None
        self._reports_lens_shading = reports_lens_shading
        self._output_size = output_size
        self._frame_interval_s = frame_interval_s
        self._seed = seed
        self._distinct_frames = max(1, distinct_frames)
        self.faults = faults or SimulatedFaults()
        self._options = dict(simulator_options)
        self._simulator: Imx477Simulator | None = None
        self._pools: dict[tuple[int, float], list[RawFrame]] = {}
        self._served = 0
        self._manual: ExposureSettings | None = None
        self._pending_manual: tuple[ExposureSettings | None, int] | None = None
        self._settings_lock = threading.Lock()
        self._next_frame_at = 0.0

    # ------------------------------------------------------------------ device calls
    def _open_device(self) -> None:
        if self.faults.missing:
            raise CameraMissingError("simulator: no camera (simulated)")
        self._build_simulator()
        self._next_frame_at = time.monotonic()

    def _build_simulator(self) -> None:
        self._simulator = Imx477Simulator(
            self._scene, seed=self._seed, output_size=self._output_size, **self._options  # type: ignore[arg-type]
        )
        self._pools.clear()

    def set_scene_blur(self, sigma_px: float) -> None:
        """Defocus the scene by a Gaussian of ``sigma_px`` scene pixels (0: sharp), as
        turning a manual lens's focus ring would; frames rendered from now on show it."""
        if sigma_px < 0:
            raise InvalidParameterError(f"sigma_px={sigma_px}: expected >= 0")
        scene = self._sharp_scene
        if sigma_px:
            if np.issubdtype(scene.dtype, np.integer):
                scene = scene.astype(np.float32) / np.iinfo(scene.dtype).max
            scene = gaussian_blur(scene, sigma_px)
        with self._settings_lock:
            self._new_scene = scene

    def _close_device(self) -> None:
        self._simulator = None
        self._pools.clear()

    def _auto_settings(self) -> ExposureSettings:
        assert self._simulator is not None
        exposure = self._simulator.exposure_time_us_for(1.0)
        return ExposureSettings(float(np.clip(exposure, *EXPOSURE_LIMITS_US)), 1.0)

    def _read_frame(self, timeout_s: float) -> FrameRecord:
        if self.faults.stalled or self.faults.missing:
            time.sleep(min(timeout_s, 0.2))
            raise CameraTimeoutError(f"simulator: no frame within {timeout_s} s (simulated stall)")
        with self._settings_lock:
            if self._new_scene is not None:
                self._scene, self._new_scene = self._new_scene, None
                self._build_simulator()
            if self._pending_manual is not None:
                settings, delay = self._pending_manual
                # Like libcamera, new controls reach the sensor several frames later.
                if delay <= 1:
                    self._manual = settings
                    self._pending_manual = None
                else:
                    self._pending_manual = (settings, delay - 1)
            manual = self._manual
        settings = self._applied(manual or self._auto_settings())
        exposure_s = settings.exposure_time_us / 1e6
        interval = max(self._frame_interval_s, exposure_s)
        self._next_frame_at = max(self._next_frame_at + interval, time.monotonic())
        frame = self._render(settings)
        delay = self._next_frame_at - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        end_ns = time.monotonic_ns()
        metadata = self._metadata(frame, settings)
        return FrameRecord(frame.cfa, metadata, end_ns - int(exposure_s * 1e9), end_ns)

    def _render(self, settings: ExposureSettings) -> RawFrame:
        assert self._simulator is not None
        key = (int(round(settings.exposure_time_us)), round(settings.analogue_gain, 3))
        pool = self._pools.setdefault(key, [])
        self._served += 1
        if len(pool) < self._distinct_frames:
            gain = float(np.clip(settings.analogue_gain, *ANALOGUE_GAIN_LIMITS))
            frame = self._simulator.capture(SensorSettings(key[0], gain))
            frame.cfa.flags.writeable = False  # served many times: nobody may change it
            pool.append(frame)
            return frame
        return pool[self._served % len(pool)]

    def _metadata(self, frame: RawFrame, settings: ExposureSettings) -> dict:
        meta = frame.metadata
        neutral = meta.as_shot_neutral or (1.0, 1.0, 1.0)
        return {
            "ExposureTime": int(round(settings.exposure_time_us)),
            "AnalogueGain": float(settings.analogue_gain),
            "ColourGains": (1.0 / neutral[0], 1.0 / neutral[2]),
            "SensorTemperature": 40.0,
            "Lux": 1000.0,
            _RAW_METADATA_KEY: meta,
        }

    def _decode(self, record: FrameRecord) -> RawFrame:
        template = record.metadata[_RAW_METADATA_KEY]
        metadata = dataclasses.replace(template, sensor_timestamp_ns=record.exposure_start_ns)
        if not self._reports_lens_shading:
            metadata = dataclasses.replace(metadata, lens_shading=None)
        return RawFrame(record.payload, metadata)

    def _set_exposure(self, settings: ExposureSettings | None, metering: CameraMetering | None) -> None:
        with self._settings_lock:
            self._pending_manual = (settings, CONTROL_LATENCY_FRAMES)

    def _applied(self, settings: ExposureSettings) -> ExposureSettings:
        exposure_us, gain = imx477_applied_exposure(
            int(round(settings.exposure_time_us)), settings.analogue_gain, LINE_TIME_US
        )
        return ExposureSettings(float(exposure_us), gain)
