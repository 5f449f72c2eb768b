"""Demosaicing: a Bayer mosaic to full RGB.

Green at red and blue sites is GBTF's estimate (section 2 of Pekkucuksen and Altunbasak 2010)
where green and the site's colour are locally correlated, blended towards an intra-green
directional estimate where they are anti-correlated (saturated edges, where colour
differences build mazes), and where they are strongly anti-correlated also towards the same
directional estimate of the colour sum (green plus the site's colour, which is flat where
one rises as the other falls). Red and blue mix two residual interpolations guided by that
green, GBTF's colour differences and minimized-Laplacian residual interpolation (MLRI,
section 3 of Kiku et al. 2014), per pixel by how well each predicts the nearby samples (the
criterion of adaptive residual interpolation, Monno et al. 2017, section 3); MLRI's value at
the other colour's sites weighs its two diagonals by how well each pair agrees.

    I. Pekkucuksen and Y. Altunbasak, "Gradient based threshold free color filter array
    interpolation", Proc. IEEE ICIP 2010. DOI 10.1109/ICIP.2010.5654327
    D. Kiku, Y. Monno, M. Tanaka and M. Okutomi, "Minimized-Laplacian residual interpolation
    for color image demosaicking", Proc. SPIE 9023, Digital Photography X, 2014.
    DOI 10.1117/12.2038425
    Y. Monno, D. Kiku, M. Tanaka and M. Okutomi, "Adaptive residual interpolation for color
    and multispectral image demosaicking", Sensors 17(12), 2787, 2017. DOI 10.3390/s17122787

``bench/demosaic_kodak.py`` measures it against the GBTF it replaced on Kodak 24 and on a
saturated-colour set (``bench/saturated_colour_set.py``); the README has the figures.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from numba import njit, prange

from pipeline.cfa import CfaPattern
from pipeline.errors import InvalidParameterError

MIN_SIZE = 8
"""Smallest height and width :func:`demosaic` accepts, in pixels."""

_MARGIN = 20
"""Halo of each tile in pixels: the reach of the red and blue stage (12: MLRI's fits, the
prediction errors and their 3x3-site sums) on green, plus the reach of green (8)."""

_CORR_LOW = -0.9
_CORR_HIGH = -0.4
"""Local green-colour correlations at which green is all intra-green and all GBTF."""

_SUM_CORR_LOW = -1.0
_SUM_CORR_HIGH = -0.6
"""Local green-colour correlations at which the colour-sum estimate may take all of green
(weighed against intra-green by residual energies) and none of it."""

_GBTF_ENERGY_SCALE = 0.9
_CD_ENERGY_SCALE = 0.6
"""Factors on the colour-difference residual energies before they are weighed against the
other estimate's: GBTF's green against intra-green, the colour-difference red and blue
against MLRI's (below 1 favours colour differences, as on Kodak's soft colours)."""

_VARIANCE_FLOOR = 6e-4
_LEVEL_FLOOR = 2.5e-3
_SLOPE_FLOOR = 0.45
_ENERGY_FLOOR = 1e-3
"""Regularizers relative to the mosaic's mean level m: a variance of ``_VARIANCE_FLOOR`` m^2
in the correlations, a difference of ``_LEVEL_FLOOR`` m in the intra-green weights, a
squared Laplacian sum of ``_SLOPE_FLOOR`` m^2 in MLRI's slopes, and ``_ENERGY_FLOOR`` m per
summed site in the residual energies (green: 5x5 pixels; red and blue: 3x3 sites); so
results scale with input."""

_TILE_ROWS = 128
_TILE_COLS = 256
"""Output pixels per tile: its float32 buffers (with halo) take about 3.7 MB together."""


def demosaic(
    cfa: npt.NDArray[np.float32],
    pattern: str | CfaPattern,
    out: npt.NDArray[np.float32] | None = None,
) -> npt.NDArray[np.float32]:
    """Interpolate a Bayer mosaic to RGB: correlation-adaptive GBTF green, adaptive red and blue.

    Parameters
    ----------
    cfa : (H, W) float32
        The mosaic, in any linear scale (e.g. 0..1 or 0..4095). Other real dtypes are
        converted to float32. H and W must be even and at least ``MIN_SIZE``.
    pattern : str or CfaPattern
        The 2x2 tile at the top-left corner: "RGGB", "BGGR", "GRBG" or "GBRG".
    out : (H, W, 3) float32, optional
        C-contiguous array to write the result into; allocated if omitted.

    Returns
    -------
    (H, W, 3) float32
        RGB in the scale of ``cfa``. Each measured sample is kept exactly at its site.

    Raises
    ------
    InvalidParameterError
        If ``cfa`` is not a 2-D real array of even size at least ``MIN_SIZE``, ``pattern``
        is not a Bayer pattern, or ``out`` has the wrong shape, dtype or layout.

    Notes
    -----
    Borders are handled by mirror reflection about the first and last row and column,
    which keeps the CFA phase, so edge pixels are interpolated like interior ones, from
    mirrored neighbours. The frame is processed in tiles on numba's threads, with small
    per-tile buffers, and without the GIL.

    References
    ----------
    I. Pekkucuksen and Y. Altunbasak, "Gradient based threshold free color filter array
    interpolation", Proc. IEEE ICIP 2010. DOI 10.1109/ICIP.2010.5654327
    D. Kiku, Y. Monno, M. Tanaka and M. Okutomi, "Minimized-Laplacian residual interpolation
    for color image demosaicking", Proc. SPIE 9023, 2014. DOI 10.1117/12.2038425
    Y. Monno, D. Kiku, M. Tanaka and M. Okutomi, "Adaptive residual interpolation for color
    and multispectral image demosaicking", Sensors 17(12), 2787, 2017. DOI 10.3390/s17122787
    """
    cfa_array = np.asarray(cfa)
    if cfa_array.ndim != 2:
        raise InvalidParameterError(f"cfa: expected an (H, W) array, got shape {cfa_array.shape}")
    if cfa_array.dtype.kind not in "uif":
        raise InvalidParameterError(f"cfa: expected a real numeric dtype, got {cfa_array.dtype}")
    height, width = cfa_array.shape
    if height % 2 or width % 2 or height < MIN_SIZE or width < MIN_SIZE:
        raise InvalidParameterError(
            f"cfa: shape {cfa_array.shape} must have even height and width of at least {MIN_SIZE}"
        )
    channels = CfaPattern.parse(pattern).channels
    mosaic = np.ascontiguousarray(cfa_array, dtype=np.float32)
    if out is None:
        out = np.empty((height, width, 3), dtype=np.float32)
    else:
        _check_out(out, (height, width, 3), mosaic)
    level = max(float(mosaic.mean(dtype=np.float64)), float(np.finfo(np.float32).tiny))
    _demosaic_adaptive_kernel(
        mosaic,
        channels,
        _TILE_ROWS,
        _TILE_COLS,
        _MARGIN,
        _CORR_LOW,
        _CORR_HIGH,
        _SUM_CORR_LOW,
        _SUM_CORR_HIGH,
        (_VARIANCE_FLOOR * level**2) ** 2,
        _LEVEL_FLOOR * level,
        _SLOPE_FLOOR * level**2,
        9 * _ENERGY_FLOOR * level,
        _GBTF_ENERGY_SCALE,
        25 * _ENERGY_FLOOR * level,
        _CD_ENERGY_SCALE,
        out,
    )
    return out


def _check_out(
    out: npt.NDArray[np.float32], shape: tuple[int, int, int], mosaic: npt.NDArray[np.float32]
) -> None:
    """Raise InvalidParameterError unless ``out`` can receive the result for ``mosaic``."""
    if not isinstance(out, np.ndarray):
        raise InvalidParameterError(
            f"out: expected a {shape} float32 array, got {type(out).__name__}"
        )
    if out.shape != shape or out.dtype != np.float32:
        raise InvalidParameterError(
            f"out: expected a {shape} float32 array, got {out.shape} {out.dtype}"
        )
    if not out.flags.c_contiguous or not out.flags.writeable:
        raise InvalidParameterError("out: expected a writeable C-contiguous array")
    if np.may_share_memory(out, mosaic):
        raise InvalidParameterError("out: must not share memory with cfa")


@njit(cache=True, parallel=True, fastmath=True, nogil=True)
def _demosaic_adaptive_kernel(
    cfa: npt.NDArray[np.float32],
    channels: npt.NDArray[np.int64],
    tile_rows: int,
    tile_cols: int,
    margin: int,
    corr_low: float,
    corr_high: float,
    sum_corr_low: float,
    sum_corr_high: float,
    corr_floor: float,
    level_floor: float,
    slope_floor: float,
    energy_floor: float,
    gbtf_energy_scale: float,
    green_energy_floor: float,
    cd_energy_scale: float,
    out: npt.NDArray[np.float32],
) -> None:
    """Correlation-adaptive GBTF green, adaptive red and blue of ``cfa`` into ``out``, by tiles.

    Each tile of ``tile_rows`` x ``tile_cols`` (even) output pixels is computed from a copy of the
    mosaic with a ``margin``-pixel halo (even, at least 20), mirror-reflected at the frame
    edges. Green at red and blue sites follows GBTF (Pekkucuksen and Altunbasak, 2010):
    Hamilton-Adams horizontal and vertical colour differences; their gradients; weights for
    N, S, W and E that are the inverse squared sums of the gradients over 5x5 windows on that
    side; the weighted mean of the colour differences averaged over 5 pixels in each
    direction. That estimate is blended with an intra-green one (cubic interpolations along
    the row and the column, weighted by the inverse of the nearest neighbours' difference
    plus ``level_floor``) by the local correlation of green with
    the site's colour (all GBTF at ``corr_high`` and above, none at ``corr_low`` and below;
    ``corr_floor`` keeps flat areas finite) times a share by residual energies: with E_g the
    smaller of the horizontal and vertical 5x5 sums of the colour differences' gradients,
    times ``gbtf_energy_scale``, and E_i the same of intra-green's, each plus
    ``green_energy_floor``, GBTF's share is E_i^4 / (E_i^4 + E_g^4). The colour-sum
    estimate (the same stencils on green plus colour, averaged with GBTF's directional
    weights, less the site's sample) takes what GBTF leaves by the same rule, E_i^4 /
    (E_i^4 + E_s^4) with E_s from the sums' gradients, ramped in by the correlation from
    none at ``sum_corr_high`` to all at ``sum_corr_low`` (and computed only where that ramp
    is above none: few sites). Red and blue are then
    GBTF's colour-difference estimate and MLRI's (Kiku et al., 2014; ``slope_floor``
    regularizes the fitted slopes), both guided by that green, weighted by the inverse
    squares of their errors predicting each sample from its 4 neighbouring sites, summed
    over 3x3 sites plus ``energy_floor`` (the criterion of ARI, Monno et al., 2017), the
    colour difference's times ``cd_energy_scale``. At the other colour's sites, MLRI's
    value is the mean of its two diagonals' (the fits and residuals of the sites at either
    end), each weighted by the other's squared difference of its ends plus
    ``level_floor``^2.
    """
    height, width = cfa.shape
    n_strips = (height + tile_rows - 1) // tile_rows
    buf_rows = tile_rows + 2 * margin
    buf_cols = tile_cols + 2 * margin
    # Green sites are those with (row + column) % 2 == green_parity; red ones are in rows
    # with row % 2 == red_y.
    green_parity = 0 if channels[0, 0] == 1 else 1
    red_y = 0 if channels[0, 0] == 0 or channels[0, 1] == 0 else 1
    red_x = 0 if channels[red_y, 0] == 0 else 1
    half = np.float32(0.5)
    quarter = np.float32(0.25)
    ninth = np.float32(1.0 / 9.0)
    four = np.float32(4.0)
    zero = np.float32(0.0)
    one = np.float32(1.0)
    corr_low = np.float32(corr_low)
    corr_high = np.float32(corr_high)
    sum_corr_low = np.float32(sum_corr_low)
    sum_corr_high = np.float32(sum_corr_high)
    diagonal_floor = np.float32(level_floor * level_floor)
    corr_floor = np.float32(corr_floor)
    level_floor = np.float32(level_floor)
    slope_floor = np.float32(slope_floor)
    energy_floor = np.float32(energy_floor)
    gbtf_energy_scale = np.float32(gbtf_energy_scale)
    green_energy_floor = np.float32(green_energy_floor)
    cd_energy_scale = np.float32(cd_energy_scale)
    prb_near = np.float32(10.0 / 32.0)
    cubic_near = np.float32(9.0 / 16.0)
    cubic_far = np.float32(1.0 / 16.0)
    prb_far = np.float32(1.0 / 32.0)
    # Inner loops index columns as x + (literal offset >= 0) so that numba needs no
    # negative-index wraparound and LLVM can vectorize them.
    alternating = np.empty(buf_cols, dtype=np.float32)
    for x in range(buf_cols):
        alternating[x] = 1.0 if x % 2 == 0 else -1.0
    for strip in prange(n_strips):
        mosaic = np.empty((buf_rows, buf_cols), dtype=np.float32)
        diff_h = np.empty((buf_rows, buf_cols), dtype=np.float32)
        diff_v = np.empty((buf_rows, buf_cols), dtype=np.float32)
        grad_h = np.empty((buf_rows, buf_cols), dtype=np.float32)
        grad_v = np.empty((buf_rows, buf_cols), dtype=np.float32)
        green_diff = np.empty((buf_rows, buf_cols), dtype=np.float32)
        grad_row = np.empty(buf_cols, dtype=np.float32)
        src_cols = np.empty(buf_cols, dtype=np.int64)
        intra_grad_h = np.empty((buf_rows, buf_cols), dtype=np.float32)
        intra_grad_v = np.empty((buf_rows, buf_cols), dtype=np.float32)
        green = np.empty((buf_rows, buf_cols), dtype=np.float32)
        quad = np.empty((8, buf_rows // 2, buf_cols // 2), dtype=np.float32)
        quad_sum = np.empty((8, buf_rows // 2, buf_cols // 2), dtype=np.float32)
        patch_h = np.empty((5, 9), dtype=np.float32)
        patch_v = np.empty((9, 5), dtype=np.float32)
        green_weight = np.empty((4, buf_rows // 2, buf_cols // 2), dtype=np.float32)
        sub = np.empty((10, buf_rows // 2, buf_cols // 2), dtype=np.float32)
        row_sum = np.empty((4, buf_rows // 2, buf_cols // 2), dtype=np.float32)
        colour = np.empty((2, tile_rows, tile_cols), dtype=np.float32)
        r0 = strip * tile_rows
        rows = min(tile_rows, height - r0)
        nr = rows + 2 * margin
        for c0 in range(0, width, tile_cols):
            cols = min(tile_cols, width - c0)
            nc = cols + 2 * margin
            # Local (y, x) is frame (r0 - margin + y, c0 - margin + x); margin, r0 and c0
            # are even, so local and frame CFA phases agree. Outside the frame, indices are
            # mirrored about its first and last row and column (period 2n - 2).
            for x in range(nc):
                j = c0 - margin + x
                if j < 0 or j >= width:
                    j = j % (2 * width - 2)
                    if j >= width:
                        j = 2 * width - 2 - j
                src_cols[x] = j
            for y in range(nr):
                i = r0 - margin + y
                if i < 0 or i >= height:
                    i = i % (2 * height - 2)
                    if i >= height:
                        i = 2 * height - 2 - i
                if c0 >= margin and c0 - margin + nc <= width:
                    for x in range(nc):
                        mosaic[y, x] = cfa[i, c0 - margin + x]
                else:
                    for x in range(nc):
                        mosaic[y, x] = cfa[i, src_cols[x]]

            # G - R (or G - B) from Hamilton-Adams estimates along rows and columns;
            # the same stencil estimates green at red/blue sites and red/blue at green sites,
            # so only the sign differs: + at red/blue sites, - at green ones.
            for y in range(2, nr - 2):
                sign_even = np.float32(-1.0) if y % 2 == green_parity else np.float32(1.0)
                for x in range(nc - 4):
                    centre = mosaic[y, x + 2]
                    sign = sign_even * alternating[x]
                    est_h = half * (mosaic[y, x + 1] + mosaic[y, x + 3]) + quarter * (
                        centre + centre - mosaic[y, x] - mosaic[y, x + 4]
                    )
                    est_v = half * (mosaic[y - 1, x + 2] + mosaic[y + 1, x + 2]) + quarter * (
                        centre + centre - mosaic[y - 2, x + 2] - mosaic[y + 2, x + 2]
                    )
                    diff_h[y, x + 2] = sign * (est_h - centre)
                    diff_v[y, x + 2] = sign * (est_v - centre)

            # Gradients of the colour differences: grad_h sums horizontal ones over 5 rows,
            # grad_v vertical ones over 5 columns, so that a 5x5 window sum is a 5-tap sum
            # of these along the other axis.
            for y in range(4, nr - 4):
                for x in range(nc - 6):
                    grad_h[y, x + 3] = (
                        abs(diff_h[y - 2, x + 2] - diff_h[y - 2, x + 4])
                        + abs(diff_h[y - 1, x + 2] - diff_h[y - 1, x + 4])
                        + abs(diff_h[y, x + 2] - diff_h[y, x + 4])
                        + abs(diff_h[y + 1, x + 2] - diff_h[y + 1, x + 4])
                        + abs(diff_h[y + 2, x + 2] - diff_h[y + 2, x + 4])
                    )
            for y in range(3, nr - 3):
                for x in range(nc - 4):
                    grad_row[x + 2] = abs(diff_v[y - 1, x + 2] - diff_v[y + 1, x + 2])
                for x in range(nc - 8):
                    grad_v[y, x + 4] = (
                        grad_row[x + 2]
                        + grad_row[x + 3]
                        + grad_row[x + 4]
                        + grad_row[x + 5]
                        + grad_row[x + 6]
                    )

            # Directional weights and the weighted colour difference, evaluated at every site
            # (column x + 7) for vectorization and used at red and blue ones. The weights are
            # scaled by the smallest window sum: their ratios, and so the result, are as in
            # the paper, but they stay in [0, 1] at any input scale.
            for y in range(7, nr - 7):
                for x in range(nc - 14):
                    w_n, w_s, w_w, w_e = _directional_weights(grad_v, grad_h, y, x)
                    run_n, run_s, run_w, run_e = _directional_runs(diff_v, diff_h, y, x)
                    green_diff[y, x + 7] = w_n * run_n + w_s * run_s + w_w * run_w + w_e * run_e

            # Green at red and blue sites: GBTF's estimate, blended towards an intra-green
            # one (cubic along the row and along the column, weighted by the inverse of the
            # nearest neighbours' difference plus level_floor) where green and the site's
            # colour are anti-correlated, or where GBTF's colour differences vary more than
            # intra-green does (residual energies in the best direction over 5x5 windows, as
            # in ARI's criterion).
            intra = diff_h
            for y in range(3, nr - 3):
                # Evaluated at every site for vectorization; green sites then get their sample.
                for x in range(nc - 6):
                    left = mosaic[y, x + 2]
                    right = mosaic[y, x + 4]
                    up = mosaic[y - 1, x + 3]
                    down = mosaic[y + 1, x + 3]
                    d_h = abs(left - right) + level_floor
                    d_v = abs(up - down) + level_floor
                    far_h = mosaic[y, x] + mosaic[y, x + 6]
                    far_v = mosaic[y - 3, x + 3] + mosaic[y + 3, x + 3]
                    est_h = cubic_near * (left + right) - cubic_far * far_h
                    est_v = cubic_near * (up + down) - cubic_far * far_v
                    intra[y, x + 3] = (d_v * est_h + d_h * est_v) / (d_h + d_v)
                for x in range(4 - (y + green_parity) % 2, nc - 3, 2):
                    intra[y, x] = mosaic[y, x]
            # intra_grad_h: horizontal gradients of intra-green (in diff_v) summed over 5
            # rows; intra_grad_v: vertical ones over 5 columns (as grad_h and grad_v).
            for y in range(2, nr - 2):
                for x in range(nc - 4):
                    diff_v[y, x + 2] = abs(intra[y, x + 1] - intra[y, x + 3])
                for x in range(nc - 4):
                    grad_row[x + 2] = abs(intra[y - 1, x + 2] - intra[y + 1, x + 2])
                for x in range(nc - 8):
                    intra_grad_v[y, x + 4] = (
                        grad_row[x + 2]
                        + grad_row[x + 3]
                        + grad_row[x + 4]
                        + grad_row[x + 5]
                        + grad_row[x + 6]
                    )
            for y in range(4, nr - 4):
                for x in range(nc - 4):
                    intra_grad_h[y, x + 2] = (
                        diff_v[y - 2, x + 2]
                        + diff_v[y - 1, x + 2]
                        + diff_v[y, x + 2]
                        + diff_v[y + 1, x + 2]
                        + diff_v[y + 2, x + 2]
                    )
            # Correlations of green with red and with blue on 2x2 CFA quads over 3x3-quad
            # windows. Quads start at red sites, so that they hold the same pixels for every
            # pattern. quad holds r, g, b, r^2, g^2, b^2, r g, b g; quad_sum their row sums.
            n_qr = (nr - red_y) // 2
            n_qc = (nc - red_x) // 2
            for qy in range(n_qr):
                y = 2 * qy + red_y
                for qx in range(n_qc):
                    x = 2 * qx + red_x
                    r = mosaic[y, x]
                    g = half * (mosaic[y, x + 1] + mosaic[y + 1, x])
                    b = mosaic[y + 1, x + 1]
                    quad[0, qy, qx] = r
                    quad[1, qy, qx] = g
                    quad[2, qy, qx] = b
                    quad[3, qy, qx] = r * r
                    quad[4, qy, qx] = g * g
                    quad[5, qy, qx] = b * b
                    quad[6, qy, qx] = r * g
                    quad[7, qy, qx] = b * g
            for k in range(8):
                for qy in range(n_qr):
                    for qx in range(1, n_qc - 1):
                        quad_sum[k, qy, qx] = (
                            quad[k, qy, qx - 1] + quad[k, qy, qx] + quad[k, qy, qx + 1]
                        )
            for qy in range(1, n_qr - 1):
                for qx in range(1, n_qc - 1):
                    mean_r = quad_sum[0, qy - 1, qx] + quad_sum[0, qy, qx] + quad_sum[0, qy + 1, qx]
                    mean_g = quad_sum[1, qy - 1, qx] + quad_sum[1, qy, qx] + quad_sum[1, qy + 1, qx]
                    mean_b = quad_sum[2, qy - 1, qx] + quad_sum[2, qy, qx] + quad_sum[2, qy + 1, qx]
                    mean_rr = (
                        quad_sum[3, qy - 1, qx] + quad_sum[3, qy, qx] + quad_sum[3, qy + 1, qx]
                    )
                    mean_gg = (
                        quad_sum[4, qy - 1, qx] + quad_sum[4, qy, qx] + quad_sum[4, qy + 1, qx]
                    )
                    mean_bb = (
                        quad_sum[5, qy - 1, qx] + quad_sum[5, qy, qx] + quad_sum[5, qy + 1, qx]
                    )
                    mean_rg = (
                        quad_sum[6, qy - 1, qx] + quad_sum[6, qy, qx] + quad_sum[6, qy + 1, qx]
                    )
                    mean_bg = (
                        quad_sum[7, qy - 1, qx] + quad_sum[7, qy, qx] + quad_sum[7, qy + 1, qx]
                    )
                    mean_r *= ninth
                    mean_g *= ninth
                    mean_b *= ninth
                    var_g = max(mean_gg * ninth - mean_g * mean_g, zero)
                    var_r = max(mean_rr * ninth - mean_r * mean_r, zero)
                    var_b = max(mean_bb * ninth - mean_b * mean_b, zero)
                    cov_r = mean_rg * ninth - mean_r * mean_g
                    cov_b = mean_bg * ninth - mean_b * mean_g
                    corr_r = cov_r / np.sqrt(var_r * var_g + corr_floor)
                    corr_b = cov_b / np.sqrt(var_b * var_g + corr_floor)
                    weight_r = (corr_r - corr_low) / (corr_high - corr_low)
                    weight_b = (corr_b - corr_low) / (corr_high - corr_low)
                    green_weight[0, qy, qx] = min(max(weight_r, zero), one)
                    green_weight[1, qy, qx] = min(max(weight_b, zero), one)
                    weight_r = (corr_r - sum_corr_high) / (sum_corr_low - sum_corr_high)
                    weight_b = (corr_b - sum_corr_high) / (sum_corr_low - sum_corr_high)
                    green_weight[2, qy, qx] = min(max(weight_r, zero), one)
                    green_weight[3, qy, qx] = min(max(weight_b, zero), one)
            # GBTF's share against intra-green by the residual energies, at every site (in
            # diff_v, free again), then green at red and blue sites.
            gbtf_share = diff_v
            for y in range(8, nr - 8):
                for x in range(nc - 16):
                    energy_gbtf = (
                        gbtf_energy_scale * _window_energy(grad_h, grad_v, y, x)
                        + green_energy_floor
                    )
                    energy_intra = _window_energy(intra_grad_h, intra_grad_v, y, x)
                    energy_intra += green_energy_floor
                    energy_gbtf *= energy_gbtf
                    energy_gbtf *= energy_gbtf
                    energy_intra *= energy_intra
                    energy_intra *= energy_intra
                    gbtf_share[y, x + 8] = energy_intra / (energy_intra + energy_gbtf)
            for y in range(8, nr - 8):
                k_site = 0 if (y % 2) == red_y else 1
                x0 = 8 + (y + green_parity + 1) % 2
                for x in range(17 - x0, nc - 8, 2):
                    green[y, x] = mosaic[y, x]
                for x in range(x0, nc - 8, 2):
                    qy = (y - red_y) // 2
                    qx = (x - red_x) // 2
                    weight = green_weight[k_site, qy, qx] * gbtf_share[y, x]
                    green[y, x] = intra[y, x] + weight * (
                        mosaic[y, x] + green_diff[y, x] - intra[y, x]
                    )
            # The colour-sum estimate, only at the few sites where green and the site's
            # colour are strongly anti-correlated: it takes what GBTF leaves, by the same rule
            # of residual energies against intra-green.
            for y in range(8, nr - 8):
                k_site = 0 if (y % 2) == red_y else 1
                x0 = 8 + (y + green_parity + 1) % 2
                qy = (y - red_y) // 2
                for x in range(x0, nc - 8, 2):
                    qx = (x - red_x) // 2
                    ramp = green_weight[2 + k_site, qy, qx]
                    if ramp <= zero:
                        continue
                    estimate, energy_sum = _colour_sum_green(
                        mosaic, grad_v, grad_h, patch_h, patch_v, y, x
                    )
                    energy_sum += green_energy_floor
                    energy_intra = _window_energy(intra_grad_h, intra_grad_v, y, x - 8)
                    energy_intra += green_energy_floor
                    energy_sum *= energy_sum
                    energy_sum *= energy_sum
                    energy_intra *= energy_intra
                    energy_intra *= energy_intra
                    weight = green_weight[k_site, qy, qx] * gbtf_share[y, x]
                    weight_sum = min(
                        ramp * energy_intra / (energy_intra + energy_sum), one - weight
                    )
                    green[y, x] += weight_sum * (estimate - mosaic[y, x] - intra[y, x])

            # Red and blue: two residual interpolations on each one's sub-lattice, mixed per
            # pixel by how well each predicts the samples (the criterion of ARI, Monno et al.
            # 2017). The colour-difference one (GBTF's: residual c - g, prb filter at the
            # other colour's sites, 4-neighbour mean at green sites) and MLRI (Kiku et al.
            # 2014: local fits c = a g + b, a from the Laplacians and b from the means over
            # 3x3 sites, averaged over 3x3 sites; the tentative estimate a g + b plus the
            # bilinearly interpolated residual).
            n_sr = nr // 2
            n_sc = nc // 2
            for k in range(2):
                py = red_y if k == 0 else 1 - red_y
                px = red_x if k == 0 else 1 - red_x
                # Red, then blue, into colour[0] and colour[1].
                site_value = sub[0]
                site_green = sub[1]
                lap_c = sub[2]
                lap_g = sub[3]
                for i in range(4, n_sr - 4):
                    for j in range(4, n_sc - 4):
                        site_value[i, j] = mosaic[py + 2 * i, px + 2 * j]
                        site_green[i, j] = green[py + 2 * i, px + 2 * j]
                for i in range(5, n_sr - 5):
                    for j in range(5, n_sc - 5):
                        lap_c[i, j] = four * site_value[i, j] - (
                            site_value[i - 1, j]
                            + site_value[i + 1, j]
                            + site_value[i, j - 1]
                            + site_value[i, j + 1]
                        )
                        lap_g[i, j] = four * site_green[i, j] - (
                            site_green[i - 1, j]
                            + site_green[i + 1, j]
                            + site_green[i, j - 1]
                            + site_green[i, j + 1]
                        )
                # Row sums over 3 sites, then column sums: the 3x3 window sums.
                for i in range(5, n_sr - 5):
                    for j in range(6, n_sc - 6):
                        row_sum[0, i, j] = (
                            lap_c[i, j - 1] * lap_g[i, j - 1]
                            + lap_c[i, j] * lap_g[i, j]
                            + lap_c[i, j + 1] * lap_g[i, j + 1]
                        )
                        row_sum[1, i, j] = (
                            lap_g[i, j - 1] * lap_g[i, j - 1]
                            + lap_g[i, j] * lap_g[i, j]
                            + lap_g[i, j + 1] * lap_g[i, j + 1]
                        )
                        row_sum[2, i, j] = (
                            site_value[i, j - 1] + site_value[i, j] + site_value[i, j + 1]
                        )
                        row_sum[3, i, j] = (
                            site_green[i, j - 1] + site_green[i, j] + site_green[i, j + 1]
                        )
                slope = sub[4]
                offset = sub[5]
                for i in range(6, n_sr - 6):
                    for j in range(6, n_sc - 6):
                        s_cg = row_sum[0, i - 1, j] + row_sum[0, i, j] + row_sum[0, i + 1, j]
                        s_gg = row_sum[1, i - 1, j] + row_sum[1, i, j] + row_sum[1, i + 1, j]
                        s_c = row_sum[2, i - 1, j] + row_sum[2, i, j] + row_sum[2, i + 1, j]
                        s_g = row_sum[3, i - 1, j] + row_sum[3, i, j] + row_sum[3, i + 1, j]
                        a = s_cg / (s_gg + slope_floor)
                        slope[i, j] = a
                        offset[i, j] = (s_c - a * s_g) * ninth
                mean_slope = sub[6]
                mean_offset = sub[7]
                residual = sub[8]
                for i in range(6, n_sr - 6):
                    for j in range(7, n_sc - 7):
                        row_sum[0, i, j] = slope[i, j - 1] + slope[i, j] + slope[i, j + 1]
                        row_sum[1, i, j] = offset[i, j - 1] + offset[i, j] + offset[i, j + 1]
                for i in range(7, n_sr - 7):
                    for j in range(7, n_sc - 7):
                        a = (row_sum[0, i - 1, j] + row_sum[0, i, j] + row_sum[0, i + 1, j]) * ninth
                        b = (row_sum[1, i - 1, j] + row_sum[1, i, j] + row_sum[1, i + 1, j]) * ninth
                        mean_slope[i, j] = a
                        mean_offset[i, j] = b
                        residual[i, j] = site_value[i, j] - (a * site_green[i, j] + b)
                # The colour-difference residual c - g, and its prb filter at the other
                # colour's site below and right of each site (GBTF's 7x7 diagonal filter).
                diff = sub[2]
                cross = sub[3]
                for i in range(4, n_sr - 4):
                    for j in range(4, n_sc - 4):
                        diff[i, j] = site_value[i, j] - site_green[i, j]
                for i in range(5, n_sr - 6):
                    for j in range(5, n_sc - 6):
                        near = diff[i, j] + diff[i, j + 1] + diff[i + 1, j] + diff[i + 1, j + 1]
                        far = (
                            diff[i - 1, j]
                            + diff[i - 1, j + 1]
                            + diff[i + 2, j]
                            + diff[i + 2, j + 1]
                            + diff[i, j - 1]
                            + diff[i + 1, j - 1]
                            + diff[i, j + 2]
                            + diff[i + 1, j + 2]
                        )
                        cross[i, j] = prb_near * near - prb_far * far
                # Each one's error predicting every sample from its 4 neighbouring sites
                # (their fits and residuals), summed over 3x3 sites.
                error_cd = sub[4]
                error_ml = sub[5]
                for i in range(8, n_sr - 8):
                    for j in range(8, n_sc - 8):
                        g = site_green[i, j]
                        a = (
                            mean_slope[i - 1, j]
                            + mean_slope[i + 1, j]
                            + mean_slope[i, j - 1]
                            + mean_slope[i, j + 1]
                        )
                        b = (
                            mean_offset[i - 1, j]
                            + mean_offset[i + 1, j]
                            + mean_offset[i, j - 1]
                            + mean_offset[i, j + 1]
                        )
                        r = (
                            residual[i - 1, j]
                            + residual[i + 1, j]
                            + residual[i, j - 1]
                            + residual[i, j + 1]
                        )
                        d = diff[i - 1, j] + diff[i + 1, j] + diff[i, j - 1] + diff[i, j + 1]
                        error_ml[i, j] = abs(site_value[i, j] - quarter * (a * g + b + r))
                        error_cd[i, j] = abs(diff[i, j] - quarter * d)
                for i in range(8, n_sr - 8):
                    for j in range(9, n_sc - 9):
                        row_sum[0, i, j] = error_cd[i, j - 1] + error_cd[i, j] + error_cd[i, j + 1]
                        row_sum[1, i, j] = error_ml[i, j - 1] + error_ml[i, j] + error_ml[i, j + 1]
                # The share of the colour-difference estimate at each site: the inverse
                # squares of the two energies, normalized.
                cd_share = sub[9]
                for i in range(9, n_sr - 9):
                    for j in range(9, n_sc - 9):
                        energy_cd = energy_floor + (
                            row_sum[0, i - 1, j] + row_sum[0, i, j] + row_sum[0, i + 1, j]
                        )
                        energy_ml = energy_floor + (
                            row_sum[1, i - 1, j] + row_sum[1, i, j] + row_sum[1, i + 1, j]
                        )
                        energy_cd *= cd_energy_scale
                        energy_cd *= energy_cd
                        energy_ml *= energy_ml
                        cd_share[i, j] = energy_ml / (energy_cd + energy_ml)
                # Each output pixel: its own sample at a sampled site; elsewhere the two
                # estimates mixed by the mean share of the nearest 2 or 4 sites. At the other
                # colour's sites (dy = dx = 1) the colour difference is cross[i, j]; at green
                # sites it is the mean of 2 diffs and 2 crosses. Pixels go by their offset
                # (dy, dx) from the site (i, j) above and left of them; rows of the site
                # arrays are taken as views from column j_first, so that the pixel loops
                # index them as t + (literal offset) and vectorize.
                for y in range(margin, margin + rows):
                    i = (y - py) // 2
                    dy = (y - py) % 2
                    for dx in range(2):
                        x_first = margin + (px + dx) % 2
                        j_first = (x_first - px) // 2
                        n_pixels = (margin + cols - x_first + 1) // 2
                        result = colour[k, y - margin, x_first - margin :]
                        green_row = green[y, x_first:]
                        if dy == 0 and dx == 0:
                            samples = site_value[i, j_first:]
                            for t in range(n_pixels):
                                result[2 * t] = samples[t]
                        elif dy == 1 and dx == 1:
                            # Rows i and i + 1 of the sites, from column j_first.
                            slope_0 = mean_slope[i, j_first:]
                            slope_1 = mean_slope[i + 1, j_first:]
                            offset_0 = mean_offset[i, j_first:]
                            offset_1 = mean_offset[i + 1, j_first:]
                            residual_0 = residual[i, j_first:]
                            residual_1 = residual[i + 1, j_first:]
                            share_0 = cd_share[i, j_first:]
                            share_1 = cd_share[i + 1, j_first:]
                            cross_0 = cross[i, j_first:]
                            for t in range(n_pixels):
                                share = share_0[t] + share_0[t + 1] + share_1[t] + share_1[t + 1]
                                g = green_row[2 * t]
                                # MLRI along each diagonal: the mean of its ends' values.
                                ml_nw = slope_0[t] * g + offset_0[t] + residual_0[t]
                                ml_se = slope_1[t + 1] * g + offset_1[t + 1] + residual_1[t + 1]
                                ml_ne = slope_0[t + 1] * g + offset_0[t + 1] + residual_0[t + 1]
                                ml_sw = slope_1[t] * g + offset_1[t] + residual_1[t]
                                spread_1 = (ml_nw - ml_se) * (ml_nw - ml_se) + diagonal_floor
                                spread_2 = (ml_ne - ml_sw) * (ml_ne - ml_sw) + diagonal_floor
                                value_ml = half * (
                                    spread_2 * (ml_nw + ml_se) + spread_1 * (ml_ne + ml_sw)
                                ) / (spread_1 + spread_2)
                                value_cd = g + cross_0[t]
                                result[2 * t] = value_ml + quarter * share * (value_cd - value_ml)
                        else:
                            # A green pixel between sites (i, j) and (i + dy, j + dx), and
                            # between the other colour's sites at cross[i - 1 + dy, j - dy]
                            # and cross[i, j].
                            slope_0 = mean_slope[i, j_first:]
                            slope_1 = mean_slope[i + dy, j_first + dx :]
                            offset_0 = mean_offset[i, j_first:]
                            offset_1 = mean_offset[i + dy, j_first + dx :]
                            residual_0 = residual[i, j_first:]
                            residual_1 = residual[i + dy, j_first + dx :]
                            share_0 = cd_share[i, j_first:]
                            share_1 = cd_share[i + dy, j_first + dx :]
                            diff_0 = diff[i, j_first:]
                            diff_1 = diff[i + dy, j_first + dx :]
                            cross_0 = cross[i - 1 + dy, j_first - dy :]
                            cross_1 = cross[i, j_first:]
                            for t in range(n_pixels):
                                a = slope_0[t] + slope_1[t]
                                b = offset_0[t] + offset_1[t]
                                r = residual_0[t] + residual_1[t]
                                share = share_0[t] + share_1[t]
                                colour_diff = quarter * (
                                    diff_0[t] + diff_1[t] + cross_0[t] + cross_1[t]
                                )
                                g = green_row[2 * t]
                                value_ml = half * (a * g + b + r)
                                value_cd = g + colour_diff
                                result[2 * t] = value_ml + half * share * (value_cd - value_ml)
            # Red, green and blue interleaved into out in one pass.
            for y in range(rows):
                out_row = out[r0 + y, c0:]
                red_row = colour[0, y]
                green_row = green[margin + y, margin:]
                blue_row = colour[1, y]
                for x in range(cols):
                    out_row[x, 0] = red_row[x]
                    out_row[x, 1] = green_row[x]
                    out_row[x, 2] = blue_row[x]


@njit(inline="always")
def _directional_runs(
    along_v: npt.NDArray[np.float32], along_h: npt.NDArray[np.float32], y: int, x: int
) -> tuple[np.float32, np.float32, np.float32, np.float32]:
    """GBTF's four 5-pixel runs from (y, x + 7): of ``along_v`` to the north and to the south,
    of ``along_h`` to the west and to the east (sums, each including (y, x + 7))."""
    centre_v = along_v[y, x + 7]
    centre_h = along_h[y, x + 7]
    run_n = centre_v + along_v[y - 4, x + 7] + along_v[y - 3, x + 7]
    run_n += along_v[y - 2, x + 7] + along_v[y - 1, x + 7]
    run_s = centre_v + along_v[y + 1, x + 7] + along_v[y + 2, x + 7]
    run_s += along_v[y + 3, x + 7] + along_v[y + 4, x + 7]
    run_w = centre_h + along_h[y, x + 3] + along_h[y, x + 4]
    run_w += along_h[y, x + 5] + along_h[y, x + 6]
    run_e = centre_h + along_h[y, x + 8] + along_h[y, x + 9]
    run_e += along_h[y, x + 10] + along_h[y, x + 11]
    return run_n, run_s, run_w, run_e


@njit(inline="always")
def _directional_weights(
    grad_v: npt.NDArray[np.float32], grad_h: npt.NDArray[np.float32], y: int, x: int
) -> tuple[np.float32, np.float32, np.float32, np.float32]:
    """GBTF's weights for the N, S, W and E runs from (y, x + 7), each divided by the runs'
    length and the weights' sum: the inverse squares of the 5x5 window sums of the gradients
    on that side, scaled by the smallest (so they stay in [0, 1] at any input scale)."""
    sum_n, sum_s, sum_w, sum_e = _directional_runs(grad_v, grad_h, y, x)
    tiny = np.float32(1e-30)
    sum_n += tiny
    sum_s += tiny
    sum_w += tiny
    sum_e += tiny
    smallest = min(min(sum_n, sum_s), min(sum_w, sum_e))
    w_n = smallest / sum_n
    w_s = smallest / sum_s
    w_w = smallest / sum_w
    w_e = smallest / sum_e
    w_n *= w_n
    w_s *= w_s
    w_w *= w_w
    w_e *= w_e
    scale = np.float32(0.2) / (w_n + w_s + w_w + w_e)
    return scale * w_n, scale * w_s, scale * w_w, scale * w_e


@njit(inline="always")
def _window_energy(
    grad_h: npt.NDArray[np.float32], grad_v: npt.NDArray[np.float32], y: int, x: int
) -> np.float32:
    """The smaller of the 5x5 window sums at (y, x + 8) of horizontal gradients (``grad_h``:
    already summed over 5 rows) and of vertical ones (``grad_v``: over 5 columns)."""
    across = grad_h[y, x + 6] + grad_h[y, x + 7] + grad_h[y, x + 8]
    across += grad_h[y, x + 9] + grad_h[y, x + 10]
    down = grad_v[y - 2, x + 8] + grad_v[y - 1, x + 8] + grad_v[y, x + 8]
    down += grad_v[y + 1, x + 8] + grad_v[y + 2, x + 8]
    return min(across, down)


@njit(inline="always")
def _colour_sum_green(
    mosaic: npt.NDArray[np.float32],
    grad_v: npt.NDArray[np.float32],
    grad_h: npt.NDArray[np.float32],
    patch_h: npt.NDArray[np.float32],
    patch_v: npt.NDArray[np.float32],
    y: int,
    x: int,
) -> tuple[np.float32, np.float32]:
    """The colour sum G + R (or G + B) at the red or blue site (y, x), and its residual energy.

    The colour sum G + R (or G + B) is Hamilton-Adams' stencil with the Laplacian's sign
    flipped, plus the centre: the same at every site. Along rows it fills ``patch_h`` (5, 9)
    over rows y - 2..y + 2 and columns x - 4..x + 4, along columns ``patch_v`` (9, 5) over
    rows y - 4..y + 4 and columns x - 2..x + 2. Its GBTF runs are averaged with GBTF's
    directional weights (from ``grad_v`` and ``grad_h``); the energy is the smaller of its
    horizontal and vertical gradients' 5x5 sums, as for GBTF's colour differences.
    """
    half = np.float32(0.5)
    quarter = np.float32(0.25)
    for r in range(5):
        for j in range(9):
            i = y - 2 + r
            k = x - 4 + j
            patch_h[r, j] = half * (
                mosaic[i, k - 1] + mosaic[i, k + 1] + mosaic[i, k]
            ) + quarter * (mosaic[i, k - 2] + mosaic[i, k + 2])
    for r in range(9):
        for j in range(5):
            i = y - 4 + r
            k = x - 2 + j
            patch_v[r, j] = half * (
                mosaic[i - 1, k] + mosaic[i + 1, k] + mosaic[i, k]
            ) + quarter * (mosaic[i - 2, k] + mosaic[i + 2, k])
    w_n, w_s, w_w, w_e = _directional_weights(grad_v, grad_h, y, x - 7)
    run_n = patch_v[0, 2] + patch_v[1, 2] + patch_v[2, 2] + patch_v[3, 2] + patch_v[4, 2]
    run_s = patch_v[4, 2] + patch_v[5, 2] + patch_v[6, 2] + patch_v[7, 2] + patch_v[8, 2]
    run_w = patch_h[2, 0] + patch_h[2, 1] + patch_h[2, 2] + patch_h[2, 3] + patch_h[2, 4]
    run_e = patch_h[2, 4] + patch_h[2, 5] + patch_h[2, 6] + patch_h[2, 7] + patch_h[2, 8]
    estimate = w_n * run_n + w_s * run_s + w_w * run_w + w_e * run_e
    across = np.float32(0.0)
    down = np.float32(0.0)
    for r in range(5):
        for j in range(1, 6):
            across += abs(patch_h[r, j] - patch_h[r, j + 2])
            down += abs(patch_v[j, r] - patch_v[j + 2, r])
    return estimate, min(across, down)
