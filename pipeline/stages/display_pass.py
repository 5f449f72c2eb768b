"""From denoised camera RGB to sRGB-encoded display values, in one pass over the image.

Row by row, every pixel goes through, in this order (each stage's arithmetic is in its own
module, as a function on one row held as planes, :mod:`pipeline.planar_rows`):

1. the camera-to-sRGB matrix times the exposure gain (:func:`pipeline.colour.transforms.matrix_row`);
2. the black point's soft toe (:func:`pipeline.stages.black_point.toe_row`);
3. the local tone map (:func:`pipeline.stages.local_tone_mapping.gain_row`), unless it is
   the identity;
4. the filmic tone curve (:func:`pipeline.stages.tone_curve.tone_map_row`);
5. the sRGB encoding (:func:`pipeline.colour.output_transform.srgb_encode_row`).

Run one after the other, each would be a pass over the whole image (a 12 MP float32 image
is 146 MB: 20-50 ms of memory traffic a pass); here a row stays in cache from the matrix to
the encoding, and the image is read and written once.
"""

from __future__ import annotations

import numba
import numpy as np
import numpy.typing as npt

from pipeline.colour.output_transform import srgb_encode_row, srgb_power_polynomial
from pipeline.colour.transforms import matrix_row
from pipeline.errors import InvalidParameterError
from pipeline.planar_rows import merge_row, split_row
from pipeline.stages import local_tone_mapping, tone_curve
from pipeline.stages.black_point import toe_row
from pipeline.stages.local_tone_mapping import gain_row
from pipeline.stages.tone_curve import tone_map_row, tone_scratch

#: Rows a thread renders in one go (their scratch rows are made once per band).
_BAND_ROWS = 32


@numba.njit(cache=True, parallel=True, nogil=True, fastmath=True)
def _display_kernel(
    rgb, matrix, black, local_on, a, b, compression, anchor, weights, floor, max_lift,
    max_cut, table, white, desaturate_from, power,
):  # fmt: skip
    h, w, _ = rgb.shape
    for band in numba.prange((h + _BAND_ROWS - 1) // _BAND_ROWS):
        planes = np.empty((3, w), np.float32)
        scratch = tone_scratch(w)
        for y in range(band * _BAND_ROWS, min((band + 1) * _BAND_ROWS, h)):
            split_row(rgb, y, planes)
            matrix_row(planes, matrix)
            if black > 0:
                for c in range(3):
                    toe_row(planes[c], black)
            if local_on:
                gain_row(planes, y, h, a, b, compression, anchor, weights, floor, max_lift,
                         max_cut)
            tone_map_row(planes, table, white, desaturate_from, scratch)
            merge_row(planes, rgb, y)
            srgb_encode_row(rgb[y].reshape(-1), power)


def render(
    rgb: npt.NDArray[np.float32],
    matrix: npt.ArrayLike,
    black: float,
    tone_map: local_tone_mapping.ToneMap,
    curve: tone_curve.FilmicCurve,
) -> npt.NDArray[np.float32]:
    """Render a denoised camera-RGB (H, W, 3) float32 image (C order) to sRGB-encoded
    [0, 1], in place.

    Parameters
    ----------
    matrix : (3, 3)
        Camera RGB to scene-linear sRGB, times the exposure gain.
    black : float
        The glare level to take out, after exposure (:mod:`pipeline.stages.black_point`;
        0 leaves the image alone).
    tone_map, curve
        The fitted local tone map and the tone curve.
    """
    m = np.asarray(matrix, dtype=np.float32)
    if m.shape != (3, 3):
        raise InvalidParameterError(f"matrix has shape {m.shape}: expected (3, 3)")
    _display_kernel(
        rgb, m, np.float32(max(black, 0.0)), not tone_map.is_identity,
        *local_tone_mapping.kernel_arguments(tone_map), tone_curve.curve_table(curve),
        np.float32(curve.white), np.float32(curve.desaturate_from), srgb_power_polynomial(),
    )  # fmt: skip
    return rgb
