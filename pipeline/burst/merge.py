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

import numba
import numpy as np
import numpy.typing as npt

from pipeline.burst.align import TileFlow, flow_at
from pipeline.burst.noise_model import NoiseModel
from pipeline.errors import InvalidParameterError
from pipeline.raw_frame import RawFrame

#: Where the reference is clipped, an alternate sample must reach this fraction of the
#: clipping level (in reference units) to count as the same highlight.
_CLIPPED_AGREEMENT = 0.9


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
    clip_fraction: float = 0.98
    output_bits: int = 16

    def __post_init__(self) -> None:
        if not 0 < self.reject_from < self.reject_at:
            raise InvalidParameterError(
                f"reject_from={self.reject_from}, reject_at={self.reject_at}: "
                "expected 0 < reject_from < reject_at"
            )
        if not 0.5 <= self.clip_fraction <= 1.0:
            raise InvalidParameterError(f"clip_fraction={self.clip_fraction}: expected 0.5..1")
        if not 12 <= self.output_bits <= 16:
            raise InvalidParameterError(f"output_bits={self.output_bits}: expected 12..16")


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
def _distance_kernel(
    ref_cfa, ref_black, ref_scale, alt_cfa, alt_black, alt_scale, alt_gain, flow, tile, stride,
    greens, others, noise, out,
):  # fmt: skip
    # Per 2x2 Bayer tile: the reference's four sites against the alternate's, each read
    # bilinearly from its own colour plane at the tile's displacement; the squared
    # differences of grey and of the two colour differences (red and blue minus green),
    # each over the variance the noise model predicts for it, averaged. Colour counts:
    # a moving object of the background's brightness but another hue is still seen.
    # noise = (a_ref, b_ref, a_alt, b_alt): per-raw-pixel variance a * u + b, reference units.
    gh, gw = out.shape
    for by in numba.prange(gh):
        diff = np.empty(4, dtype=np.float32)
        for bx in range(gw):
            fy, fx = flow_at(flow, tile, stride, by, bx)
            py = min(max(np.float32(by) + fy, np.float32(0.0)), np.float32(gh - 1))
            px = min(max(np.float32(bx) + fx, np.float32(0.0)), np.float32(gw - 1))
            y0 = min(int(py), max(gh - 2, 0))
            x0 = min(int(px), max(gw - 2, 0))
            y1 = min(y0 + 1, gh - 1)
            x1 = min(x0 + 1, gw - 1)
            ty = py - y0
            tx = px - x0
            level = np.float32(0.0)
            for site in range(4):
                sy = site >> 1
                sx = site & 1
                a = np.float32(alt_cfa[2 * y0 + sy, 2 * x0 + sx])
                b = np.float32(alt_cfa[2 * y0 + sy, 2 * x1 + sx])
                c = np.float32(alt_cfa[2 * y1 + sy, 2 * x0 + sx])
                d = np.float32(alt_cfa[2 * y1 + sy, 2 * x1 + sx])
                top = a + tx * (b - a)
                alt = top + ty * (c + tx * (d - c) - top)
                alt = (alt - alt_black[sy, sx]) * alt_scale[sy, sx] * alt_gain
                ref = (np.float32(ref_cfa[2 * by + sy, 2 * bx + sx]) - ref_black[sy, sx]) * ref_scale[sy, sx]
                diff[site] = ref - alt
                level += ref
            u = max(level * np.float32(0.25), np.float32(0.0))
            variance = noise[0] * u + noise[1] + noise[2] * u + noise[3]
            green = np.float32(0.5) * (diff[greens[0]] + diff[greens[1]])
            grey = np.float32(0.25) * (diff[0] + diff[1] + diff[2] + diff[3])
            chroma_1 = diff[others[0]] - green
            chroma_2 = diff[others[1]] - green
            # var(grey) = variance / 4; var(site - mean of two greens) = 1.5 * variance.
            out[by, bx] = (
                grey * grey * np.float32(4.0)
                + (chroma_1 * chroma_1 + chroma_2 * chroma_2) * np.float32(1.0 / 1.5)
            ) / (np.float32(3.0) * variance)


