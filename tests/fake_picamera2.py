"""A fake ``picamera2`` module that behaves as the real one on a Raspberry Pi with the HQ
Camera (IMX477), backed by the IMX477 simulator.

API names and behaviour follow picamera2 (https://github.com/raspberrypi/picamera2,
``picamera2/picamera2.py``, ``request.py``, ``job.py``, ``controls.py``): only what
:mod:`hardware.picamera2_camera` touches. What the real one does and the fake copies:

- ``Picamera2(camera_num)`` looks its camera up in ``global_camera_info()[camera_num]``, so
  with no camera attached it raises ``IndexError`` (``list index out of range``).
- ``sensor_modes`` lists the IMX477's four modes of ``drivers/media/i2c/imx477.c`` (12-bit
  4056x3040 at 10 fps, 2028x1520 at 40, 2028x1080 at 50; 10-bit 1332x990 at 120), with
  ``fps`` and ``exposure_limits``. Reading it the first time configures
  the camera once per mode (so never while it runs: ``RuntimeError``, as ``configure``)
  and leaves it configured for the last mode. The fake's sensor is ``sensor_size``
  (default a small 192x128 for speed) instead of 4056x3040 and the other modes are
  scaled with it; their timing (line length, frame rate) is the real modes'.
- ``set_controls`` raises ``RuntimeError`` ("Control X is not advertised by libcamera")
  for a control the Raspberry Pi IPA does not list (``ipaControls`` and
  ``ipaColourControls`` in libcamera ``src/ipa/rpi/common/ipa_base.cpp``).
- Controls ride on the next request picamera2 gives back to libcamera
  (``CompletedRequest.release``), which joins the ``buffer_count - 1`` requests already
  queued; the IPA applies it, and the sensor exposes with it ``exposureDelay`` =
  ``gainDelay`` = 2 frames later (``CamHelperImx477::getDelays``): with 4 buffers a new
  exposure shows in the 6th frame after ``set_controls``. The metadata's ``AeEnable`` is
  the request's control, which runs those 2 frames ahead of the exposure.
- The frame's exposure is truncated to whole lines (``CamHelper::exposureLines``; 24000
  pixels at 840 MHz = 28.57 us at full resolution) and its gain to the gain code below it
  (``CamHelperImx477::gainCode``, gain ``1024 / (1024 - code)``); ``ExposureTime`` is
  reported as an integer number of microseconds (``IpaBase::reportMetadata``) and
  ``FrameDuration`` as the frame's length. See :func:`hardware.picamera2_metadata.
  imx477_applied_exposure`.
- Frames come at the sensor's pace whether anyone waits or not: with ``queue=False`` (or
  one buffer) a frame nobody is waiting for when it completes is dropped, and
  ``capture_request`` returns the next one; ``dropped`` counts them. ``SensorTimestamp``
  is the start of the frame's readout (the end of its exposure) on the monotonic clock,
  as picamera2's own ``wait_for_timestamp_`` takes it; a frame is delivered one frame
  time after its readout starts. ``frame_interval_s`` sets the fake's frame time (small,
  for fast tests) in place of the mode's.
- The Pi 4 delivers ``SBGGR12_CSI2P``; a Pi 5 (``raw_format="BGGR_PISP_COMP1"``), whose
  frames follow the Pi 5's own tuning (``pisp/data/imx477.json``: its AWB curve),
  delivers the PiSP compressed raw of its front end (``sensor_modes`` still list the
  sensor's CSI-2 formats).

Previews as picamera2 runs them: ``Preview`` (NULL, DRM, QT, QTGL), ``start_preview`` (an
error once an event loop runs: ``start()`` starts a NULL preview when none is running),
``stop_preview``, ``set_overlay`` (a 4-channel array or None; a DRM preview needs
``buffer_count >= 2``). The fake records ``preview`` (the running kind), ``preview_options``
(x, y, width, height), ``overlays`` (copies of those set on a visible preview) and
``displayed`` (frames a visible preview showed: only with a ``display`` stream).
``set_scene`` changes what the sensor sees from the next frame on; ``control_log`` keeps
every ``set_controls``.
"""

from __future__ import annotations

import contextlib
import enum
import math
import threading
import time
import types
from typing import Any

