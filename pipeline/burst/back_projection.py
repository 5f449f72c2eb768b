"""One back-projection step after the kernel-regression merge, gated by the noise.

The kernel merge (:mod:`pipeline.burst.kernel_regression`) gives each output pixel the
weighted mean of the raw samples around it, as if each showed the pixel's own point.
A sample ``d`` away shows the scene ``d`` away: where the scene is sharp to the pixel (a
sharp lens at 1:1) that mean is biased, and the merge's kernels can only narrow, so
they lose the frames' noise averaging there. The merge's own estimate ``X0`` (three
colour planes) predicts each sample at its true position, ``X0`` interpolated bilinearly
there; the residuals ``u - X0(p)`` carry the bias without it. Iterative back-projection
(Irani & Peleg, "Improving resolution by image registration", CVGIP: Graphical Models
and Image Processing 53(3), 1991, DOI 10.1016/1049-9652(91)90045-L) adds their weighted
mean back: ``X1 = X0 + sum(w r) / sum(w)``, each residual spread to the output pixels
around its sample with the weight of the bilinear interpolation's adjoint, here the
Gaussian of the same variance (the tent of bilinear interpolation has variance 1/6
pixel^2 per axis), times the sample's robustness and precision in the merge. The
residuals of every frame (the reference's included) at one pixel and colour are added,
so one step costs one more pass over the burst; more steps changed little on
``bench/burst_quality.py``.

A residual's mean ``c`` is the bias plus noise of variance
``v = sum(w^2 sigma^2) / sum(w)^2`` (each sample's variance from the noise model). Added
as it is, its noise would undo the merge's averaging where the scene is flat, so ``c`` is
gated by the local Wiener filter of Lee ("Digital image enhancement and noise filtering
by use of local statistics", IEEE TPAMI 2(2), 1980) over the same window of same-colour
sites as :mod:`pipeline.burst.reference_shrink`: ``c (1 - mean(v) / mean(c^2))``, 0 where
the residuals are within their noise. Only each site's own colour is corrected: the
merged mosaic keeps no other. Tiles with a clipped reference sample keep the merge (its
highlight rule), and clipped samples are no evidence.
"""

from __future__ import annotations

import math

import numba
import numpy as np
import numpy.typing as npt

from pipeline.burst.align import TileFlow
from pipeline.burst.merge import strip_alignment
from pipeline.burst.reference_shrink import RADIUS_SITES, mirror_index

#: Exponent factor of the back-projection weight exp(-3 |d|^2): a Gaussian of variance
#: 1/6 pixel^2 per axis, the variance of bilinear interpolation's tent.
_ADJOINT_EXPONENT = np.float32(3.0)


@numba.njit(cache=True, nogil=True, inline="always")
def _bilinear(estimate, ch, y, x):
    # Plane ``ch`` of the (H, W, 3) estimate at (y, x) raw pixels, clamped to the frame.
    h, w, _ = estimate.shape
    y = min(max(y, np.float32(0.0)), np.float32(h - 1))
    x = min(max(x, np.float32(0.0)), np.float32(w - 1))
    iy = min(int(y), h - 2)
    ix = min(int(x), w - 2)
    ty = y - np.float32(iy)
    tx = x - np.float32(ix)
    a = estimate[iy, ix, ch]
    b = estimate[iy, ix + 1, ch]
    c = estimate[iy + 1, ix, ch]
    d = estimate[iy + 1, ix + 1, ch]
    top = a + tx * (b - a)
    bottom = c + tx * (d - c)
    return top + ty * (bottom - top)


