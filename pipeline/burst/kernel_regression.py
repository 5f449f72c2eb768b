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
   and widened by a 3x3 minimum filter, so a moving object leaves no ghost), with the
   tolerance raised by the reference's own local variance where the alignment field
   is locally uniform (the motion prior of sec. 5.2: aliasing is not motion, but
   where neighbouring tiles disagree on the motion, only noise is tolerated).

For speed (IPOL gathers a 3x3 window per output pixel): the four output pixels of a
Bayer tile share its displacement and kernel, hence the nine weights of their 3x3
windows, which are computed once per tile. Accumulators are (H, W, 3) float32 sums;
clipped samples and clipped references are handled as in :mod:`pipeline.burst.merge`.
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
from pipeline.raw_frame import CLIP_FRACTION, RawFrame

#: Bayer-tile rows per strip of the robustness pass.
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
    texture_tolerance : float
        Fraction of the reference's local variance (beyond the noise) added to the
        tolerated difference where the motion field is locally uniform.
    flow_uniform_px : float
        Largest difference (raw pixels) between a tile's displacement and its
        neighbours' for the field to count as uniform there.
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
    texture_tolerance: float = 0.0
    flow_uniform_px: float = 0.5
    clip_fraction: float = CLIP_FRACTION
    output_bits: int = 16

    def __post_init__(self) -> None:
        if not self.noise_to_gradient > 0:
            raise InvalidParameterError(
                f"noise_to_gradient={self.noise_to_gradient}: expected > 0")
        if not 0 < self.k_min <= self.k_max:
            raise InvalidParameterError(
                f"k_min={self.k_min}, k_max={self.k_max}: expected 0 < k_min <= k_max")
        if self.texture_tolerance < 0 or self.flow_uniform_px < 0:
            raise InvalidParameterError(
                f"texture_tolerance={self.texture_tolerance}, flow_uniform_px="
                f"{self.flow_uniform_px}: expected >= 0"
            )
        check_robustness_and_output(self)


@numba.njit(cache=True, parallel=True, nogil=True)
def _tile_chroma_kernel(ref, channels, wb, out):
    # Per Bayer tile, each site's colour difference from green (white-balanced, green's
    # own 0), averaged over 3x3 tiles: subtracted from the mosaic, it leaves the
    # luminance detail the kernel is shaped by.
    gh, gw, _ = out.shape
    for by in numba.prange(gh):
        for bx in range(gw):
            sums = np.zeros(3, dtype=np.float32)
            n = 0
            for ty in range(max(by - 1, 0), min(by + 2, gh)):
                for tx in range(max(bx - 1, 0), min(bx + 2, gw)):
                    green = np.float32(0.0)
                    for site in range(4):
                        ch = channels[site >> 1, site & 1]
                        if ch == 1:
                            green += np.float32(0.5) * wb[1] * ref[2 * ty + (site >> 1), 2 * tx + (site & 1)]
                    for site in range(4):
                        ch = channels[site >> 1, site & 1]
                        if ch != 1:
                            sums[ch] += wb[ch] * ref[2 * ty + (site >> 1), 2 * tx + (site & 1)] - green
                    n += 1
            for ch in range(3):
                out[by, bx, ch] = sums[ch] / np.float32(n)


@numba.njit(cache=True, nogil=True)
def _luminance_at(ref, channels, wb, chroma, y, x):
    ch = channels[y & 1, x & 1]
    return wb[ch] * ref[y, x] - chroma[y >> 1, x >> 1, ch]


