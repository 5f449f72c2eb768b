"""The noise of a raw frame: variance as a function of signal, in normalised units.

Raw noise is Poissonian-Gaussian: ``variance(x) = scale * x + offset`` for a signal ``x``
normalised to 0 at black and 1 at white, the DNG NoiseProfile model (DNG 1.6, tag 51041).
When a file carries no NoiseProfile the two parameters are fitted to the frame itself
from the fine-scale residuals of each CFA plane, binned by level (the approach of Foi,
Trimeche, Katkovnik, Egiazarian, "Practical Poissonian-Gaussian noise modeling and fitting
for single-image raw-data", IEEE TIP 17(10), 2008, DOI 10.1109/TIP.2008.2001399).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numba
import numpy as np
import numpy.typing as npt

from pipeline.raw_frame import RawFrame
from pipeline.stages.percentiles import median, percentiles

#: Fewest residuals a level bin needs to enter the fit.
_MIN_BIN_COUNT = 200
#: MAD of a normal distribution, in standard deviations.
_MAD_TO_SIGMA = 1.4826


@dataclass(frozen=True)
class NoiseModel:
    """``variance(x) = scale * x + offset`` of a normalised raw value ``x`` (one frame).

    Attributes
    ----------
    scale : float
        Shot-noise term (signal-dependent), per unit of normalised signal.
    offset : float
        Read-noise term (signal-independent), normalised units squared.
    """

    scale: float
    offset: float

    def variance(self, x: float) -> float:
        """Variance of a normalised value ``x`` (negative signals count as 0)."""
        return self.scale * max(x, 0.0) + self.offset


def noise_model_of(frame: RawFrame) -> NoiseModel:
    """The frame's NoiseProfile (its planes averaged), else one fitted to the frame.

    Parameters
    ----------
    frame : RawFrame
        ``frame.metadata.noise_profile`` is used when present.
    """
    profile = frame.metadata.noise_profile
    if profile:
        scale = float(np.mean([p[0] for p in profile]))
        offset = float(np.mean([p[1] for p in profile]))
        return NoiseModel(max(scale, 0.0), max(offset, 1e-12))
    return estimate_noise_foi2008(frame)


@numba.njit(cache=True, nogil=True)
def _plane_residuals_kernel(cfa, black, scale, step, levels, residuals, activities):
    # Residual of each same-colour pixel against the mean of its 4 same-colour neighbours
    # (two sites away), the local level (that mean) and the local activity (|up - down| +
    # |left - right|, which for white noise is independent of the residual); every
    # step-th 2x2 tile.
    h, w = cfa.shape
    n = 0
    for y in range(2, h - 2, 2 * step):
        for x in range(2, w - 2, 2 * step):
            for dy in range(2):
                for dx in range(2):
                    yy = y + dy
                    xx = x + dx
                    b = black[dy, dx]
                    s = scale[dy, dx]
                    centre = (np.float32(cfa[yy, xx]) - b) * s
                    up = np.float32(cfa[yy - 2, xx])
                    down = np.float32(cfa[yy + 2, xx])
                    left = np.float32(cfa[yy, xx - 2])
                    right = np.float32(cfa[yy, xx + 2])
                    mean = ((up + down + left + right) * np.float32(0.25) - b) * s
                    levels[n] = mean
                    residuals[n] = centre - mean
                    activities[n] = (abs(up - down) + abs(left - right)) * s
                    n += 1
    return n


def estimate_noise_foi2008(frame: RawFrame, bins: int = 16, max_samples: int = 400_000) -> NoiseModel:
    """Fit ``variance = scale * x + offset`` to one frame's own fine-scale residuals.

    Each sampled pixel is compared with the mean of its four same-colour neighbours; that
    residual has variance ``(1 + 1/4) * variance(x)`` where the image is locally flat.
    Residuals are binned by level; in each bin only the flattest quarter (by the
    neighbours' own differences, independent of the residual under white noise) is kept,
    its variance taken robustly from the median absolute deviation, and a line is fitted
    by weighted least squares (Foi et al. 2008, sec. 3-4, simplified).

    Parameters
    ----------
    frame : RawFrame
    bins : int
        Level bins between the 1st and 99th percentile of the sampled levels.
    max_samples : int
        Upper bound on the pixels sampled (a regular grid of 2x2 tiles).
    """
    meta = frame.metadata
    black = np.asarray(meta.black_level, dtype=np.float32).reshape(2, 2)
    scale = (1.0 / (np.float32(meta.white_level) - black)).astype(np.float32)
    height, width = frame.shape
    step = max(1, int(np.sqrt(height * width / max_samples)))
    capacity = 4 * ((height // (2 * step)) + 1) * ((width // (2 * step)) + 1)
    levels = np.empty(capacity, dtype=np.float32)
    residuals = np.empty(capacity, dtype=np.float32)
    activities = np.empty(capacity, dtype=np.float32)
    n = _plane_residuals_kernel(frame.cfa, black, scale, step, levels, residuals, activities)
    levels, residuals, activities = levels[:n], residuals[:n], activities[:n]
    keep = levels < 0.9  # near clipping the noise is truncated
    levels, residuals, activities = levels[keep], residuals[keep], activities[keep]
    if len(levels) < _MIN_BIN_COUNT:
        return _constant_noise(residuals)
    lo, hi = percentiles(levels, [1.0, 99.0])
    edges = np.linspace(lo, hi + 1e-9, bins + 1)
    index = np.digitize(levels, edges) - 1
    xs, vs, ws = [], [], []
    for b in range(bins):
        in_bin = index == b
        if np.count_nonzero(in_bin) < _MIN_BIN_COUNT:
            continue
        # The flattest quarter: texture left out without biasing the noise (see kernel).
        flat = activities[in_bin] <= percentiles(activities[in_bin], 25.0)
        chosen = residuals[in_bin][flat]
        mad = median(np.abs(chosen - median(chosen)))
        xs.append(median(levels[index == b]))
        vs.append((_MAD_TO_SIGMA * mad) ** 2 / 1.25)
        ws.append(float(len(chosen)))
    if not xs:  # too few samples at any one level (a small frame): one constant
        return _constant_noise(residuals)
    x, v, wt = np.array(xs), np.array(vs), np.array(ws)
    if len(x) >= 2 and np.ptp(x) > 1e-6:
        design = np.stack([np.maximum(x, 0.0), np.ones_like(x)], axis=1) * np.sqrt(wt)[:, None]
        (fit_scale, fit_offset), *_ = np.linalg.lstsq(design, v * np.sqrt(wt), rcond=None)
    else:
        fit_scale, fit_offset = 0.0, float(np.average(v, weights=wt))
    if fit_scale < 0:  # noise falling with signal is unphysical: a constant instead
        fit_scale, fit_offset = 0.0, float(np.average(v, weights=wt))
    # A read noise below what the fit resolves (offset <= 0) is kept small but positive.
    return NoiseModel(float(fit_scale), max(float(fit_offset), 1e-3 * float(np.min(v)), 1e-12))


def _constant_noise(residuals: npt.NDArray[np.float32]) -> NoiseModel:
    """A level-independent model from the residuals' median absolute value (few samples)."""
    sigma = _MAD_TO_SIGMA * median(np.abs(residuals)) if len(residuals) else 1e-3
    return NoiseModel(0.0, max(sigma * sigma / 1.25, 1e-12))


def display_luma_sigma(
    model: NoiseModel,
    white_balance_gains: npt.ArrayLike,
    camera_to_srgb: npt.ArrayLike,
    exposure_gain: float,
    glare: float,
    to_display: Callable[[npt.NDArray[np.float64]], npt.NDArray[np.float64]],
    levels: int = 64,
) -> npt.NDArray[np.float32]:
    """The raw noise carried through the develop to display-encoded luma.

    For a neutral tone at each display level ``v = i / (levels - 1)``, the standard
    deviation of its display-encoded luma: the raw variance of each white-balanced channel
    (``gain_c * scale * x + gain_c^2 * offset``) through the colour matrix to scene-linear
    luminance, times the exposure gain, then through the black point's toe
    (:mod:`pipeline.stages.black_point`) and ``to_display`` (tone curve and encoding), by its slope.
    Local tone mapping is left out: it is smooth, and lifts signal and noise together.

    Returns
    -------
    (levels,) float32
    """
    from pipeline.stages.black_point import soft_toe  # noqa: PLC0415 - one-way helper

    gains = np.asarray(white_balance_gains, dtype=np.float64)
    row = np.array([0.2126, 0.7152, 0.0722]) @ np.asarray(camera_to_srgb, dtype=np.float64)
    scene = np.geomspace(1e-6, 64.0, 4096)  # scene-linear luminance after exposure
    raw = scene / exposure_gain  # white-balanced raw level of a neutral
    variance = (row**2 * (gains * model.scale * raw[:, None] + gains**2 * model.offset)).sum(1)
    sigma_scene = exposure_gain * np.sqrt(variance)
    display = to_display(soft_toe(scene, glare))
    slope = np.gradient(display, scene)
    sigma_display = slope * sigma_scene
    grid = np.linspace(0.0, 1.0, levels)
    order = np.argsort(display, kind="stable")
    return np.interp(grid, display[order], sigma_display[order]).astype(np.float32)
