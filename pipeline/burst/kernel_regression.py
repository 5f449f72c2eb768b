"""Kernel-regression merge of a raw burst: every frame's samples at their true positions.

Wronski, Garcia-Dorado, Ernst, Kelly, Krainin, Liang, Levoy, Milanfar, "Handheld
Multi-Frame Super-Resolution", ACM TOG 38(4), 2019, DOI 10.1145/3306346.3323024, at
1x scale, with the implementation details of Lafenetre, Facciolo, Eboli, "Implementing
Handheld Burst Super-Resolution", IPOL 13, 2023 (IPOL below):

1. no frame is resampled: each raw sample of every frame (the reference included) is
   placed at its position in the reference, from the tile alignment (per-tile offsets
   interpolated bilinearly between tile centres), and accumulated into the output
   pixels around it, into its own colour channel, with a Gaussian weight
   ``exp(-d^T Omega^-1 d / 2)``; the output is ``sum(w r c) / sum(w r)`` per channel,
   so demosaicing happens in the merge (sec. 4, eq. 4; IPOL alg. 11);
2. the kernel covariance ``Omega`` follows the reference's local structure (sec. 4.1;
   IPOL alg. 5), but its size is set by noise over gradient instead of Wronski et al.'s
   hand-tuned detail/denoise blend: a sample ``d`` away from a pixel misses the pixel's
   value by about ``g . d`` (``g`` the local gradient) and carries the noise ``sigma``,
   so its weight falls as ``exp(-(g . d)^2 / (2 c^2 sigma^2))``, i.e.
   ``Omega^-1 = T / c^2 + I / k_max^2``, ``T`` the structure tensor less the noise, in
   noise units (``c``: ``noise_to_gradient``). Where the gradient is within the noise
   the kernel is ``k_max`` wide both ways; across an edge it narrows as the edge
   sharpens (to ``k_min`` at least), along it it stays wide. ``T`` is measured at full
   resolution (2x2 differences of the white-balanced mosaic less its local colour
   differences, over the 3x3 cells around each Bayer tile), not on the half-resolution
   grey image: detail finer than a Bayer tile (a scene sharp to the pixel, so aliased)
   is invisible there and would be blurred;
3. each alternate frame's weight per 2x2 Bayer tile is its robustness ``r`` (sec. 5):
   the local colour means of the frame at its aligned position against the
   reference's, over the variance the noise model predicts (the distance of
   :mod:`pipeline.burst.merge`, averaged over 3x3 tiles, mapped through a linear ramp
   and widened by a 3x3 minimum filter, so a moving object leaves no ghost).

For speed (IPOL gathers a 3x3 window per output pixel): the four output pixels of a
Bayer tile share its displacement and kernel, hence the nine weights of their 3x3
windows, which are computed once per tile; and, as in :mod:`pipeline.burst.merge`, each
frame is merged in one pass over strips of Bayer-tile rows (positions, distances and
robustness weights of a strip stay in cache, then its rows are accumulated). Accumulators
are (H, W, 3) float32 sums; clipped samples and clipped references are handled as in
:mod:`pipeline.burst.merge`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba
import numpy as np
import numpy.typing as npt

from pipeline.burst.align import TileFlow
from pipeline.burst.merge import (
    _CLIPPED_AGREEMENT,
    OutputLevels,
    _distance_row,
    _normalise_kernel,
    _positions_row,
    _site_levels,
    _strip_weights,
    check_robustness_and_output,
    normalise_alternate,
)
from pipeline.errors import InvalidParameterError
from pipeline.noise_model import NoiseModel
from pipeline.raw_frame import CLIP_FRACTION, CameraMetadata, RawFrame

#: Bayer-tile rows per strip of the per-frame pass: its buffers then stay in a core's cache.
_STRIP_ROWS = 32
#: Smallest exponent of a kernel weight: every sample in a window keeps a weight > 0.
_MIN_EXPONENT = -40.0


@dataclass(frozen=True)
class KernelMergeParams:
    """Kernel shape (Wronski et al. sec. 4) and robustness (sec. 5) of the merge.

    Attributes
    ----------
    noise_to_gradient : float
        ``c``: a sample's weight is ``exp(-1/2)`` where its distance times the local
        gradient (across the structure) is ``c`` times the noise.
    k_max : float
        Kernel standard deviation, raw pixels, where the reference is flat (within
        the noise) and along edges.
    k_min : float
        The narrowest kernel, raw pixels, across the sharpest edges. The defaults were
        chosen on bench/burst_quality.py's four default scenes at 1:1 and 2x scale (a
        smaller ``c`` favours 1:1, a larger one 2x; a wider ``k_max`` lost at both).
    reject_from, reject_at : float
        Normalised local distance (1 = the noise) where an alternate frame's weight
        starts to fall, and where it reaches 0.
    clip_fraction : float
        A raw sample above ``black + clip_fraction * (white - black)`` counts as clipped.
    output_bits : int
        Bit depth of the merged mosaic (at most 16).
    """

    noise_to_gradient: float = 0.7
    k_max: float = 1.0
    k_min: float = 0.1
    reject_from: float = 1.5
    reject_at: float = 4.0
    clip_fraction: float = CLIP_FRACTION
    output_bits: int = 16

    def __post_init__(self) -> None:
        if not self.noise_to_gradient > 0:
            raise InvalidParameterError(
                f"noise_to_gradient={self.noise_to_gradient}: expected > 0")
        if not 0 < self.k_min <= self.k_max:
            raise InvalidParameterError(
                f"k_min={self.k_min}, k_max={self.k_max}: expected 0 < k_min <= k_max")
        check_robustness_and_output(self)


@numba.njit(cache=True, parallel=True, nogil=True)
def _tile_chroma_kernel(ref, channels, wb, out):
    # Per Bayer tile, each site's colour difference from green (white-balanced; green's
    # own 0).
    gh, gw, _ = out.shape
    half = np.float32(0.5)
    for by in numba.prange(gh):
        for bx in range(gw):
            green = np.float32(0.0)
            for site in range(4):
                if channels[site >> 1, site & 1] == 1:
                    green += half * wb[1] * ref[2 * by + (site >> 1), 2 * bx + (site & 1)]
            out[by, bx, 1] = np.float32(0.0)
            for site in range(4):
                ch = channels[site >> 1, site & 1]
                if ch != 1:
                    out[by, bx, ch] = wb[ch] * ref[2 * by + (site >> 1), 2 * bx + (site & 1)] - green


@numba.njit(cache=True, parallel=True, nogil=True)
def _luminance_kernel(ref, channels, wb, chroma, out):
    # The white-balanced mosaic less its local colour differences (each tile's averaged
    # over the 3x3 tiles around it): the luminance detail the kernel is shaped by.
    gh, gw, _ = chroma.shape
    for by in numba.prange(gh):
        for bx in range(gw):
            r = np.float32(0.0)
            b = np.float32(0.0)
            n = 0
            for ty in range(max(by - 1, 0), min(by + 2, gh)):
                for tx in range(max(bx - 1, 0), min(bx + 2, gw)):
                    r += chroma[ty, tx, 0]
                    b += chroma[ty, tx, 2]
                    n += 1
            r /= np.float32(n)
            b /= np.float32(n)
            for site in range(4):
                y = 2 * by + (site >> 1)
                x = 2 * bx + (site & 1)
                ch = channels[site >> 1, site & 1]
                v = wb[ch] * ref[y, x]
                if ch == 0:
                    v -= r
                elif ch == 2:
                    v -= b
                out[y, x] = v


@numba.njit(cache=True, parallel=True, nogil=True)
def _kernel_covariance_kernel(ref, luminance, channels, wb, noise, kp, strip_rows, out):
    # Per Bayer tile: the structure tensor of the reference's luminance at full
    # resolution (2x2 finite differences of the white-balanced mosaic less its local
    # colour differences, over the 3x3 cells around the tile's centre), in units of the
    # noise of those differences; the kernel's inverse covariance (a, b, c), with
    # d^T Omega^-1 d = a dx^2 + 2 b dx dy + c dy^2 in raw pixels, is that tensor less
    # the noise over noise_to_gradient**2, plus 1 / k_max**2 (no narrower than k_min).
    # kp = (noise_to_gradient, k_max, k_min); noise = (scale, offset) per raw sample.
    # Neighbouring tiles share cells: in strips of tile rows, each row of cells is
    # measured once and summed over each tile's three columns, then three such rows.
    gh, gw, _ = out.shape
    h, w = 2 * gh, 2 * gw  # an odd last row or column belongs to no Bayer tile
    ratio2 = kp[0] * kp[0]
    floor = np.float32(1.0) / (kp[1] * kp[1])
    ceiling = np.float32(1.0) / (kp[2] * kp[2])
    half = np.float32(0.5)
    wb2 = np.float32(0.0)
    for site in range(4):
        wb2 += np.float32(0.25) * wb[channels[site >> 1, site & 1]] ** 2
    for strip in numba.prange((gh + strip_rows - 1) // strip_rows):
        y0 = strip * strip_rows
        y1 = min(y0 + strip_rows, gh)
        # rows[r, bx]: cell row 2 y0 - 1 + r summed over tile bx's cell columns.
        rows = np.empty((2 * (y1 - y0) + 1, gw, 3), dtype=np.float32)
        cells = np.empty((2 * gw + 1, 3), dtype=np.float32)
        for r in range(rows.shape[0]):
            cy = min(max(2 * y0 - 1 + r, 0), h - 2)
            for i in range(2 * gw + 1):
                cx = min(max(i - 1, 0), w - 2)
                l00 = luminance[cy, cx]
                l01 = luminance[cy, cx + 1]
                l10 = luminance[cy + 1, cx]
                l11 = luminance[cy + 1, cx + 1]
                gx = half * ((l01 - l00) + (l11 - l10))
                gy = half * ((l10 - l00) + (l11 - l01))
                cells[i, 0] = gx * gx
                cells[i, 1] = gx * gy
                cells[i, 2] = gy * gy
            for bx in range(gw):
                for k in range(3):
                    rows[r, bx, k] = cells[2 * bx, k] + cells[2 * bx + 1, k] + cells[2 * bx + 2, k]
        for by in range(y0, y1):
            r = 2 * (by - y0)
            for bx in range(gw):
                sxx = rows[r, bx, 0] + rows[r + 1, bx, 0] + rows[r + 2, bx, 0]
                sxy = rows[r, bx, 1] + rows[r + 1, bx, 1] + rows[r + 2, bx, 1]
                syy = rows[r, bx, 2] + rows[r + 1, bx, 2] + rows[r + 2, bx, 2]
                level = np.float32(0.0)
                for site in range(4):
                    level += np.float32(0.25) * ref[2 * by + (site >> 1), 2 * bx + (site & 1)]
                # A cell's gradient component has the variance of one luminance sample.
                sample_var = max(noise[0] * max(level, np.float32(0.0)) + noise[1], np.float32(1e-12))
                variance = np.float32(9.0) * wb2 * sample_var
                sxx /= variance
                sxy /= variance
                syy /= variance
                trace = sxx + syy
                root = np.float32(math.sqrt((sxx - syy) * (sxx - syy) * np.float32(0.25) + sxy * sxy))
                l1 = half * trace + root
                l2 = half * trace - root
                ia = min(max(l1 - np.float32(1.0), np.float32(0.0)) / ratio2 + floor, ceiling)
                ie = min(max(l2 - np.float32(1.0), np.float32(0.0)) / ratio2 + floor, ceiling)
                # Omega^-1 = f(T), f mapping T's eigenvalues l1 >= l2 to ia, ie: for a
                # 2x2 symmetric T that is ia I + slope (T - l1 I), slope the chord
                # (ia - ie) / (l1 - l2) (no eigenvector, so no direction lost to
                # rounding where T is nearly isotropic).
                slope = (ia - ie) / (np.float32(2.0) * root) if root > np.float32(1e-20) else np.float32(0.0)
                out[by, bx, 0] = ia + slope * (half * (sxx - syy) - root)
                out[by, bx, 1] = slope * sxy
                out[by, bx, 2] = ia + slope * (half * (syy - sxx) - root)


@numba.njit(cache=True, nogil=True)
def _bilinear_sites_row(alt, positions, out):
    # The alternate frame's four Bayer sites at each tile's grey position, bilinearly
    # from each site's own colour plane.
    gh = alt.shape[0] // 2
    gw = out.shape[0]
    for bx in range(gw):
        py = positions[bx, 0]
        px = positions[bx, 1]
        iy = min(int(py), gh - 1)
        ix = min(int(px), gw - 1)
        ty = py - np.float32(iy)
        tx = px - np.float32(ix)
        iy1 = min(iy + 1, gh - 1)
        ix1 = min(ix + 1, gw - 1)
        for site in range(4):
            sy = site >> 1
            sx = site & 1
            a = alt[2 * iy + sy, 2 * ix + sx]
            b = alt[2 * iy + sy, 2 * ix1 + sx]
            c = alt[2 * iy1 + sy, 2 * ix + sx]
            d = alt[2 * iy1 + sy, 2 * ix1 + sx]
            top = a + tx * (b - a)
            bottom = c + tx * (d - c)
            out[bx, site] = top + ty * (bottom - top)


@numba.njit(cache=True, nogil=True)
def _exp_of_nonpositive(x):
    # exp(x) for x in [-40, 0], as float32 to within expf's rounding: (exp(x / 64))**64,
    # the inner exp by its Taylor series to degree 11 (error < 1e-9 there), in float64.
    # Unlike a call to expf, the compiler vectorises it.
    t = np.float64(x) * (1.0 / 64.0)
    p = 1.0 / 39916800.0
    p = p * t + 1.0 / 3628800.0
    p = p * t + 1.0 / 362880.0
    p = p * t + 1.0 / 40320.0
    p = p * t + 1.0 / 5040.0
    p = p * t + 1.0 / 720.0
    p = p * t + 1.0 / 120.0
    p = p * t + 1.0 / 24.0
    p = p * t + 1.0 / 6.0
    p = p * t + 0.5
    p = p * t + 1.0
    p = p * t + 1.0
    for _ in range(6):
        p = p * p
    return np.float32(p)


@numba.njit(cache=True, nogil=True)
def _window_weights_row(inv_cov, positions, by, is_reference, floor_exp, offsets, weights):
    # For each Bayer tile of row ``by`` (at positions[bx] in the alternate, grey pixels):
    # its displacement rounded to whole raw pixels
    # (offsets[bx] = (ry, rx)), and the kernel's weights at the 3x3 window's samples
    # (weights[9 bx + 3 j + i]; row j, column i lies (ry - dy + j - 1, rx - dx + i - 1)
    # raw pixels from the output pixel; d^T Omega^-1 d = a dx^2 + 2 b dx dy + c dy^2),
    # none below exp(floor_exp). The exponentials run as one loop, which vectorises.
    gw = offsets.shape[0]
    neg_half = np.float32(-0.5)
    for bx in range(gw):
        if is_reference:
            dy = np.float32(0.0)
            dx = np.float32(0.0)
        else:
            dy = np.float32(2.0) * (positions[bx, 0] - np.float32(by))
            dx = np.float32(2.0) * (positions[bx, 1] - np.float32(bx))
        ry = int(math.floor(dy + np.float32(0.5)))
        rx = int(math.floor(dx + np.float32(0.5)))
        offsets[bx, 0] = ry
        offsets[bx, 1] = rx
        a = inv_cov[by, bx, 0]
        b = inv_cov[by, bx, 1]
        c = inv_cov[by, bx, 2]
        for j in range(3):
            oy = np.float32(ry) - dy + np.float32(j - 1)
            for i in range(3):
                ox = np.float32(rx) - dx + np.float32(i - 1)
                q = a * ox * ox + np.float32(2.0) * b * ox * oy + c * oy * oy
                weights[9 * bx + 3 * j + i] = max(neg_half * q, floor_exp)
    for k in range(9 * gw):
        weights[k] = _exp_of_nonpositive(weights[k])


@numba.njit(cache=True, nogil=True)
def _accumulate_tile_samples(
    ref_cfa, ref_clip, channels, alt, alt_clip, by, bx, ry, rx, weights, robust_weight,
    precision, accept_level, acc, num, den,
):  # fmt: skip
    # Every sample of the four 3x3 windows on its own: windows that leave the frame, and
    # tiles where a clipped sample or a clipped reference pixel needs its own rule. The
    # window's weights are weights[9 bx ...].
    h, w = alt.shape
    for site in range(4):
        y = 2 * by + (site >> 1)
        x = 2 * bx + (site & 1)
        own = channels[y & 1, x & 1]
        is_ref_clipped = np.float32(ref_cfa[y, x]) >= ref_clip[y & 1, x & 1]
        for k in range(6):
            acc[k] = np.float32(0.0)
        for j in range(3):
            sy = y + ry + j - 1
            if sy < 0 or sy >= h:
                continue
            for i in range(3):
                sx = x + rx + i - 1
                if sx < 0 or sx >= w:
                    continue
                u = alt[sy, sx]
                if u >= alt_clip[sy & 1, sx & 1]:
                    continue  # a clipped sample is no evidence of the value
                ch = channels[sy & 1, sx & 1]
                weight = weights[9 * bx + 3 * j + i]
                if is_ref_clipped and ch == own:
                    if u < accept_level:
                        continue  # darker than the clipped reference: not it
                    weight *= precision
                else:
                    weight *= robust_weight
                acc[ch] += weight * u
                acc[3 + ch] += weight
        for ch in range(3):
            num[y, x, ch] += acc[ch]
            den[y, x, ch] += acc[3 + ch]


@numba.njit(cache=True, nogil=True)
def _add_classes(
    channels, py, px, corners, rows, columns, centre, w_corners, w_rows, w_columns, w_centre,
    num, den, y, x,
):  # fmt: skip
    # Adds a window's four parity classes to pixel (y, x)'s sums: the corners' samples
    # lie at parity (py, px), the top and bottom middles' at (py, 1 - px), the left and
    # right middles' at (1 - py, px), the centre's at (1 - py, 1 - px). In a Bayer tile
    # the greens are one diagonal pair, the red and blue the other.
    if channels[py, px] == 1:
        green, w_green = corners + centre, w_corners + w_centre
        one, w_one, one_channel = rows, w_rows, channels[py, px ^ 1]
        two, w_two = columns, w_columns
    else:
        green, w_green = rows + columns, w_rows + w_columns
        one, w_one, one_channel = corners, w_corners, channels[py, px]
        two, w_two = centre, w_centre
    if one_channel == 0:
        red, w_red, blue, w_blue = one, w_one, two, w_two
    else:
        red, w_red, blue, w_blue = two, w_two, one, w_one
    num[y, x, 0] += red
    num[y, x, 1] += green
    num[y, x, 2] += blue
    den[y, x, 0] += w_red
    den[y, x, 1] += w_green
    den[y, x, 2] += w_blue


@numba.njit(cache=True, nogil=True)
def _accumulate_row(
    ref_cfa, ref_clip, ref_tile_clipped, ref_grey, inv_cov, channels, alt, alt_clip, by,
    positions, robust, noise, accept_level, floor_exp, is_reference, row_weights, offsets,
    acc, num, den,
):  # fmt: skip
    # Gathers, for each output pixel of Bayer-tile row ``by``, the alternate's raw
    # samples in the 3x3 window around its aligned position (positions[bx], grey
    # pixels), each into its colour channel with the kernel weight (Wronski et al. eq. 4)
    # times the tile's robustness robust[bx]. The four pixels of a Bayer tile share the
    # tile's displacement and kernel, so their windows, which cover a 4x4 block of
    # samples, share the nine weights. Within a window, the samples of one colour are
    # those of one parity class (the corners, the middles of the top and bottom rows, of
    # the left and right columns, the centre): where no sample of the block is clipped,
    # each class's weights sum to the same for all four pixels.
    gw = robust.shape[0]
    h, w = alt.shape
    _window_weights_row(inv_cov, positions, by, is_reference, floor_exp, offsets, row_weights)
    for bx in range(gw):
        r = robust[bx]
        if is_reference:
            precision = np.float32(1.0)
        else:
            level = max(ref_grey[by, bx], np.float32(0.0))
            precision = (noise[0] * level + noise[1]) / (noise[2] * level + noise[3])
        any_ref_clipped = ref_tile_clipped[by, bx]
        if r == 0 and not is_reference and not any_ref_clipped:
            continue  # rejected (it moved): only a clipped reference pixel may take it
        ry = offsets[bx, 0]
        rx = offsets[bx, 1]
        robust_weight = r * precision
        y0 = 2 * by + ry - 1  # the block's top-left sample
        x0 = 2 * bx + rx - 1
        is_plain = not any_ref_clipped and 0 <= y0 and y0 + 4 <= h and 0 <= x0 and x0 + 4 <= w
        if is_plain:
            for p in range(2):
                for q in range(2):
                    # the block's samples of one parity: rows p, p + 2, columns q, q + 2
                    top = max(alt[y0 + p, x0 + q], alt[y0 + p, x0 + q + 2])
                    bottom = max(alt[y0 + p + 2, x0 + q], alt[y0 + p + 2, x0 + q + 2])
                    if max(top, bottom) >= alt_clip[(y0 + p) & 1, (x0 + q) & 1]:
                        is_plain = False
        if not is_plain:
            _accumulate_tile_samples(
                ref_cfa, ref_clip, channels, alt, alt_clip, by, bx, ry, rx, row_weights,
                robust_weight, precision, accept_level, acc, num, den,
            )  # fmt: skip
            continue
        k = 9 * bx
        w0, w1, w2 = row_weights[k], row_weights[k + 1], row_weights[k + 2]
        w3, w4, w5 = row_weights[k + 3], row_weights[k + 4], row_weights[k + 5]
        w6, w7, w8 = row_weights[k + 6], row_weights[k + 7], row_weights[k + 8]
        w_corners = robust_weight * (w0 + w2 + w6 + w8)
        w_rows = robust_weight * (w1 + w7)
        w_columns = robust_weight * (w3 + w5)
        w_centre = robust_weight * w4
        for site in range(4):
            sy = site >> 1
            sx = site & 1
            ya = y0 + sy  # the window's top-left sample
            xa = x0 + sx
            corners = (w0 * alt[ya, xa] + w2 * alt[ya, xa + 2] + w6 * alt[ya + 2, xa]
                       + w8 * alt[ya + 2, xa + 2])
            rows = w1 * alt[ya, xa + 1] + w7 * alt[ya + 2, xa + 1]
            columns = w3 * alt[ya + 1, xa] + w5 * alt[ya + 1, xa + 2]
            centre = w4 * alt[ya + 1, xa + 1]
            _add_classes(
                channels, (y0 + sy) & 1, (x0 + sx) & 1, robust_weight * corners,
                robust_weight * rows, robust_weight * columns, robust_weight * centre,
                w_corners, w_rows, w_columns, w_centre, num, den, 2 * by + sy, 2 * bx + sx,
            )  # fmt: skip


@numba.njit(cache=True, parallel=True, nogil=True)
def _accumulate_reference_kernel(
    ref_cfa, ref_clip, ref_tile_clipped, ref_grey, inv_cov, channels, alt, alt_clip,
    accept_level, floor_exp, num, den,
):  # fmt: skip
    # The reference's own samples (normalised, in ``alt``), each at its own place.
    gh, gw = ref_grey.shape
    noise = np.zeros(4, dtype=np.float32)
    for by in numba.prange(gh):
        positions = np.empty((gw, 2), dtype=np.float32)
        robust = np.ones(gw, dtype=np.float32)
        _accumulate_row(
            ref_cfa, ref_clip, ref_tile_clipped, ref_grey, inv_cov, channels, alt, alt_clip,
            by, positions, robust, noise, accept_level, floor_exp, True,
            np.empty(9 * gw, dtype=np.float32), np.empty((gw, 2), dtype=np.int64),
            np.empty(6, dtype=np.float32), num, den,
        )  # fmt: skip


@numba.njit(cache=True, parallel=True, nogil=True)
def _merge_frame_kernel(
    ref_cfa, ref_black, ref_scale, ref_clip, ref_tile_clipped, ref_grey, inv_cov, channels,
    alt, alt_clip, flow, tile, stride, greens, others, noise, reject_from, reject_at,
    accept_level, floor_exp, strip_rows, num, den,
):  # fmt: skip
    # One pass over the frame, in strips of Bayer-tile rows whose buffers stay in cache
    # (as :mod:`pipeline.burst.merge` does): each tile's position in the alternate and
    # its distance from the reference (two rows of halo), the robustness weights, then
    # the strip's own rows accumulated.
    gh, gw = ref_grey.shape
    for strip in numba.prange((gh + strip_rows - 1) // strip_rows):
        y0 = strip * strip_rows
        y1 = min(y0 + strip_rows, gh)
        d0 = max(y0 - 2, 0)
        d1 = min(y1 + 2, gh)
        distance = np.empty((d1 - d0, gw), dtype=np.float32)
        positions = np.empty((d1 - d0, gw, 2), dtype=np.float32)
        bilinear = np.empty((gw, 4), dtype=np.float32)
        column_flow = np.empty((flow.shape[1], 2), dtype=np.float32)
        diff = np.empty(4, dtype=np.float32)
        for by in range(d0, d1):
            _positions_row(flow, tile, stride, by, gh, column_flow, positions[by - d0])
            _bilinear_sites_row(alt, positions[by - d0], bilinear)
            _distance_row(
                ref_cfa, ref_black, ref_scale, by, bilinear, greens, others, noise, diff,
                distance[by - d0],
            )  # fmt: skip
        robust = np.empty((y1 - y0, gw), dtype=np.float32)
        _strip_weights(distance, d0, y0, y1, gh, reject_from, reject_at, robust)
        row_weights = np.empty(9 * gw, dtype=np.float32)
        offsets = np.empty((gw, 2), dtype=np.int64)
        acc = np.empty(6, dtype=np.float32)
        for by in range(y0, y1):
            _accumulate_row(
                ref_cfa, ref_clip, ref_tile_clipped, ref_grey, inv_cov, channels, alt,
                alt_clip, by, positions[by - d0], robust[by - y0], noise, accept_level,
                floor_exp, False, row_weights, offsets, acc, num, den,
            )  # fmt: skip


@numba.njit(cache=True, parallel=True, nogil=True)
def _finish_mosaic_kernel(num, den, channels, black_out, span_out, white_out, out):
    h, w = out.shape
    for y in numba.prange(h):
        for x in range(w):
            ch = channels[y & 1, x & 1]
            if den[y, x, ch] > 0:
                v = black_out[y & 1, x & 1] + num[y, x, ch] / den[y, x, ch] * span_out[y & 1, x & 1]
                out[y, x] = np.uint16(min(max(v + np.float32(0.5), np.float32(0.0)), white_out))
            else:
                out[y, x] = np.uint16(white_out)


@numba.njit(cache=True, parallel=True, nogil=True)
def _finish_rgb_kernel(num, den, brightest, out):
    h, w, _ = out.shape
    inv = np.float32(1.0 / brightest)
    for y in numba.prange(h):
        for x in range(w):
            for ch in range(3):
                if den[y, x, ch] > 0:
                    out[y, x, ch] = num[y, x, ch] / den[y, x, ch] * inv
                else:
                    out[y, x, ch] = inv


def _white_balance(frame: RawFrame) -> npt.NDArray[np.float32]:
    """Gains (R, G, B) that make the frame's recorded neutral grey (ones without one)."""
    neutral = frame.metadata.as_shot_neutral
    if not neutral or min(neutral) <= 0:
        return np.ones(3, dtype=np.float32)
    return np.array([neutral[1] / n for n in neutral], dtype=np.float32)


