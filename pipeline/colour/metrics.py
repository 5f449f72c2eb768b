"""Colorimetry: sRGB, CIE XYZ and CIELAB, CIEDE2000, OkLab, ColorChecker.

The develop uses it on small arrays (camera matrices, a look's LUT grid, the noise model's
display mapping); tests and benchmarks measure colour accuracy with it.

Every function is vectorised over arrays of shape (..., 3) (the last axis holds the three
components) and returns the input's floating dtype (float64 for integer or list input),
so float32 images stay float32. The functions are meant for patch means and small images;
the ISP's own per-pixel colour stages live in numba kernels elsewhere.

References
----------
.. [IEC] IEC 61966-2-1:1999, "Multimedia systems and equipment - Colour measurement and
   management - Part 2-1: Default RGB colour space - sRGB".
.. [CIE] CIE 15:2004, "Colorimetry", 3rd ed., sec. 8.2.1 (CIELAB) and Table T.3 (white
   points).
.. [Lam] K. M. Lam, "Metamerism and colour constancy", PhD thesis, University of Bradford,
   1985 (the Bradford cone matrix); B. Lindbloom, "Chromatic Adaptation",
   http://www.brucelindbloom.com/Eqn_ChromAdapt.html.
.. [Sharma] G. Sharma, W. Wu, E. N. Dalal, "The CIEDE2000 color-difference formula:
   Implementation notes, supplementary test data, and mathematical observations",
   Color Res. Appl. 30(1):21-30, 2005, https://doi.org/10.1002/col.20070.
.. [Ottosson] B. Ottosson, "A perceptual color space for image processing", 2020,
   https://bottosson.github.io/posts/oklab/.
.. [XRite] X-Rite, "ColorChecker Classic" L*a*b* (D50, 2 degree) reference values for
   charts made after November 2014, as tabulated in colour-science's
   ``CCS_COLOURCHECKERS["ColorChecker24 - After November 2014"]``.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.floating]


def _as_float(values: npt.ArrayLike) -> FloatArray:
    """``values`` as a floating array: float inputs keep their dtype, others become float64."""
    array = np.asarray(values)
    if np.issubdtype(array.dtype, np.floating):
        return array
    return array.astype(np.float64)


def _check_triplets(array: FloatArray, name: str) -> None:
    if array.ndim == 0 or array.shape[-1] != 3:
        raise ValueError(f"{name} has shape {array.shape}: expected (..., 3)")


def _apply_matrix(matrix: npt.NDArray[np.float64], values: FloatArray) -> FloatArray:
    """``matrix @ v`` for every triplet ``v`` on the last axis, in the dtype of ``values``."""
    return values @ matrix.T.astype(values.dtype)


def _rgb_to_xyz_matrix(
    primaries_xy: tuple[tuple[float, float], ...], white_xy: tuple[float, float]
) -> npt.NDArray[np.float64]:
    """(3, 3) linear RGB -> XYZ of an RGB space given by its primaries and white (Y = 1)."""
    xyz = np.array([[x / y, 1.0, (1.0 - x - y) / y] for x, y in primaries_xy]).T
    white = np.array(
        [white_xy[0] / white_xy[1], 1.0, (1.0 - white_xy[0] - white_xy[1]) / white_xy[1]]
    )
    return xyz * np.linalg.solve(xyz, white)


#: (3, 3) linear sRGB -> CIE XYZ (D65), from the primaries and white of [IEC]_ (sec. 5.1):
#: R (0.64, 0.33), G (0.30, 0.60), B (0.15, 0.06), D65 (0.3127, 0.3290).
LINEAR_SRGB_TO_XYZ = _rgb_to_xyz_matrix(
    ((0.64, 0.33), (0.30, 0.60), (0.15, 0.06)), (0.3127, 0.3290)
)
#: (3, 3) CIE XYZ (D65) -> linear sRGB.
XYZ_TO_LINEAR_SRGB = np.linalg.inv(LINEAR_SRGB_TO_XYZ)
#: XYZ of the sRGB white (D65 at the chromaticity of [IEC]_), Y = 1.
D65_WHITE_XYZ = LINEAR_SRGB_TO_XYZ @ np.ones(3)
#: XYZ of CIE D50 (2 degree observer), Y = 1, as tabulated in [CIE]_ Table T.3.
D50_WHITE_XYZ = np.array([0.96422, 1.0, 0.82521])

#: The Bradford cone-response matrix [Lam]_.
BRADFORD = np.array(
    [[0.8951, 0.2664, -0.1614], [-0.7502, 1.7135, 0.0367], [0.0389, -0.0685, 1.0296]]
)


def srgb_encode(linear: npt.ArrayLike) -> FloatArray:
    """Linear sRGB -> sRGB-encoded values (the IEC 61966-2-1 transfer function).

    Values outside [0, 1] are extended as in CSS Color 4 ("extended sRGB"): the curve is
    mirrored about 0 and its power segment continues above 1, so out-of-gamut colours
    survive a round trip.

    Parameters
    ----------
    linear : array_like
        Linear-light values, any shape.

    Returns
    -------
    ndarray
        Encoded values, same shape and floating dtype.
    """
    v = _as_float(linear)
    a = np.abs(v)
    encoded = np.where(
        a <= 0.0031308, 12.92 * a, 1.055 * np.power(np.maximum(a, 0.0031308), 1.0 / 2.4) - 0.055
    )
    return (np.sign(v) * encoded).astype(v.dtype, copy=False)


def srgb_decode(encoded: npt.ArrayLike) -> FloatArray:
    """sRGB-encoded values -> linear sRGB (inverse of :func:`srgb_encode`, [IEC]_).

    Parameters
    ----------
    encoded : array_like
        Encoded values, any shape, nominally in [0, 1] (uint8 must be divided by 255 first).

    Returns
    -------
    ndarray
        Linear-light values, same shape and floating dtype.
    """
    v = _as_float(encoded)
    a = np.abs(v)
    linear = np.where(
        a <= 0.04045, a / 12.92, np.power((np.maximum(a, 0.04045) + 0.055) / 1.055, 2.4)
    )
    return (np.sign(v) * linear).astype(v.dtype, copy=False)


def linear_srgb_to_xyz(rgb: npt.ArrayLike) -> FloatArray:
    """Linear sRGB (..., 3) -> CIE XYZ (D65) (..., 3), with Y = 1 for sRGB white."""
    values = _as_float(rgb)
    _check_triplets(values, "rgb")
    return _apply_matrix(LINEAR_SRGB_TO_XYZ, values)


def xyz_to_linear_srgb(xyz: npt.ArrayLike) -> FloatArray:
    """CIE XYZ (D65) (..., 3) -> linear sRGB (..., 3); out-of-gamut colours go negative."""
    values = _as_float(xyz)
    _check_triplets(values, "xyz")
    return _apply_matrix(XYZ_TO_LINEAR_SRGB, values)


_LAB_EPSILON = (6.0 / 29.0) ** 3
_LAB_SLOPE = 1.0 / (3.0 * (6.0 / 29.0) ** 2)


def xyz_to_lab(xyz: npt.ArrayLike, white_xyz: npt.ArrayLike = D65_WHITE_XYZ) -> FloatArray:
    """CIE XYZ (..., 3) -> CIELAB (..., 3) relative to ``white_xyz`` ([CIE]_ sec. 8.2.1).

    Parameters
    ----------
    xyz : array_like (..., 3)
        Tristimulus values, Y = 1 for the reference white.
    white_xyz : array_like (3,)
        The reference white (default: the sRGB D65 white).

    Returns
    -------
    ndarray (..., 3)
        L* in [0, 100] for colours no brighter than the white, a*, b*.
    """
    values = _as_float(xyz)
    _check_triplets(values, "xyz")
    t = values / np.asarray(white_xyz, dtype=values.dtype)
    f = np.where(t > _LAB_EPSILON, np.cbrt(t), t * _LAB_SLOPE + 4.0 / 29.0)
    lab = np.stack(
        [
            116.0 * f[..., 1] - 16.0,
            500.0 * (f[..., 0] - f[..., 1]),
            200.0 * (f[..., 1] - f[..., 2]),
        ],
        axis=-1,
    )
    return lab.astype(values.dtype, copy=False)


def lab_to_xyz(lab: npt.ArrayLike, white_xyz: npt.ArrayLike = D65_WHITE_XYZ) -> FloatArray:
    """CIELAB (..., 3) relative to ``white_xyz`` -> CIE XYZ (..., 3); inverts :func:`xyz_to_lab`."""
    values = _as_float(lab)
    _check_triplets(values, "lab")
    fy = (values[..., 0] + 16.0) / 116.0
    f = np.stack([fy + values[..., 1] / 500.0, fy, fy - values[..., 2] / 200.0], axis=-1)
    t = np.where(f > 6.0 / 29.0, f**3, (f - 4.0 / 29.0) / _LAB_SLOPE)
    return (t * np.asarray(white_xyz, dtype=values.dtype)).astype(values.dtype, copy=False)


def bradford_matrix(
    source_white_xyz: npt.ArrayLike, target_white_xyz: npt.ArrayLike
) -> npt.NDArray[np.float64]:
    """(3, 3) XYZ -> XYZ chromatic adaptation from one white to another (Bradford, [Lam]_).

    The von Kries scaling is done in the Bradford cone space (the linear form without
    Bradford's blue non-linearity, as in ICC and Lindbloom).
    """
    source = BRADFORD @ np.asarray(source_white_xyz, dtype=np.float64)
    target = BRADFORD @ np.asarray(target_white_xyz, dtype=np.float64)
    return np.linalg.inv(BRADFORD) @ np.diag(target / source) @ BRADFORD


def linear_srgb_to_lab_d50(rgb: npt.ArrayLike) -> FloatArray:
    """Linear sRGB (..., 3) -> CIELAB (D50) (..., 3), adapting D65 -> D50 with Bradford.

    This is the space in which ColorChecker references are published, so measured patches
    should be compared with :data:`COLORCHECKER_LAB_D50` through this function.
    """
    xyz_d65 = linear_srgb_to_xyz(rgb)
    xyz_d50 = _apply_matrix(bradford_matrix(D65_WHITE_XYZ, D50_WHITE_XYZ), xyz_d65)
    return xyz_to_lab(xyz_d50, D50_WHITE_XYZ)


def lab_d50_to_linear_srgb(lab: npt.ArrayLike) -> FloatArray:
    """CIELAB (D50) (..., 3) -> linear sRGB (..., 3) (inverse of :func:`linear_srgb_to_lab_d50`)."""
    xyz_d50 = lab_to_xyz(lab, D50_WHITE_XYZ)
    xyz_d65 = _apply_matrix(bradford_matrix(D50_WHITE_XYZ, D65_WHITE_XYZ), xyz_d50)
    return xyz_to_linear_srgb(xyz_d65)


def delta_e_ciede2000(
    lab1: npt.ArrayLike,
    lab2: npt.ArrayLike,
    k_l: float = 1.0,
    k_c: float = 1.0,
    k_h: float = 1.0,
) -> FloatArray:
    """CIEDE2000 colour difference between CIELAB colours, following [Sharma]_ eqs. 1-22.

    Hue angles follow the paper's conventions: a hue is 0 where the chroma is 0, the hue
    difference is 0 if either chroma is 0, and the mean hue of a pair is taken the short
    way round the circle.

    Parameters
    ----------
    lab1, lab2 : array_like (..., 3)
        CIELAB colours; shapes broadcast.
    k_l, k_c, k_h : float
        Parametric weights of lightness, chroma and hue (1 under reference conditions).

    Returns
    -------
    ndarray (...)
        Delta E 2000 of each pair.
    """
    a = _as_float(lab1)
    b = _as_float(lab2)
    _check_triplets(a, "lab1")
    _check_triplets(b, "lab2")
    l1, a1, b1 = a[..., 0], a[..., 1], a[..., 2]
    l2, a2, b2 = b[..., 0], b[..., 1], b[..., 2]

    c_mean = 0.5 * (np.hypot(a1, b1) + np.hypot(a2, b2))
    c_mean7 = c_mean**7
    g = 0.5 * (1.0 - np.sqrt(c_mean7 / (c_mean7 + 25.0**7)))
    a1p = (1.0 + g) * a1
    a2p = (1.0 + g) * a2
    c1p = np.hypot(a1p, b1)
    c2p = np.hypot(a2p, b2)
    h1p = np.where(c1p == 0.0, 0.0, np.degrees(np.arctan2(b1, a1p)) % 360.0)
    h2p = np.where(c2p == 0.0, 0.0, np.degrees(np.arctan2(b2, a2p)) % 360.0)

    chroma_product = c1p * c2p
    dh = h2p - h1p
    dh = np.where(dh > 180.0, dh - 360.0, np.where(dh < -180.0, dh + 360.0, dh))
    dh = np.where(chroma_product == 0.0, 0.0, dh)
    d_lp = l2 - l1
    d_cp = c2p - c1p
    d_hp = 2.0 * np.sqrt(chroma_product) * np.sin(np.radians(dh) / 2.0)

    l_mean = 0.5 * (l1 + l2)
    cp_mean = 0.5 * (c1p + c2p)
    h_sum = h1p + h2p
    h_mean = np.where(
        np.abs(h1p - h2p) <= 180.0,
        0.5 * h_sum,
        np.where(h_sum < 360.0, 0.5 * (h_sum + 360.0), 0.5 * (h_sum - 360.0)),
    )
    h_mean = np.where(chroma_product == 0.0, h_sum, h_mean)

    t = (
        1.0
        - 0.17 * np.cos(np.radians(h_mean - 30.0))
        + 0.24 * np.cos(np.radians(2.0 * h_mean))
        + 0.32 * np.cos(np.radians(3.0 * h_mean + 6.0))
        - 0.20 * np.cos(np.radians(4.0 * h_mean - 63.0))
    )
    d_theta = 30.0 * np.exp(-(((h_mean - 275.0) / 25.0) ** 2))
    cp_mean7 = cp_mean**7
    r_c = 2.0 * np.sqrt(cp_mean7 / (cp_mean7 + 25.0**7))
    l_offset2 = (l_mean - 50.0) ** 2
    s_l = 1.0 + 0.015 * l_offset2 / np.sqrt(20.0 + l_offset2)
    s_c = 1.0 + 0.045 * cp_mean
    s_h = 1.0 + 0.015 * cp_mean * t
    r_t = -np.sin(np.radians(2.0 * d_theta)) * r_c

    dl = d_lp / (k_l * s_l)
    dc = d_cp / (k_c * s_c)
    dhh = d_hp / (k_h * s_h)
    return np.sqrt(dl**2 + dc**2 + dhh**2 + r_t * dc * dhh)


# [Ottosson]_: linear sRGB -> LMS, and cube-rooted LMS -> Lab.
_OKLAB_M1 = np.array(
    [
        [0.4122214708, 0.5363325363, 0.0514459929],
        [0.2119034982, 0.6806995451, 0.1073969566],
        [0.0883024619, 0.2817188376, 0.6299787005],
    ]
)
_OKLAB_M2 = np.array(
    [
        [0.2104542553, 0.7936177850, -0.0040720468],
        [1.9779984951, -2.4285922050, 0.4505937099],
        [0.0259040371, 0.7827717662, -0.8086757660],
    ]
)
# Exact inverses (Ottosson's published ten-digit inverses round-trip only to ~2e-7).
_OKLAB_M1_INV = np.linalg.inv(_OKLAB_M1)
_OKLAB_M2_INV = np.linalg.inv(_OKLAB_M2)


def linear_srgb_to_oklab(rgb: npt.ArrayLike) -> FloatArray:
    """Linear sRGB (..., 3) -> OkLab (L, a, b) (..., 3) [Ottosson]_; white is (1, 0, 0)."""
    values = _as_float(rgb)
    _check_triplets(values, "rgb")
    return _apply_matrix(_OKLAB_M2, np.cbrt(_apply_matrix(_OKLAB_M1, values)))


def oklab_to_linear_srgb(lab: npt.ArrayLike) -> FloatArray:
    """OkLab (..., 3) -> linear sRGB (..., 3) [Ottosson]_."""
    values = _as_float(lab)
    _check_triplets(values, "lab")
    return _apply_matrix(_OKLAB_M1_INV, _apply_matrix(_OKLAB_M2_INV, values) ** 3)


def oklab_to_oklch(lab: npt.ArrayLike) -> FloatArray:
    """OkLab (..., 3) -> OkLCh (L, C, h) (..., 3), hue ``h`` in degrees in [0, 360)."""
    values = _as_float(lab)
    _check_triplets(values, "lab")
    chroma = np.hypot(values[..., 1], values[..., 2])
    hue = np.degrees(np.arctan2(values[..., 2], values[..., 1])) % 360.0
    return np.stack([values[..., 0], chroma, hue], axis=-1).astype(values.dtype, copy=False)


def oklch_to_oklab(lch: npt.ArrayLike) -> FloatArray:
    """OkLCh (L, C, h in degrees) (..., 3) -> OkLab (..., 3)."""
    values = _as_float(lch)
    _check_triplets(values, "lch")
    h = np.radians(values[..., 2])
    lab = np.stack(
        [values[..., 0], values[..., 1] * np.cos(h), values[..., 1] * np.sin(h)], axis=-1
    )
    return lab.astype(values.dtype, copy=False)


def linear_srgb_to_oklch(rgb: npt.ArrayLike) -> FloatArray:
    """Linear sRGB (..., 3) -> OkLCh (..., 3)."""
    return oklab_to_oklch(linear_srgb_to_oklab(rgb))


#: Patch names of the ColorChecker Classic, row by row from the top left (dark skin).
COLORCHECKER_NAMES: tuple[str, ...] = (
    "dark skin", "light skin", "blue sky", "foliage", "blue flower", "bluish green",
    "orange", "purplish blue", "moderate red", "purple", "yellow green", "orange yellow",
    "blue", "green", "red", "yellow", "magenta", "cyan",
    "white 9.5", "neutral 8", "neutral 6.5", "neutral 5", "neutral 3.5", "black 2",
)  # fmt: skip

#: (24, 3) CIELAB (D50, 2 degree) of the ColorChecker Classic made after November 2014
#: ([XRite]_), in the order of :data:`COLORCHECKER_NAMES`.
COLORCHECKER_LAB_D50 = np.array(
    [
        [37.54, 14.37, 14.92], [64.66, 19.27, 17.50], [49.32, -3.82, -22.54],
        [43.46, -12.74, 22.72], [54.94, 9.61, -24.79], [70.48, -32.26, -0.37],
        [62.73, 35.83, 56.50], [39.43, 10.75, -45.17], [50.57, 48.64, 16.67],
        [30.10, 22.54, -20.87], [71.77, -24.13, 58.19], [71.51, 18.24, 67.37],
        [28.37, 15.42, -49.80], [54.38, -39.72, 32.27], [42.43, 51.05, 28.62],
        [81.80, 2.67, 80.41], [50.63, 51.28, -14.12], [49.57, -29.71, -28.32],
        [95.19, -1.03, 2.93], [81.29, -0.57, 0.44], [66.89, -0.75, -0.06],
        [50.76, -0.13, 0.14], [35.63, -0.46, -0.48], [20.64, 0.07, -0.46],
    ]
)  # fmt: skip

#: Indices of the six neutral patches (bottom row) in :data:`COLORCHECKER_NAMES`.
COLORCHECKER_NEUTRALS = tuple(range(18, 24))


def colorchecker_linear_srgb() -> npt.NDArray[np.float64]:
    """(24, 3) float64 linear sRGB (D65) of the ColorChecker, Bradford-adapted from D50.

    The cyan patch lies just outside the sRGB gamut, so its red component is slightly
    negative; it is returned as is rather than clipped.
    """
    return lab_d50_to_linear_srgb(COLORCHECKER_LAB_D50)