@numba.njit(cache=True, parallel=True, nogil=True)
def _robust_weight_kernel(distance, reject_from, reject_at, out):
    # Mean of the normalised distance over 3x3 tiles, mapped to a weight by a linear ramp.
    h, w = out.shape
    span = reject_at - reject_from
    for y in numba.prange(h):
        for x in range(w):
            total = np.float32(0.0)
            n = 0
            for yy in range(max(y - 1, 0), min(y + 2, h)):
                for xx in range(max(x - 1, 0), min(x + 2, w)):
                    total += distance[yy, xx]
                    n += 1
            z = total / n
            out[y, x] = min(max((reject_at - z) / span, np.float32(0.0)), np.float32(1.0))


@numba.njit(cache=True, parallel=True, nogil=True)
def _min_filter_kernel(image, radius, out):
    h, w = image.shape
    for y in numba.prange(h):
        for x in range(w):
            m = image[y, x]
            for yy in range(max(y - radius, 0), min(y + radius + 1, h)):
                for xx in range(max(x - radius, 0), min(x + radius + 1, w)):
                    m = min(m, image[yy, xx])
            out[y, x] = m


@numba.njit(cache=True, nogil=True)
def _catmull_rom_weights(t):
    t2 = t * t
    t3 = t2 * t
    half = np.float32(0.5)
    return (
        half * (-t3 + 2 * t2 - t),
        half * (3 * t3 - 5 * t2 + 2),
        half * (-3 * t3 + 4 * t2 + t),
        half * (t3 - t2),
    )


