"""The lens shading stage: a coarse gain grid per CFA site, bilinear between its points."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.raw_frame import LensShadingMap
from pipeline.stages import lens_shading


def _bilinear_gains(gains: np.ndarray, height: int, width: int) -> np.ndarray:
    """Each pixel's gain, in float64: its site's plane, points at the frame's corners and
    evenly between (an independent path from the stage's)."""
    _, gh, gw = gains.shape
    rows, cols = np.mgrid[0:height, 0:width]
    fy = rows * (gh - 1) / max(height - 1, 1)
    fx = cols * (gw - 1) / max(width - 1, 1)
    y0 = np.minimum(fy.astype(int), gh - 2)
    x0 = np.minimum(fx.astype(int), gw - 2)
    ty, tx = fy - y0, fx - x0
    plane = (rows % 2) * 2 + cols % 2
    g = gains.astype(np.float64)
    top = g[plane, y0, x0] * (1 - tx) + g[plane, y0, x0 + 1] * tx
    bottom = g[plane, y0 + 1, x0] * (1 - tx) + g[plane, y0 + 1, x0 + 1] * tx
    return top * (1 - ty) + bottom * ty


@pytest.mark.parametrize(("height", "width", "grid"), [
    (120, 160, (25, 33)),  # the Pi 4's vertex grid
    (17, 23, (3, 4)),  # odd sizes
    (64, 96, (2, 2)),  # the smallest grid
    (40, 10, (17, 33)),  # more grid columns than pixels: spans no pixel falls in
])  # fmt: skip
def test_gains_are_interpolated_bilinearly_per_site(height: int, width: int, grid) -> None:
    rng = np.random.default_rng(height * width)
    gains = rng.uniform(1.0, 3.0, (4, *grid)).astype(np.float32)
    cfa = rng.uniform(0.1, 1.0, (height, width)).astype(np.float32)
    expected = cfa * _bilinear_gains(gains, height, width)
    np.testing.assert_allclose(lens_shading.apply(cfa, LensShadingMap(gains)), expected, rtol=2e-6)
    in_place = cfa.copy()
    assert lens_shading.apply(in_place, LensShadingMap(gains), out=in_place) is in_place
    np.testing.assert_allclose(in_place, expected, rtol=2e-6)


@pytest.mark.parametrize("channels", [[[2, 1], [1, 0]], [[0, 1], [1, 2]]])  # BGGR, RGGB
def test_rgb_takes_each_channels_gain_from_its_sites(channels) -> None:
    # Planes 0..3 (the tile's sites in row-major order) carry gains 1, 2, 3, 4 (times a
    # ramp): each channel of a tile gets its sites' gain, the greens' their mean.
    ramp = np.linspace(1.0, 2.0, 5, dtype=np.float32)
    gains = np.stack([(site + 1) * np.tile(ramp, (4, 1)) for site in range(4)])
    rgb = np.ones((40, 60, 3), dtype=np.float32)
    result = lens_shading.apply_to_rgb(rgb, LensShadingMap(gains), np.array(channels))
    assert result is rgb
    site_gains = _bilinear_gains(gains, 40, 60)
    tiles = site_gains.reshape(20, 2, 30, 2)
    for channel in range(3):
        sites = np.argwhere(np.array(channels) == channel)
        expected = np.mean([tiles[:, sy, :, sx] for sy, sx in sites], axis=0)
        np.testing.assert_allclose(rgb[0::2, 0::2, channel], expected, rtol=1e-5)
        np.testing.assert_allclose(rgb[1::2, 1::2, channel], expected, rtol=1e-5)
