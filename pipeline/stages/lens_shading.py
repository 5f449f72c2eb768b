"""Lens shading correction: per-CFA-site gains from a coarse grid, bilinearly interpolated.

The grid follows the DNG GainMap opcode (DNG 1.6, sec. 7, OpcodeList2 "GainMap"): points
at the frame's corners and evenly spaced between, one plane per site of the 2x2 tile.
"""

from __future__ import annotations

import numba
import numpy as np
import numpy.typing as npt

from pipeline.errors import InvalidParameterError
from pipeline.raw_frame import LensShadingMap


@numba.njit(cache=True, parallel=True, nogil=True, fastmath=True)
def _apply_gain_grid_kernel(cfa, gains, out):
    """``out = cfa * gains`` interpolated bilinearly, a row at a time: the grid's two
    planes of the row's CFA phase interpolated to the row, then each grid column's span
    of pixels filled linearly (contiguous loops, which vectorise; the phase of each pixel
    picks its plane by arithmetic)."""
    h, w = cfa.shape
    gh = gains.shape[1]
    gw = gains.shape[2]
    sy = np.float32(gh - 1) / np.float32(max(h - 1, 1))
    sx = np.float32(gw - 1) / np.float32(max(w - 1, 1))
    # Pixel x lies in grid span min(int(x * sx), gw - 2), at fraction x * sx - span.
    span_start = np.zeros(gw, dtype=np.int64)
    span_start[gw - 1] = w
    for x in range(w - 1, -1, -1):
        span_start[min(int(x * sx), gw - 2)] = x
    for j in range(gw - 2, 0, -1):  # a span no pixel falls in starts where the next does
        if span_start[j] == 0:
            span_start[j] = span_start[j + 1]
    odd = np.empty(w, dtype=np.float32)
    for x in range(w):
        odd[x] = np.float32(x & 1)
    for y in numba.prange(h):
        fy = y * sy
        y0 = min(int(fy), gh - 2)
        ty = fy - y0
        phase = (y & 1) * 2
        even_gain = gains[phase, y0] * (1 - ty) + gains[phase, y0 + 1] * ty
        odd_gain = gains[phase + 1, y0] * (1 - ty) + gains[phase + 1, y0 + 1] * ty
        for j in range(gw - 1):
            start, end = span_start[j], span_start[j + 1]
            e0, e1 = even_gain[j], even_gain[j + 1] - even_gain[j]
            o0, o1 = odd_gain[j], odd_gain[j + 1] - odd_gain[j]
            for x in range(start, end):
                t = x * sx - j
                even = e0 + e1 * t
                gain = even + (o0 + o1 * t - even) * odd[x]
                out[y, x] = cfa[y, x] * gain


def apply(
    cfa: npt.NDArray[np.float32],
    shading: LensShadingMap,
    out: npt.NDArray[np.float32] | None = None,
) -> npt.NDArray[np.float32]:
    """Multiply an (H, W) float32 mosaic by the interpolated gains of ``shading``."""
    gains = np.ascontiguousarray(shading.gains, dtype=np.float32)
    if gains.ndim != 3 or gains.shape[0] != 4 or gains.shape[1] < 2 or gains.shape[2] < 2:
        raise InvalidParameterError(
            f"shading.gains has shape {gains.shape}: expected (4, gh, gw) with gh, gw >= 2"
        )
    if out is None:
        out = np.empty_like(cfa)
    _apply_gain_grid_kernel(cfa, gains, out)
    return out


def apply_to_rgb(rgb: npt.NDArray[np.float32], shading: LensShadingMap,
                 channels: npt.NDArray[np.integer]) -> npt.NDArray[np.float32]:
    """Multiply (H, W, 3) linear camera RGB of even size, in place, by the gains of
    ``shading``, whose planes follow the CFA tile ``channels`` ((2, 2): 0 R, 1 G, 2 B):
    each channel by its sites' gain, the mean over its sites in each 2x2 tile (the two
    greens'), constant over the tile (the grid varies over hundreds of pixels)."""
    h, w, _ = rgb.shape
    site_gains = apply(np.ones((h, w), dtype=np.float32), shading)
    tiles = site_gains.reshape(h // 2, 2, w // 2, 2)
    for channel in range(3):
        sites = np.asarray(channels) == channel
        gain = np.zeros((h // 2, w // 2), dtype=np.float32)
        for sy, sx in zip(*np.nonzero(sites)):
            gain += tiles[:, sy, :, sx]
        gain /= np.count_nonzero(sites)
        rgb[..., channel] *= np.repeat(np.repeat(gain, 2, axis=0), 2, axis=1)
    return rgb
