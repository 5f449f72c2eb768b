"""Chroma noise reduction: less colour noise, same luminance, no colour bleeding at edges."""

from __future__ import annotations

import numpy as np

from pipeline.stages.chroma_denoise import chroma_noise_sigma, reduce_chroma_noise


def _noisy(image: np.ndarray, sigma: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (image + rng.normal(0, sigma, image.shape)).astype(np.float32)


def test_flat_field_loses_chroma_noise_and_keeps_luminance() -> None:
    clean = np.full((128, 160, 3), 0.2, dtype=np.float32)
    noisy = _noisy(clean, 0.02, seed=1)
    out = reduce_chroma_noise(noisy.copy(), sigma=0.03)
    chroma_before = (noisy[..., 0] - noisy[..., 1]).std()
    chroma_after = (out[..., 0] - out[..., 1]).std()
    assert chroma_after < 0.3 * chroma_before
    np.testing.assert_allclose(out.sum(axis=2), noisy.sum(axis=2), atol=1e-5)


def test_colour_edge_along_a_luminance_edge_does_not_bleed() -> None:
    clean = np.empty((96, 128, 3), dtype=np.float32)
    clean[:, :64] = (0.6, 0.1, 0.05)  # bright red
    clean[:, 64:] = (0.02, 0.05, 0.3)  # dark blue
    out = reduce_chroma_noise(_noisy(clean, 0.01, seed=2), sigma=0.02)
    for column, expected in ((60, clean[0, 0]), (67, clean[0, 127])):
        np.testing.assert_allclose(out[8:-8, column].mean(axis=0), expected, atol=0.02)


def test_clean_frames_are_left_alone() -> None:
    image = np.random.default_rng(3).uniform(0, 1, size=(32, 48, 3)).astype(np.float32)
    np.testing.assert_array_equal(reduce_chroma_noise(image.copy(), sigma=1e-5), image)


def test_chroma_sigma_grows_with_noise_and_gains() -> None:
    low = chroma_noise_sigma(1e-4, 1e-6, [1.0, 1.0, 1.0])
    assert chroma_noise_sigma(1e-3, 1e-6, [1.0, 1.0, 1.0]) > low
    assert chroma_noise_sigma(1e-4, 1e-6, [2.0, 1.0, 1.5]) > low


def test_a_saturated_patch_on_black_leaves_no_coloured_glow() -> None:
    # The guided filter's offset carries some of a bright patch's chroma across its edge;
    # on the black around it that would be a coloured halo. The black stays as grey as
    # its noise, right up to the edge.
    clean = np.zeros((128, 160, 3), dtype=np.float32)
    clean[32:96, 40:120] = (0.8, 0.03, 0.03)
    noisy = _noisy(clean, 0.004, seed=4)
    out = reduce_chroma_noise(noisy.copy(), sigma=0.02)
    ring = np.zeros(clean.shape[:2], dtype=bool)
    ring[24:104, 32:128] = True
    ring[30:98, 38:122] = False  # 2-8 px outside the patch
    excess_red = lambda image: (image[..., 0] - image[..., 1:].mean(axis=-1))[ring].mean()
    assert abs(excess_red(out)) <= abs(excess_red(noisy)) + 0.002
    assert out.min() >= min(noisy.min(), 0.0) - 1e-6  # no channel pushed below zero by NR


def test_the_noise_gate_keeps_thin_saturated_lines_and_still_smooths_noise() -> None:
    from pipeline.noise_model import NoiseModel

    rng = np.random.default_rng(21)
    model = NoiseModel(scale=4e-4, offset=4e-6)
    gains = np.array([2.0, 1.0, 1.6])
    clean = np.full((200, 200, 3), 0.08, dtype=np.float32)
    for x0 in range(20, 200, 40):  # red wires, 2 px wide: little luminance contrast
        clean[:, x0 : x0 + 2] = [0.16, 0.05, 0.05]
    variance = gains * model.scale * clean + gains**2 * model.offset
    noisy = (clean + rng.normal(0, 1, clean.shape) * np.sqrt(variance)).astype(np.float32)
    sigma = chroma_noise_sigma(model.scale, model.offset, gains)

    def flat_noise(image):
        return float(np.std(image[:, 105:135, 0] - image[:, 105:135, 1]))

    def wire_chroma(image):
        return float(np.mean(image[:, 20:22, 0] - image[:, 20:22, 1]))

    gated = reduce_chroma_noise(noisy.copy(), sigma, noise=model, gains=gains)
    ungated = reduce_chroma_noise(noisy.copy(), sigma)
    assert flat_noise(gated) < 0.5 * flat_noise(noisy)
    assert wire_chroma(gated) > 0.85 * wire_chroma(clean)
    assert wire_chroma(ungated) < 0.3 * wire_chroma(clean)  # what the gate prevents