import numpy as np

from hardware.imx477_simulator import EXPOSURE_LIMITS_US, Imx477Simulator, SensorSettings
from hardware.picamera2_metadata import (
    IMX477_MIN_EXPOSURE_LINES,
    IMX477_MODES,
    IMX477_PIXEL_ARRAY_SIZE,
    imx477_applied_exposure,
)
from pipeline.formats.picamera2_raw import pack_raw, unpack_raw

#: Switches tests flip on the module: ``cameras`` (0 = none attached), ``stalled``,
#: ``raw_format`` (what configure() settles on: Pi 4 "SBGGR12_CSI2P", Pi 5 "BGGR_PISP_COMP1"),
#: ``preview_fails`` (start_preview raises, as with no DRM device or the display taken),
#: ``frame_interval_s`` (the fake sensor's frame time).
DEFAULTS = {"cameras": 1, "stalled": False, "raw_format": "SBGGR12_CSI2P",
            "preview_fails": False, "frame_interval_s": 0.01}

#: Controls the Raspberry Pi IPA advertises for a colour sensor without a lens motor.
ADVERTISED_CONTROLS = frozenset({
    "AeEnable", "ExposureTime", "AnalogueGain", "AeMeteringMode", "AeConstraintMode",
    "AeExposureMode", "ExposureValue", "AeFlickerMode", "AeFlickerPeriod", "Brightness",
    "Contrast", "Sharpness", "ScalerCrop", "FrameDurationLimits", "NoiseReductionMode",
    "StatsOutputEnable", "AwbEnable", "AwbMode", "ColourGains", "Saturation",
})
#: Frames between the IPA applying a request's exposure and gain and the sensor exposing
#: a frame with them (``CamHelperImx477::getDelays``: exposure and gain delay 2).
SENSOR_DELAY_FRAMES = 2
#: Lines a frame is longer than its exposure at the least (``frameIntegrationDiff``).
FRAME_INTEGRATION_DIFF_LINES = 22
#: How picamera2 names the modes' formats (the sensor is read out BGGR: it is mounted
#: upside down and libcamera flips it).
_MODE_FORMATS = {12: ("SBGGR12_CSI2P", "SBGGR12"), 10: ("SBGGR10_CSI2P", "SBGGR10")}


class Preview(enum.Enum):
    """picamera2's ``Preview`` enum."""

    NULL = 0
    DRM = 1
    QT = 2
    QTGL = 3


class FakeRequest:
    """A completed request holding one raw buffer; must be released."""

    def __init__(self, camera: Picamera2, buffer: np.ndarray, metadata: dict[str, Any]) -> None:
        self._camera = camera
        self._buffer = buffer
        self._metadata = metadata
        self.released = False

    def make_array(self, name: str) -> np.ndarray:
        assert not self.released, "request used after release()"
        assert name == "raw", f"only the raw stream is faked, not {name!r}"
        return self._buffer.copy()

    def get_metadata(self) -> dict[str, Any]:
        assert not self.released, "request used after release()"
        return dict(self._metadata)

    def release(self) -> None:
        if not self.released:
            self.released = True
            self._camera.outstanding -= 1


