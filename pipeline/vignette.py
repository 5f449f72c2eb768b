"""Vignette: a gentle radial darkening toward the corners, as a classic lens gives.

The gain is a gain on linear light, ``1 - amount * smoothstep(midpoint, 1, r)``, where
``r`` is the distance from the centre over the half-diagonal (1 in the corners): flat
inside ``midpoint``, then easing down to ``1 - amount`` in the corners with zero slope at
both ends, so no edge of the falloff is visible. (A real lens's cos^4 law plus its
mechanical vignetting has a similar shape; the smoothstep is simply easier to steer.)

It is applied to sRGB-encoded values without decoding them: on the power segment of the
sRGB curve, ``encode(g * decode(v)) = g**(1/2.4) * (v + 0.055) - 0.055`` exactly, and on the
linear segment it is ``g * v``; the larger of the two is exact on either segment and within
a code value where a pixel crosses between them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np
import numpy.typing as npt

from pipeline.parameters import bounded, check_bounds


@dataclass(frozen=True)
class VignetteParams:
    """``amount`` is the fraction of light lost in the corners (0.25 = -0.4 EV)."""

    amount: float = bounded(0.0, 0.0, 0.8, "fraction of light lost in the corners")
    midpoint: float = bounded(0.5, 0.0, 0.95, "radius (corner = 1) where darkening starts")

    def __post_init__(self) -> None:
        check_bounds(self)


_PROFILE_SIZE = 1024


def profile_table(params: VignetteParams) -> npt.NDArray[np.float32]:
    """(2, 1025) float32 over r = 0..1 (corner = 1): the gain and gain ** (1 / 2.4)."""
    r = np.linspace(0.0, 1.0, _PROFILE_SIZE + 1)
    t = np.clip((r - params.midpoint) / (1.0 - params.midpoint), 0.0, 1.0)
    gain = 1.0 - params.amount * t * t * (3.0 - 2.0 * t)
    return np.stack([gain, gain ** (1.0 / 2.4)]).astype(np.float32)


@numba.njit(cache=True, nogil=True, inline="always")
def darken_encoded(v, gain, encoded_gain):
    """Encoded ``v`` with its linear light times ``gain``; ``encoded_gain`` is gain ** (1/2.4)."""
    return max(encoded_gain * (v + np.float32(0.055)) - np.float32(0.055), gain * v)
