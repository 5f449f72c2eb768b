"""The HQ Camera through picamera2: the only module that imports picamera2 (lazily).

The camera streams a full-resolution, 12-bit raw still configuration (4056x3040 on the
IMX477) with a small main stream the ISP must produce anyway. Each request is taken with
``captured_request`` in our own streaming thread (never in picamera2's event loop), its raw
buffer copied out with ``make_array("raw")`` and the request released at once; the packed
copy waits in the ring buffer and is unpacked
(:func:`pipeline.formats.picamera2_raw.unpack_raw`: CSI-2 packed on a Pi 4, ``PISP_COMP1``
on a Pi 5) only when a shot takes it.

With a display attached (``display.preview``, :mod:`hardware.display`), the main stream is
also the display stream and picamera2 shows it in a preview started before the camera:
``Preview.DRM`` straight on the display (Raspberry Pi OS Lite; a desktop holds the display
itself), ``Preview.QTGL`` when the daemon runs inside a desktop session (``DISPLAY``).
:meth:`Picamera2Camera.show_overlay` lays an RGBA image over it (focus peaking); picamera2
scales it to the preview window.

picamera2 names used (picamera2 ``picamera2.py``, ``request.py``, ``previews/drm_preview.py``):
``Picamera2(camera_num)``, ``sensor_modes``, ``camera_properties``,
``create_still_configuration(main=, raw=, buffer_count=, queue=, sensor=, display=)``,
``configure``, ``stream_configuration("raw")``, ``start``, ``captured_request(wait=)``,
``request.make_array("raw")``, ``request.get_metadata()``, ``set_controls``, ``stop``,
``close``; ``Preview.DRM``/``Preview.QTGL``, ``start_preview(preview, x=, y=, width=,
height=)``, ``set_overlay``, ``stop_preview``.

On the HQ camera a manual exposure is matched against what libcamera applies for it: the
time truncated to whole lines of the configured mode, the gain to its gain code
(:func:`hardware.picamera2_metadata.imx477_applied_exposure`). Whether a frame was
auto-exposed is told from its ``ExposureTime`` and ``AnalogueGain`` by the base class, not
from its ``AeEnable``, which is the request's control and runs ahead of the exposure.
"""

from __future__ import annotations

import importlib
import logging
import os
import threading
import time
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

import numpy.typing as npt

from hardware.camera import (
    CameraError,
    CameraMetering,
    CameraMissingError,
    CameraSource,
    CameraTimeoutError,
    EXPOSURE_TOLERANCE,
    ExposureSettings,
    FrameRecord,
)
from hardware.display import (
    DRM_ROOT,
    PREVIEW_SETTINGS,
    Display,
    PreviewSetting,
    preview_display,
)
from hardware.picamera2_metadata import (
    IMX477_PIXEL_ARRAY_SIZE,
    SensorMode,
    camera_metadata_from_picamera2,
    imx477_applied_exposure,
    imx477_mode,
)
from pipeline.errors import InvalidParameterError
from pipeline.formats.picamera2_raw import bit_depth_of, cfa_pattern_of, unpack_raw
from pipeline.raw_frame import RawFrame

logger = logging.getLogger(__name__)

#: Bit depth of the raw stream we ask for (the IMX477's full-resolution mode).
RAW_BIT_DEPTH = 12
#: Buffers picamera2 allocates: enough to keep streaming while we copy one out. Frames
#: of a burst live in our ring buffer as copies, not in these DMA buffers.
BUFFER_COUNT = 4
#: The main (processed) stream picamera2 always configures; kept small.
MAIN_STREAM = {"format": "YUV420", "size": (1012, 760)}


def import_picamera2() -> ModuleType:
    """The ``picamera2`` module, or :class:`CameraMissingError` saying how to get it."""
    try:
        return importlib.import_module("picamera2")
    except ImportError as exc:
        raise CameraMissingError(
            f"picamera2 is not installed ({exc}): on Raspberry Pi OS run "
            "`sudo apt install python3-picamera2` and make the venv with "
            "--system-site-packages (setup.sh does), or set camera.source = \"simulator\""
        ) from None


#: The sensor mode asked for: the full one, or the 2x2-binned one of half the size.
Resolution = Literal["full", "binned"]


def choose_raw_mode(sensor_modes: list[dict[str, Any]], bit_depth: int = RAW_BIT_DEPTH,
                    resolution: Resolution = "full") -> dict[str, Any]:
    """The largest sensor mode of ``bit_depth`` bits (any depth if there is none); with
    ``resolution="binned"``, the largest of those at most half the full mode's width and
    height (the IMX477's 2028x1520 2x2-binned mode, whole field of view)."""
    modes = [m for m in sensor_modes if "size" in m]
    if not modes:
        raise CameraError(f"the camera lists no raw sensor modes: {sensor_modes!r}")
    deep = [m for m in modes if int(m.get("bit_depth", 0)) == bit_depth] or modes

    def largest(candidates: list[dict[str, Any]]) -> dict[str, Any]:
        return max(candidates, key=lambda m: (m["size"][0] * m["size"][1],
                                              int(m.get("bit_depth", 0))))

    full = largest(deep)
    if resolution == "full":
        return full
    half = [m for m in deep if 2 * m["size"][0] <= full["size"][0] + 8
            and 2 * m["size"][1] <= full["size"][1] + 8]
    return largest(half) if half else full


