"""The merged frame drawn back to the reference where it departs from it by more than noise.

Every merge in the reference's geometry interpolates the other frames at sub-pixel
positions; where the scene holds detail finer than its colour planes' sampling (a sharp
lens at 1:1), that interpolation is biased, and the merge's robustness, which compares one
pixel's difference with the noise of two frames, lets biases smaller than that noise
through, in every frame alike. A local Wiener filter on the difference finds them (the
local-statistics filter of Lee, "Digital image enhancement and noise filtering by use of
local statistics", IEEE TPAMI 2(2), 1980, DOI 10.1109/TPAMI.1980.4766994). With
``reference = t + n_r`` and ``merged = t + b + n_m`` (truth, bias, noise), the difference
``d = merged - reference`` is ``b`` plus noise of variance ``v = (1 - 1/N) sigma_r^2`` for
an ``N``-frame average that holds the reference, and the estimate ``reference + W d``
with least error has ``W = v / E[d^2]``: 1 (all the merge) where the difference is noise,
less where a bias adds to it. ``E[d^2]`` is the mean of ``d^2`` over the (2r + 1)^2 sites of
the pixel's colour around it, and ``sigma_r^2`` the reference's noise model at their mean
level. That mean of n squared noise samples is itself uncertain (standard deviation
``sqrt(2 / n)`` relative), so ``W`` is ``min(1, k v / mean(d^2))`` with the guard ``k = 1 +
2 sqrt(2 / n)``: the merge is kept wherever the difference stays within two standard
deviations of what noise alone gives.

Clipped sites of either frame keep the merge (its highlight handling). Only a burst of
one exposure is drawn back: a bracket's merged noise is not the reference's over ``N``.

``bench/burst_quality.py`` measures it: it raises the PSNR gain on simulated 1:1 bursts
and leaves 2x ones (where the merge is near its ideal) as they were, or slightly better.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from pipeline.burst.merge import _site_levels
from pipeline.noise_model import NoiseModel
from pipeline.raw_frame import CLIP_FRACTION, RawFrame

#: Half-width of the window, in sites of the pixel's colour (5 x 5 sites: 10 x 10 pixels).
RADIUS_SITES = 2
#: Rows per parallel task: each normalises its rows and their halo once.
STRIP_ROWS = 32


@numba.njit(cache=True, nogil=True, inline="always")
def _mirror(i, n):
    """Index ``i`` reflected into [0, n) by steps of 2 (so it keeps its CFA parity)."""
    if i < 0:
        i = -i
    if i >= n:
        i = 2 * (n - 1) - i
    return i


@numba.njit(cache=True, parallel=True, nogil=True, error_model="numpy")
def _shrink_kernel(merged, reference, m_black, m_scale, m_clip, r_black, r_scale, r_clip,
                   noise_scale, noise_offset, noise_share, guard, radius, strip_rows, out):
    h, w = merged.shape
    n_sites = np.float32((2 * radius + 1) ** 2)
    m_white = np.float32(1.0) / m_scale + m_black  # per site, raw units
    halo = 2 * radius
    for strip in numba.prange((h + strip_rows - 1) // strip_rows):
        y0 = strip * strip_rows
        y1 = min(y0 + strip_rows, h)
        # The strip's rows and its halo, normalised once: the reference, and d^2.
        ref_rows = np.empty((y1 - y0 + 2 * halo, w), dtype=np.float32)
        d2_rows = np.empty((y1 - y0 + 2 * halo, w), dtype=np.float32)
        for i in range(y1 - y0 + 2 * halo):
            yy = _mirror(y0 - halo + i, h)
            py = yy & 1
            for x in range(w):
                px = x & 1
                rv = (np.float32(reference[yy, x]) - r_black[py, px]) * r_scale[py, px]
                d = (np.float32(merged[yy, x]) - m_black[py, px]) * m_scale[py, px] - rv
                ref_rows[i, x] = rv
                d2_rows[i, x] = d * d
        col_d2 = np.empty(w, dtype=np.float32)
        col_ref = np.empty(w, dtype=np.float32)
        for y in range(y0, y1):
            py = y & 1
            i = y - y0 + halo
            for x in range(w):  # the window's rows (this one's parity), per column
                col_d2[x] = d2_rows[i - halo, x]
                col_ref[x] = ref_rows[i - halo, x]
            for k in range(1 - radius, radius + 1):
                for x in range(w):
                    col_d2[x] += d2_rows[i + 2 * k, x]
                    col_ref[x] += ref_rows[i + 2 * k, x]
            for x in range(w):
                px = x & 1
                m_raw = np.float32(merged[y, x])
                if np.float32(reference[y, x]) >= r_clip[py, px] or m_raw >= m_clip[py, px]:
                    out[y, x] = merged[y, x]
                    continue
                sum_d2 = np.float32(0.0)
                sum_ref = np.float32(0.0)
                for k in range(-radius, radius + 1):
                    xx = _mirror(x + 2 * k, w)
                    sum_d2 += col_d2[xx]
                    sum_ref += col_ref[xx]
                level = max(sum_ref / n_sites, np.float32(0.0))
                noise = noise_share * (noise_scale * level + noise_offset)
                energy = max(sum_d2 / n_sites, np.float32(1e-20))
                weight = min(np.float32(1.0), guard * noise / energy)
                rv = ref_rows[i, x]
                mv = (m_raw - m_black[py, px]) * m_scale[py, px]
                value = (rv + weight * (mv - rv)) / m_scale[py, px] + m_black[py, px]
                out[y, x] = np.uint16(min(max(value + np.float32(0.5), np.float32(0.0)),
                                          m_white[py, px]))


def shrink_to_reference(
    merged: RawFrame, reference: RawFrame, noise: NoiseModel, frames: int
) -> RawFrame:
    """``merged`` drawn back towards ``reference`` where their difference is more than
    noise (see the module notes).

    Parameters
    ----------
    merged : RawFrame
        A merge of ``frames`` frames of one exposure, in the reference's geometry (16-bit
        mosaic, its own black and white levels).
    reference : RawFrame
        The burst's reference frame.
    noise : NoiseModel
        The reference's noise model (normalised units).
    frames : int
        How many frames were merged (2 or more).
    """
    if min(merged.shape) <= 4 * RADIUS_SITES:  # too small for the window to be reflected
        return merged
    m_black, m_scale, m_clip = _site_levels(merged, CLIP_FRACTION)
    r_black, r_scale, r_clip = _site_levels(reference, CLIP_FRACTION)
    n_sites = (2 * RADIUS_SITES + 1) ** 2
    guard = 1.0 + 2.0 * math.sqrt(2.0 / n_sites)
    out = np.empty(merged.shape, dtype=np.uint16)
    _shrink_kernel(
        merged.cfa, reference.cfa, m_black, m_scale, m_clip, r_black, r_scale, r_clip,
        np.float32(noise.scale), np.float32(noise.offset), np.float32(1.0 - 1.0 / frames),
        np.float32(guard), RADIUS_SITES, STRIP_ROWS, out,
    )  # fmt: skip
    return RawFrame(out, merged.metadata)
