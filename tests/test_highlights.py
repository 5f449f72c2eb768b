"""Highlights: clipped channels never leave a colour cast (magenta, mint, salmon)."""

from __future__ import annotations

import numpy as np

from pipeline.stages.highlights import DESATURATE_FROM, clip_to_neutral, desaturate_near_clipping


def test_green_alone_clipped_is_white_not_mint() -> None:
    # A screen: green clipped (1.0 after clip_to_neutral), red and blue just below.
    rgb = np.array([[[0.82, 1.0, 0.93]]], dtype=np.float32)
    np.testing.assert_allclose(desaturate_near_clipping(rgb)[0, 0], [1.0, 1.0, 1.0])


def test_red_alone_clipped_is_white_not_salmon() -> None:
    rgb = clip_to_neutral(np.array([[[1.7, 0.6, 0.5]]], dtype=np.float32))
    np.testing.assert_allclose(desaturate_near_clipping(rgb)[0, 0], [1.0, 1.0, 1.0])


def test_colours_below_the_knee_are_untouched_and_the_pull_is_smooth() -> None:
    dark = np.array([[[0.9 * DESATURATE_FROM, 0.2, 0.1]]], dtype=np.float32)
    np.testing.assert_array_equal(desaturate_near_clipping(dark.copy()), dark)
    peaks = np.linspace(0.5, 1.0, 501, dtype=np.float32)
    rgb = np.stack([peaks, 0.5 * peaks, 0.2 * peaks], axis=-1)[None].copy()
    out = desaturate_near_clipping(rgb)[0]
    saturation = 1.0 - out.min(axis=1) / out.max(axis=1)
    assert np.all(np.diff(saturation) <= 1e-6)  # saturation only falls towards clipping
    assert np.abs(np.diff(out, axis=0)).max() < 0.02  # continuous: no step anywhere (a jump would be 0.1+)
    np.testing.assert_allclose(out[:, 0], peaks)  # the brightest channel keeps its value
