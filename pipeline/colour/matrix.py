"""Camera RGB -> linear sRGB, from the DNG colour model.

Implements the DNG specification 1.6, chapter 6 ("Mapping Camera Color Space to CIE XYZ
Space"): ColorMatrix/CameraCalibration/ForwardMatrix pairs are interpolated in inverse
correlated colour temperature, the white point is found from AsShotNeutral by fixed-point
iteration, and the result is adapted to D65 with the Bradford transform (Lam 1985;
Lindbloom, "Chromatic Adaptation") before XYZ -> sRGB (IEC 61966-2-1).
"""

from __future__ import annotations

import functools
import logging

import numpy as np
import numpy.typing as npt

from pipeline.colour.metrics import XYZ_TO_LINEAR_SRGB, bradford_matrix
from pipeline.errors import InvalidParameterError
from pipeline.raw_frame import CameraMetadata, Matrix3x3, as_matrix

logger = logging.getLogger(__name__)

# EXIF LightSource codes -> correlated colour temperature (K), as used by the DNG SDK.
ILLUMINANT_TEMPERATURE_K: dict[int, float] = {
    1: 5500.0,   # daylight
    2: 4150.0,   # fluorescent
    3: 2850.0,   # tungsten
    4: 5500.0,   # flash
    9: 5500.0,   # fine weather
    10: 6500.0,  # cloudy
    11: 7500.0,  # shade
    12: 6430.0,  # daylight fluorescent
    13: 5000.0,  # day white fluorescent
    14: 4150.0,  # cool white fluorescent
    15: 3450.0,  # white fluorescent
    16: 2940.0,  # warm white fluorescent
    17: 2856.0,  # standard light A
    18: 4874.0,  # standard light B
    19: 6774.0,  # standard light C
    20: 5503.0,  # D55
    21: 6504.0,  # D65
    22: 7504.0,  # D75
    23: 5003.0,  # D50
    24: 3200.0,  # ISO studio tungsten
}

#: Largest entry of a camera -> sRGB matrix from usable metadata (real ones stay within +-5).
MAX_SRGB_MATRIX_ENTRY = 100.0

D50_XY = (0.34567, 0.35850)
D65_XY = (0.31271, 0.32902)

def xy_to_xyz(xy: tuple[float, float]) -> npt.NDArray[np.float64]:
    """XYZ with Y = 1 of a chromaticity ``xy``."""
    x, y = xy
    return np.array([x / y, 1.0, (1.0 - x - y) / y])


def xyz_to_xy(xyz: npt.NDArray[np.float64]) -> tuple[float, float]:
    """Chromaticity of an XYZ triple."""
    s = float(np.sum(xyz))
    return (float(xyz[0] / s), float(xyz[1] / s))


def bradford_adaptation(
    source_xy: tuple[float, float], target_xy: tuple[float, float]
) -> npt.NDArray[np.float64]:
    """(3, 3) XYZ -> XYZ chromatic adaptation from ``source_xy`` white to ``target_xy``."""
    return bradford_matrix(xy_to_xyz(source_xy), xy_to_xyz(target_xy))


def temperature_from_xy(xy: tuple[float, float]) -> float:
    """Correlated colour temperature (K) of ``xy``.

    McCamy, "Correlated color temperature as an explicit function of chromaticity
    coordinates", Color Res. Appl. 17(2), 1992; accurate to a few K over 2,000-12,500 K.
    """
    x, y = xy
    n = (x - 0.3320) / (0.1858 - y)
    cct = 449.0 * n**3 + 3525.0 * n**2 + 6823.3 * n + 5520.33
    return float(np.clip(cct, 1500.0, 25000.0))


def _interpolation_weight(metadata: CameraMetadata, temperature_k: float) -> float:
    """Weight of illuminant 1 (DNG spec: linear in inverse temperature, clamped); a file
    with only the second set of matrices gets weight 0 (that set alone)."""
    if metadata.color_matrix_1 is None and metadata.color_matrix_2 is not None:
        return 0.0
    if metadata.color_matrix_2 is None or metadata.calibration_illuminant_2 is None:
        return 1.0
    t1 = ILLUMINANT_TEMPERATURE_K.get(metadata.calibration_illuminant_1 or 21, 6504.0)
    t2 = ILLUMINANT_TEMPERATURE_K.get(metadata.calibration_illuminant_2, 6504.0)
    if t1 == t2:
        return 1.0
    w = (1.0 / temperature_k - 1.0 / t2) / (1.0 / t1 - 1.0 / t2)
    return float(np.clip(w, 0.0, 1.0))


def _blend(
    m1: Matrix3x3 | None, m2: Matrix3x3 | None, weight_1: float
) -> npt.NDArray[np.float64] | None:
    if m1 is None or m2 is None:  # one of the pair: that one, whichever it is
        present = m1 if m1 is not None else m2
        return None if present is None else as_matrix(present)
    return weight_1 * as_matrix(m1) + (1.0 - weight_1) * as_matrix(m2)


