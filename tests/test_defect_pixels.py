"""Hot and dead sites: found against the noise, replaced by their neighbours' median."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pipeline.noise_model import NoiseModel
from pipeline.stages.defect_pixels import correct_hot_and_dead

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "raw"


def _noisy_shadow(seed: int, level: float, model: NoiseModel) -> np.ndarray:
    rng = np.random.default_rng(seed)
    sigma = np.sqrt(model.scale * level + model.offset)
    return (level + rng.normal(0, sigma, size=(200, 200))).astype(np.float32)


def test_a_dead_site_in_the_shadows_is_found_against_the_noise() -> None:
    model = NoiseModel(scale=7.6e-4, offset=2e-8)  # a real 10-bit sensor's
    cfa = _noisy_shadow(1, 0.033, model)
    cfa[100, 100] = 0.002  # 2 DN of 1023 where its neighbours read about 33
    fixed = correct_hot_and_dead(cfa, noise=model)
    assert fixed[100, 100] > 0.015


def test_noise_alone_is_left_alone() -> None:
    model = NoiseModel(scale=7.6e-4, offset=2e-8)
    cfa = _noisy_shadow(2, 0.033, model)
    fixed = correct_hot_and_dead(cfa, noise=model)
    assert np.count_nonzero(fixed != cfa) <= 2  # of 40,000 sites: about one in ten million


def test_hot_site_is_replaced_by_its_neighbours_median() -> None:
    cfa = np.full((20, 20), 0.1, dtype=np.float32)
    cfa[10, 10] = 0.9
    fixed = correct_hot_and_dead(cfa, noise=NoiseModel(1e-4, 1e-6))
    assert fixed[10, 10] == pytest.approx(0.1)
    np.testing.assert_array_equal(np.delete(fixed.ravel(), 210), np.delete(cfa.ravel(), 210))


@pytest.mark.skipif(not (DATA / "pi_arducam_pivariety_1920x1200/image1.dng").exists(),
                    reason="../shared/data is not here")
def test_the_dead_site_of_a_real_file_is_corrected() -> None:
    from pipeline.formats.raw_files import read_raw
    from pipeline.noise_model import noise_model_of
    from pipeline.stages.black_level import normalize

    frame = read_raw(DATA / "pi_arducam_pivariety_1920x1200/image1.dng")
    meta = frame.metadata
    cfa = normalize(frame.cfa, meta.black_level, meta.white_level)
    assert cfa[213, 1460] * 991 < 3  # 2 DN over black; its neighbours read 17-51
    fixed = correct_hot_and_dead(cfa, noise=noise_model_of(frame))
    assert 17 <= fixed[213, 1460] * 991 <= 51
