"""Vignette: a radial gain on linear light, applied to encoded values, flat in the centre."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.colour.metrics import srgb_decode, srgb_encode
from pipeline.looks.look import Look
from pipeline.looks.look_pass import apply_look
from pipeline.looks.vignette import VignetteParams


def _vignetted(image: np.ndarray, amount: float, midpoint: float = 0.5) -> np.ndarray:
    look = Look(name="vignette", vignette=VignetteParams(amount=amount, midpoint=midpoint))
    return apply_look(image.astype(np.float32).copy(), look)


def _exact(encoded: np.ndarray, radius: np.ndarray, amount: float, midpoint: float):
    t = np.clip((radius - midpoint) / (1 - midpoint), 0, 1)
    gain = 1 - amount * t * t * (3 - 2 * t)
    return srgb_encode(gain[..., None] * srgb_decode(encoded.astype(np.float64)))


@pytest.mark.parametrize("amount", [0.1, 0.4, 0.8])
def test_the_gain_is_on_linear_light(amount: float) -> None:
    # Every level on the power segment of the sRGB curve, at every radius.
    h, w = 120, 160
    levels = np.linspace(0.05, 1.0, w, dtype=np.float32)
    image = np.repeat(np.repeat(levels[None, :, None], h, 0), 3, 2)
    out = _vignetted(image, amount, midpoint=0.3)
    yy, xx = np.mgrid[0:h, 0:w]
    radius = np.hypot(yy + 0.5 - h / 2, xx + 0.5 - w / 2) / np.hypot(h / 2, w / 2)
    exact = _exact(image, radius, amount, 0.3)
    # Exact where the result stays on the power segment; within a code value where the
    # darkening carries it onto the linear segment (see pipeline.looks.vignette).
    power = exact > 0.04045
    assert np.abs(out - exact)[power].max() < 2e-4
    assert np.abs(out - exact).max() < 1 / 255


def test_centre_untouched_corners_darkened_symmetric_and_monotonic() -> None:
    image = np.full((301, 401, 3), 0.6, np.float32)
    out = _vignetted(image, 0.25, midpoint=0.5)
    assert np.array_equal(out[150, 150:251], image[150, 150:251])  # inside the midpoint
    corner = float(srgb_encode(0.75 * srgb_decode(0.6)))
    assert abs(float(out[0, 0, 0]) - corner) < 2e-3
    np.testing.assert_array_equal(out, out[::-1, ::-1])  # point-symmetric about the centre
    assert np.all(np.diff(out[0, :201, 0]) >= 0)  # brighter toward the centre
    assert np.array_equal(out[..., 0], out[..., 2])  # a grey stays grey


def test_black_stays_black_and_white_is_darkened_like_a_grey() -> None:
    image = np.zeros((64, 96, 3), np.float32)
    image[:, 48:] = 1.0
    out = _vignetted(image, 0.5)
    assert np.all(out[:, :48] == 0)
    assert out[0, -1, 0] == pytest.approx(float(srgb_encode(0.5)), abs=2e-3)