def _tile_clipped(cfa: npt.NDArray[np.uint16], clip: npt.NDArray[np.float32]) -> npt.NDArray[np.bool_]:
    """(H/2, W/2) bool: Bayer tiles with a clipped sample, from the (H, W) mosaic and the
    (2, 2) clip levels."""
    gh, gw = cfa.shape[0] // 2, cfa.shape[1] // 2
    out = np.zeros((gh, gw), dtype=bool)
    for sy in range(2):
        for sx in range(2):
            out |= cfa[sy : 2 * gh : 2, sx : 2 * gw : 2] >= clip[sy, sx]
    return out


def _kernel_inverse_covariance(
    mosaic: npt.NDArray[np.float32], channels: npt.NDArray[np.int64], wb: npt.NDArray[np.float32],
    noise: npt.NDArray[np.float32], params: KernelMergeParams,
) -> npt.NDArray[np.float32]:
    """(H/2, W/2, 3) float32: each Bayer tile's kernel, ``(a, b, c)`` of its Omega^-1,
    from the normalised (H, W) mosaic, its (2, 2) channels, white balance (R, G, B) and
    noise (scale, offset) per raw sample."""
    gh, gw = mosaic.shape[0] // 2, mosaic.shape[1] // 2
    chroma = np.empty((gh, gw, 3), dtype=np.float32)
    _tile_chroma_kernel(mosaic, channels, wb, chroma)
    luminance = np.empty((2 * gh, 2 * gw), dtype=np.float32)
    _luminance_kernel(mosaic, channels, wb, chroma, luminance)
    del chroma
    kp = np.array([params.noise_to_gradient, params.k_max, params.k_min], dtype=np.float32)
    out = np.empty((gh, gw, 3), dtype=np.float32)
    _kernel_covariance_kernel(mosaic, luminance, channels, wb, noise, kp, _STRIP_ROWS, out)
    return out


