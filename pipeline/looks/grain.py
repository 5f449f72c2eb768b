"""Film grain: a fast approximation of Newson et al.'s stochastic film grain model.

Newson, Delon, Galerne, "A Stochastic Film Grain Model for Resolution-Independent
Rendering", Computer Graphics Forum 36(8):684-699, 2017, https://doi.org/10.1111/cgf.13159,
render a grey level u in [0, 1] as the fraction of each pixel covered by a Boolean model of
discs of radius r (Poisson intensity ``-log(1 - u) / (pi r^2)``, so the covered fraction
is u on average), filtered by a Gaussian pixel footprint. Grains live in continuous image
coordinates, so the same film rendered at any resolution has the same character.

Their Monte-Carlo rendering costs hundreds of samples a pixel; we keep the model's first
two moments instead (sec. 3 gives the covariance ``(1 - u)^2 (exp(lambda * gamma(tau)) - 1)``,
``gamma`` the overlap area of two discs at distance tau):

* the mean is u exactly: the added noise is zero-mean and never clipped;
* the variance is ``u (1 - u)`` times ``amount^2`` (the model's variance at tau = 0): grain
  is strongest in the mid-tones and vanishes at black and white. Near black and white the
  envelope is capped at ``min(u, 1 - u) / n_max`` so the bounded noise never crosses 0 or 1
  (where the Boolean model is skewed rather than symmetric);
* the spatial correlation, to first order in ``lambda * gamma`` a bump of the grain's size,
  is that of white noise on a lattice of the grain's diameter interpolated by a cubic
  B-spline (near-Gaussian; sparse convolution noise, Lewis 1989). The lattice is fixed in
  image coordinates scaled to a 24 mm film frame, so grain size is independent of the
  resolution; grains smaller than a pixel average out and their amplitude falls in
  proportion, as the filtered Boolean model's does.

The lattice values are a hash of their coordinates and the seed: the grain is
deterministic, needs no stored noise image, and bands of rows render independently.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np
import numpy.typing as npt

from pipeline.parameters import bounded, check_bounds

#: Film frame height the grain size refers to (the short side of a 36 x 24 mm frame).
FRAME_HEIGHT_MM = 24.0


@dataclass(frozen=True)
class GrainParams:
    """``amount`` scales the model's standard deviation ``sqrt(u (1 - u))``; 0 = no grain."""

    amount: float = bounded(0.0, 0.0, 0.5, "grain strength (std at mid-grey = amount / 2)")
    size_um: float = bounded(15.0, 1.0, 100.0, "grain diameter on a 24 mm high film frame")

    def __post_init__(self) -> None:
        check_bounds(self)

    def size_px(self, shape: tuple[int, int]) -> float:
        """Grain diameter in pixels for an image of ``shape`` (H, W)."""
        return self.size_um * 1e-3 * min(shape) / FRAME_HEIGHT_MM


@dataclass(frozen=True)
class GrainAxis:
    """Cubic B-spline weights of the lattice along one image axis.

    ``base[i]`` is the first of the four lattice nodes pixel ``i`` draws on (node k sits
    at lattice coordinate k - 1), ``weights[i]`` their weights, and ``inv_norm[i]``
    ``1 / sqrt(sum(weights[i] ** 2))``, which makes the interpolated noise's variance the
    same at every pixel.
    """

    base: npt.NDArray[np.int64]
    weights: npt.NDArray[np.float32]
    inv_norm: npt.NDArray[np.float32]


def grain_axis(n_px: int, spacing_px: float) -> GrainAxis:
    """The lattice weights for ``n_px`` pixels with nodes every ``spacing_px`` pixels."""
    t = (np.arange(n_px) + 0.5) / spacing_px
    cell = np.floor(t)
    f = t - cell
    weights = np.stack(
        [(1 - f) ** 3, 3 * f**3 - 6 * f**2 + 4, -3 * f**3 + 3 * f**2 + 3 * f + 1, f**3], axis=1
    ) / 6.0
    base = cell.astype(np.int64)
    inv_norm = 1.0 / np.sqrt((weights**2).sum(axis=1))
    return GrainAxis(base, weights.astype(np.float32), inv_norm.astype(np.float32))


