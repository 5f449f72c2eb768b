"""Unsharp mask: a reference implementation checks the banded kernel."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.errors import InvalidParameterError
from pipeline.sharpen import unsharp_mask


def _reference(rgb: np.ndarray, amount: float, radius: float, threshold: float) -> np.ndarray:
    half = max(1, int(np.ceil(2.0 * radius)))
    taps = np.exp(-0.5 * (np.arange(-half, half + 1) / radius) ** 2)
    taps /= taps.sum()
    luma = rgb @ np.array([0.299, 0.587, 0.114])
    padded = np.pad(luma, half, mode="edge")
    rows = sum(t * padded[:, i : i + luma.shape[1]] for i, t in enumerate(taps))
    blur = sum(t * rows[i : i + luma.shape[0], :] for i, t in enumerate(taps))
    diff = luma - blur
    detail = amount * np.sign(diff) * np.maximum(np.abs(diff) - threshold, 0)
    return rgb + detail[..., None]


@pytest.mark.parametrize("height", [7, 64, 131])  # fewer rows than a band, exact, ragged
def test_banded_kernel_matches_reference(height: int) -> None:
    rng = np.random.default_rng(11)
    rgb = rng.uniform(0, 1, size=(height, 50, 3)).astype(np.float32)
    expected = _reference(rgb.astype(np.float64), 0.8, 1.2, 0.01)
    np.testing.assert_allclose(unsharp_mask(rgb.copy(), 0.8, 1.2, 0.01), expected, atol=2e-5)


def test_flat_image_is_unchanged_and_edges_gain_contrast() -> None:
    flat = np.full((40, 40, 3), 0.5, dtype=np.float32)
    np.testing.assert_array_equal(unsharp_mask(flat.copy(), 1.0), flat)
    edge = np.zeros((40, 40, 3), dtype=np.float32)
    edge[:, 20:] = 0.6
    sharp = unsharp_mask(edge.copy(), 1.0)
    assert sharp[:, 20, 0].mean() > 0.6 and sharp[:, 19, 0].mean() < 0.0
    assert np.ptp(sharp[:, :, 0] - sharp[:, :, 1]) == 0  # no colour fringes


def test_negative_amount_is_rejected() -> None:
    with pytest.raises(InvalidParameterError, match="amount=-1"):
        unsharp_mask(np.zeros((8, 8, 3), dtype=np.float32), -1.0)
