"""Recognising the Raspberry Pi camera that wrote a DNG, by its colour matrix.

picamera2 saves DNGs through PiDNG, which writes "PiDNG / PiCamera2" as every camera's
Model [PIDNG]_: nothing in such a file names the sensor, so the Pi's colour shading for
it (:mod:`pipeline.stages.colour_shading`) could not be chosen. But PiDNG, like
rpicam-apps' DNG writer [RPICAM]_, builds the colour matrix from the colour correction
matrix (CCM) and the white balance gains the Pi's ISP used for that frame::

    ColorMatrix1 = inverse(sRGB_to_XYZ @ CCM @ diag(ColourGains)),  AsShotNeutral = 1 / ColourGains

so ``CCM = inverse(sRGB_to_XYZ) @ inverse(ColorMatrix1) @ diag(AsShotNeutral)``, for the
writer's ``sRGB_to_XYZ`` (:data:`WRITERS_SRGB_TO_XYZ`). The Pi's CCM comes from the
sensor's tuning file [CCM]_: its ``rpi.ccm`` matrices interpolated linearly at the AWB's
colour temperature (``calculateCcm``), then the user's saturation applied
(``applySaturation``): a two-parameter family of matrices (colour temperature,
saturation) particular to each tuning. A file whose CCM lies on a shipped tuning's family
(:data:`pipeline.colour.alsc_tuning.SENSORS`), within PiDNG's rounding of the tags to
1e-4, was developed by the Pi with that tuning. A manual CCM, or a tuning we do not ship
(a NoIR module's, a third-party sensor's), lies off every family. The real IMX296 burst in
``../shared/data`` (PiDNG) lies 0.0007 from the IMX296 tuning's family, at 3998 K and
saturation 1.0.

References
----------
.. [PIDNG] schoolpost/PiDNG, ``src/pidng/camdefs.py`` (``Picamera2Camera``),
   https://github.com/schoolpost/PiDNG.
.. [RPICAM] Raspberry Pi, rpicam-apps ``image/dng.cpp``, https://github.com/raspberrypi/rpicam-apps.
.. [CCM] Raspberry Pi, libcamera ``src/ipa/rpi/controller/rpi/ccm.cpp`` and
   ``src/ipa/rpi/vc4/data/*.json``, https://github.com/raspberrypi/libcamera.
"""

from __future__ import annotations

import functools

import numpy as np
import numpy.typing as npt

from pipeline.colour.alsc_tuning import SENSORS, tuning_data
from pipeline.raw_frame import CameraMetadata

#: The linear-sRGB to XYZ matrices (Lindbloom's) the writers multiply the CCM by: D65
#: (PiDNG, and rpicam-apps' older versions), and D50 by Bradford adaptation (its newer ones).
WRITERS_SRGB_TO_XYZ = (
    np.array([[0.4124564, 0.3575761, 0.1804375],
              [0.2126729, 0.7151522, 0.0721750],
              [0.0193339, 0.1191920, 0.9503041]]),
    np.array([[0.4360747, 0.3850649, 0.1430804],
              [0.2225045, 0.7168786, 0.0606169],
              [0.0139322, 0.0971045, 0.7141733]]),
)  # fmt: skip

#: ``applySaturation``'s RGB to YCbCr and back; saturation scales Cb and Cr between them.
_RGB_TO_YCC = np.array([[0.299, 0.587, 0.114], [-0.169, -0.331, 0.500], [0.500, -0.419, -0.081]])
_YCC_TO_RGB = np.array([[1.000, 0.000, 1.402], [1.000, -0.345, -0.714], [1.000, 1.771, 0.000]])

#: Largest difference, per matrix element, between a file's CCM and a tuning's nearest one
#: for the file to count as the tuning's. PiDNG's rounding of ColorMatrix1 and AsShotNeutral
#: to 1e-4 moves the recovered CCM by under 1e-3. The shipped tunings' families lie at
#: least 0.031 apart (the Camera Module 3's and its wide version's); of libcamera's other
#: tunings (at the commit the tables come from), the nearest to the IMX477's is vd56g3's,
#: 0.029 away at its best colour temperature and saturation.
MATCH_TOLERANCE = 0.005


