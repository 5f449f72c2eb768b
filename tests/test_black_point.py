"""Black point: glare read off the scene and taken out with a soft toe."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pipeline.stages.black_point import (
    MAX_FRACTION_OF_MEDIAN,
    estimate_glare,
    remove_glare,
    soft_toe,
)

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "raw"


def test_glare_added_to_a_scene_with_blacks_is_found() -> None:
    rng = np.random.default_rng(3)
    scene = rng.uniform(0.05, 0.8, size=(300, 400)).astype(np.float32)
    scene[:40, :60] = 0.0  # black objects: 2 % of the frame
    glare = 0.012
    assert estimate_glare(scene + glare) == pytest.approx(glare, abs=1e-6)


def test_a_scene_with_nothing_dark_is_not_stretched() -> None:
    rng = np.random.default_rng(4)
    fog = rng.uniform(0.5, 0.7, size=(200, 200)).astype(np.float32)
    glare = estimate_glare(fog)
    assert glare == pytest.approx(MAX_FRACTION_OF_MEDIAN * np.median(fog), rel=1e-6)


def test_toe_is_continuous_monotonic_and_exact_above_twice_the_black() -> None:
    black = 0.02
    x = np.linspace(-0.05, 0.2, 5001)
    y = soft_toe(x, black)
    assert np.all(np.diff(y) >= 0)
    assert y[x <= 0].max() == 0.0
    np.testing.assert_allclose(y[x >= 2 * black], x[x >= 2 * black] - black)
    below, above = soft_toe(np.array([2 * black - 1e-9, 2 * black]), black)
    assert below == pytest.approx(above, abs=1e-8)
    image = x.astype(np.float32).reshape(1, -1, 1).repeat(3, axis=2).copy()
    remove_glare(image, black)
    np.testing.assert_allclose(image[0, :, 1], y, atol=1e-6)


def test_no_glare_leaves_the_image_alone() -> None:
    image = np.linspace(-0.1, 1.0, 300, dtype=np.float32).reshape(10, 10, 3)
    np.testing.assert_array_equal(remove_glare(image.copy(), 0.0), image)


@pytest.mark.skipif(not (DATA / "pi_arducam_pivariety_1920x1200/image1.dng").exists(),
                    reason="../shared/data is not here")
def test_real_indoor_scene_has_black_blacks() -> None:
    from pipeline.develop import develop
    from pipeline.formats.raw_files import read_raw

    image = develop(read_raw(DATA / "pi_arducam_pivariety_1920x1200/image1.dng"))
    luma = np.round(image * 255) @ np.array([0.299, 0.587, 0.114])
    # 23.6-24.0 as the demosaic changed (LibRaw 20, the Pi ISP 19; 41 before the black
    # point): a guard against lifted blacks coming back, with room for the demosaic.
    assert np.percentile(luma, 1) <= 26
