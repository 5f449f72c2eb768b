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


@numba.njit(cache=True, parallel=True, nogil=True)
def _apply_gain_grid_kernel(cfa, gains, out):
    h, w = cfa.shape
    gh = gains.shape[1]
    gw = gains.shape[2]
    sy = np.float32(gh - 1) / np.float32(max(h - 1, 1))
    sx = np.float32(gw - 1) / np.float32(max(w - 1, 1))
    for y in numba.prange(h):
        fy = y * sy
        y0 = min(int(fy), gh - 2)
        ty = fy - y0
        for x in range(w):
            fx = x * sx
            x0 = min(int(fx), gw - 2)
            tx = fx - x0
            p = (y & 1) * 2 + (x & 1)
            top = gains[p, y0, x0] * (1 - tx) + gains[p, y0, x0 + 1] * tx
            bottom = gains[p, y0 + 1, x0] * (1 - tx) + gains[p, y0 + 1, x0 + 1] * tx
            out[y, x] = cfa[y, x] * (top * (1 - ty) + bottom * ty)


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