class Picamera2:
    """The subset of picamera2's ``Picamera2`` the backend uses."""

    module: types.ModuleType

    @classmethod
    def global_camera_info(cls) -> list[dict[str, Any]]:
        """One dict per attached camera (an empty list without one)."""
        return [{"Model": "imx477", "Location": 2, "Rotation": 180, "Num": num,
                 "Id": f"/base/soc/i2c0mux/i2c@{num}/imx477@1a"}
                for num in range(cls.module.settings["cameras"])]

    def __init__(self, camera_num: int = 0) -> None:
        camera_num = self.global_camera_info()[camera_num]["Num"]  # IndexError: no camera
        self.module.instances.append(self)
        size = self.module.sensor_size
        self.camera_properties = {"Model": "imx477", "PixelArraySize": size,
                                  "Location": 2, "Rotation": 180}
        self.camera_config: dict[str, Any] | None = None
        self.controls: dict[str, Any] = {"AeEnable": True, "AwbEnable": True}
        self.control_log: list[dict[str, Any]] = []
        self.started = False
        self.is_open = True
        self.outstanding = 0
        self.dropped = 0
        self.configure_count = 0
        self.preview: Preview | None = None
        self.preview_options: dict[str, Any] = {}
        self.overlays: list[np.ndarray] = []
        self.displayed = 0
        self.sensor_modes_: list[dict[str, Any]] = []
        self._modes = {_scaled(mode.size, size): mode for mode in IMX477_MODES}
        self._mode = IMX477_MODES[0]
        # (first sensor frame exposed with them, controls), in the order they were set.
        self._pending_controls: list[tuple[int, dict[str, Any]]] = []
        self._started_at = 0.0
        self._next_frame = 0
        width, height = size
        self._scene = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
        self._sim = Imx477Simulator(self._scene, seed=1)
        self._lock = threading.Lock()

    # ----------------------------------------------------------------- configuration
    @property
    def sensor_modes(self) -> list[dict[str, Any]]:
        """The sensor's modes; the first read configures the camera in each of them."""
        if self.sensor_modes_:
            return self.sensor_modes_
        modes = []
        for size, mode in self._modes.items():
            fmt, unpacked = _MODE_FORMATS[mode.bit_depth]
            self.configure(self.create_still_configuration(raw={"format": fmt, "size": size}))
            modes.append({
                "format": fmt, "unpacked": unpacked, "bit_depth": mode.bit_depth,
                "size": size, "fps": round(1e6 / mode.min_frame_duration_us, 2),
                "exposure_limits": (int(IMX477_MIN_EXPOSURE_LINES * mode.line_time_us),
                                    EXPOSURE_LIMITS_US[1], None),
            })
        self.sensor_modes_ = modes
        return modes

    def create_still_configuration(self, main=None, lores=None, raw=None, transform=None,
                                   colour_space=None, buffer_count=1, controls=None,
                                   display=None, encode=None, queue=True, sensor=None,
                                   use_case="still") -> dict[str, Any]:
        if not self.is_open:
            raise RuntimeError("Camera not opened")
        return {"use_case": use_case, "buffer_count": buffer_count, "queue": queue,
                "main": dict(main or {}), "lores": lores, "raw": dict(raw or {}),
                "controls": dict(controls or {}), "sensor": dict(sensor or {}),
                "display": display, "encode": encode}

    def configure(self, camera_config: dict[str, Any]) -> None:
        if self.started:
            raise RuntimeError("Camera must be stopped before configuring")
        config = {k: (dict(v) if isinstance(v, dict) else v) for k, v in camera_config.items()}
        raw = config["raw"]
        wanted = tuple(raw.get("size") or self.module.sensor_size)
        size = min(self._modes, key=lambda s: abs(s[0] - wanted[0]) + abs(s[1] - wanted[1]))
        self._mode = self._modes[size]
        is_csi2 = str(raw.get("format", "")).endswith("_CSI2P") or not raw.get("format")
        raw["format"] = self.module.settings["raw_format"] if is_csi2 else raw["format"]
        raw["size"] = size
        raw["stride"] = pack_raw(np.zeros((2, size[0]), np.uint16), raw["format"]).shape[1]
        self.camera_config = config
        self.configure_count += 1
        with self._lock:
            self._sim = Imx477Simulator(self._scene, seed=1, output_size=(size[1], size[0]),
                                        tuning=self._tuning())

    def _tuning(self) -> str:
        """The libcamera tuning this camera's frames follow: a Pi 5 (PiSP raw) has its own."""
        return "pisp" if self.module.settings["raw_format"].endswith("PISP_COMP1") else "vc4"

    def stream_configuration(self, name: str = "main") -> dict[str, Any]:
        assert self.camera_config is not None
        return self.camera_config[name]

    @property
    def camera_controls(self) -> dict[str, tuple[Any, Any, Any]]:
        """(min, max, default) of each advertised control (exposure limits of the mode)."""
        shortest = int(IMX477_MIN_EXPOSURE_LINES * self._mode.line_time_us)
        limits = {name: (None, None, None) for name in ADVERTISED_CONTROLS}
        limits["ExposureTime"] = (shortest, EXPOSURE_LIMITS_US[1], 20000)
        limits["AnalogueGain"] = (1.0, 22.26, 1.0)
        return limits

    # ----------------------------------------------------------------------- running
    def start(self, config=None, show_preview=False) -> None:
        assert self.camera_config is not None, "configure() first"
        if show_preview is not None and self.preview is None:
            self.start_preview(show_preview)
        with self._lock:
            self._started_at = time.monotonic()
            self._next_frame = 0
            for _, controls in self._pending_controls:  # a restart applies them all
                self.controls.update(controls)
            self._pending_controls = []
        self.started = True

    def stop(self) -> None:
        self.started = False

    def close(self) -> None:
        if self.preview is not None:
            self.stop_preview()
        self.stop()
        self.is_open = False

    def start_preview(self, preview=False, **kwargs: Any) -> None:
        if self.preview is not None:
            raise RuntimeError("An event loop is already running")
        if not preview:
            preview = Preview.NULL
        assert isinstance(preview, Preview), f"fake start_preview takes a Preview, not {preview!r}"
        if preview is not Preview.NULL and self.module.settings["preview_fails"]:
            raise RuntimeError("Failed to reserve DRM plane")
        self.preview, self.preview_options = preview, dict(kwargs)

    def stop_preview(self) -> None:
        if self.preview is None:
            raise RuntimeError("No preview specified.")
        self.preview, self.preview_options = None, {}

    def set_overlay(self, overlay) -> None:
        if overlay is not None and (overlay.ndim != 3 or overlay.shape[2] != 4):
            raise RuntimeError("Overlay must be a 4-channel image")
        if self.preview is None:
            raise AttributeError("'NoneType' object has no attribute 'set_overlay'")
        if self.preview is Preview.NULL:
            return  # the NULL preview ignores overlays
        if self.camera_config is None or self.camera_config["buffer_count"] < 2:
            raise RuntimeError("Need at least buffer_count=2 to set overlay")
        with self._lock:
            self.overlays.append(None if overlay is None else np.array(overlay, copy=True))

    def set_scene(self, scene_srgb: np.ndarray) -> None:
        """What the sensor sees from the next frame on ((H, W, 3) sRGB)."""
        height, width = self._sim.output_size
        sim = Imx477Simulator(scene_srgb, seed=1, output_size=(height, width),
                              tuning=self._tuning())
        with self._lock:
            self._scene, self._sim = scene_srgb, sim

    def set_controls(self, controls: dict[str, Any]) -> None:
        unknown = [name for name in controls if name not in ADVERTISED_CONTROLS]
        if unknown:
            raise RuntimeError(f"Control {unknown[0]} is not advertised by libcamera")
        self.control_log.append(dict(controls))
        buffers = self.camera_config["buffer_count"] if self.camera_config else 1
        with self._lock:
            if not self.started:  # they go with start()
                self.controls.update(controls)
                return
            # The next request given back carries them, behind the buffers - 1 queued.
            applied_at = self._frame_completing(time.monotonic()) + buffers - 1
            self._pending_controls.append((applied_at + SENSOR_DELAY_FRAMES, dict(controls)))

    def _frame_interval_s(self) -> float:
        return float(self.module.settings["frame_interval_s"])

    def _frame_completing(self, now: float) -> int:
        """Index of the next sensor frame to complete after ``now``."""
        return max(0, int((now - self._started_at) / self._frame_interval_s()))

    def _readout_start(self, frame: int) -> float:
        """When sensor frame ``frame``'s readout starts (its exposure ends), monotonic s."""
        return self._started_at + frame * self._frame_interval_s()

    def _controls_at(self, frame: int, delay: int = 0) -> dict[str, Any]:
        controls = dict(self.controls)
        for first, change in self._pending_controls:
            if first - delay <= frame:
                controls.update(change)
        return controls

    def capture_request(self, wait=None, signal_function=None, flush=None) -> FakeRequest:
        if not self.started:
            raise RuntimeError("camera not started")
        if self.module.settings["stalled"]:
            time.sleep(min(float(wait or 0.1), 0.2))
            raise TimeoutError("fake picamera2: no frame")
        interval = self._frame_interval_s()
        config = self.camera_config
        assert config is not None
        keeps_one = config["queue"] and config["buffer_count"] > 1
        with self._lock:
            now = time.monotonic()
            completing = self._frame_completing(now)
            # Frame k is delivered one frame time after its readout starts. Completed
            # frames nobody waited for were given back (queue=False) or all but the last.
            frame = max(self._next_frame, completing - 1 if keeps_one else completing)
            if flush is not None:
                flush_s = (time.monotonic_ns() if flush is True else int(flush)) / 1e9
                while self._readout_start(frame) - interval < flush_s:
                    frame += 1
            self.dropped += frame - self._next_frame
            if self.preview not in (None, Preview.NULL) and config["display"]:
                self.displayed += frame - self._next_frame + 1
            self._next_frame = frame + 1
            controls = self._controls_at(frame)
            request_controls = self._controls_at(frame, delay=SENSOR_DELAY_FRAMES)
            self.controls = controls  # frames only go forward: fold what took effect
            self._pending_controls = [(f, c) for f, c in self._pending_controls if f > frame]
            sim = self._sim
        buffer, metadata = self._expose(sim, controls)  # rendering overlaps the wait
        delivered_at = self._readout_start(frame) + interval
        time.sleep(max(0.0, delivered_at - time.monotonic()))
        metadata["AeEnable"] = bool(request_controls.get("AeEnable", True))
        metadata["SensorTimestamp"] = int(self._readout_start(frame) * 1e9)
        self.outstanding += 1
        return FakeRequest(self, buffer, metadata)

    def _expose(self, sim: Imx477Simulator, controls: dict[str, Any]) -> tuple[np.ndarray, dict]:
        """One frame at ``controls`` (AE: white at clipping), as the request hands it over."""
        mode = self._mode
        if controls.get("AeEnable", True):
            exposure, gain = sim.exposure_time_us_for(1.0), 1.0
        else:
            exposure, gain = float(controls["ExposureTime"]), float(controls["AnalogueGain"])
        exposure_us, gain = imx477_applied_exposure(exposure, gain, mode.line_time_us)
        rendered = SensorSettings(float(np.clip(exposure_us, *EXPOSURE_LIMITS_US)), min(gain, 16.0))
        buffer, metadata = sim.capture_picamera2(rendered, "SBGGR12_CSI2P")
        raw = self.camera_config["raw"]  # type: ignore[index]
        fmt = raw["format"]
        if fmt != "SBGGR12_CSI2P":
            mosaic = unpack_raw(buffer, "SBGGR12_CSI2P", *raw["size"])
            buffer = pack_raw(mosaic << 4 if fmt.endswith("PISP_COMP1") else mosaic, fmt)
        lines = math.ceil(exposure_us / mode.line_time_us) + FRAME_INTEGRATION_DIFF_LINES
        metadata.update(
            ExposureTime=exposure_us, AnalogueGain=gain,
            FrameDuration=int(max(mode.min_frame_duration_us, lines * mode.line_time_us)),
        )
        return buffer, metadata

    @contextlib.contextmanager
    def captured_request(self, wait=None, flush=None):
        request = self.capture_request(wait=wait, flush=flush)
        try:
            yield request
        finally:
            request.release()


def _scaled(size: tuple[int, int], sensor_size: tuple[int, int]) -> tuple[int, int]:
    """A mode's ``size`` on a sensor of ``sensor_size`` (even sizes)."""
    full_w, full_h = IMX477_PIXEL_ARRAY_SIZE
    return (2 * round(size[0] * sensor_size[0] / full_w / 2),
            2 * round(size[1] * sensor_size[1] / full_h / 2))


def make_module(sensor_size: tuple[int, int] = (192, 128), **settings: Any) -> types.ModuleType:
    """A fresh fake ``picamera2`` module (its own settings and instance list)."""
    module = types.ModuleType("picamera2")
    module.settings = {**DEFAULTS, **settings}  # type: ignore[attr-defined]
    module.instances = []  # type: ignore[attr-defined]
    module.sensor_size = sensor_size  # type: ignore[attr-defined]
    module.Preview = Preview  # type: ignore[attr-defined]
    module.Picamera2 = type("Picamera2", (Picamera2,), {"module": module})  # type: ignore[attr-defined]
    return module
