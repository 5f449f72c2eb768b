"""Black level subtraction and normalisation of the raw mosaic."""

from __future__ import annotations

import numba
import numpy as np
import numpy.typing as npt

from pipeline.errors import InvalidParameterError


@numba.njit(cache=True, parallel=True, nogil=True)
def _normalize_kernel(cfa, black, scale, out):
    # A row's sites alternate between two colours: pairs of sites, with the row's two
    # blacks and scales held in registers, make a loop the compiler vectorises.
    h, w = cfa.shape
    for y in numba.prange(h):
        raw = cfa[y]
        row = out[y]
        black0, black1 = black[y & 1, 0], black[y & 1, 1]
        scale0, scale1 = scale[y & 1, 0], scale[y & 1, 1]
        for pair in range(w // 2):
            row[2 * pair] = (np.float32(raw[2 * pair]) - black0) * scale0
            row[2 * pair + 1] = (np.float32(raw[2 * pair + 1]) - black1) * scale1
        if w & 1:
            row[w - 1] = (np.float32(raw[w - 1]) - black0) * scale0


def normalize(
    cfa: npt.NDArray[np.uint16],
    black_level: tuple[float, float, float, float],
    white_level: float,
    out: npt.NDArray[np.float32] | None = None,
) -> npt.NDArray[np.float32]:
    """Subtract the black level per CFA site and scale so the white level becomes 1.0.

    Parameters
    ----------
    cfa : (H, W) uint16
        The raw mosaic.
    black_level : four floats
        Black level of each site of the 2x2 tile, row-major, in raw units.
    white_level : float
        Raw value at which the sensor clips.

    Returns
    -------
    (H, W) float32
        0 at black, 1 at clipping. Noise below black stays negative (it averages out).
    """
    black = np.asarray(black_level, dtype=np.float32).reshape(2, 2)
    if np.any(black >= white_level):
        raise InvalidParameterError(
            f"black_level={tuple(black_level)} must be below white_level={white_level}"
        )
    scale = (1.0 / (np.float32(white_level) - black)).astype(np.float32)
    if out is None:
        out = np.empty(cfa.shape, dtype=np.float32)
    _normalize_kernel(cfa, black, scale, out)
    return out