@numba.njit(cache=True, parallel=True, nogil=True)
def _accumulate_kernel(
    ref_cfa, ref_clip, ref_grey, alt_cfa, alt_black, alt_scale, alt_gain, alt_clip,
    flow, tile, stride, weights, noise, accept_level, num, den,
):  # fmt: skip
    # One 2x2 Bayer tile per step: its four sites share the displacement, and so the
    # Catmull-Rom weights and tap positions (each site reads its own colour plane).
    gh, gw = weights.shape
    for by in numba.prange(gh):
        for bx in range(gw):
            fy, fx = flow_at(flow, tile, stride, by, bx)
            py = min(max(np.float32(by) + fy, np.float32(0.0)), np.float32(gh - 1))
            px = min(max(np.float32(bx) + fx, np.float32(0.0)), np.float32(gw - 1))
            iy = int(py)
            ix = int(px)
            wy0, wy1, wy2, wy3 = _catmull_rom_weights(py - iy)
            wx0, wx1, wx2, wx3 = _catmull_rom_weights(px - ix)
            c0 = 2 * max(ix - 1, 0)
            c1 = 2 * ix
            c2 = 2 * min(ix + 1, gw - 1)
            c3 = 2 * min(ix + 2, gw - 1)
            level = max(ref_grey[by, bx], np.float32(0.0))
            precision = (noise[0] * level + noise[1]) / (noise[2] * level + noise[3])
            robust = weights[by, bx] * precision
            for sy in range(2):
                for sx in range(2):
                    value = np.float32(0.0)
                    peak = np.float32(0.0)
                    for i in range(4):
                        row = 2 * min(max(iy - 1 + i, 0), gh - 1) + sy
                        v0 = np.float32(alt_cfa[row, c0 + sx])
                        v1 = np.float32(alt_cfa[row, c1 + sx])
                        v2 = np.float32(alt_cfa[row, c2 + sx])
                        v3 = np.float32(alt_cfa[row, c3 + sx])
                        peak = max(peak, max(max(v0, v1), max(v2, v3)))
                        acc = wx0 * v0 + wx1 * v1 + wx2 * v2 + wx3 * v3
                        wy = wy0 if i == 0 else (wy1 if i == 1 else (wy2 if i == 2 else wy3))
                        value += wy * acc
                    if peak >= alt_clip[sy, sx]:
                        continue  # a clipped sample is no evidence of the value
                    u = (value - alt_black[sy, sx]) * alt_scale[sy, sx] * alt_gain
                    y = 2 * by + sy
                    x = 2 * bx + sx
                    if np.float32(ref_cfa[y, x]) >= ref_clip[sy, sx]:
                        if u < accept_level:
                            continue  # darker than the clipped reference: something moved
                        weight = precision
                    else:
                        weight = robust
                    num[y, x] += weight * u
                    den[y, x] += weight


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

    Holds two (H, W) float32 sums (weighted values, weights): memory stays at that,
    however many frames are added.

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
        self._brightest = 1.0  # the largest value, in reference units, a frame can record
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
        black, scale, clip = _site_levels(frame, params.clip_fraction)
        ratio = float(exposure_ratio)
        ref_noise = self._noise
        noise_params = np.array(
            [ref_noise.scale, ref_noise.offset, noise.scale / ratio, noise.offset / ratio**2],
            dtype=np.float32,
        )
        channels = self._reference.metadata.cfa_pattern.channels.ravel()
        greens = np.flatnonzero(channels == 1)
        others = np.flatnonzero(channels != 1)
        distance = np.empty_like(self._grey)
        _distance_kernel(
            self._reference.cfa, self._black, self._scale, frame.cfa, black, scale,
            np.float32(1.0 / ratio), flow.flow, flow.tile_px, flow.stride_px, greens, others,
            noise_params, distance,
        )  # fmt: skip
        raw_weights = np.empty_like(self._grey)
        _robust_weight_kernel(
            distance, np.float32(params.reject_from), np.float32(params.reject_at), raw_weights
        )
        weights = distance  # reuse the buffer
        _min_filter_kernel(raw_weights, 1, weights)
        _accumulate_kernel(
            self._reference.cfa, self._clip, self._grey, frame.cfa, black, scale,
            np.float32(1.0 / ratio), clip, flow.flow, flow.tile_px, flow.stride_px, weights,
            noise_params, np.float32(_CLIPPED_AGREEMENT * params.clip_fraction), self._num,
            self._den,
        )  # fmt: skip
        self._brightest = max(self._brightest, 1.0 / ratio)

    def finish(self) -> RawFrame:
        """The merged mosaic at ``output_bits``, with the reference's metadata.

        White level: the reference's scaled to the output depth; in a bracket whose
        shorter frames recorded highlights beyond the reference's white, the values are
        scaled down by that range and BaselineExposure raised to match. The NoiseProfile
        is the reference's divided by the median number of frames merged per pixel.
        """
        meta = self._reference.metadata
        depth_scale = 2.0 ** math.floor(math.log2((2**self._params.output_bits - 1) / meta.white_level))
        white_out = np.float32(meta.white_level * depth_scale)
        black_out = (self._black * np.float32(depth_scale)).astype(np.float32)
        span_out = ((white_out - black_out) / np.float32(self._brightest)).astype(np.float32)
        out = np.empty(self._reference.shape, dtype=np.uint16)
        _finish_kernel(self._num, self._den, black_out, span_out, white_out, out)
        frames_merged = max(float(np.median(self._den[::8, ::8])), 1.0)
        brightest = self._brightest
        profile = (
            self._noise.scale / (frames_merged * brightest),
            self._noise.offset / (frames_merged * brightest**2),
        )
        metadata = dataclasses.replace(
            meta,
            black_level=tuple(float(v) for v in black_out.ravel()),
            white_level=float(white_out),
            noise_profile=(profile,) * max(len(meta.noise_profile or ()), 1),
            baseline_exposure_ev=meta.baseline_exposure_ev + math.log2(brightest),
        )
        return RawFrame(out, metadata)