@dataclass(frozen=True)
class GrainPlan:
    """What the rendering kernel needs: both axes, the amplitude and the noise bound."""

    rows: GrainAxis
    columns: GrainAxis
    amplitude: float
    noise_bound: float


def plan_grain(params: GrainParams, shape: tuple[int, int]) -> GrainPlan:
    """Lattice and amplitude of grain for an image of ``shape`` (H, W).

    The lattice spacing is the grain diameter but at least one pixel; grains smaller than
    a pixel scale the amplitude by their size instead.
    """
    size_px = params.size_px(shape)
    spacing = max(size_px, 1.0)
    rows, columns = grain_axis(shape[0], spacing), grain_axis(shape[1], spacing)
    # Uniform [-1, 1) lattice values have variance 1/3; the noise is their interpolation
    # times sqrt(3) * inv_norm, so |noise| <= sqrt(3) * max inv_norm(y) * max inv_norm(x).
    bound = np.sqrt(3.0) * float(rows.inv_norm.max(initial=1.0)) * float(
        columns.inv_norm.max(initial=1.0)
    )
    return GrainPlan(rows, columns, params.amount * min(size_px, 1.0), bound)


@numba.njit(cache=True, nogil=True, inline="always")
def _hash_uniform(ix, iy, seed):
    # splitmix64's finaliser on a combination of the coordinates: uniform in [-1, 1).
    z = (np.uint64(ix) * np.uint64(0x9E3779B97F4A7C15)) ^ (
        np.uint64(iy) * np.uint64(0xC2B2AE3D27D4EB4F)
    ) ^ seed
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z = z ^ (z >> np.uint64(31))
    return np.float32(z >> np.uint64(40)) * np.float32(1.0 / 8388608.0) - np.float32(1.0)


@numba.njit(cache=True, nogil=True, inline="always")
def fill_lattice(patch, first_row, seed):
    """Lattice rows ``first_row ..`` (all columns) of the noise, into ``patch``."""
    for j in range(patch.shape[0]):
        for i in range(patch.shape[1]):
            patch[j, i] = _hash_uniform(i, first_row + j, seed)


@numba.njit(cache=True, nogil=True, inline="always")
def lattice_row(patch, first_row, row_base, row_weights, row_norm, out):
    """Vertical B-spline pass: the lattice interpolated at one image row, times its norm."""
    j = row_base - first_row
    w0 = row_weights[0] * row_norm
    w1 = row_weights[1] * row_norm
    w2 = row_weights[2] * row_norm
    w3 = row_weights[3] * row_norm
    for i in range(out.shape[0]):
        out[i] = (
            w0 * patch[j, i] + w1 * patch[j + 1, i] + w2 * patch[j + 2, i] + w3 * patch[j + 3, i]
        )


@numba.njit(cache=True, nogil=True, inline="always")
def noise_row(lattice, column_base, column_weights, column_norm, out):
    """Horizontal pass: unit-variance noise along a row from its :func:`lattice_row`."""
    for x in range(out.shape[0]):
        i = column_base[x]
        out[x] = column_norm[x] * np.float32(1.7320508) * (
            column_weights[x, 0] * lattice[i]
            + column_weights[x, 1] * lattice[i + 1]
            + column_weights[x, 2] * lattice[i + 2]
            + column_weights[x, 3] * lattice[i + 3]
        )


@numba.njit(cache=True, nogil=True, inline="always")
def grain_row(values, noise, amplitude, inv_bound):
    """``values`` (one channel of a row) plus grain: envelope ``amplitude * sqrt(u (1 - u))``,
    capped so it never clips."""
    for x in range(values.shape[0]):
        u = min(max(values[x], np.float32(0.0)), np.float32(1.0))
        headroom = min(u, np.float32(1.0) - u)
        envelope = min(amplitude * np.sqrt(u * (np.float32(1.0) - u)), headroom * inv_bound)
        values[x] = u + envelope * noise[x]
