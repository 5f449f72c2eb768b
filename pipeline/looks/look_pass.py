"""A look's display-referred stages, in one pass over the image.

After the tone curve (sRGB-encoded, display-referred) and sharpening, every pixel goes
through, in this order:

1. vignette (:mod:`pipeline.looks.vignette`), a gain on linear light applied to encoded values;
2. the look's colour transform, a function of the colour alone, baked into a 3D LUT:

   a. sRGB decoding;
   b. colour grading in OkLab (:mod:`pipeline.looks.colour_grading`): per-hue saturation and
      hue with skin protection, vibrance, monochrome, split toning, gamut mapping;
   c. the user's LUT (:mod:`pipeline.looks.lut3d`) if its input space is linear sRGB;
   d. sRGB encoding;
   e. the user's LUT if its input space is sRGB-encoded (the default);
   f. output levels (black and white points, :class:`pipeline.looks.look.ToneParams`);

3. film grain (:mod:`pipeline.looks.grain`), last, as on film it sits on top of everything.

Baking step 2 into a 33-point LUT over encoded RGB (as OpenColorIO bakes its transforms)
makes a pixel's colour cost one tetrahedral lookup, whatever the look does; the grid is
graded by the same code at every node, so greys stay exactly grey (tetrahedral
interpolation of a grey input uses only the grey diagonal) and monochrome looks give
exactly equal channels. Rows are processed in bands so grain's lattice is made per band:
the image is read and written once, with no full-frame temporaries.
"""

from __future__ import annotations

import functools

import numba
import numpy as np
import numpy.typing as npt

from pipeline.colour.metrics import srgb_decode, srgb_encode
from pipeline.errors import InvalidParameterError
from pipeline.looks import lut3d
from pipeline.looks.colour_grading import grade
from pipeline.looks.grain import fill_lattice, grain_row, lattice_row, noise_row, plan_grain
from pipeline.looks.look import Look
from pipeline.looks.lut3d import (
    BAND_ROWS,
    Lut3D,
    LutParams,
    apply_planar_row,
    grid_transform,
    identity_lut,
)
from pipeline.looks.vignette import darken_row, plan_vignette, vignette_row
from pipeline.planar_rows import merge_row, split_row

#: Grid points per axis of the baked colour transform.
BAKED_LUT_SIZE = 33


def _colour_is_identity(look: Look) -> bool:
    tone = look.tone
    return (
        look.colour.is_identity
        and look.split_toning.is_identity
        and look.lut is None
        and tone.black_point == 0
        and tone.white_point == 1
    )


def _apply_user_lut(rgb: npt.NDArray[np.float64], params: LutParams) -> npt.NDArray[np.float64]:
    mapped = lut3d.apply(rgb.astype(np.float32)[None], params.lut)[0]
    return rgb + params.strength * (mapped - rgb)


@functools.lru_cache(maxsize=16)
def bake_colour(look: Look, size: int = BAKED_LUT_SIZE) -> Lut3D:
    """Step 2 of ``look`` (see the module docstring) as a LUT over sRGB-encoded [0, 1]^3."""
    grid = identity_lut(size).table.reshape(-1, 3)
    rgb = grade(srgb_decode(grid.astype(np.float64)), look.colour, look.split_toning)
    user = look.lut
    if user is not None and user.input_space == "linear-srgb":
        rgb = _apply_user_lut(rgb, user)
    rgb = np.clip(srgb_encode(np.clip(rgb, 0.0, 1.0)), 0.0, 1.0)
    if user is not None and user.input_space == "srgb":
        rgb = np.clip(_apply_user_lut(rgb, user), 0.0, 1.0)
    black, white = look.tone.black_point, look.tone.white_point
    table = (black + (white - black) * rgb).astype(np.float32).reshape(size, size, size, 3)
    return Lut3D(table, np.zeros(3, np.float32), np.ones(3, np.float32))


