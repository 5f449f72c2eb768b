"""HDR tone mapping of a merged raw frame by synthetic exposure fusion.

HDR+ tone maps its merged, deliberately underexposed raw by rendering it twice, as a
short and a long exposure, and fusing the two with exposure fusion (Hasinoff et al., ACM
TOG 35(6), 2016, DOI 10.1145/2980179.2980254, sec. 6; Mertens, Kautz, Van Reeth, "Exposure
Fusion", Pacific Graphics 2007, DOI 10.1109/PG.2007.17): each exposure is weighted per
pixel by its well-exposedness ``exp(-(I - 0.5)**2 / (2 * 0.2**2))`` and the two are
blended in a Laplacian pyramid (Burt and Adelson 1983), so the seams stay invisible.

As in Halide's ``hdr-plus`` finish stage, only the grey (luminance-like) image is fused,
here on a downsampled copy; the ratio of the fused to the original grey is a smooth gain
map that is applied to the raw mosaic itself. Colour is untouched (a scalar gain per
pixel commutes with white balance and the colour matrix), the result is again a raw
frame for the single-frame develop, and clipped pixels are kept at the white level so
blown highlights stay white.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numba
import numpy as np
import numpy.typing as npt

from pipeline.burst.align import bayer_grey, downsample_grey, sample_bilinear
from pipeline.errors import InvalidParameterError
from pipeline.raw_frame import CLIP_FRACTION, RawFrame
from pipeline.stages.exposure import auto_exposure_ev

_DISPLAY_GAMMA = 2.2
_GREY_FLOOR = 2.0**-16


@dataclass(frozen=True)
class FusionParams:
    """Synthetic exposures and fusion settings.

    Attributes
    ----------
    shadow_boost_ev : float
        The long exposure's brightness above the one that puts the scene's key at middle
        grey.
    well_exposed_sigma : float
        Width of Mertens et al.'s well-exposedness Gaussian around 0.5 (their 0.2).
    headroom_ev : float
        The tone-mapped raw is darkened by this much so no value clips; the develop's
        auto exposure brings it back.
    working_long_side_px : int
        Long side of the grey image the fusion works on.
    """

    shadow_boost_ev: float = 1.0
    well_exposed_sigma: float = 0.2
    headroom_ev: float = 1.0
    working_long_side_px: int = 1024

    def __post_init__(self) -> None:
        if not 0.0 <= self.shadow_boost_ev <= 4.0:
            raise InvalidParameterError(f"shadow_boost_ev={self.shadow_boost_ev}: expected 0..4")
        if not 0.0 < self.well_exposed_sigma <= 1.0:
            raise InvalidParameterError(
                f"well_exposed_sigma={self.well_exposed_sigma}: expected 0..1"
            )
        if not 0.0 <= self.headroom_ev <= 4.0:
            raise InvalidParameterError(f"headroom_ev={self.headroom_ev}: expected 0..4")
        if self.working_long_side_px < 32:
            raise InvalidParameterError(
                f"working_long_side_px={self.working_long_side_px}: expected >= 32"
            )

    @classmethod
    def for_mode(cls, mode: str) -> "FusionParams":
        """Settings for the "hdr" mode, or the "night" mode (shadows kept darker, as night)."""
        if mode == "hdr":
            return cls()
        if mode == "night":
            return cls(shadow_boost_ev=0.5)
        raise InvalidParameterError(f"mode={mode!r}: expected 'hdr' or 'night'")


def _blur5(image: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    # Burt-Adelson [1, 4, 6, 4, 1] / 16, separable, edges reflected. Small images only.
    k = (1.0, 4.0, 6.0, 4.0, 1.0)
    for axis in (0, 1):
        padded = np.pad(image, [(2, 2) if a == axis else (0, 0) for a in (0, 1)], mode="reflect")
        n = image.shape[axis]
        image = sum(
            k[i] * np.take(padded, np.arange(i, i + n), axis=axis) for i in range(5)
        ) / np.float32(16.0)  # fmt: skip
    return image.astype(np.float32)


def _upsample(image: npt.NDArray[np.float32], shape: tuple[int, int]) -> npt.NDArray[np.float32]:
    up = np.zeros(shape, dtype=np.float32)
    up[::2, ::2] = image
    return _blur5(up) * np.float32(4.0)


def _laplacian_blend(images: list[npt.NDArray], weights: list[npt.NDArray], levels: int) -> npt.NDArray:
    """Blend ``images`` with per-pixel ``weights`` (summing to 1) in a Laplacian pyramid."""
    blended: list[npt.NDArray] = []
    for image, weight in zip(images, weights):
        g_img, g_w = image, weight
        for level in range(levels):
            if level == levels - 1:
                band = g_img
            else:
                down = _blur5(g_img)[::2, ::2]
                band = g_img - _upsample(down, g_img.shape)
            contribution = band * g_w
            if len(blended) <= level:
                blended.append(contribution)
            else:
                blended[level] = blended[level] + contribution
            if level < levels - 1:
                g_img = down
                g_w = _blur5(g_w)[::2, ::2]
    result = blended[-1]
    for band in reversed(blended[:-1]):
        result = band + _upsample(result, band.shape)
    return result


def fusion_gain_map(
    grey: npt.NDArray[np.float32], params: FusionParams
) -> tuple[npt.NDArray[np.float32], float, float]:
    """Gain map (same shape) that exposure-fuses a linear grey image, and the two gains.

    The short exposure brings the scene's key to middle grey or its 99.5th percentile
    to white, whichever is darker; the long one is ``shadow_boost_ev`` brighter than the
    key's. Both are displayed with a 2.2 gamma, fused, and the fused linear value over
    the input is the gain, limited to the range of the two exposures.
    """
    key_ev = auto_exposure_ev(grey, min_ev=-8.0, max_ev=8.0)
    highlight = float(np.percentile(grey, 99.5))
    short_ev = min(key_ev, -math.log2(max(highlight, _GREY_FLOOR)))
    long_ev = max(key_ev + params.shadow_boost_ev, short_ev)
    exposures = [grey * np.float32(2.0**short_ev), grey * np.float32(2.0**long_ev)]
    displayed = [np.clip(e, 0.0, 1.0) ** np.float32(1.0 / _DISPLAY_GAMMA) for e in exposures]
    two_sigma2 = 2.0 * params.well_exposed_sigma**2
    weights = [np.exp(-((d - 0.5) ** 2) / two_sigma2) + 1e-6 for d in displayed]
    total = weights[0] + weights[1]
    weights = [w / total for w in weights]
    levels = max(1, int(math.log2(max(min(grey.shape), 1))) - 2)
    fused = np.clip(_laplacian_blend(displayed, weights, levels), 0.0, 1.0) ** _DISPLAY_GAMMA
    gain = fused / np.maximum(grey, _GREY_FLOOR)
    gain = np.clip(gain, 2.0**short_ev, 2.0**long_ev).astype(np.float32)
    return gain, float(2.0**short_ev), float(2.0**long_ev)


@numba.njit(cache=True, parallel=True, nogil=True)
def _apply_gain_kernel(cfa, black, clip, gain, factor, headroom, white, out):
    h, w = cfa.shape
    inv = np.float32(1.0 / factor)
    for y in numba.prange(h):
        gy = (np.float32(y) + np.float32(0.5)) * inv - np.float32(0.5)
        for x in range(w):
            v = np.float32(cfa[y, x])
            if v >= clip[y & 1, x & 1]:
                out[y, x] = np.uint16(white)
                continue
            gx = (np.float32(x) + np.float32(0.5)) * inv - np.float32(0.5)
            g = sample_bilinear(gain, gy, gx) * headroom
            b = black[y & 1, x & 1]
            value = b + (v - b) * g
            out[y, x] = np.uint16(min(max(value + np.float32(0.5), np.float32(0.0)), white))


def fuse_exposures_mertens2007(frame: RawFrame, params: FusionParams | None = None) -> RawFrame:
    """Tone map a (merged) raw frame by synthetic exposure fusion; returns a raw frame.

    Parameters
    ----------
    frame : RawFrame
        Typically :func:`pipeline.burst.align_and_merge`'s result (16-bit, deep white).
    params : FusionParams, optional

    Returns
    -------
    RawFrame
        Same size, levels and metadata, except BaselineExposure (plus the headroom) and
        the NoiseProfile (dropped: a spatially varying gain leaves no global one).
    """
    params = params or FusionParams()
    meta = frame.metadata
    grey = bayer_grey(frame)
    factor = max(1, math.ceil(max(grey.shape) / params.working_long_side_px))
    small = downsample_grey(grey, factor)
    del grey
    gain, _, _ = fusion_gain_map(small, params)
    black = np.asarray(meta.black_level, dtype=np.float32).reshape(2, 2)
    white = np.float32(meta.white_level)
    clip = (black + np.float32(CLIP_FRACTION) * (white - black)).astype(np.float32)
    out = np.empty_like(frame.cfa)
    _apply_gain_kernel(
        frame.cfa, black, clip, gain, np.float32(2 * factor),
        np.float32(2.0**-params.headroom_ev), white, out,
    )  # fmt: skip
    metadata = dataclasses.replace(
        meta,
        noise_profile=None,
        baseline_exposure_ev=meta.baseline_exposure_ev + params.headroom_ev,
    )
    return RawFrame(out, metadata)