@numba.njit(cache=True, parallel=True, nogil=True)
def _kernel_covariance_kernel(ref, channels, wb, chroma, noise, kp, out):
    # Per Bayer tile: the structure tensor of the reference's luminance at full
    # resolution (2x2 finite differences of the white-balanced mosaic less its local
    # colour differences, over the 3x3 cells around the tile's centre), in units of the
    # noise of those differences; the kernel's inverse covariance (a, b, c), with
    # d^T Omega^-1 d = a dx^2 + 2 b dx dy + c dy^2 in raw pixels, is that tensor less
    # the noise over noise_to_gradient**2, plus 1 / k_max**2 (no narrower than k_min).
    # kp = (noise_to_gradient, k_max, k_min); noise = (scale, offset) per raw sample.
    h, w = ref.shape
    gh, gw, _ = out.shape
    ratio2 = kp[0] * kp[0]
    floor = np.float32(1.0) / (kp[1] * kp[1])
    ceiling = np.float32(1.0) / (kp[2] * kp[2])
    half = np.float32(0.5)
    wb2 = np.float32(0.0)
    for site in range(4):
        wb2 += np.float32(0.25) * wb[channels[site >> 1, site & 1]] ** 2
    for by in numba.prange(gh):
        for bx in range(gw):
            sxx = np.float32(0.0)
            sxy = np.float32(0.0)
            syy = np.float32(0.0)
            level = np.float32(0.0)
            for cy in range(2 * by - 1, 2 * by + 2):
                y0 = min(max(cy, 0), h - 2)
                for cx in range(2 * bx - 1, 2 * bx + 2):
                    x0 = min(max(cx, 0), w - 2)
                    l00 = _luminance_at(ref, channels, wb, chroma, y0, x0)
                    l01 = _luminance_at(ref, channels, wb, chroma, y0, x0 + 1)
                    l10 = _luminance_at(ref, channels, wb, chroma, y0 + 1, x0)
                    l11 = _luminance_at(ref, channels, wb, chroma, y0 + 1, x0 + 1)
                    gx = half * ((l01 - l00) + (l11 - l10))
                    gy = half * ((l10 - l00) + (l11 - l01))
                    sxx += gx * gx
                    sxy += gx * gy
                    syy += gy * gy
            for site in range(4):
                level += np.float32(0.25) * ref[2 * by + (site >> 1), 2 * bx + (site & 1)]
            # A cell's gradient component has the variance of one luminance sample.
            sample_var = max(noise[0] * max(level, np.float32(0.0)) + noise[1], np.float32(1e-12))
            variance = np.float32(9.0) * wb2 * sample_var
            sxx /= variance
            sxy /= variance
            syy /= variance
            trace = sxx + syy
            root = np.float32(math.sqrt(max((sxx - syy) * (sxx - syy) * np.float32(0.25) + sxy * sxy, 0.0)))
            l1 = half * trace + root
            l2 = half * trace - root
            if root > np.float32(1e-20):
                ex = sxy
                ey = l1 - sxx
                if abs(ex) + abs(ey) < np.float32(1e-6) * (abs(sxx) + abs(syy) + np.float32(1e-30)):
                    ex = l1 - syy
                    ey = sxy
                norm = np.float32(math.sqrt(ex * ex + ey * ey))
                ex /= norm
                ey /= norm
            else:
                ex = np.float32(1.0)
                ey = np.float32(0.0)
            ia = min(max(l1 - np.float32(1.0), np.float32(0.0)) / ratio2 + floor, ceiling)
            ie = min(max(l2 - np.float32(1.0), np.float32(0.0)) / ratio2 + floor, ceiling)
            # Omega^-1 = ia e1 e1^T + ie e2 e2^T, e2 = (-ey, ex).
            out[by, bx, 0] = ia * ex * ex + ie * ey * ey
            out[by, bx, 1] = (ia - ie) * ex * ey
            out[by, bx, 2] = ia * ey * ey + ie * ex * ex


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
def _flow_spread(flow, tile, stride, by, bx):
    # Largest difference, grey pixels, between the displacement of the tile holding
    # Bayer tile (by, bx) and its 8 neighbours' (the motion prior of sec. 5.2).
    ny, nx, _ = flow.shape
    ty = min(by // stride, ny - 1)
    tx = min(bx // stride, nx - 1)
    spread = np.float32(0.0)
    for j in range(max(ty - 1, 0), min(ty + 2, ny)):
        for i in range(max(tx - 1, 0), min(tx + 2, nx)):
            spread = max(spread, abs(flow[j, i, 0] - flow[ty, tx, 0]), abs(flow[j, i, 1] - flow[ty, tx, 1]))
    return spread


@numba.njit(cache=True, parallel=True, nogil=True)
def _robustness_kernel(
    ref_cfa, ref_black, ref_scale, ref_local_var, alt, flow, tile, stride, greens, others,
    noise, reject_from, reject_at, texture_tolerance, flow_uniform, strip_rows, positions_out,
    robust_out,
):  # fmt: skip
    # Per Bayer tile: where it lies in the alternate frame, and its robustness weight.
    gh, gw = robust_out.shape
    for strip in numba.prange((gh + strip_rows - 1) // strip_rows):
        y0 = strip * strip_rows
        y1 = min(y0 + strip_rows, gh)
        d0 = max(y0 - 2, 0)
        d1 = min(y1 + 2, gh)
        distance = np.empty((d1 - d0, gw), dtype=np.float32)
        positions = np.empty((gw, 2), dtype=np.float32)
        bilinear = np.empty((gw, 4), dtype=np.float32)
        column_flow = np.empty((flow.shape[1], 2), dtype=np.float32)
        diff = np.empty(4, dtype=np.float32)
        for by in range(d0, d1):
            _positions_row(flow, tile, stride, by, gh, column_flow, positions)
            if y0 <= by < y1:
                positions_out[by] = positions
            _bilinear_sites_row(alt, positions, bilinear)
            _distance_row(
                ref_cfa, ref_black, ref_scale, by, bilinear, greens, others, noise, diff,
                distance[by - d0],
            )  # fmt: skip
            if texture_tolerance > 0:
                # Aliasing is not motion: where the motion field is uniform, the
                # reference's own local variance beyond the noise is tolerated too.
                for bx in range(gw):
                    if _flow_spread(flow, tile, stride, by, bx) <= flow_uniform:
                        extra = texture_tolerance * ref_local_var[by, bx]
                        distance[by - d0, bx] /= np.float32(1.0) + extra
        _strip_weights(distance, d0, y0, y1, gh, reject_from, reject_at, robust_out[y0:y1])


@numba.njit(cache=True, parallel=True, nogil=True)
def _local_variance_kernel(grey, noise, out):
    # The reference grey image's variance over 3x3 pixels, in units of its noise
    # variance, minus 1 (0 where it is only noise): the texture tolerance's measure.
    gh, gw = grey.shape
    for y in numba.prange(gh):
        for x in range(gw):
            total = np.float32(0.0)
            total2 = np.float32(0.0)
            n = 0
            for yy in range(max(y - 1, 0), min(y + 2, gh)):
                for xx in range(max(x - 1, 0), min(x + 2, gw)):
                    v = grey[yy, xx]
                    total += v
                    total2 += v * v
                    n += 1
            mean = total / np.float32(n)
            var = max(total2 / np.float32(n) - mean * mean, np.float32(0.0))
            u = max(grey[y, x], np.float32(0.0))
            noise_var = max((noise[0] * u + noise[1]) * np.float32(0.25), np.float32(1e-12))
            out[y, x] = max(var / noise_var - np.float32(1.0), np.float32(0.0))


@numba.njit(cache=True, parallel=True, nogil=True)
def _accumulate_kernel(
    ref_cfa, ref_clip, ref_grey, inv_cov, channels, alt, alt_clip, positions, robust,
    noise, accept_level, is_reference, num, den,
):  # fmt: skip
    # Gathers, for each output pixel, the alternate's raw samples in the 3x3 window
    # around its aligned position, each into its colour channel with the kernel weight
    # (Wronski et al. eq. 4). The four pixels of a Bayer tile share the tile's
    # displacement and kernel, so the window's nine weights are computed once.
    gh, gw = robust.shape
    h, w = alt.shape
    neg_half = np.float32(-0.5)
    floor_exp = np.float32(_MIN_EXPONENT)
    for by in numba.prange(gh):
        weights = np.empty(9, dtype=np.float32)
        acc = np.empty(6, dtype=np.float32)
        for bx in range(gw):
            r = robust[by, bx]
            if is_reference:
                dy = np.float32(0.0)
                dx = np.float32(0.0)
                precision = np.float32(1.0)
            else:
                dy = np.float32(2.0) * (positions[by, bx, 0] - np.float32(by))
                dx = np.float32(2.0) * (positions[by, bx, 1] - np.float32(bx))
                level = max(ref_grey[by, bx], np.float32(0.0))
                precision = (noise[0] * level + noise[1]) / (noise[2] * level + noise[3])
            ry = int(math.floor(dy + np.float32(0.5)))
            rx = int(math.floor(dx + np.float32(0.5)))
            fy = np.float32(ry) - dy  # sample row offset from the pixel, for window row 0
            fx = np.float32(rx) - dx
            a = inv_cov[by, bx, 0]
            b = inv_cov[by, bx, 1]
            c = inv_cov[by, bx, 2]
            for j in range(3):
                oy = fy + np.float32(j - 1)
                for i in range(3):
                    ox = fx + np.float32(i - 1)
                    q = a * ox * ox + np.float32(2.0) * b * ox * oy + c * oy * oy
                    weights[3 * j + i] = np.float32(math.exp(max(neg_half * q, floor_exp)))
            if r == 0 and not is_reference:
                # Rejected (it moved): only a clipped reference pixel may still take it.
                any_clipped = False
                for site in range(4):
                    if np.float32(ref_cfa[2 * by + (site >> 1), 2 * bx + (site & 1)]) >= ref_clip[site >> 1, site & 1]:
                        any_clipped = True
                if not any_clipped:
                    continue
            robust_weight = r * precision
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
                        weight = weights[3 * j + i]
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
        gh, gw = reference_grey.shape
        self._alternate = np.empty(reference.shape, dtype=np.float32)
        _normalise_kernel(reference.cfa, self._black, self._scale, np.float32(1.0), self._alternate)
        wb = _white_balance(reference)
        chroma = np.empty((gh, gw, 3), dtype=np.float32)
        _tile_chroma_kernel(self._alternate, self._channels, wb, chroma)
        kp = np.array([params.noise_to_gradient, params.k_max, params.k_min], dtype=np.float32)
        self._inv_cov = np.empty((gh, gw, 3), dtype=np.float32)
        _kernel_covariance_kernel(self._alternate, self._channels, wb, chroma, noise, kp, self._inv_cov)
        del chroma
        self._local_var = np.empty((gh, gw), dtype=np.float32)
        _local_variance_kernel(reference_grey, noise, self._local_var)
        self._num = np.zeros((*reference.shape, 3), dtype=np.float32)
        self._den = np.zeros((*reference.shape, 3), dtype=np.float32)
        self._positions = np.empty((gh, gw, 2), dtype=np.float32)
        self._robust = np.ones((gh, gw), dtype=np.float32)
        self._brightest = 1.0
        self._frames = 1.0
        clip_units = ((self._clip - self._black) * self._scale).astype(np.float32)
        self._accumulate(clip_units, np.zeros(4, dtype=np.float32), True)

    def _accumulate(self, clip_units, noise_params, is_reference: bool) -> None:
        _accumulate_kernel(
            self._reference.cfa, self._clip, self._grey, self._inv_cov, self._channels,
            self._alternate, clip_units, self._positions, self._robust, noise_params,
            np.float32(_CLIPPED_AGREEMENT * self._params.clip_fraction), is_reference,
            self._num, self._den,
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
        _robustness_kernel(
            self._reference.cfa, self._black, self._scale, self._local_var, self._alternate,
            flow.flow, flow.tile_px, flow.stride_px, self._greens, self._others, noise_params,
            np.float32(params.reject_from), np.float32(params.reject_at),
            np.float32(params.texture_tolerance), np.float32(params.flow_uniform_px / 2.0),
            _STRIP_ROWS, self._positions, self._robust,
        )  # fmt: skip
        self._accumulate(clip_units, noise_params, False)
        self._brightest = max(self._brightest, 1.0 / float(exposure_ratio))
        self._frames += 1.0

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
        meta = self._reference.metadata
        levels = OutputLevels.of(meta, self._black, self._brightest, self._params.output_bits)
        out = np.empty(self._reference.shape, dtype=np.uint16)
        _finish_mosaic_kernel(self._num, self._den, self._channels, levels.black, levels.span,
                              levels.white, out)
        site = self._channels[0, 0]
        frames_merged = max(float(np.median(self._den[::8, ::8, site])), 1.0)
        return RawFrame(out, levels.metadata(meta, self._noise, frames_merged, self._brightest))
