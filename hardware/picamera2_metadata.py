"""picamera2 capture metadata -> :class:`CameraMetadata`, the way rpicam-apps writes a DNG.

Pure logic (no picamera2 import), shared by the real picamera2 backend and the IMX477
simulator. It follows ``dng_save()`` in rpicam-apps ``image/dng.cpp`` (Raspberry Pi,
BSD-2-Clause, https://github.com/raspberrypi/rpicam-apps):

- black levels come from ``SensorBlackLevels`` (16-bit units, in R, Gr, Gb, B order) scaled
  to the raw bit depth; the white level is ``2**bit_depth - 1``;
- ``AsShotNeutral = (1/red_gain, 1, 1/blue_gain)`` from ``ColourGains``;
- ``ColorMatrix1 = inv(RGB2XYZ @ CCM @ diag(red_gain, 1, blue_gain))`` for D65
  (``CalibrationIlluminant1`` = 21), where ``CCM`` is ``ColourCorrectionMatrix`` and
  ``RGB2XYZ`` is Lindbloom's sRGB (D65) matrix;
- ISO is ``100 * AnalogueGain`` truncated to an integer; the exposure time comes from
  ``ExposureTime`` (microseconds).

Missing keys fall back to rpicam-apps' own defaults, with a warning.

It also says what the metadata of an IMX477 frame can hold for a requested exposure
(:func:`imx477_applied_exposure`), from Raspberry Pi's libcamera IPA and kernel driver:

- the pixel rate is 840 MHz in every mode and a line is ``line_length_pix`` pixels long
  (24000 at 4056x3040: 28.57 us), ``IMX477_PIXEL_RATE`` and ``supported_modes_*`` in
  ``drivers/media/i2c/imx477.c`` (https://github.com/raspberrypi/linux);
- ``CamHelper::exposureLines`` truncates an exposure to whole lines (at least
  ``IMX477_EXPOSURE_MIN`` = 4) and the IPA reports it back, as an integer number of
  microseconds, in ``ExposureTime`` (``IpaBase::reportMetadata``);
- ``CamHelperImx477::gainCode`` is ``int(1024 - 1024 / gain)`` and the gain applied,
  and reported in ``AnalogueGain``, is ``1024 / (1024 - code)``
  (``src/ipa/rpi/cam_helper/cam_helper{,_imx477}.cpp``, https://github.com/raspberrypi/libcamera).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from pipeline.cfa import CfaPattern
from pipeline.errors import InvalidParameterError
from pipeline.raw_frame import CameraMetadata, Matrix3x3

logger = logging.getLogger(__name__)

#: Linear sRGB -> XYZ (D65) as used by rpicam-apps, from B. Lindbloom,
#: http://www.brucelindbloom.com/index.html?Eqn_RGB_XYZ_Matrix.html.
RGB_TO_XYZ_LINDBLOOM = np.array(
    [
        [0.4124564, 0.3575761, 0.1804375],
        [0.2126729, 0.7151522, 0.0721750],
        [0.0193339, 0.1191920, 0.9503041],
    ]
)

#: rpicam-apps' fallback CCM when the metadata carries none.
DEFAULT_CCM: Matrix3x3 = (
    1.90255, -0.77478, -0.12777,
    -0.31338, 1.88197, -0.56858,
    -0.06001, -0.61785, 1.67786,
)  # fmt: skip

#: Black level rpicam-apps assumes without ``SensorBlackLevels``, in 16-bit units.
DEFAULT_BLACK_LEVEL_16BIT = 4096
#: Exposure time rpicam-apps assumes without ``ExposureTime``, in microseconds.
DEFAULT_EXPOSURE_TIME_US = 10000.0
#: EXIF LightSource code of D65, the illuminant rpicam-apps declares for ColorMatrix1.
D65_LIGHT_SOURCE = 21

#: The IMX477's pixel rate in every mode, Hz (``IMX477_PIXEL_RATE``).
IMX477_PIXEL_RATE_HZ = 840_000_000
#: Size of the IMX477's active pixel array (libcamera's ``PixelArraySize``).
IMX477_PIXEL_ARRAY_SIZE = (4056, 3040)
#: Shortest exposure the IMX477 takes, in lines (``IMX477_EXPOSURE_MIN``).
IMX477_MIN_EXPOSURE_LINES = 4
#: Largest analogue gain code (``IMX477_ANA_GAIN_MAX``): gain 1024 / (1024 - 978) = 22.3.
IMX477_MAX_GAIN_CODE = 978


@dataclass(frozen=True)
class SensorMode:
    """One readout mode of a sensor, as its kernel driver defines it.

    Attributes
    ----------
    size : (int, int)
        (width, height) of the mode's output.
    bit_depth : int
    line_length_px : int
        Pixels a line takes at the pixel rate (active pixels plus horizontal blanking).
    min_frame_duration_us : int
        Shortest frame time (the mode's highest frame rate).
    """

    size: tuple[int, int]
    bit_depth: int
    line_length_px: int
    min_frame_duration_us: int

    @property
    def line_time_us(self) -> float:
        """Time one line takes, microseconds: the step of the exposure time."""
        return 1e6 * self.line_length_px / IMX477_PIXEL_RATE_HZ


#: The four modes of ``drivers/media/i2c/imx477.c``: full resolution (10 fps), 2x2
#: binned (40 fps), 2x2 binned and cropped to 1080 lines (50 fps), and the 10-bit 2x2
#: binned, cropped 1332x990 mode (120 fps).
IMX477_MODES: tuple[SensorMode, ...] = (
    SensorMode((4056, 3040), 12, 0x5DC0, 100_000),
    SensorMode((2028, 1520), 12, 0x31C4, 25_000),
    SensorMode((2028, 1080), 12, 0x31C4, 20_000),
    SensorMode((1332, 990), 10, 6664, 8_333),
)


def imx477_mode(
    size: tuple[int, int], bit_depth: int,
    pixel_array_size: tuple[int, int] = IMX477_PIXEL_ARRAY_SIZE,
) -> SensorMode:
    """The IMX477 mode of ``bit_depth`` bits nearest ``size`` (both relative to the pixel
    array, so a scaled-down stand-in of the sensor finds its modes too).

    Raises
    ------
    InvalidParameterError
        No mode has ``bit_depth`` bits.
    """
    modes = [m for m in IMX477_MODES if m.bit_depth == bit_depth]
    if not modes:
        raise InvalidParameterError(f"bit_depth={bit_depth}: the IMX477 has 10 and 12-bit modes")
    full_w, full_h = IMX477_PIXEL_ARRAY_SIZE
    rel_w, rel_h = size[0] / pixel_array_size[0], size[1] / pixel_array_size[1]
    return min(modes, key=lambda m: abs(m.size[0] / full_w - rel_w) + abs(m.size[1] / full_h - rel_h))


def imx477_applied_exposure(
    exposure_time_us: float, analogue_gain: float, line_time_us: float
) -> tuple[int, float]:
    """``ExposureTime`` (integer us) and ``AnalogueGain`` libcamera reports for an IMX477
    frame taken at ``exposure_time_us`` and ``analogue_gain``: the exposure truncated to
    whole lines of ``line_time_us``, the gain to the gain code below it.

    >>> imx477_applied_exposure(250, 1.5, 1e6 * 24000 / 840e6)   # full resolution
    (228, 1.499267935578331)
    """
    lines = max(IMX477_MIN_EXPOSURE_LINES, int(exposure_time_us / line_time_us))
    code = min(IMX477_MAX_GAIN_CODE, max(0, int(1024 - 1024 / analogue_gain)))
    return int(lines * line_time_us), 1024 / (1024 - code)


# Index into SensorBlackLevels (R, Gr, Gb, B) of each site of a 2x2 tile, per pattern.
_BLACK_LEVEL_INDEX: dict[CfaPattern, tuple[int, int, int, int]] = {
    CfaPattern.RGGB: (0, 1, 2, 3),
    CfaPattern.GRBG: (1, 0, 3, 2),
    CfaPattern.GBRG: (2, 3, 0, 1),
    CfaPattern.BGGR: (3, 2, 1, 0),
}


def color_matrix_from_ccm(
    ccm: Matrix3x3, colour_gains: tuple[float, float]
) -> npt.NDArray[np.float64]:
    """(3, 3) XYZ (D65) -> camera RGB matrix: ``inv(RGB2XYZ @ CCM @ diag(r, 1, b))``.

    Parameters
    ----------
    ccm : nine floats
        Row-major colour correction matrix (white-balanced camera RGB -> linear sRGB).
    colour_gains : (float, float)
        Red and blue white-balance gains.
    """
    red_gain, blue_gain = colour_gains
    ccm_matrix = np.asarray(ccm, dtype=np.float64).reshape(3, 3)
    return np.linalg.inv(RGB_TO_XYZ_LINDBLOOM @ ccm_matrix @ np.diag([red_gain, 1.0, blue_gain]))


def _get(metadata: Mapping[str, Any], key: str, default: Any) -> Any:
    if key in metadata:
        return metadata[key]
    logger.warning("picamera2 metadata has no %s: using rpicam-apps' default %r", key, default)
    return default


def camera_metadata_from_picamera2(
    metadata: Mapping[str, Any],
    pattern: CfaPattern,
    bit_depth: int,
    model: str,
    *,
    noise_profile: tuple[tuple[float, float], ...] | None = None,
) -> CameraMetadata:
    """Build the DNG-style :class:`CameraMetadata` of a picamera2 raw capture.

    Parameters
    ----------
    metadata : mapping
        picamera2's per-request metadata (``request.get_metadata()``), with libcamera's
        control names: ``ExposureTime`` (us), ``AnalogueGain``, ``ColourGains`` (red, blue),
        ``ColourCorrectionMatrix`` (9 floats), ``SensorBlackLevels`` (4 ints, 16-bit units,
        R, Gr, Gb, B), ``SensorTimestamp`` (ns).
    pattern : CfaPattern
        Bayer order of the raw stream (e.g. BGGR for ``SBGGR12_CSI2P``).
    bit_depth : int
        Bits per raw sample (10 or 12 on Raspberry Pi sensors).
    model : str
        Sensor model as libcamera names it (``"imx477"``); becomes the DNG Model.
    noise_profile : tuple of (scale, offset) pairs, optional
        DNG NoiseProfile, when the caller has a noise model (rpicam-apps writes none).

    Returns
    -------
    CameraMetadata
        Make "Raspberry Pi", ColorMatrix1 for D65, AsShotNeutral, black and white levels,
        exposure, ISO, analogue gain and sensor timestamp.

    Raises
    ------
    InvalidParameterError
        If ``bit_depth`` is outside 8..16 or the gains, CCM or black levels are malformed.
    """
    if not 8 <= bit_depth <= 16:
        raise InvalidParameterError(f"bit_depth={bit_depth}: expected 8..16")
    pattern = CfaPattern.parse(pattern)
    scale = (1 << bit_depth) / 65536.0

    levels = tuple(_get(metadata, "SensorBlackLevels", (DEFAULT_BLACK_LEVEL_16BIT,) * 4))
    if len(levels) != 4:
        raise InvalidParameterError(f"SensorBlackLevels={levels!r}: expected 4 values")
    # rpicam-apps permutes these with the inverse mapping; the two agree whenever the four
    # levels are equal, as they are on every Raspberry Pi sensor.
    black_level = tuple(float(levels[i]) * scale for i in _BLACK_LEVEL_INDEX[pattern])

    gains = tuple(float(g) for g in _get(metadata, "ColourGains", (1.0, 1.0)))
    if len(gains) != 2 or min(gains) <= 0.0:
        raise InvalidParameterError(f"ColourGains={gains!r}: expected two positive gains")
    ccm = tuple(float(c) for c in _get(metadata, "ColourCorrectionMatrix", DEFAULT_CCM))
    if len(ccm) != 9:
        raise InvalidParameterError(f"ColourCorrectionMatrix has {len(ccm)} values: expected 9")
    color_matrix = color_matrix_from_ccm(ccm, (gains[0], gains[1]))

    analogue_gain = float(_get(metadata, "AnalogueGain", 1.0))
    exposure_time_us = float(_get(metadata, "ExposureTime", DEFAULT_EXPOSURE_TIME_US))
    timestamp = metadata.get("SensorTimestamp")
    return CameraMetadata(
        cfa_pattern=pattern,
        black_level=black_level,  # type: ignore[arg-type]
        white_level=float((1 << bit_depth) - 1),
        make="Raspberry Pi",
        model=model,
        color_matrix_1=tuple(float(v) for v in color_matrix.ravel()),  # type: ignore[arg-type]
        calibration_illuminant_1=D65_LIGHT_SOURCE,
        as_shot_neutral=(1.0 / gains[0], 1.0, 1.0 / gains[1]),
        exposure_time_s=exposure_time_us / 1e6,
        iso=float(int(analogue_gain * 100.0)),
        analogue_gain=analogue_gain,
        noise_profile=noise_profile,
        sensor_timestamp_ns=None if timestamp is None else int(timestamp),
    )