@numba.njit(cache=True, parallel=True, nogil=True, fastmath=True)
def _look_kernel(
    rgb, vignette_on, vignette, colour_on, flat, size, scale, offset,
    grain_on, row_base, row_weights, row_norm, col_base, col_weights, col_norm,
    amplitude, inv_bound, seed,
):  # fmt: skip
    h, w, _ = rgb.shape
    lattice_width = col_base[w - 1] + 4 if grain_on else 1
    for band in numba.prange((h + BAND_ROWS - 1) // BAND_ROWS):
        y0 = band * BAND_ROWS
        y1 = min(y0 + BAND_ROWS, h)
        # Each effect is its own loop over a planar row (see pipeline.planar_rows).
        planes = np.empty((3, w), np.float32)
        gain = np.empty(w, np.float32)
        encoded_gain = np.empty(w, np.float32)
        corners = np.empty((3, w), np.int32)
        weights = np.empty((4, w), np.float32)
        first = row_base[y0] if grain_on else 0
        patch = np.empty((row_base[y1 - 1] + 4 - first if grain_on else 1, lattice_width),
                         np.float32)
        lattice = np.empty(lattice_width, np.float32)
        noise = np.empty(w, np.float32)
        if grain_on:
            fill_lattice(patch, first, seed)
        for y in range(y0, y1):
            split_row(rgb, y, planes)
            if vignette_on:
                vignette_row(vignette, y, h, gain, encoded_gain)
                for c in range(3):
                    darken_row(planes[c], gain, encoded_gain)
            if colour_on:
                apply_planar_row(planes, flat, size, scale, offset, corners, weights)
            if grain_on:
                lattice_row(patch, first, row_base[y], row_weights[y], row_norm[y], lattice)
                noise_row(lattice, col_base, col_weights, col_norm, noise)
                for c in range(3):
                    grain_row(planes[c], noise, amplitude, inv_bound)
            merge_row(planes, rgb, y)


def is_identity(look: Look) -> bool:
    """Whether :func:`apply_look` would leave every pixel unchanged."""
    return look.colorimetric or (
        _colour_is_identity(look) and look.vignette.amount == 0 and look.grain.amount == 0
    )


def apply_look(
    rgb: npt.NDArray[np.float32], look: Look, *, seed: int = 0
) -> npt.NDArray[np.float32]:
    """Apply ``look``'s display-referred stages to an sRGB-encoded image, in place.

    Parameters
    ----------
    rgb : (H, W, 3) float32
        sRGB-encoded, [0, 1], C-contiguous; overwritten with the result, also in [0, 1].
    look : Look
        Its vignette, colour (grading, split toning, LUT, output levels) and grain are
        applied; a colorimetric look leaves the image alone.
    seed : int
        Seeds the grain: equal seeds give identical grain.
    """
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.float32 or 0 in rgb.shape:
        raise InvalidParameterError(
            f"rgb has shape {rgb.shape} and dtype {rgb.dtype}: expected (H, W, 3) float32"
        )
    if not 0 <= seed < 2**64:
        raise InvalidParameterError(f"seed={seed}: expected 0 <= seed < 2**64")
    if is_identity(look):
        return rgb
    colour_on = not _colour_is_identity(look)
    baked = bake_colour(look) if colour_on else identity_lut(2)
    plan = plan_grain(look.grain, rgb.shape[:2])
    _look_kernel(
        rgb, look.vignette.amount > 0, plan_vignette(look.vignette),
        colour_on, baked.table.reshape(-1), baked.size, *grid_transform(baked),
        look.grain.amount > 0, plan.rows.base, plan.rows.weights, plan.rows.inv_norm,
        plan.columns.base, plan.columns.weights, plan.columns.inv_norm,
        np.float32(plan.amplitude), np.float32(1.0 / plan.noise_bound), np.uint64(seed),
    )  # fmt: skip
    return rgb
