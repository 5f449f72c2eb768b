"""The box mean behind the guided filters, against a brute-force window mean."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.guided_filter import box_mean


@pytest.mark.parametrize("shape, radius", [((37, 53), 3), ((5, 7), 4), ((16, 16), 0), ((9, 40), 12)])
def test_box_mean_matches_brute_force(shape: tuple[int, int], radius: int) -> None:
    image = np.random.default_rng(2).normal(size=shape)
    h, w = shape
    expected = np.array(
        [
            [
                image[max(y - radius, 0) : y + radius + 1, max(x - radius, 0) : x + radius + 1].mean()
                for x in range(w)
            ]
            for y in range(h)
        ]
    )
    np.testing.assert_allclose(box_mean(image, radius), expected, atol=1e-12)
