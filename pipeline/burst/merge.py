"""Robust merge of aligned burst frames into the reference, in the raw (Bayer) domain.

HDR+ merges each alternate tile into the reference with a pairwise Wiener filter in the
Fourier domain, shrinking towards the reference where the two differ by more than the
noise explains (Hasinoff et al., ACM TOG 35(6), 2016, DOI 10.1145/2980179.2980254,
sec. 5). This module is the spatial-domain variant the IPOL analysis compares it with
(Monod, Delon, Veit, IPOL 11, 2021, DOI 10.5201/ipol.2021.336, sec. 4), with the
robustness of Wronski et al. ("Handheld Multi-Frame Super-Resolution", ACM TOG 38(4),
2019, DOI 10.1145/3306346.3323024, sec. 5.2):

1. each alternate frame is resampled at sub-pixel positions from its own CFA planes
   (Catmull-Rom bicubic within each colour plane), so no demosaicing happens before the
   merge;
2. per 2x2 Bayer tile, the squared differences between the reference and the warped
   alternate of grey and of two colour differences (so a moving object of another hue
   but the same brightness is seen too, as Wronski et al. compare colour channels) are
   divided by the variances the noise model predicts for them and averaged over a 3x3
   window of tiles. Where that ratio ``z`` is near 1 the frames agree; the weight falls
   linearly from 1 at ``z = reject_from`` to 0 at ``z = reject_at``, and a 3x3 minimum
   filter widens rejected regions so moving edges leave no ghost;
3. pixels are averaged with those weights times each frame's noise precision relative
   to the reference (exposure-normalised frames of a bracket have different noise).

The three steps run as one pass per frame over strips of Bayer-tile rows (each strip's
buffers stay in a core's cache, strips run in parallel); the distances are measured on
bilinear samples taken from the bicubic's inner taps.

Saturation: clipped alternate samples never enter. Where the reference itself is
clipped, alternate samples are accepted only when they too say "at least this bright"
after exposure normalisation (the longer exposure wherever it is not clipped, the
shorter where it is); a reference pixel nobody can fill stays at the output's white
level, so the develop's highlight handling keeps it white, never magenta.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numba
import numpy as np
import numpy.typing as npt

from pipeline.burst.align import TileFlow
from pipeline.errors import InvalidParameterError
from pipeline.noise_model import NoiseModel
from pipeline.raw_frame import CLIP_FRACTION, CameraMetadata, RawFrame

if TYPE_CHECKING:
    from pipeline.burst.kernel_regression import KernelMergeParams

#: Where the reference is clipped, an alternate sample must reach this fraction of the
#: clipping level (in reference units) to count as the same highlight.
_CLIPPED_AGREEMENT = 0.9
#: Bayer-tile rows per strip of the merge kernel: its buffers then fit in a core's L2.
_STRIP_ROWS = 32


@dataclass(frozen=True)
class MergeParams:
    """Robustness and saturation settings of the merge.

    Attributes
    ----------
    reject_from, reject_at : float
        Normalised local distance ``z`` (1 = exactly the noise) at which an alternate
        frame's weight starts to fall, and where it reaches 0.
    clip_fraction : float
        A raw sample above ``black + clip_fraction * (white - black)`` counts as clipped.
    output_bits : int
        Bit depth of the merged mosaic (at most 16).
    """

    reject_from: float = 1.5
    reject_at: float = 4.0
    clip_fraction: float = CLIP_FRACTION
    output_bits: int = 16

    def __post_init__(self) -> None:
        check_robustness_and_output(self)


def check_robustness_and_output(params: MergeParams | KernelMergeParams) -> None:
    """The checks of what every merge's parameters share: the robustness ramp
    (``reject_from``, ``reject_at``), ``clip_fraction`` and ``output_bits``."""
    if not 0 < params.reject_from < params.reject_at:
        raise InvalidParameterError(
            f"reject_from={params.reject_from}, reject_at={params.reject_at}: "
            "expected 0 < reject_from < reject_at"
        )
    if not 0.5 <= params.clip_fraction <= 1.0:
        raise InvalidParameterError(f"clip_fraction={params.clip_fraction}: expected 0.5..1")
    if not 12 <= params.output_bits <= 16:
        raise InvalidParameterError(f"output_bits={params.output_bits}: expected 12..16")


def _site_levels(frame: RawFrame, clip_fraction: float):
    meta = frame.metadata
    black = np.asarray(meta.black_level, dtype=np.float32).reshape(2, 2)
    scale = (1.0 / (np.float32(meta.white_level) - black)).astype(np.float32)
    clip = (black + np.float32(clip_fraction) * (np.float32(meta.white_level) - black)).astype(
        np.float32
    )
    return black, scale, clip


@numba.njit(cache=True, parallel=True, nogil=True)
def _init_kernel(cfa, black, scale, clip, num, den):
    h, w = cfa.shape
    for y in numba.prange(h):
        for x in range(w):
            v = np.float32(cfa[y, x])
            if v >= clip[y & 1, x & 1]:
                num[y, x] = np.float32(0.0)
                den[y, x] = np.float32(0.0)
            else:
                num[y, x] = (v - black[y & 1, x & 1]) * scale[y & 1, x & 1]
                den[y, x] = np.float32(1.0)


@numba.njit(cache=True, parallel=True, nogil=True)
def _normalise_kernel(cfa, black, scale, gain, out):
    # Raw samples in reference units (black 0, reference white 1): done once per frame,
    # where each sample is read by the sixteen taps of four resampled tiles.
    h, w = cfa.shape
    for y in numba.prange(h):
        b0 = black[y & 1, 0]
        b1 = black[y & 1, 1]
        s0 = scale[y & 1, 0] * gain
        s1 = scale[y & 1, 1] * gain
        for x in range(0, w - 1, 2):
            out[y, x] = (np.float32(cfa[y, x]) - b0) * s0
            out[y, x + 1] = (np.float32(cfa[y, x + 1]) - b1) * s1
        if w & 1:
            out[y, w - 1] = (np.float32(cfa[y, w - 1]) - b0) * s0


@numba.njit(cache=True, nogil=True)
def _positions_row(flow, tile, stride, by, gh, column_flow, out):
    # Where each 2x2 Bayer tile of row ``by`` lies in the alternate frame, in grey pixels
    # clamped to the frame: the alignment tiles' displacements interpolated bilinearly
    # between tile centres, the vertical step once per tile column.
    ny, nx, _ = flow.shape
    gw = out.shape[0]
    half = np.float32(0.5 * (tile - 1))
    inv_stride = np.float32(1.0 / stride)
    fy = min(max((np.float32(by) - half) * inv_stride, np.float32(0.0)), np.float32(ny - 1))
    y0 = min(int(fy), max(ny - 2, 0))
    y1 = min(y0 + 1, ny - 1)
    ty = fy - np.float32(y0)
    for j in range(nx):
        for k in range(2):
            column_flow[j, k] = flow[y0, j, k] + ty * (flow[y1, j, k] - flow[y0, j, k])
    for bx in range(gw):
        fx = min(max((np.float32(bx) - half) * inv_stride, np.float32(0.0)), np.float32(nx - 1))
        x0 = min(int(fx), max(nx - 2, 0))
        x1 = min(x0 + 1, nx - 1)
        tx = fx - np.float32(x0)
        dy = column_flow[x0, 0] + tx * (column_flow[x1, 0] - column_flow[x0, 0])
        dx = column_flow[x0, 1] + tx * (column_flow[x1, 1] - column_flow[x0, 1])
        out[bx, 0] = min(max(np.float32(by) + dy, np.float32(0.0)), np.float32(gh - 1))
        out[bx, 1] = min(max(np.float32(bx) + dx, np.float32(0.0)), np.float32(gw - 1))


@numba.njit(cache=True, nogil=True)
def _catmull_rom_weights(t):
    # Catmull-Rom cubic convolution (a = -0.5) at fraction t, in float32.
    t2 = t * t
    t3 = t2 * t
    half = np.float32(0.5)
    return (
        half * (-t3 + np.float32(2.0) * t2 - t),
        half * (np.float32(3.0) * t3 - np.float32(5.0) * t2 + np.float32(2.0)),
        half * (np.float32(-3.0) * t3 + np.float32(4.0) * t2 + t),
        half * (t3 - t2),
    )


@numba.njit(cache=True, nogil=True)
def _catmull_rom_taps(image, row, c0, c1, c2, c3, w0, w1, w2, w3, t):
    # Four taps of one row: their weighted sum, the linear interpolation at t between
    # the inner two, and their largest value.
    v0 = image[row, c0]
    v1 = image[row, c1]
    v2 = image[row, c2]
    v3 = image[row, c3]
    cubic = w0 * v0 + w1 * v1 + w2 * v2 + w3 * v3
    return cubic, v1 + t * (v2 - v1), max(max(v0, v1), max(v2, v3))


@numba.njit(cache=True, nogil=True)
def _resample_row(alt, alt_clip, positions, samples, bilinear, clipped):
    # The alternate frame (normalised) at each tile's position, per Bayer site from its
    # own colour plane: Catmull-Rom bicubic (to merge) and bilinear from the same taps (to
    # compare: it averages some noise away, so fewer tiles are rejected for noise alone);
    # bit 2 * sy + sx of ``clipped`` set where a clipped raw sample entered the site.
    gh = alt.shape[0] // 2
    gw = samples.shape[0]
    for bx in range(gw):
        py = positions[bx, 0]
        px = positions[bx, 1]
        iy = int(py)
        ix = int(px)
        ty = py - np.float32(iy)
        tx = px - np.float32(ix)
        wy0, wy1, wy2, wy3 = _catmull_rom_weights(ty)
        wx0, wx1, wx2, wx3 = _catmull_rom_weights(tx)
        r0 = 2 * max(iy - 1, 0)
        r1 = 2 * iy
        r2 = 2 * min(iy + 1, gh - 1)
        r3 = 2 * min(iy + 2, gh - 1)
        c0 = 2 * max(ix - 1, 0)
        c1 = 2 * ix
        c2 = 2 * min(ix + 1, gw - 1)
        c3 = 2 * min(ix + 2, gw - 1)
        mask = 0
        for sy in range(2):
            for sx in range(2):
                k0, k1, k2, k3 = c0 + sx, c1 + sx, c2 + sx, c3 + sx
                h0, _, p0 = _catmull_rom_taps(alt, r0 + sy, k0, k1, k2, k3, wx0, wx1, wx2, wx3, tx)  # fmt: skip
                h1, l1, p1 = _catmull_rom_taps(alt, r1 + sy, k0, k1, k2, k3, wx0, wx1, wx2, wx3, tx)  # fmt: skip
                h2, l2, p2 = _catmull_rom_taps(alt, r2 + sy, k0, k1, k2, k3, wx0, wx1, wx2, wx3, tx)  # fmt: skip
                h3, _, p3 = _catmull_rom_taps(alt, r3 + sy, k0, k1, k2, k3, wx0, wx1, wx2, wx3, tx)  # fmt: skip
                value = wy0 * h0 + wy1 * h1 + wy2 * h2 + wy3 * h3
                site = 2 * sy + sx
                samples[bx, site] = value
                bilinear[bx, site] = l1 + ty * (l2 - l1)
                if max(max(p0, p1), max(p2, p3)) >= alt_clip[sy, sx]:
                    mask |= 1 << site
        clipped[bx] = mask


@numba.njit(cache=True, nogil=True)
def _distance_row(ref_cfa, ref_black, ref_scale, by, bilinear, greens, others, noise, diff, out):
    # Per 2x2 Bayer tile: the squared differences between the reference's sites and the
    # alternate's (bilinear), of grey and of the two colour differences (red and blue
    # minus green), each over the variance the noise model predicts for it, averaged.
    # Colour counts: a moving object of the background's brightness but another hue is
    # still seen. noise = (a_ref, b_ref, a_alt, b_alt): per-raw-pixel variance a * u + b,
    # reference units.
    gw = out.shape[0]
    for bx in range(gw):
        level = np.float32(0.0)
        for site in range(4):
            sy = site >> 1
            sx = site & 1
            ref = (np.float32(ref_cfa[2 * by + sy, 2 * bx + sx]) - ref_black[sy, sx]) * ref_scale[sy, sx]
            diff[site] = ref - bilinear[bx, site]
            level += ref
        u = max(level * np.float32(0.25), np.float32(0.0))
        variance = noise[0] * u + noise[1] + noise[2] * u + noise[3]
        green = np.float32(0.5) * (diff[greens[0]] + diff[greens[1]])
        grey = np.float32(0.25) * (diff[0] + diff[1] + diff[2] + diff[3])
        chroma_1 = diff[others[0]] - green
        chroma_2 = diff[others[1]] - green
        # var(grey) = variance / 4; var(site - mean of two greens) = 1.5 * variance.
        out[bx] = (
            grey * grey * np.float32(4.0)
            + (chroma_1 * chroma_1 + chroma_2 * chroma_2) * np.float32(1.0 / 1.5)
        ) / (np.float32(3.0) * variance)


@numba.njit(cache=True, nogil=True)
def _accumulate_row(
    ref_cfa, ref_clip, ref_grey, by, samples, clipped, weights, noise, accept_level, num, den
):  # fmt: skip
    # Adds each site's resampled value, weighted by the tile's robustness weight times the
    # frame's noise precision relative to the reference; see the module docstring for
    # clipped samples.
    gw = weights.shape[0]
    y = 2 * by
    for bx in range(gw):
        x = 2 * bx
        is_ref_clipped = (
            np.float32(ref_cfa[y, x]) >= ref_clip[0, 0]
            or np.float32(ref_cfa[y, x + 1]) >= ref_clip[0, 1]
            or np.float32(ref_cfa[y + 1, x]) >= ref_clip[1, 0]
            or np.float32(ref_cfa[y + 1, x + 1]) >= ref_clip[1, 1]
        )
        if weights[bx] == 0 and not is_ref_clipped:
            continue  # rejected (it moved): this frame adds nothing here
        level = max(ref_grey[by, bx], np.float32(0.0))
        precision = (noise[0] * level + noise[1]) / (noise[2] * level + noise[3])
        robust = weights[bx] * precision
        for site in range(4):
            if clipped[bx] & (1 << site):
                continue  # a clipped sample is no evidence of the value
            sy = site >> 1
            sx = site & 1
            u = samples[bx, site]
            if np.float32(ref_cfa[y + sy, x + sx]) >= ref_clip[sy, sx]:
                if u < accept_level:
                    continue  # darker than the clipped reference: something moved
                weight = precision
            else:
                weight = robust
            num[y + sy, x + sx] += weight * u
            den[y + sy, x + sx] += weight


@numba.njit(cache=True, nogil=True)
def _robust_weight_row(distance, reject_from, reject_at, column, out):
    # The mean of ``distance`` (the rows around one row) over 3x3 tiles, fewer at the
    # edges, mapped to a weight by a linear ramp from 1 at reject_from to 0 at reject_at.
    rows, gw = distance.shape
    span = reject_at - reject_from
    for x in range(gw):
        total = np.float32(0.0)
        for yy in range(rows):
            total += distance[yy, x]
        column[x] = total
    for x in range(gw):
        xa = max(x - 1, 0)
        xb = min(x + 2, gw)
        total = np.float32(0.0)
        for xx in range(xa, xb):
            total += column[xx]
        z = total / np.float32(rows * (xb - xa))
        out[x] = min(max((reject_at - z) / span, np.float32(0.0)), np.float32(1.0))


@numba.njit(cache=True, nogil=True)
def _min_filter_row(weights, column, out):
    # The minimum of ``weights`` (the rows around one row) over 3x3 tiles: a tile next
    # to a rejected one is rejected too, so moving edges leave no ghost.
    rows, gw = weights.shape
    for x in range(gw):
        m = weights[0, x]
        for yy in range(1, rows):
            m = min(m, weights[yy, x])
        column[x] = m
    for x in range(gw):
        m = column[x]
        for xx in range(max(x - 1, 0), min(x + 2, gw)):
            m = min(m, column[xx])
        out[x] = m


@numba.njit(cache=True, nogil=True)
def _strip_weights(distance, d0, y0, y1, gh, reject_from, reject_at, out):
    # The robustness weights of tile rows y0..y1 (into ``out``, a row each) from the
    # distances of rows d0.. (two rows of halo each side): the 3x3 mean distance mapped
    # by the linear ramp (one row of halo), then the 3x3 minimum of that.
    gw = distance.shape[1]
    r0 = max(y0 - 1, 0)
    r1 = min(y1 + 1, gh)
    ramp = np.empty((r1 - r0, gw), dtype=np.float32)
    column = np.empty(gw, dtype=np.float32)
    for y in range(r0, r1):
        _robust_weight_row(
            distance[max(y - 1, 0) - d0 : min(y + 2, gh) - d0], reject_from, reject_at,
            column, ramp[y - r0],
        )  # fmt: skip
    for y in range(y0, y1):
        _min_filter_row(ramp[max(y - 1, 0) - r0 : min(y + 2, gh) - r0], column, out[y - y0])


@numba.njit(cache=True, parallel=True, nogil=True)
def _merge_frame_kernel(
    ref_cfa, ref_black, ref_scale, ref_clip, ref_grey, alt, alt_clip, flow, tile, stride,
    greens, others, noise, reject_from, reject_at, accept_level, strip_rows, num, den,
):  # fmt: skip
    # One pass over the frame, in strips of Bayer-tile rows whose buffers stay in cache:
    # resample and measure distances with two rows of halo, map the 3x3 mean distance
    # to a weight by a linear ramp (one row of halo), take the 3x3 minimum of that, and
    # accumulate the strip's own rows.
    gh, gw = ref_grey.shape
    for strip in numba.prange((gh + strip_rows - 1) // strip_rows):
        y0 = strip * strip_rows
        y1 = min(y0 + strip_rows, gh)
        d0 = max(y0 - 2, 0)
        d1 = min(y1 + 2, gh)
        samples = np.empty((d1 - d0, gw, 4), dtype=np.float32)
        clipped = np.empty((d1 - d0, gw), dtype=np.uint8)
        distance = np.empty((d1 - d0, gw), dtype=np.float32)
        positions = np.empty((gw, 2), dtype=np.float32)
        bilinear = np.empty((gw, 4), dtype=np.float32)
        column_flow = np.empty((flow.shape[1], 2), dtype=np.float32)
        diff = np.empty(4, dtype=np.float32)
        for by in range(d0, d1):
            _positions_row(flow, tile, stride, by, gh, column_flow, positions)
            _resample_row(alt, alt_clip, positions, samples[by - d0], bilinear, clipped[by - d0])
            _distance_row(
                ref_cfa, ref_black, ref_scale, by, bilinear, greens, others, noise, diff,
                distance[by - d0],
            )  # fmt: skip
        weights = np.empty((y1 - y0, gw), dtype=np.float32)
        _strip_weights(distance, d0, y0, y1, gh, reject_from, reject_at, weights)
        for y in range(y0, y1):
            _accumulate_row(
                ref_cfa, ref_clip, ref_grey, y, samples[y - d0], clipped[y - d0], weights[y - y0],
                noise, accept_level, num, den,
            )  # fmt: skip


@numba.njit(cache=True, parallel=True, nogil=True)
def _finish_kernel(num, den, black_out, span_out, white_out, out):
    h, w = num.shape
    for y in numba.prange(h):
        for x in range(w):
            if den[y, x] > 0:
                v = black_out[y & 1, x & 1] + num[y, x] / den[y, x] * span_out[y & 1, x & 1]
                out[y, x] = np.uint16(min(max(v + np.float32(0.5), np.float32(0.0)), white_out))
            else:
                out[y, x] = np.uint16(white_out)


class RobustMerge:
    """Accumulates aligned alternate frames into the reference; :meth:`finish` makes the mosaic.

    Holds three (H, W) float32 arrays (the weighted values' and weights' sums, and the
    frame being added, normalised): memory stays at that, however many frames are added.

    Parameters
    ----------
    reference : RawFrame
    reference_grey : (H/2, W/2) float32
        :func:`pipeline.burst.align.bayer_grey` of the reference.
    reference_noise : NoiseModel
    params : MergeParams
    """

    def __init__(
        self,
        reference: RawFrame,
        reference_grey: npt.NDArray[np.float32],
        reference_noise: NoiseModel,
        params: MergeParams,
    ) -> None:
        self._reference = reference
        self._grey = reference_grey
        self._noise = reference_noise
        self._params = params
        self._black, self._scale, self._clip = _site_levels(reference, params.clip_fraction)
        self._num = np.empty(reference.shape, dtype=np.float32)
        self._den = np.empty(reference.shape, dtype=np.float32)
        self._alternate = np.empty(reference.shape, dtype=np.float32)  # the frame being added
        self._brightest = 1.0  # the largest value, in reference units, a frame can record
        channels = reference.metadata.cfa_pattern.channels.ravel()
        self._greens = np.flatnonzero(channels == 1)
        self._others = np.flatnonzero(channels != 1)
        _init_kernel(reference.cfa, self._black, self._scale, self._clip, self._num, self._den)

    def add(
        self,
        frame: RawFrame,
        flow: TileFlow,
        exposure_ratio: float,
        noise: NoiseModel,
    ) -> None:
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
            self._reference.cfa, self._black, self._scale, self._clip, self._grey,
            self._alternate, clip_units, flow.flow, flow.tile_px, flow.stride_px,
            self._greens, self._others, noise_params, np.float32(params.reject_from), np.float32(params.reject_at),
            np.float32(_CLIPPED_AGREEMENT * params.clip_fraction), _STRIP_ROWS, self._num,
            self._den,
        )  # fmt: skip
        self._brightest = max(self._brightest, 1.0 / float(exposure_ratio))

    def finish(self) -> RawFrame:
        """The merged mosaic at ``output_bits``, with the reference's metadata.

        White level: the reference's scaled to the output depth; in a bracket whose
        shorter frames recorded highlights beyond the reference's white, the values are
        scaled down by that range and BaselineExposure raised to match. The NoiseProfile
        is the reference's divided by the median number of frames merged per pixel.
        """
        meta = self._reference.metadata
        levels = OutputLevels.of(meta, self._black, self._brightest, self._params.output_bits)
        out = np.empty(self._reference.shape, dtype=np.uint16)
        _finish_kernel(self._num, self._den, levels.black, levels.span, levels.white, out)
        frames_merged = max(float(np.median(self._den[::8, ::8])), 1.0)
        return RawFrame(out, levels.metadata(meta, self._noise, frames_merged, self._brightest))


def normalise_alternate(
    frame: RawFrame, exposure_ratio: float, noise: NoiseModel, reference_noise: NoiseModel,
    clip_fraction: float, out: npt.NDArray[np.float32],
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """An alternate frame normalised into ``out`` ((H, W) float32) at the reference's
    exposure; returns the noise parameters the distance kernels take (the reference's
    scale and offset, then the alternate's in the reference's units) and the alternate's
    per-site clip levels in those units."""
    black, scale, clip = _site_levels(frame, clip_fraction)
    ratio = float(exposure_ratio)
    noise_params = np.array(
        [reference_noise.scale, reference_noise.offset, noise.scale / ratio,
         noise.offset / ratio**2], dtype=np.float32)
    gain = np.float32(1.0 / ratio)
    _normalise_kernel(frame.cfa, black, scale, gain, out)
    return noise_params, ((clip - black) * scale * gain).astype(np.float32)


@dataclasses.dataclass(frozen=True)
class OutputLevels:
    """Black, white and span (black to the brightest frame's white) of a merged mosaic at
    ``output_bits``: the reference's levels scaled to the output depth."""

    black: npt.NDArray[np.float32]
    white: np.float32
    span: npt.NDArray[np.float32]

    @classmethod
    def of(cls, meta: CameraMetadata, black: npt.NDArray[np.float32], brightest: float,
           output_bits: int) -> OutputLevels:
        depth_scale = 2.0 ** math.floor(math.log2((2**output_bits - 1) / meta.white_level))
        white = np.float32(meta.white_level * depth_scale)
        black_out = (black * np.float32(depth_scale)).astype(np.float32)
        return cls(black_out, white, ((white - black_out) / np.float32(brightest)).astype(np.float32))

    def metadata(self, meta: CameraMetadata, noise: NoiseModel, frames_merged: float,
                 brightest: float) -> CameraMetadata:
        """The reference's metadata for the merge: these levels, the NoiseProfile divided by
        the frames merged, BaselineExposure raised by a bracket's extra range."""
        profile = (noise.scale / (frames_merged * brightest),
                   noise.offset / (frames_merged * brightest**2))
        return dataclasses.replace(
            meta,
            black_level=tuple(float(v) for v in self.black.ravel()),
            white_level=float(self.white),
            noise_profile=(profile,) * max(len(meta.noise_profile or ()), 1),
            baseline_exposure_ev=meta.baseline_exposure_ev + math.log2(brightest),
        )
