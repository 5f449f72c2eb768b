"""A fake ``picamera2`` module following the real API names (picamera2 ``picamera2.py``,
``request.py``), backed by the IMX477 simulator.

Only what :mod:`hardware.picamera2_camera` touches: ``Picamera2(camera_num)``,
``sensor_modes``, ``camera_properties``, ``create_still_configuration``, ``configure``,
``stream_configuration``, ``start``, ``capture_request(wait=, flush=)``,
``captured_request``, ``set_controls``, ``stop``, ``close``; a request's
``make_array("raw")``, ``get_metadata()`` and ``release()``. Controls take effect two
frames after ``set_controls``, as libcamera's do.
"""

from __future__ import annotations

import contextlib
import threading
import time
import types
from typing import Any

import numpy as np

from hardware.imx477_simulator import Imx477Simulator, SensorSettings
from pipeline.raw_packing import pack_raw

#: Switches tests flip on the module: ``cameras`` (0 = none attached), ``stalled``,
#: ``raw_format`` (what configure() settles on: Pi 4 "SBGGR12_CSI2P", Pi 5 "BGGR_PISP_COMP1").
DEFAULTS = {"cameras": 1, "stalled": False, "raw_format": "SBGGR12_CSI2P"}


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
                "controls": dict(controls or {}), "sensor": dict(sensor or {})}

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

    def start(self) -> None:
        assert self.camera_config is not None, "configure() first"
        self.started = True

    def stop(self) -> None:
        self.started = False

    def close(self) -> None:
        self.stop()
        self.is_open = False

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
        for controls in due:
            self.controls.update(controls)
        if self.controls.get("AeEnable", True):
            exposure, gain = self._sim.exposure_time_us_for(1.0), 1.0
        else:
            exposure = float(self.controls["ExposureTime"])
            gain = float(self.controls["AnalogueGain"])
        raw = self.camera_config["raw"]  # type: ignore[index]
        fmt = raw["format"]
        packed_as = fmt if fmt.endswith("PISP_COMP1") else "SBGGR12_CSI2P"
        buffer, metadata = self._sim.capture_picamera2(
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
    module.Picamera2 = type("Picamera2", (Picamera2,), {"module": module})  # type: ignore[attr-defined]
    return module
