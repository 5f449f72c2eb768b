"""The merged frame drawn back to the reference where it departs from it by more than noise."""

from __future__ import annotations

import numpy as np

from pipeline.burst.reference_shrink import shrink_to_reference
from pipeline.cfa import CfaPattern
from pipeline.noise_model import NoiseModel
from pipeline.raw_frame import CameraMetadata, RawFrame

NOISE = NoiseModel(scale=2e-4, offset=4e-6)  # sigma about 0.01 at mid-grey
SHAPE = (96, 128)
FRAMES = 8


def _frame(values: np.ndarray, black: float, white: float) -> RawFrame:
    """A frame holding ``values`` (normalised: black 0, white 1) in raw units."""
    raw = np.clip(np.round(black + values * (white - black)), 0, white).astype(np.uint16)
    return RawFrame(raw, CameraMetadata(CfaPattern.RGGB, (black,) * 4, white))


def _normalised(frame: RawFrame) -> np.ndarray:
    black = frame.metadata.black_level[0]
    return (frame.cfa.astype(np.float64) - black) / (frame.metadata.white_level - black)


def _burst(truth: np.ndarray, seed: int) -> tuple[RawFrame, np.ndarray]:
    """The reference (12-bit) and the noise of an 8-frame average holding it (16-bit)."""
    rng = np.random.default_rng(seed)
    sigma = np.sqrt(NOISE.scale * truth + NOISE.offset)
    frames = truth + sigma * rng.standard_normal((FRAMES, *truth.shape))
    return _frame(frames[0], 64.0, 4095.0), frames.mean(axis=0) - truth


def _truth() -> np.ndarray:
    rows, cols = np.mgrid[0 : SHAPE[0], 0 : SHAPE[1]]
    return 0.25 + 0.2 * np.sin(cols / 9.0) * np.cos(rows / 13.0)


def _rmse(image: np.ndarray, truth: np.ndarray, where=np.s_[:, :]) -> float:
    return float(np.sqrt(np.mean((image[where] - truth[where]) ** 2)))


def test_a_merge_that_differs_by_noise_alone_is_kept() -> None:
    truth = _truth()
    reference, merged_noise = _burst(truth, seed=1)
    merged = _frame(truth + merged_noise, 1024.0, 65520.0)
    out = shrink_to_reference(merged, reference, NOISE, FRAMES)
    assert np.mean(out.cfa == merged.cfa) > 0.9  # the weight is 1 nearly everywhere
    assert _rmse(_normalised(out), truth) < 1.03 * _rmse(_normalised(merged), truth)
    assert out.metadata == merged.metadata


def test_a_bias_the_merge_let_through_is_drawn_back_to_the_reference() -> None:
    # In a block, the merge is off by 2 reference sigmas (an interpolation bias, the same
    # in every frame, that the merge's per-pixel robustness, comparing one pixel with the
    # noise of two frames, cannot tell from noise): there the estimate goes back to about
    # the reference's error; elsewhere the merge is kept.
    truth = _truth()
    reference, merged_noise = _burst(truth, seed=2)
    block = np.s_[32:64, 48:96]
    biased = truth + merged_noise
    biased[block] += 2.0 * np.sqrt(NOISE.scale * truth[block] + NOISE.offset)
    merged = _frame(biased, 1024.0, 65520.0)
    out = _normalised(shrink_to_reference(merged, reference, NOISE, FRAMES))
    inner = np.s_[36:60, 52:92]  # away from the block's edges, where windows straddle it
    assert _rmse(out, truth, inner) < 0.6 * _rmse(_normalised(merged), truth, inner)
    assert _rmse(out, truth, inner) < 1.1 * _rmse(_normalised(reference), truth, inner)
    outside = np.s_[:, :32]
    assert _rmse(out, truth, outside) < 1.03 * _rmse(_normalised(merged), truth, outside)


def test_clipped_sites_keep_the_merge() -> None:
    truth = _truth()
    truth[:, :40] = 1.0  # a blown-out band
    reference, merged_noise = _burst(truth, seed=3)
    merged_values = np.minimum(truth + merged_noise, 1.0)
    merged_values[:, :40] = 0.9  # the merge's own highlight handling, whatever it is
    merged = _frame(merged_values, 1024.0, 65520.0)
    out = shrink_to_reference(merged, reference, NOISE, FRAMES)
    clipped = reference.cfa[:, :40] >= 64 + 0.98 * (4095 - 64)
    assert clipped.mean() > 0.4
    np.testing.assert_array_equal(out.cfa[:, :40][clipped], merged.cfa[:, :40][clipped])


def test_small_frames_are_handled() -> None:
    # The window reflects at the frame's edges; a frame it cannot be reflected in is kept.
    for shape, kept in (((8, 8), True), ((9, 12), False), ((12, 9), False)):
        truth = np.full(shape, 0.3)
        reference, merged_noise = _burst(truth, seed=4)
        merged = _frame(truth + merged_noise, 1024.0, 65520.0)
        out = shrink_to_reference(merged, reference, NOISE, FRAMES)
        assert out.cfa.shape == shape
        assert (out is merged) == kept
