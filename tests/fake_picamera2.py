"""A fake ``picamera2`` module following the real API names (picamera2 ``picamera2.py``,
``request.py``, ``previews/drm_preview.py``), backed by the IMX477 simulator.

Only what :mod:`hardware.picamera2_camera` touches: ``Picamera2(camera_num)``,
``sensor_modes``, ``camera_properties``, ``create_still_configuration``, ``configure``,
``stream_configuration``, ``start``, ``capture_request(wait=, flush=)``,
``captured_request``, ``set_controls``, ``stop``, ``close``; a request's
``make_array("raw")``, ``get_metadata()`` and ``release()``. Controls take effect two
frames after ``set_controls``, as libcamera's do.

Previews as picamera2 runs them: ``Preview`` (NULL, DRM, QT, QTGL), ``start_preview`` (an
error once an event loop runs: ``start()`` starts a NULL preview when none is running),
``stop_preview``, ``set_overlay`` (a 4-channel array or None; a DRM preview needs
``buffer_count >= 2``). The fake records ``preview`` (the running kind), ``preview_options``
(x, y, width, height), ``overlays`` (copies of those set on a visible preview) and
``displayed`` (frames a visible preview showed: only with a ``display`` stream).
``set_scene`` changes what the sensor sees from the next frame on.
"""

from __future__ import annotations

import contextlib
import enum
import threading
import time
import types
from typing import Any

import numpy as np

from hardware.imx477_simulator import Imx477Simulator, SensorSettings
from pipeline.raw_packing import pack_raw

#: Switches tests flip on the module: ``cameras`` (0 = none attached), ``stalled``,
#: ``raw_format`` (what configure() settles on: Pi 4 "SBGGR12_CSI2P", Pi 5 "BGGR_PISP_COMP1"),
#: ``preview_fails`` (start_preview raises, as with no DRM device or the display taken).
DEFAULTS = {"cameras": 1, "stalled": False, "raw_format": "SBGGR12_CSI2P", "preview_fails": False}


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

    def __init__(self, camera_num: int = 0) -> None:
        settings = self.module.settings
        if camera_num >= settings["cameras"]:
            raise RuntimeError("Camera __init__ sequence did not complete.")
        self.module.instances.append(self)
        self.camera_properties = {"Model": "imx477", "PixelArraySize": (4056, 3040)}
        size = self.module.sensor_size
        self.sensor_modes = [
            {"format": "SBGGR10_CSI2P", "unpacked": "SBGGR10", "bit_depth": 10,
             "size": (size[0] // 2, size[1] // 2), "fps": 120.0},
            {"format": "SBGGR12_CSI2P", "unpacked": "SBGGR12", "bit_depth": 12,
             "size": size, "fps": 10.0},
        ]
        self.camera_config: dict[str, Any] | None = None
        self.controls: dict[str, Any] = {"AeEnable": True, "AwbEnable": True}
        self.control_log: list[dict[str, Any]] = []
        self.started = False
        self.is_open = True
        self.outstanding = 0
        self.preview: Preview | None = None
        self.preview_options: dict[str, Any] = {}
        self.overlays: list[np.ndarray] = []
        self.displayed = 0
        self._pending_controls: list[tuple[int, dict[str, Any]]] = []
        self._frame = 0
        width, height = size
        scene = np.random.default_rng(0).integers(0, 256, size=(height, width, 3), dtype=np.uint8)
        self._sim = Imx477Simulator(scene, seed=1)
        self._lock = threading.Lock()

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
        raw["format"] = self.module.settings["raw_format"]
        width, height = raw["size"]
        raw["stride"] = pack_raw(np.zeros((2, width), np.uint16), raw["format"]).shape[1]
        self.camera_config = config

    def stream_configuration(self, name: str = "main") -> dict[str, Any]:
        assert self.camera_config is not None
        return self.camera_config[name]

    def start(self, config=None, show_preview=False) -> None:
        assert self.camera_config is not None, "configure() first"
        if show_preview is not None and self.preview is None:
            self.start_preview(show_preview)
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
        """What the sensor sees from the next frame on ((H, W, 3) sRGB, the sensor's size)."""
        sim = Imx477Simulator(scene_srgb, seed=1)
        with self._lock:
            self._sim = sim

    def set_controls(self, controls: dict[str, Any]) -> None:
        self.control_log.append(dict(controls))
        with self._lock:
            self._pending_controls.append((self._frame + 2, dict(controls)))

    def capture_request(self, wait=None, signal_function=None, flush=None) -> FakeRequest:
        if not self.started:
            raise RuntimeError("camera not started")
        if self.module.settings["stalled"]:
            time.sleep(min(float(wait or 0.1), 0.2))
            raise TimeoutError("fake picamera2: no frame")
        time.sleep(0.01)
        with self._lock:
            self._frame += 1
            due = [c for f, c in self._pending_controls if f <= self._frame]
            self._pending_controls = [(f, c) for f, c in self._pending_controls if f > self._frame]
            sim = self._sim
            if self.preview not in (None, Preview.NULL) and self.camera_config["display"]:
                self.displayed += 1
        for controls in due:
            self.controls.update(controls)
        if self.controls.get("AeEnable", True):
            exposure, gain = sim.exposure_time_us_for(1.0), 1.0
        else:
            exposure = float(self.controls["ExposureTime"])
            gain = float(self.controls["AnalogueGain"])
        raw = self.camera_config["raw"]  # type: ignore[index]
        fmt = raw["format"]
        packed_as = fmt if fmt.endswith("PISP_COMP1") else "SBGGR12_CSI2P"
        buffer, metadata = sim.capture_picamera2(
            SensorSettings(exposure, gain), "SBGGR12_CSI2P"
        )
        if packed_as != "SBGGR12_CSI2P":
            from pipeline.raw_packing import unpack_raw

            mosaic = unpack_raw(buffer, "SBGGR12_CSI2P", *raw["size"])
            buffer = pack_raw(mosaic << 4, fmt)
        metadata["SensorTimestamp"] = time.monotonic_ns()
        self.outstanding += 1
        return FakeRequest(self, buffer, metadata)

    @contextlib.contextmanager
    def captured_request(self, wait=None, flush=None):
        request = self.capture_request(wait=wait, flush=flush)
        try:
            yield request
        finally:
            request.release()


def make_module(sensor_size: tuple[int, int] = (192, 128), **settings: Any) -> types.ModuleType:
    """A fresh fake ``picamera2`` module (its own settings and instance list)."""
    module = types.ModuleType("picamera2")
    module.settings = {**DEFAULTS, **settings}  # type: ignore[attr-defined]
    module.instances = []  # type: ignore[attr-defined]
    module.sensor_size = sensor_size  # type: ignore[attr-defined]
    module.Preview = Preview  # type: ignore[attr-defined]
    module.Picamera2 = type("Picamera2", (Picamera2,), {"module": module})  # type: ignore[attr-defined]
    return module