@functools.cache
def tuning_ccms(sensor: str) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """``sensor``'s ``rpi.ccm``: colour temperatures (n,) in K, increasing, and CCMs
    (n, 3, 3), camera RGB (white balanced) to linear sRGB. (The Pi 5's IMX477 tuning lists
    the same matrices as the Pi 4's.)"""
    ccms = tuning_data(sensor)["rpi.ccm"]["ccms"]
    temperatures = np.array([float(entry["ct"]) for entry in ccms])
    matrices = np.array([entry["ccm"] for entry in ccms], dtype=np.float64).reshape(-1, 3, 3)
    return temperatures, matrices


def written_ccms(
    color_matrix_1: tuple | None, as_shot_neutral: tuple | None
) -> list[npt.NDArray[np.float64]]:
    """(3, 3) each: the CCM a Pi DNG's ColorMatrix1 and AsShotNeutral were built from, as
    each known writer builds them (:data:`WRITERS_SRGB_TO_XYZ`); none when the file lacks
    either tag or its matrix is singular."""
    if color_matrix_1 is None or as_shot_neutral is None:
        return []
    colour_matrix = np.asarray(color_matrix_1, dtype=np.float64).reshape(3, 3)
    neutral = np.asarray(as_shot_neutral, dtype=np.float64)
    if not np.all(np.isfinite(colour_matrix)) or not np.all(np.isfinite(neutral)):
        return []
    try:
        camera_to_xyz = np.linalg.inv(colour_matrix)
    except np.linalg.LinAlgError:
        return []
    return [np.linalg.solve(to_xyz, camera_to_xyz) @ np.diag(neutral)
            for to_xyz in WRITERS_SRGB_TO_XYZ]  # fmt: skip


def distance_to_tuning(ccm: npt.ArrayLike, sensor: str) -> float:
    """The largest element difference between ``ccm`` and the nearest matrix of
    ``sensor``'s tuning family: every colour temperature of its range at 1 K, each with the
    saturation that fits best (least squares; saturation is linear in the matrix)."""
    ccm = np.asarray(ccm, dtype=np.float64).reshape(3, 3)
    luma, chroma = _family(sensor)
    rest = ccm - luma
    saturation = np.maximum(
        np.einsum("nij,nij->n", chroma, rest) / np.einsum("nij,nij->n", chroma, chroma), 0.0
    )
    residual = rest - saturation[:, None, None] * chroma
    return float(np.abs(residual).max(axis=(1, 2)).min())


@functools.cache
def _family(sensor: str) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """The tuning's CCMs at every 1 K of its range, split into the part saturation leaves
    (luma) and the part it scales (chroma): the Pi's CCM at (ct, s) is luma + s * chroma."""
    temperatures, matrices = tuning_ccms(sensor)
    cts = np.arange(temperatures[0], temperatures[-1] + 1.0)
    flat = matrices.reshape(len(temperatures), 9)
    candidates = np.stack([np.interp(cts, temperatures, flat[:, i]) for i in range(9)], axis=1)
    candidates = candidates.reshape(-1, 3, 3)
    luma = _YCC_TO_RGB @ np.diag([1.0, 0.0, 0.0]) @ _RGB_TO_YCC @ candidates
    chroma = _YCC_TO_RGB @ np.diag([0.0, 1.0, 1.0]) @ _RGB_TO_YCC @ candidates
    return luma, chroma


def tuning_of(metadata: CameraMetadata) -> str | None:
    """The shipped tuning (:data:`~pipeline.colour.alsc_tuning.SENSORS`) a DNG's colour
    matrix was built from (see the module notes), whatever its Model says; None if none."""
    return _tuning_of_tags(metadata.color_matrix_1, metadata.as_shot_neutral)


@functools.lru_cache(maxsize=16)
def _tuning_of_tags(color_matrix_1: tuple | None, as_shot_neutral: tuple | None) -> str | None:
    """:func:`tuning_of` for these tags (a develop asks twice: whether, then which)."""
    ccms = written_ccms(color_matrix_1, as_shot_neutral)
    if not ccms:
        return None
    distance, sensor = min(
        (distance_to_tuning(ccm, name), name) for name in SENSORS for ccm in ccms
    )
    return sensor if distance <= MATCH_TOLERANCE else None
