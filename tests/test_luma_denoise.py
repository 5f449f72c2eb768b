"""Luminance noise reduction: noise within the noise model is smoothed, edges and colour
are kept."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.noise_model import NoiseModel
from pipeline.stages.luma_denoise import reduce_luma_noise

NOISE = NoiseModel(scale=2e-4, offset=1e-5)
GAINS = np.array([2.0, 1.0, 1.5])


def noisy(clean: np.ndarray, seed: int = 1) -> np.ndarray:
    """``clean`` (white-balanced) with the raw noise of ``NOISE`` on each channel."""
    rng = np.random.default_rng(seed)
    raw = clean / GAINS
    sigma = np.sqrt(NOISE.scale * np.maximum(raw, 0) + NOISE.offset)
    return ((raw + rng.normal(size=raw.shape) * sigma) * GAINS).astype(np.float32)


def test_flat_noise_is_smoothed_and_its_level_kept() -> None:
    image = noisy(np.full((96, 128, 3), 0.1))
    before = image.mean(axis=2)
    reduce_luma_noise(image, NOISE, GAINS, 1.0)
    after = image.mean(axis=2)
    assert after.std() < 0.6 * before.std()
    assert after.mean() == pytest.approx(before.mean(), rel=0.01)


def test_an_edge_well_above_the_noise_keeps_its_contrast_and_place() -> None:
    clean = np.full((96, 128, 3), 0.05)
    clean[:, 64:] = 0.4
    image = noisy(clean)
    reduce_luma_noise(image, NOISE, GAINS, 1.0)
    profile = image.mean(axis=(0, 2))
    assert profile[:60].mean() == pytest.approx(0.05, rel=0.05)
    assert profile[68:].mean() == pytest.approx(0.4, rel=0.02)
    assert profile[62] < 0.1 and profile[66] > 0.35  # still a step, not a ramp


def test_colour_is_kept_and_strength_zero_changes_nothing() -> None:
    image = noisy(np.full((64, 64, 3), 0.2) * np.array([1.0, 0.5, 0.25]), seed=3)
    ratios = image[..., 0] / image[..., 1]
    untouched = image.copy()
    reduce_luma_noise(image, NOISE, GAINS, 0.0)
    np.testing.assert_array_equal(image, untouched)
    reduce_luma_noise(image, NOISE, GAINS, 0.8)
    np.testing.assert_allclose(image[..., 0] / image[..., 1], ratios, rtol=1e-5)
    assert not np.array_equal(image, untouched)


def test_a_cleaner_frame_is_smoothed_less() -> None:
    # The same pattern, texture 5x a clean frame's noise but within a noisy one's: the
    # filter keeps it on the clean frame and smooths it on the noisy one.
    rng = np.random.default_rng(4)
    texture = 0.1 + 0.01 * rng.standard_normal((96, 128, 1)) * np.ones(3)
    kept = []
    for noise in (NoiseModel(2e-7, 1e-8), NoiseModel(2e-3, 1e-4)):
        image = texture.astype(np.float32).copy()
        reduce_luma_noise(image, noise, GAINS, 1.0)
        kept.append(image.mean(axis=2).std() / texture[..., 0].std())
    assert kept[0] > 0.9 > 0.5 > kept[1]