class Picamera2Camera(CameraSource):
    """A Raspberry Pi camera (HQ Camera / IMX477) streaming raw frames through picamera2.

    Parameters
    ----------
    camera_num : int
        libcamera camera index.
    picamera2_module : module, optional
        The ``picamera2`` module to use; imported on :meth:`start` when not given (tests
        pass a fake that follows picamera2's API).
    buffer_count : int
        picamera2 buffers (a preview overlay needs at least 2).
    resolution : {"full", "binned"}
        The sensor mode: the largest 12-bit one, or the 2x2-binned one (see
        :func:`choose_raw_mode`).
    preview : {"off", "on", "auto"}
        Show the stream on a display: never, always, or when one is connected
        (:func:`hardware.display.preview_display`, looked up each time the camera opens).
    drm_root : Path
        Where the kernel lists display connectors (tests pass a fake tree).
    ring_frames, frame_timeout_s :
        See :class:`hardware.camera.CameraSource`.
    """

    name = "picamera2"

    def __init__(
        self,
        *,
        camera_num: int = 0,
        picamera2_module: ModuleType | Any | None = None,
        buffer_count: int = BUFFER_COUNT,
        resolution: Resolution = "full",
        preview: PreviewSetting = "off",
        drm_root: Path = DRM_ROOT,
        ring_frames: int = 8,
        frame_timeout_s: float = 2.0,
    ) -> None:
        super().__init__(ring_frames=ring_frames, frame_timeout_s=frame_timeout_s)
        if preview not in PREVIEW_SETTINGS:
            raise InvalidParameterError(
                f"preview={preview!r}: expected one of {', '.join(PREVIEW_SETTINGS)}"
            )
        self._camera_num = camera_num
        self._module = picamera2_module
        self._buffer_count = buffer_count
        self._preview_setting = preview
        if resolution not in ("full", "binned"):
            raise InvalidParameterError(f"resolution={resolution!r}: expected full or binned")
        self._resolution = resolution
        self._drm_root = Path(drm_root)
        self._is_previewing = False
        self._picam2: Any = None
        self._raw_format = ""
        self._raw_size = (0, 0)
        self._raw_stride = 0
        self._model = "imx477"
        self._sensor_mode: SensorMode | None = None
        self._controls_lock = threading.Lock()

    @property
    def raw_format(self) -> str:
        """The raw stream's picamera2 format, e.g. ``'SBGGR12_CSI2P'``."""
        return self._raw_format

    # ------------------------------------------------------------------ device calls
    def _open_device(self) -> None:
        module = self._module if self._module is not None else import_picamera2()
        try:
            picam2 = module.Picamera2(self._camera_num)
        except (RuntimeError, IndexError) as exc:
            raise CameraMissingError(f"picamera2: no camera {self._camera_num}: {exc}") from None
        display = preview_display(self._preview_setting, self._drm_root)
        try:
            mode = choose_raw_mode(list(picam2.sensor_modes), resolution=self._resolution)
            size = tuple(int(v) for v in mode["size"])
            raw = {"format": str(mode["format"]), "size": size}
            config = picam2.create_still_configuration(
                main=dict(MAIN_STREAM),
                raw=raw,
                buffer_count=self._buffer_count,
                queue=False,
                sensor={"output_size": size, "bit_depth": int(mode.get("bit_depth", RAW_BIT_DEPTH))},
                display="main" if display is not None else None,
            )
            picam2.configure(config)
            stream = picam2.stream_configuration("raw")
            self._raw_format = str(stream["format"])
            self._raw_size = (int(stream["size"][0]), int(stream["size"][1]))
            self._raw_stride = int(stream["stride"])
            self._model = str(picam2.camera_properties.get("Model", "imx477"))
            self._sensor_mode = _imx477_mode_of(self._model, mode, picam2.camera_properties)
            picam2.set_controls({"AeEnable": True, "AwbEnable": True})
            # The preview runs picamera2's event loop, so it must start before the camera
            # (which otherwise starts a preview that shows nothing).
            self._is_previewing = display is not None and _start_preview(picam2, module, display)
            picam2.start()
        except Exception as exc:
            _close_quietly(picam2)
            if isinstance(exc, CameraError):
                raise
            raise CameraError(f"picamera2: could not start the camera: {exc}") from exc
        self._picam2 = picam2
        logger.info(
            "picamera2: %s streaming %s %dx%d (stride %d)",
            self._model, self._raw_format, *self._raw_size, self._raw_stride,
        )

    def _close_device(self) -> None:
        picam2, self._picam2 = self._picam2, None
        previewing, self._is_previewing = self._is_previewing, False
        if picam2 is not None:
            _close_quietly(picam2, ("stop_preview",) if previewing else ())

    @property
    def preview_active(self) -> bool:
        """True while picamera2 shows the stream on a display."""
        return self._is_previewing and self._picam2 is not None

    def show_overlay(self, rgba: npt.NDArray[Any] | None) -> None:
        """picamera2's ``set_overlay``: ``rgba`` ((h, w, 4) uint8) over the preview, scaled
        to it; None removes it. Call from any thread but picamera2's own."""
        picam2 = self._picam2
        if picam2 is None or not self._is_previewing:
            return
        try:
            picam2.set_overlay(rgba)
        except Exception as exc:
            raise CameraError(f"picamera2: could not set the preview overlay: {exc}") from exc

    def _read_frame(self, timeout_s: float) -> FrameRecord:
        picam2 = self._picam2
        if picam2 is None:
            raise CameraError("picamera2: camera not open")
        try:
            with picam2.captured_request(wait=timeout_s) as request:
                buffer = request.make_array("raw")  # a copy: the DMA buffer goes back now
                metadata = dict(request.get_metadata())
        except TimeoutError:
            raise CameraTimeoutError(f"picamera2: no frame within {timeout_s} s") from None
        except CameraError:
            raise
        except Exception as exc:
            raise CameraError(f"picamera2: capture failed: {exc}") from exc
        exposure_ns = int(float(metadata.get("ExposureTime", 0)) * 1000)
        # libcamera's SensorTimestamp is the start of the frame's readout on the monotonic
        # clock (picamera2 compares it with time.monotonic_ns()).
        end_ns = int(metadata.get("SensorTimestamp", time.monotonic_ns()))
        return FrameRecord(buffer, metadata, end_ns - exposure_ns, end_ns)

    def _decode(self, record: FrameRecord) -> RawFrame:
        width, height = self._raw_size
        mosaic = unpack_raw(record.payload, self._raw_format, width, height, self._raw_stride)
        metadata = camera_metadata_from_picamera2(
            record.metadata,
            cfa_pattern_of(self._raw_format),
            bit_depth_of(self._raw_format),
            self._model,
        )
        return RawFrame(mosaic, metadata)

    def _shape_of(self, record: FrameRecord) -> tuple[int, int]:
        width, height = self._raw_size
        return (height, width)

    def _set_exposure(self, settings: ExposureSettings | None, metering: CameraMetering | None) -> None:
        picam2 = self._picam2
        if picam2 is None:
            raise CameraError("picamera2: camera not open")
        with self._controls_lock:
            if settings is None:
                picam2.set_controls({"AeEnable": True, "AwbEnable": True})
                return
            controls: dict[str, Any] = {
                "AeEnable": False,
                "ExposureTime": int(round(settings.exposure_time_us)),
                "AnalogueGain": float(settings.analogue_gain),
            }
            if metering is not None and metering.colour_gains is not None:
                controls.update(AwbEnable=False, ColourGains=metering.colour_gains)
            picam2.set_controls(controls)

    def _applied(self, settings: ExposureSettings) -> ExposureSettings:
        """On the IMX477: the exposure in whole lines of the mode, the gain at its code."""
        if self._sensor_mode is None:
            return settings
        exposure_us, gain = imx477_applied_exposure(
            int(round(settings.exposure_time_us)), settings.analogue_gain,
            self._sensor_mode.line_time_us,
        )
        return ExposureSettings(float(exposure_us), gain)