def _xyz_to_camera(metadata: CameraMetadata, temperature_k: float) -> npt.NDArray[np.float64]:
    """CC * CM at ``temperature_k`` (AnalogBalance is taken as identity)."""
    w = _interpolation_weight(metadata, temperature_k)
    cm = _blend(metadata.color_matrix_1, metadata.color_matrix_2, w)
    cc = _blend(metadata.camera_calibration_1, metadata.camera_calibration_2, w)
    assert cm is not None
    return cm if cc is None else cc @ cm


def white_xy_from_neutral(
    metadata: CameraMetadata, neutral: npt.NDArray[np.float64]
) -> tuple[float, float]:
    """Chromaticity of the scene white whose camera response is ``neutral`` (DNG spec ch. 6)."""
    xy = D50_XY
    for _ in range(30):
        xyz = np.linalg.solve(_xyz_to_camera(metadata, temperature_from_xy(xy)), neutral)
        if xyz[1] <= 0 or np.sum(xyz) <= 0:
            return D50_XY
        new_xy = xyz_to_xy(xyz)
        if abs(new_xy[0] - xy[0]) + abs(new_xy[1] - xy[1]) < 1e-7:
            return new_xy
        xy = new_xy
    return xy


def camera_to_srgb_matrix(
    metadata: CameraMetadata, neutral: npt.NDArray[np.float64]
) -> npt.NDArray[np.float32]:
    """(3, 3) float32 taking white-balanced camera RGB to linear sRGB (D65).

    ``neutral`` is the camera's response to the scene white (AsShotNeutral, or an automatic
    estimate). White-balanced means each camera channel was divided by ``neutral``, so camera
    (1, 1, 1) is the white; the returned matrix maps it to sRGB (1, 1, 1). Without a
    ColorMatrix (neither ColorMatrix1 nor ColorMatrix2) the camera is assumed to be sRGB
    (and a warning is logged).

    Raises
    ------
    InvalidParameterError
        The colour metadata give no usable matrix with ``neutral`` (singular, not finite, or
        absurdly large).
    """
    neutral = np.asarray(neutral, dtype=np.float64)
    if metadata.color_matrix_1 is None and metadata.color_matrix_2 is None:
        logger.warning("no ColorMatrix in the metadata: treating camera RGB as sRGB")
        return np.eye(3, dtype=np.float32)
    try:
        with np.errstate(all="ignore"):
            matrix = _camera_to_srgb(metadata, neutral)
    except np.linalg.LinAlgError:
        matrix = None
    if matrix is None or not np.all(np.abs(matrix) <= MAX_SRGB_MATRIX_ENTRY):
        raise InvalidParameterError(
            "colour metadata unusable: no finite camera -> sRGB matrix within "
            f"+-{MAX_SRGB_MATRIX_ENTRY:g} for neutral {neutral.tolist()} "
            f"(ColorMatrix1 {metadata.color_matrix_1}, ColorMatrix2 {metadata.color_matrix_2})"
        )
    return matrix


#: The illuminants a white balance may be adapted from: correlated colour temperatures
#: and distances from the Planckian locus (Duv, CIE 1960 uv) that real light sources have
#: (candle and tungsten to open shade; fluorescent and LED lamps stay within +-0.02).
PLAUSIBLE_CCT_K = (1800.0, 12000.0)
PLAUSIBLE_DUV = 0.02


def planckian_xy(temperature_k: npt.ArrayLike) -> tuple[npt.NDArray[np.float64], ...]:
    """Chromaticity x, y of a black body, for each temperature of ``temperature_k`` (Kim
    et al., "Design of advanced color temperature control system for HDTV applications",
    J. Korean Phys. Soc. 41(6), 2002; 1667-25000 K)."""
    t = np.clip(np.asarray(temperature_k, dtype=np.float64), 1667.0, 25000.0)
    x = np.where(
        t <= 4000.0,
        -0.2661239e9 / t**3 - 0.2343589e6 / t**2 + 0.8776956e3 / t + 0.179910,
        -3.0258469e9 / t**3 + 2.1070379e6 / t**2 + 0.2226347e3 / t + 0.240390,
    )
    y = np.select(
        [t <= 2222.0, t <= 4000.0],
        [-1.1063814 * x**3 - 1.34811020 * x**2 + 2.18555832 * x - 0.20219683,
         -0.9549476 * x**3 - 1.37418593 * x**2 + 2.09137015 * x - 0.16748867],
        3.0817580 * x**3 - 5.87338670 * x**2 + 3.75112997 * x - 0.37001483,
    )  # fmt: skip
    return x, y


