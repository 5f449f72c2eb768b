"""The data a raw capture carries: the mosaic and what the camera knew when it took it."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from pipeline.cfa import CfaPattern

Matrix3x3 = tuple[float, float, float, float, float, float, float, float, float]


def as_matrix(values: Matrix3x3) -> npt.NDArray[np.float64]:
    """(3, 3) float64 view of a row-major 9-tuple."""
    return np.asarray(values, dtype=np.float64).reshape(3, 3)


@dataclass(frozen=True, eq=False)
class LensShadingMap:
    """Per-CFA-channel gains on a coarse grid spanning the whole frame (DNG GainMap-like).

    ``gains`` is (4, gh, gw) float32, one plane per site of the 2x2 CFA tile in row-major
    order; grid points sit at the frame's corners and are spaced evenly between them.
    """

    gains: npt.NDArray[np.float32]


@dataclass(frozen=True)
class CameraMetadata:
    """What a raw file or a camera says about a capture, in DNG terms.

    Matrices follow the DNG specification (1.6, ch. 6): ``color_matrix_*`` map XYZ to
    camera RGB, ``forward_matrix_*`` map white-balanced camera RGB to XYZ (D50), each for
    its ``calibration_illuminant_*`` (EXIF LightSource code, e.g. 17 = Standard light A,
    21 = D65). ``black_level`` is per site of the 2x2 CFA tile in row-major order, in the
    same units as the raw values, as is ``white_level``.
    """

    cfa_pattern: CfaPattern
    black_level: tuple[float, float, float, float]
    white_level: float
    make: str = ""
    model: str = ""
    color_matrix_1: Matrix3x3 | None = None
    color_matrix_2: Matrix3x3 | None = None
    calibration_illuminant_1: int | None = None
    calibration_illuminant_2: int | None = None
    forward_matrix_1: Matrix3x3 | None = None
    forward_matrix_2: Matrix3x3 | None = None
    camera_calibration_1: Matrix3x3 | None = None
    camera_calibration_2: Matrix3x3 | None = None
    as_shot_neutral: tuple[float, float, float] | None = None
    exposure_time_s: float | None = None
    iso: float | None = None
    analogue_gain: float | None = None
    noise_profile: tuple[tuple[float, float], ...] | None = None
    baseline_exposure_ev: float = 0.0
    datetime_original: dt.datetime | None = None
    orientation: int = 1
    lens_model: str | None = None
    focal_length_mm: float | None = None
    focal_length_35mm: float | None = None
    f_number: float | None = None
    sensor_timestamp_ns: int | None = None
    lens_shading: LensShadingMap | None = field(default=None, compare=False)


@dataclass(frozen=True, eq=False)
class RawFrame:
    """One raw capture: ``cfa`` is the (H, W) uint16 Bayer mosaic as the sensor gave it."""

    cfa: npt.NDArray[np.uint16]
    metadata: CameraMetadata

    @property
    def shape(self) -> tuple[int, int]:
        """(H, W) of the mosaic."""
        return (int(self.cfa.shape[0]), int(self.cfa.shape[1]))