def _imx477_mode_of(model: str, mode: dict[str, Any], properties: dict[str, Any]) -> SensorMode | None:
    """The IMX477 readout mode of picamera2's sensor ``mode`` (None for another sensor, whose
    exposure steps we do not know: its manual exposures are matched as asked)."""
    if not model.startswith("imx477"):
        logger.warning("picamera2: %s is not an IMX477: manual exposures are matched as asked "
                       "(within %.0f %%), not line by line", model, 100 * EXPOSURE_TOLERANCE)
        return None
    array = tuple(properties.get("PixelArraySize", IMX477_PIXEL_ARRAY_SIZE))
    size = (int(mode["size"][0]), int(mode["size"][1]))
    return imx477_mode(size, int(mode.get("bit_depth", RAW_BIT_DEPTH)), array)  # type: ignore[arg-type]


def _start_preview(picam2: Any, module: Any, display: Display) -> bool:
    """Start picamera2's preview on ``display``; False (logged) where it cannot start."""
    kind = "QTGL" if os.environ.get("DISPLAY", "").startswith(":") else "DRM"
    window = {} if display.size is None else {
        "x": 0, "y": 0, "width": display.size[0], "height": display.size[1]}
    try:
        picam2.start_preview(getattr(module.Preview, kind), **window)
    except Exception as exc:  # noqa: BLE001 - the camera works without a preview
        logger.warning("picamera2: no %s preview on %s: %s", kind, display.connector, exc)
        return False
    logger.info("picamera2: %s preview on %s%s", kind, display.connector,
                "" if display.size is None else " (%dx%d)" % display.size)
    return True


def _close_quietly(picam2: Any, first: tuple[str, ...] = ()) -> None:
    for method in (*first, "stop", "close"):
        try:
            getattr(picam2, method)()
        except Exception:  # noqa: BLE001 - best effort on the way out
            logger.debug("picamera2 %s() failed", method, exc_info=True)
