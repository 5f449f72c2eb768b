"""Vignette: a gentle radial darkening toward the corners, as a classic lens gives.

The gain is a gain on linear light, ``1 - amount * smoothstep(midpoint, 1, r)``, where
``r`` is the distance from the centre over the half-diagonal (1 in the corners): flat
inside ``midpoint``, then easing down to ``1 - amount`` in the corners with zero slope at
both ends, so no edge of the falloff is visible. (A real lens's cos^4 law plus its
mechanical vignetting has a similar shape; the smoothstep is simply easier to steer.)

It is applied to sRGB-encoded values without decoding them: on the power segment of the
sRGB curve, ``encode(g * decode(v)) = g**(1/2.4) * (v + 0.055) - 0.055`` exactly, and on the
linear segment it is ``g * v``; the larger of the two is exact on either segment and within
a code value where a pixel crosses between them. ``g**(1/2.4)`` is a degree-6 polynomial in
the smoothstep fitted when the vignette is planned (within 1e-4 at the strongest vignette),
so a row's gains are plain arithmetic the compiler vectorises.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np
import numpy.typing as npt

from pipeline.parameters import bounded, check_bounds

#: Degree of the polynomial for the gain on encoded values (see the module docstring).
_DEGREE = 6


@dataclass(frozen=True)
class VignetteParams:
    """``amount`` is the fraction of light lost in the corners (0.25 = -0.4 EV)."""

    amount: float = bounded(0.0, 0.0, 0.8, "fraction of light lost in the corners")
    midpoint: float = bounded(0.5, 0.0, 0.95, "radius (corner = 1) where darkening starts")

    def __post_init__(self) -> None:
        check_bounds(self)


def plan_vignette(params: VignetteParams) -> npt.NDArray[np.float32]:
    """The vignette as the kernel takes it: (9,) float32, ``amount``, ``midpoint`` and the
    coefficients (constant first) of ``(1 - amount * s) ** (1 / 2.4)`` in the smoothstep s."""
    s = np.linspace(0.0, 1.0, 1025)
    coefficients = np.polynomial.polynomial.polyfit(
        s, (1.0 - params.amount * s) ** (1.0 / 2.4), _DEGREE
    )
    return np.concatenate([[params.amount, params.midpoint], coefficients]).astype(np.float32)


@numba.njit(cache=True, nogil=True, inline="always")
def vignette_row(plan, y, height, gain, encoded_gain):
    """Row ``y``'s gains on linear light and on encoded values, into the (W,) outputs."""
    amount = plan[0]
    midpoint = plan[1]
    inv_width = np.float32(1.0) / (np.float32(1.0) - midpoint)
    width = gain.shape[0]
    to_radius = np.float32(2.0 / np.sqrt(height * height + width * width))
    dy = (np.float32(y) + np.float32(0.5 - 0.5 * height)) * to_radius
    dy2 = dy * dy
    half_w = np.float32(0.5 - 0.5 * width)
    for x in range(width):
        dx = (np.float32(x) + half_w) * to_radius
        r = np.sqrt(dy2 + dx * dx)
        t = min(max((r - midpoint) * inv_width, np.float32(0.0)), np.float32(1.0))
        s = t * t * (np.float32(3.0) - np.float32(2.0) * t)
        gain[x] = np.float32(1.0) - amount * s
        encoded_gain[x] = plan[2] + s * (
            plan[3] + s * (plan[4] + s * (plan[5] + s * (plan[6] + s * (plan[7] + s * plan[8]))))
        )


@numba.njit(cache=True, nogil=True, inline="always")
def darken_row(values, gain, encoded_gain):
    """Encoded ``values`` (one channel of a row) with their linear light times ``gain``."""
    for x in range(values.shape[0]):
        v = values[x]
        values[x] = max(
            encoded_gain[x] * (v + np.float32(0.055)) - np.float32(0.055), gain[x] * v
        )
