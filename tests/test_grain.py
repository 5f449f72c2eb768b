"""Film grain: mean-preserving, strongest in mid-tones, never clipping, deterministic,
and resolution-independent in character."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.looks.grain import GrainParams, plan_grain
from pipeline.looks.look import Look
from pipeline.looks.look_pass import apply_look


def _grainy(image: np.ndarray, amount: float = 0.1, size_um: float = 20.0, seed: int = 0):
    look = Look(name="grain", grain=GrainParams(amount=amount, size_um=size_um))
    return apply_look(image.astype(np.float32).copy(), look, seed=seed)


@pytest.mark.parametrize("level", [0.02, 0.18, 0.5, 0.8, 0.97])
def test_grain_preserves_the_mean_and_never_clips(level: float) -> None:
    flat = np.full((600, 800, 3), level, dtype=np.float32)
    out = _grainy(flat, amount=0.2)
    assert out.min() >= 0.0 and out.max() <= 1.0
    assert abs(float(out.mean()) - level) < 2e-3
    assert np.array_equal(out[..., 0], out[..., 1])  # grain on a grey keeps it grey


def test_grain_is_strongest_in_the_midtones() -> None:
    levels = np.linspace(0.0, 1.0, 11)
    stds = [float(_grainy(np.full((400, 600, 3), v, np.float32)).std()) for v in levels]
    assert stds[0] == 0 and stds[-1] == 0
    assert int(np.argmax(stds)) == 5
    # Newson et al.'s sqrt(u (1 - u)): 0.3 at u = 0.1 and 0.9 against 0.5 at mid-grey.
    assert stds[5] > 1.5 * stds[1] and stds[5] > 1.5 * stds[9]


def test_grain_is_deterministic_for_a_seed() -> None:
    rng = np.random.default_rng(3)
    image = rng.random((96, 128, 3), dtype=np.float32)
    a, b = _grainy(image, seed=11), _grainy(image, seed=11)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, _grainy(image, seed=12))


def test_grain_is_resolution_independent() -> None:
    # The same film at a quarter of the resolution: the grains are a quarter the size in
    # pixels, so each pixel averages more of them and the per-pixel deviation falls.
    big = plan_grain(GrainParams(amount=0.1, size_um=30.0), (3040, 4056))
    small = plan_grain(GrainParams(amount=0.1, size_um=30.0), (760, 1014))
    assert GrainParams(size_um=30.0).size_px((3040, 4056)) == pytest.approx(3.8)
    assert big.amplitude == pytest.approx(0.1) and small.amplitude == pytest.approx(0.095)
    grey = np.full((760, 1014, 3), 0.5, np.float32)
    fine = _grainy(grey, amount=0.1, size_um=10.0)  # 0.32 px grains
    coarse = _grainy(grey, amount=0.1, size_um=60.0)  # 1.9 px grains
    assert fine.std() < 0.5 * coarse.std()
    # Coarse grain is spatially correlated over about its size; sub-pixel grain is not.
    def neighbour_correlation(img: np.ndarray) -> float:
        g = img[..., 0] - img[..., 0].mean()
        return float((g[:, 1:] * g[:, :-1]).mean() / g.var())
    assert neighbour_correlation(coarse) > 0.6 > neighbour_correlation(fine)


def test_grain_parameters_are_validated() -> None:
    with pytest.raises(ValueError, match="amount"):
        GrainParams(amount=-0.1)
    with pytest.raises(ValueError, match="size_um"):
        GrainParams(size_um=0.0)