def _xy_to_uv(
    x: float | npt.NDArray[np.float64], y: float | npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    d = -2.0 * x + 12.0 * y + 3.0
    return np.array([4.0 * x / d, 6.0 * y / d])


def _uv_to_xy(uv: npt.NDArray[np.float64]) -> tuple[float, float]:
    u, v = float(uv[0]), float(uv[1])
    d = 2.0 * u - 8.0 * v + 4.0
    return (3.0 * u / d, 2.0 * v / d)


@functools.cache
def _planckian_locus() -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """600 points of the Planckian locus evenly in mireds, 1667-25000 K: the mireds, and
    the points' CIE 1960 uv, (600, 2)."""
    mireds = np.linspace(1e6 / 25000.0, 1e6 / 1667.0, 600)
    return mireds, _xy_to_uv(*planckian_xy(1e6 / mireds)).T


def plausible_white_xy(xy: tuple[float, float]) -> tuple[float, float]:
    """``xy``, or the nearest chromaticity a real illuminant has (within
    :data:`PLAUSIBLE_CCT_K` and :data:`PLAUSIBLE_DUV` of the Planckian locus).

    A white balance estimated from a scene without neutrals (a green lawn, a checkerboard
    under mixed light) can put the white far off the locus, where the colour matrices are
    extrapolated and chromatic adaptation from it builds extreme matrices (a blue row of
    [-1, -5, 7]: dark tones turn olive with coloured fringes). The adaptation is bounded
    to that of the nearest plausible light (:func:`camera_to_srgb_matrix` keeps the
    measured white white).
    """
    mireds, locus = _planckian_locus()
    uv = _xy_to_uv(*xy)
    nearest = int(np.argmin(np.sum((locus - uv) ** 2, axis=1)))
    temperature = 1e6 / mireds[nearest]
    offset = uv - locus[nearest]
    if PLAUSIBLE_CCT_K[0] <= temperature <= PLAUSIBLE_CCT_K[1] and (
        np.hypot(*offset) <= PLAUSIBLE_DUV
    ):
        return xy
    bounded_t = float(np.clip(temperature, *PLAUSIBLE_CCT_K))
    base = _xy_to_uv(*planckian_xy(bounded_t))
    length = float(np.hypot(*offset))
    if length > PLAUSIBLE_DUV:
        offset = offset * (PLAUSIBLE_DUV / length)
    bounded = _uv_to_xy(base + offset)
    logger.warning("white balance: the scene white xy (%.3f, %.3f) is no real light's; "
                   "adapting as from (%.3f, %.3f), %.0f K", xy[0], xy[1], *bounded, bounded_t)
    return bounded


def _camera_to_srgb(
    metadata: CameraMetadata, neutral: npt.NDArray[np.float64]
) -> npt.NDArray[np.float32]:
    scene_xy = white_xy_from_neutral(metadata, neutral)
    white_xy = plausible_white_xy(scene_xy)
    if white_xy == scene_xy:
        return _balanced_to_srgb(metadata, neutral, white_xy).astype(np.float32)
    # White balance stays as measured (camera-space gains: the scene white is white), and
    # the colour transform is the one for the nearest real light, as a camera ISP's
    # gains-then-CCM does: no extrapolated, extreme matrix.
    plausible = _xyz_to_camera(metadata, temperature_from_xy(white_xy)) @ xy_to_xyz(white_xy)
    plausible = plausible / plausible[1]
    return _balanced_to_srgb(metadata, plausible, white_xy).astype(np.float32)


def _balanced_to_srgb(
    metadata: CameraMetadata, neutral: npt.NDArray[np.float64], white_xy: tuple[float, float]
) -> npt.NDArray[np.float64]:
    temperature_k = temperature_from_xy(white_xy)
    weight_1 = _interpolation_weight(metadata, temperature_k)
    forward = _blend(metadata.forward_matrix_1, metadata.forward_matrix_2, weight_1)
    if forward is not None:
        cc = _blend(metadata.camera_calibration_1, metadata.camera_calibration_2, weight_1)
        cc = np.eye(3) if cc is None else cc
        reference_neutral = np.linalg.solve(cc, neutral)
        camera_to_xyz_d50 = forward @ np.diag(1.0 / reference_neutral) @ np.linalg.inv(cc)
    else:
        camera_to_xyz = np.linalg.inv(_xyz_to_camera(metadata, temperature_k))
        camera_to_xyz_d50 = bradford_adaptation(white_xy, D50_XY) @ camera_to_xyz
    balanced_to_xyz_d50 = camera_to_xyz_d50 @ np.diag(neutral)
    balanced_to_srgb = XYZ_TO_LINEAR_SRGB @ bradford_adaptation(D50_XY, D65_XY) @ balanced_to_xyz_d50
    # Camera white must land exactly on sRGB white: remove rounding in the tags' rationals.
    balanced_to_srgb /= (balanced_to_srgb @ np.ones(3))[:, None]
    return balanced_to_srgb


def check_colour_metadata(metadata: CameraMetadata) -> None:
    """Raise InvalidParameterError unless the colour tags give a usable camera -> sRGB
    matrix for the as-shot white (or camera white, without AsShotNeutral); readers call it
    so that a file whose colour cannot be developed is refused by name, not developed grey."""
    if metadata.color_matrix_1 is not None or metadata.color_matrix_2 is not None:
        neutral = metadata.as_shot_neutral or (1.0, 1.0, 1.0)
        camera_to_srgb_matrix(metadata, np.asarray(neutral, dtype=np.float64))
