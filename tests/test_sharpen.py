"""Unsharp mask: a reference implementation checks the banded kernel."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.errors import InvalidParameterError
from pipeline.noise_model import NoiseModel, display_luma_sigma
from pipeline.stages.sharpen import KEPT_NOISE, NOISE_GATE, unsharp_mask


def _reference(rgb: np.ndarray, amount: float, radius: float, threshold: float,
               kept_noise: float = 1.0) -> np.ndarray:
    half = max(1, int(np.ceil(2.0 * radius)))
    taps = np.exp(-0.5 * (np.arange(-half, half + 1) / radius) ** 2)
    taps /= taps.sum()
    luma = rgb @ np.array([0.299, 0.587, 0.114])
    padded = np.pad(luma, half, mode="edge")
    rows = sum(t * padded[:, i : i + luma.shape[1]] for i, t in enumerate(taps))
    blur = sum(t * rows[i : i + luma.shape[0], :] for i, t in enumerate(taps))
    diff = luma - blur
    signal = diff**2 / (diff**2 + threshold**2)
    detail = diff * (kept_noise - 1.0 + (1.0 + amount - kept_noise) * signal)
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


def test_with_a_noise_table_the_gate_follows_the_level() -> None:
    rng = np.random.default_rng(12)
    rgb = rng.uniform(0, 1, size=(64, 48, 3)).astype(np.float32)
    sigma = np.full(16, 0.01, dtype=np.float32)
    expected = _reference(rgb.astype(np.float64), 0.8, 1.0, NOISE_GATE * 0.01, KEPT_NOISE)
    np.testing.assert_allclose(unsharp_mask(rgb.copy(), 0.8, 1.0, 0.0, noise_sigma=sigma),
                               expected, atol=2e-5)


def _highpass_std(image: np.ndarray) -> float:
    luma = image[..., 1].astype(np.float64)
    return float(np.std(luma[1:-1, 1:-1] - 0.25 * (luma[:-2, 1:-1] + luma[2:, 1:-1]
                                                   + luma[1:-1, :-2] + luma[1:-1, 2:])))


def test_noise_is_reduced_not_amplified_and_edges_are_sharpened() -> None:
    rng = np.random.default_rng(13)
    sigma = 0.01
    noisy = (0.4 + rng.normal(0, sigma, size=(96, 96, 1))).repeat(3, axis=2).astype(np.float32)
    table = np.full(32, sigma, dtype=np.float32)
    before = _highpass_std(noisy)
    plain = _highpass_std(unsharp_mask(noisy.copy(), 0.6, 1.0, threshold=0.0))
    gated = _highpass_std(unsharp_mask(noisy.copy(), 0.6, 1.0, noise_sigma=table))
    assert plain > 1.3 * before  # an ungated unsharp mask turns noise into grain
    assert gated < 0.9 * before  # the gate shrinks it instead
    edge = np.full((40, 40, 3), 0.3, dtype=np.float32)
    edge[:, 20:] = 0.6  # a 30-sigma step
    sharp = unsharp_mask(edge.copy(), 0.6, 1.0, noise_sigma=table)
    assert sharp[:, 20, 0].mean() > 0.62 and sharp[:, 19, 0].mean() < 0.28


def test_noise_carried_to_display_luma() -> None:
    model = NoiseModel(scale=4e-4, offset=1e-6)
    row = np.array([0.2126, 0.7152, 0.0722])
    sigma = display_luma_sigma(model, np.ones(3), np.eye(3), 1.0, 0.0, lambda x: np.minimum(x, 1.0),
                               levels=11)
    levels = np.linspace(0, 1, 11)
    expected = np.sqrt((row**2).sum() * (model.scale * levels + model.offset))
    np.testing.assert_allclose(sigma[1:-1], expected[1:-1], rtol=0.02)
    # Twice the exposure gain (the raw level of each display level halves) and a square-
    # root encoding (slope 1 / (2 sqrt x)): the shadows' noise grows, as it does.
    brighter = display_luma_sigma(model, np.ones(3), np.eye(3), 2.0, 0.0, np.sqrt, levels=11)
    assert brighter[1] > 2 * sigma[1]
