"""The data a raw capture carries: the mosaic and what the camera knew when it took it."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field, replace

import numpy as np
import numpy.typing as npt

from pipeline.cfa import CfaPattern
from pipeline.errors import InvalidParameterError

Matrix3x3 = tuple[float, float, float, float, float, float, float, float, float]
#: Raw values above this fraction of the black-to-white range count as clipped.
CLIP_FRACTION = 0.98


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


#: Magnitude beyond which a DNG colour matrix entry is garbage (real ones stay within +-10).
MAX_MATRIX_ENTRY = 100.0
#: Condition number beyond which a colour matrix is taken as singular.
MAX_MATRIX_CONDITION = 1e6
#: Range of an AsShotNeutral value (camera response to white, largest normally 1).
NEUTRAL_RANGE = (1e-3, 1e3)
#: Range of BaselineExposure, EV.
BASELINE_EXPOSURE_RANGE_EV = (-10.0, 10.0)
#: The informational (EXIF) values: field -> (tag name, range); outside it a value is dropped.
EXIF_RANGES: dict[str, tuple[str, float, float]] = {
    "exposure_time_s": ("ExposureTime", 1e-7, 1e5),
    "iso": ("ISOSpeedRatings", 1.0, 1e7),
    "analogue_gain": ("analogue gain", 1.0, 1e4),
    "f_number": ("FNumber", 0.1, 1e3),
    "focal_length_mm": ("FocalLength", 0.1, 1e5),
    "focal_length_35mm": ("FocalLengthIn35mmFilm", 1.0, 1e5),
}
_MATRIX_FIELDS = (
    "color_matrix_1", "color_matrix_2", "camera_calibration_1", "camera_calibration_2",
    "forward_matrix_1", "forward_matrix_2",
)  # fmt: skip


def check_metadata(metadata: CameraMetadata) -> tuple[CameraMetadata, list[str]]:
    """Check what a raw file says about its capture before anything is developed from it.

    Values that decide the image (black and white levels, colour matrices, AsShotNeutral,
    BaselineExposure) must be finite and in range, or the image would be developed wrongly (or not at
    all, late, with a message naming no file): they raise. Informational values (EXIF
    exposure, ISO, lens; NoiseProfile, which the develop can estimate instead) that are
    not finite or out of range are dropped, and each drop is described.

    Returns
    -------
    metadata : CameraMetadata
        ``metadata`` without its unusable informational values.
    dropped : list of str
        One sentence per dropped value, naming it.

    Raises
    ------
    InvalidParameterError
        Naming the value and saying why it is unusable.
    """
    white = metadata.white_level
    if not (math.isfinite(white) and 0 < white <= 65535):
        raise InvalidParameterError(f"WhiteLevel {white}: expected 1..65535")
    black = metadata.black_level
    if not all(math.isfinite(b) and -white < b < white for b in black):
        raise InvalidParameterError(f"BlackLevel {black} must lie below WhiteLevel {white}")
    for name in _MATRIX_FIELDS:
        _check_matrix(name, getattr(metadata, name))
    neutral = metadata.as_shot_neutral
    low, high = NEUTRAL_RANGE
    if neutral is not None and not all(math.isfinite(v) and low <= v <= high for v in neutral):
        raise InvalidParameterError(
            f"AsShotNeutral {neutral} is unusable (expected three values in {low}..{high}): "
            "the white balance cannot be read"
        )
    low, high = BASELINE_EXPOSURE_RANGE_EV
    ev = metadata.baseline_exposure_ev
    if not (math.isfinite(ev) and low <= ev <= high):
        raise InvalidParameterError(f"BaselineExposure {ev} EV: expected {low}..{high}")
    dropped: list[str] = []
    changes: dict[str, object] = {}
    for name, (tag, low, high) in EXIF_RANGES.items():
        value = getattr(metadata, name)
        if value is None or (math.isfinite(value) and low <= value <= high):
            continue
        if value != 0:  # EXIF's "unknown"
            dropped.append(f"{tag} {value} ignored (expected {low:g}..{high:g})")
        changes[name] = None
    profile = metadata.noise_profile
    if profile is not None and not all(
        math.isfinite(s) and math.isfinite(o) and 0 <= s <= 1 and abs(o) <= 1 for s, o in profile
    ):
        dropped.append("NoiseProfile ignored (values not in 0..1): noise is estimated instead")
        changes["noise_profile"] = None
    if not 1 <= metadata.orientation <= 8:
        dropped.append(f"Orientation {metadata.orientation} ignored (expected 1..8)")
        changes["orientation"] = 1
    return (replace(metadata, **changes) if changes else metadata), dropped  # type: ignore[arg-type]


def _check_matrix(name: str, values: Matrix3x3 | None) -> None:
    if values is None:
        return
    matrix = np.asarray(values, dtype=np.float64)
    problem = None
    if matrix.shape != (9,) or not np.all(np.isfinite(matrix)):
        problem = "values that are not finite numbers"
    elif np.max(np.abs(matrix)) > MAX_MATRIX_ENTRY:
        problem = f"an entry beyond +-{MAX_MATRIX_ENTRY:g}"
    elif np.linalg.cond(matrix.reshape(3, 3)) > MAX_MATRIX_CONDITION:
        problem = "a singular matrix"
    if problem is not None:
        tag = "".join(word.capitalize() for word in name.split("_"))
        raise InvalidParameterError(
            f"{tag} is unusable ({problem}: {tuple(values)}): the colours cannot be developed"
        )
