"""Local tone mapping for high-contrast scenes: compress the base layer, keep the detail.

The log-luminance is split into an edge-preserving base and detail (Durand and Dorsey,
"Fast Bilateral Filtering for the Display of High-Dynamic-Range Images", SIGGRAPH 2002);
only the base's range is compressed, so local contrast survives. The base comes from the
guided filter (He, Sun, Tang, "Guided Image Filtering", IEEE TPAMI 35(6), 2013,
DOI 10.1109/TPAMI.2012.213), computed on a downsampled image and applied at full
resolution through its upsampled linear coefficients ("Fast Guided Filter", He and Sun,
arXiv:1505.00996, 2015), so edges stay sharp without a full-resolution filter.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import overload

import numba
import numpy as np
import numpy.typing as npt

from pipeline.colour.transforms import LUMINANCE_WEIGHTS
from pipeline.guided_filter import box_mean
from pipeline.planar_rows import merge_row, split_row
from pipeline.stages.exposure import MIDDLE_GREY
from pipeline.stages.percentiles import percentiles

#: Luminance below this (about the read noise of a base-ISO frame) counts as black: the
#: tone map must not lift sensor noise.
_LOG_FLOOR = 2.0**-12
#: Largest lift of the shadows and largest cut of the highlights, in EV.
MAX_LIFT_EV = 2.0
MAX_CUT_EV = 3.0


@dataclass(frozen=True, eq=False)
class ToneMap:
    """A fitted local tone map: guided-filter coefficients and the base compression.

    ``a`` and ``b`` are (h, w) float32 on the downsampled grid: base = a * L + b with L the
    log2 luminance. The gain in EV at a pixel is ``(compression - 1) * (base - anchor)``.
    """

    a: npt.NDArray[np.float32]
    b: npt.NDArray[np.float32]
    compression: float
    anchor_log2: float

    @property
    def is_identity(self) -> bool:
        """True when the scene fits the display range and nothing is compressed."""
        return self.compression >= 1.0

    @overload
    def mapped(self, value: float) -> float: ...
    @overload
    def mapped(self, value: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]: ...

    def mapped(self, value: float | npt.NDArray[np.float64]) -> float | npt.NDArray[np.float64]:
        """Where a flat area of scene luminance ``value`` (a number or an array) lands
        after the tone map."""
        values = np.asarray(value, dtype=np.float64)
        log_value = np.log2(np.maximum(values, _LOG_FLOOR))
        ev = (self.compression - 1.0) * (log_value - self.anchor_log2)
        result = values * 2.0 ** np.clip(ev, -MAX_CUT_EV, MAX_LIFT_EV)
        return float(result) if result.ndim == 0 else result


def fit(
    luminance_small: npt.NDArray[np.float32],
    strength: float,
    target_range_ev: float = 7.0,
    edge_ev: float = 0.5,
) -> ToneMap:
    """Fit a tone map to a downsampled linear luminance image.

    Parameters
    ----------
    luminance_small : (h, w) float32
        Linear luminance after exposure (middle grey at 0.18).
    strength : float in [0, 1]
        0 leaves the image alone; 1 compresses the base to ``target_range_ev``.
    target_range_ev : float
        Range of the base layer (0.5th to 99.5th percentile) the display can show well.
    edge_ev : float
        Steps in log luminance larger than this are treated as edges (guided filter eps).
    """
    log_y = np.log2(np.maximum(luminance_small, _LOG_FLOOR)).astype(np.float64)
    radius = max(2, round(min(log_y.shape) / 24))
    mean = box_mean(log_y, radius)
    variance = np.maximum(box_mean(log_y * log_y, radius) - mean * mean, 0.0)
    a = variance / (variance + edge_ev**2)
    b = mean - a * mean
    a_mean = box_mean(a, radius)
    b_mean = box_mean(b, radius)
    base = a_mean * log_y + b_mean
    lo, hi = percentiles(base, [0.5, 99.5])
    scene_range = max(hi - lo, 1e-6)
    full = min(1.0, target_range_ev / scene_range)
    compression = 1.0 - float(np.clip(strength, 0.0, 1.0)) * (1.0 - full)
    return ToneMap(
        a=a_mean.astype(np.float32),
        b=b_mean.astype(np.float32),
        compression=compression,
        anchor_log2=float(np.log2(MIDDLE_GREY)),
    )


@numba.njit(cache=True, nogil=True, inline="always")
def gain_row(planes, y, h, a, b, compression, anchor, weights, floor, max_lift, max_cut):
    """Apply the tone map (``a``, ``b`` on its grid) to row ``y`` of an (h, W) image given
    as (3, W) float32 ``planes`` (:mod:`pipeline.planar_rows`), in place."""
    w = planes.shape[1]
    gh, gw = a.shape
    sy = np.float32(gh) / np.float32(h)
    sx = np.float32(gw) / np.float32(w)
    k = np.float32(compression - 1.0)
    fy = min(max((y + np.float32(0.5)) * sy - np.float32(0.5), np.float32(0.0)), np.float32(gh - 1))
    y0 = min(int(fy), gh - 2) if gh > 1 else 0
    ty = fy - y0
    y1 = min(y0 + 1, gh - 1)
    for x in range(w):
        fx = min(max((x + np.float32(0.5)) * sx - np.float32(0.5), np.float32(0.0)), np.float32(gw - 1))
        x0 = min(int(fx), gw - 2) if gw > 1 else 0
        tx = fx - x0
        x1 = min(x0 + 1, gw - 1)
        av = (a[y0, x0] * (1 - tx) + a[y0, x1] * tx) * (1 - ty) + (
            a[y1, x0] * (1 - tx) + a[y1, x1] * tx
        ) * ty
        bv = (b[y0, x0] * (1 - tx) + b[y0, x1] * tx) * (1 - ty) + (
            b[y1, x0] * (1 - tx) + b[y1, x1] * tx
        ) * ty
        lum = weights[0] * planes[0, x] + weights[1] * planes[1, x] + weights[2] * planes[2, x]
        log_y = np.log2(max(lum, floor))
        base = av * log_y + bv
        gain = np.exp2(min(max(k * (base - anchor), -max_cut), max_lift))
        planes[0, x] *= gain
        planes[1, x] *= gain
        planes[2, x] *= gain


@numba.njit(cache=True, parallel=True, nogil=True)
def _apply_kernel(rgb, a, b, compression, anchor, weights, floor, max_lift, max_cut):
    h, w, _ = rgb.shape
    for y in numba.prange(h):
        planes = np.empty((3, w), np.float32)
        split_row(rgb, y, planes)
        gain_row(planes, y, h, a, b, compression, anchor, weights, floor, max_lift, max_cut)
        merge_row(planes, rgb, y)


def kernel_arguments(tone_map: ToneMap) -> tuple:
    """``tone_map`` as the arguments of :func:`gain_row` after ``planes, y, h``."""
    return (
        tone_map.a,
        tone_map.b,
        np.float32(tone_map.compression),
        np.float32(tone_map.anchor_log2),
        LUMINANCE_WEIGHTS,
        np.float32(_LOG_FLOOR),
        np.float32(MAX_LIFT_EV),
        np.float32(MAX_CUT_EV),
    )


def apply(rgb: npt.NDArray[np.float32], tone_map: ToneMap) -> npt.NDArray[np.float32]:
    """Apply ``tone_map`` to a scene-linear (H, W, 3) float32 sRGB image (rows
    contiguous), in place."""
    if tone_map.is_identity:
        return rgb
    _apply_kernel(rgb, *kernel_arguments(tone_map))
    return rgb