class KernelRegressionMerge:
    """Accumulates every frame's raw samples into RGB at the reference's geometry.

    Same use as :class:`pipeline.burst.merge.RobustMerge`: construct with the reference
    (whose samples are accumulated at once), :meth:`add` each aligned alternate frame,
    then :meth:`finish` (the merged mosaic) or :meth:`finish_rgb` (linear RGB). Holds
    two (H, W, 3) float32 sums and the frame being added.

    Parameters
    ----------
    reference : RawFrame
    reference_grey : (H/2, W/2) float32
        :func:`pipeline.burst.align.bayer_grey` of the reference.
    reference_noise : NoiseModel
    params : KernelMergeParams
    """

    def __init__(
        self,
        reference: RawFrame,
        reference_grey: npt.NDArray[np.float32],
        reference_noise: NoiseModel,
        params: KernelMergeParams,
    ) -> None:
        self._reference = reference
        self._grey = reference_grey
        self._noise = reference_noise
        self._params = params
        self._black, self._scale, self._clip = _site_levels(reference, params.clip_fraction)
        self._channels = reference.metadata.cfa_pattern.channels.astype(np.int64)
        flat = self._channels.ravel()
        self._greens = np.flatnonzero(flat == 1)
        self._others = np.flatnonzero(flat != 1)
        noise = np.array([reference_noise.scale, reference_noise.offset], dtype=np.float32)
        self._alternate = np.empty(reference.shape, dtype=np.float32)
        _normalise_kernel(reference.cfa, self._black, self._scale, np.float32(1.0), self._alternate)
        self._inv_cov = _kernel_inverse_covariance(
            self._alternate, self._channels, _white_balance(reference), noise, params)
        self._tile_clipped = _tile_clipped(reference.cfa, self._clip)
        self._num = np.zeros((*reference.shape, 3), dtype=np.float32)
        self._den = np.zeros((*reference.shape, 3), dtype=np.float32)
        self._brightest = 1.0
        self._accept_level = np.float32(_CLIPPED_AGREEMENT * params.clip_fraction)
        clip_units = ((self._clip - self._black) * self._scale).astype(np.float32)
        _accumulate_reference_kernel(
            reference.cfa, self._clip, self._tile_clipped, reference_grey, self._inv_cov,
            self._channels, self._alternate, clip_units, self._accept_level,
            np.float32(_MIN_EXPONENT), self._num, self._den,
        )  # fmt: skip

    def add(self, frame: RawFrame, flow: TileFlow, exposure_ratio: float, noise: NoiseModel) -> None:
        """Merge one aligned alternate frame.

        Parameters
        ----------
        frame : RawFrame
            The alternate frame (same size and CFA pattern as the reference).
        flow : TileFlow
            Its alignment to the reference.
        exposure_ratio : float
            Its exposure time x gain over the reference's.
        noise : NoiseModel
            Its own noise model (normalised units of the frame).
        """
        params = self._params
        noise_params, clip_units = normalise_alternate(
            frame, exposure_ratio, noise, self._noise, params.clip_fraction, self._alternate)
        _merge_frame_kernel(
            self._reference.cfa, self._black, self._scale, self._clip, self._tile_clipped,
            self._grey, self._inv_cov, self._channels, self._alternate, clip_units, flow.flow,
            flow.tile_px, flow.stride_px, self._greens, self._others, noise_params,
            np.float32(params.reject_from), np.float32(params.reject_at), self._accept_level,
            np.float32(_MIN_EXPONENT), _STRIP_ROWS, self._num, self._den,
        )  # fmt: skip
        self._brightest = max(self._brightest, 1.0 / float(exposure_ratio))

    def finish_rgb(self) -> npt.NDArray[np.float32]:
        """(H, W, 3) float32 linear camera RGB, black 0, white 1 (values beyond 1 in a
        bracket's highlights scaled down by its range, as :meth:`finish` does)."""
        out = np.empty((*self._reference.shape, 3), dtype=np.float32)
        _finish_rgb_kernel(self._num, self._den, np.float32(self._brightest), out)
        return out

    def finish(self) -> RawFrame:
        """The merge at each site's own colour, as a mosaic at ``output_bits``, with the
        reference's metadata (levels and NoiseProfile as
        :meth:`pipeline.burst.merge.RobustMerge.finish` describes)."""
        levels = self._levels()
        out = np.empty(self._reference.shape, dtype=np.uint16)
        _finish_mosaic_kernel(self._num, self._den, self._channels, levels.black, levels.span,
                              levels.white, out)
        return RawFrame(out, self.metadata())

    def metadata(self) -> CameraMetadata:
        """The metadata :meth:`finish` gives the merged mosaic, without finishing it: the
        NoiseProfile lowered by the median number of frames merged per pixel."""
        site = self._channels[0, 0]
        frames_merged = max(float(np.median(self._den[::8, ::8, site])), 1.0)
        return self._levels().metadata(self._reference.metadata, self._noise, frames_merged,
                                       self._brightest)  # fmt: skip

    def _levels(self) -> OutputLevels:
        return OutputLevels.of(self._reference.metadata, self._black, self._brightest,
                               self._params.output_bits)  # fmt: skip