@numba.njit(cache=True, nogil=True)
def _residual_row(
    estimate, channels, alt, alt_clip, by, positions, robust, ref_grey, ref_tile_clipped,
    noise, is_reference, sums,
):  # fmt: skip
    # Each output pixel of Bayer-tile row ``by`` gathers the residuals of the alternate's
    # samples of its own colour in the 3x3 window around its aligned position:
    # sums[y, x] += (w r, w, w^2 sigma^2).
    gw = robust.shape[0]
    h, w = alt.shape
    for bx in range(gw):
        r = robust[bx]
        if r == 0 or ref_tile_clipped[by, bx]:
            continue
        if is_reference:
            dy = np.float32(0.0)
            dx = np.float32(0.0)
            precision = np.float32(1.0)
        else:
            dy = np.float32(2.0) * (positions[bx, 0] - np.float32(by))
            dx = np.float32(2.0) * (positions[bx, 1] - np.float32(bx))
            level = max(ref_grey[by, bx], np.float32(0.0))
            precision = (noise[0] * level + noise[1]) / (noise[2] * level + noise[3])
        ry = int(math.floor(dy + np.float32(0.5)))
        rx = int(math.floor(dx + np.float32(0.5)))
        for site in range(4):
            y = 2 * by + (site >> 1)
            x = 2 * bx + (site & 1)
            own = channels[y & 1, x & 1]
            for j in range(3):
                sy = y + ry + j - 1
                if sy < 0 or sy >= h:
                    continue
                oy = np.float32(ry + j - 1) - dy
                for i in range(3):
                    sx = x + rx + i - 1
                    if sx < 0 or sx >= w or channels[sy & 1, sx & 1] != own:
                        continue
                    u = alt[sy, sx]
                    if u >= alt_clip[sy & 1, sx & 1]:
                        continue
                    ox = np.float32(rx + i - 1) - dx
                    weight = r * precision * np.float32(
                        math.exp(-_ADJOINT_EXPONENT * (oy * oy + ox * ox)))
                    predicted = _bilinear(estimate, own, np.float32(y) + oy, np.float32(x) + ox)
                    variance = noise[2] * max(u, np.float32(0.0)) + noise[3]
                    sums[y, x, 0] += weight * (u - predicted)
                    sums[y, x, 1] += weight
                    sums[y, x, 2] += weight * weight * variance


@numba.njit(cache=True, parallel=True, nogil=True)
def _residual_frame_kernel(
    estimate, ref_cfa, ref_black, ref_scale, ref_tile_clipped, ref_grey, channels, alt,
    alt_clip, flow, tile, stride, greens, others, noise, reject_from, reject_at,
    is_reference, strip_rows, sums,
):  # fmt: skip
    # One pass over a frame in strips of Bayer-tile rows, with the positions and
    # robustness weights the merge gave it (the reference: its own places, weight 1).
    gh, gw = ref_grey.shape
    for strip in numba.prange((gh + strip_rows - 1) // strip_rows):
        y0 = strip * strip_rows
        y1 = min(y0 + strip_rows, gh)
        if is_reference:
            positions = np.zeros((y1 - y0, gw, 2), dtype=np.float32)
            robust = np.ones((y1 - y0, gw), dtype=np.float32)
            d0 = y0
        else:
            positions, robust = strip_alignment(
                ref_cfa, ref_black, ref_scale, gh, gw, alt, flow, tile, stride, greens,
                others, noise, reject_from, reject_at, y0, y1,
            )  # fmt: skip
            d0 = max(y0 - 2, 0)
        for by in range(y0, y1):
            _residual_row(
                estimate, channels, alt, alt_clip, by, positions[by - d0], robust[by - y0],
                ref_grey, ref_tile_clipped, noise, is_reference, sums,
            )  # fmt: skip


@numba.njit(cache=True, parallel=True, nogil=True)
def _correction_kernel(sums, out):
    # Per pixel: the residuals' weighted mean c and the variance of its noise v (into
    # out[..., 0] and out[..., 1]); 0, 0 where no residual came.
    h, w, _ = sums.shape
    for y in numba.prange(h):
        for x in range(w):
            total = sums[y, x, 1]
            if total > 0:
                out[y, x, 0] = sums[y, x, 0] / total
                out[y, x, 1] = sums[y, x, 2] / (total * total)
            else:
                out[y, x, 0] = np.float32(0.0)
                out[y, x, 1] = np.float32(0.0)


@numba.njit(cache=True, parallel=True, nogil=True)
def _gated_mosaic_kernel(
    estimate, correction, channels, radius, black_out, span_out, white_out, out,
):  # fmt: skip
    # Each site's own colour, corrected by c (1 - mean(v) / mean(c^2)) over the
    # (2 radius + 1)^2 same-colour sites around it (Lee 1980), into the output levels.
    h, w = out.shape
    for y in numba.prange(h):
        for x in range(w):
            power = np.float32(0.0)
            noise = np.float32(0.0)
            for j in range(-radius, radius + 1):
                yy = mirror_index(y + 2 * j, h)
                for i in range(-radius, radius + 1):
                    xx = mirror_index(x + 2 * i, w)
                    c = correction[yy, xx, 0]
                    power += c * c
                    noise += correction[yy, xx, 1]
            gain = np.float32(0.0)
            if power > noise:
                gain = np.float32(1.0) - noise / power
            own = channels[y & 1, x & 1]
            value = estimate[y, x, own] + gain * correction[y, x, 0]
            v = black_out[y & 1, x & 1] + value * span_out[y & 1, x & 1]
            out[y, x] = np.uint16(min(max(v + np.float32(0.5), np.float32(0.0)), white_out))


def residual_pass(
    estimate: npt.NDArray[np.float32], ref_cfa: npt.NDArray[np.uint16],
    ref_black: npt.NDArray[np.float32], ref_scale: npt.NDArray[np.float32],
    ref_tile_clipped: npt.NDArray[np.bool_], ref_grey: npt.NDArray[np.float32],
    channels: npt.NDArray[np.int64], samples: npt.NDArray[np.float32],
    clip_units: npt.NDArray[np.float32], flow: TileFlow | None, greens: npt.NDArray[np.int64],
    others: npt.NDArray[np.int64], noise: npt.NDArray[np.float32], reject_from: float,
    reject_at: float, is_reference: bool, strip_rows: int, sums: npt.NDArray[np.float32],
) -> None:
    """Add one frame's residuals against ``estimate`` ((H, W, 3), black 0, white 1) to
    ``sums`` ((H, W, 3): weighted residual, weight, weighted variance per pixel).

    ``samples`` is the frame normalised to the reference's units (clip levels
    ``clip_units`` per site), ``flow`` its alignment (None for the reference, whose
    samples lie on the grid) and ``noise`` (a_ref, b_ref, a, b) the variance ``a u + b``
    of a sample of the reference and of this frame, as the merge's distance kernels take
    them; the robustness ramp ``reject_from``, ``reject_at`` is the merge's. The
    reference's tiles, levels and grey image are the merge's."""
    if flow is None:
        tile_flow, tile, stride = np.zeros((1, 1, 2), dtype=np.float32), 1, 1
    else:
        tile_flow, tile, stride = flow.flow, flow.tile_px, flow.stride_px
    _residual_frame_kernel(
        estimate, ref_cfa, ref_black, ref_scale, ref_tile_clipped, ref_grey, channels,
        samples, clip_units, tile_flow, tile, stride, greens, others, noise,
        np.float32(reject_from), np.float32(reject_at), is_reference, strip_rows, sums,
    )  # fmt: skip


def gated_mosaic(
    estimate: npt.NDArray[np.float32], sums: npt.NDArray[np.float32],
    channels: npt.NDArray[np.int64], black_out: npt.NDArray[np.float32],
    span_out: npt.NDArray[np.float32], white_out: float,
) -> npt.NDArray[np.uint16]:
    """The merged mosaic after the back-projection step: each site's own colour of the
    (H, W, 3) ``estimate`` (black 0, white 1) plus its gated correction, from the (H, W, 3)
    residual ``sums`` the frames added (overwritten), in the output's (2, 2) black levels
    and spans and its white level."""
    _correction_kernel(sums, sums)
    out = np.empty(estimate.shape[:2], dtype=np.uint16)
    radius = RADIUS_SITES if min(out.shape) > 4 * RADIUS_SITES else 0
    _gated_mosaic_kernel(estimate, sums, channels, radius, black_out, span_out,
                         np.float32(white_out), out)  # fmt: skip
    return out
