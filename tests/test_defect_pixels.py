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


def test_a_hot_site_that_only_doubles_a_dark_neighbourhood_is_found_against_the_noise() -> None:
    model = NoiseModel(scale=7.6e-4, offset=2e-8)
    cfa = _noisy_shadow(3, 0.045, model)
    cfa[100, 100] = 0.11  # 2.4x its neighbours, under the ratio test's 2x + 0.02
    fixed = correct_hot_and_dead(cfa, noise=model)
    assert fixed[100, 100] < 0.06


def _lit_by_a_lens(level: float, peak: float, sigma_px: float, dark: bool = False) -> np.ndarray:
    """A point of light (or of shadow) at (100, 100) on a flat ``level``, blurred by a
    Gaussian lens of ``sigma_px``; noiseless."""
    y, x = np.mgrid[0:200, 0:200]
    spot = peak * np.exp(-((y - 100) ** 2 + (x - 100) ** 2) / (2 * sigma_px**2))
    return (level - spot if dark else level + spot).astype(np.float32)


@pytest.mark.parametrize("sigma_px", [0.6, 0.8])
@pytest.mark.parametrize("dark", [False, True])
def test_a_point_the_lens_spread_is_detail_not_a_defect(sigma_px, dark) -> None:
    # Stars and specks: far outside their eight same-colour neighbours' range, but the
    # sites next to them are lit (or shaded) too, which a defect's are not.
    cfa = _lit_by_a_lens(0.3, 0.28 if dark else 0.6, sigma_px, dark)
    fixed = correct_hot_and_dead(cfa, noise=NoiseModel(7.6e-4, 2e-8))
    np.testing.assert_array_equal(fixed, cfa)
    sharp = _lit_by_a_lens(0.3, 0.28 if dark else 0.6, 0.01, dark)  # one site alone: a defect
    assert correct_hot_and_dead(sharp, noise=NoiseModel(7.6e-4, 2e-8))[100, 100] == \
        pytest.approx(0.3)


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


@pytest.mark.skipif(not (DATA / "pi_arducam_pivariety_1920x1200/image3.dng").exists(),
                    reason="../shared/data is not here")
def test_the_shadow_hot_site_of_a_real_sensor_is_corrected_in_both_its_frames() -> None:
    from pipeline.formats.raw_files import read_raw
    from pipeline.noise_model import noise_model_of
    from pipeline.stages.black_level import normalize

    for name in ("image3", "image4"):  # one sensor, two exposures of one scene
        frame = read_raw(DATA / f"pi_arducam_pivariety_1920x1200/{name}.dng")
        meta = frame.metadata
        cfa = normalize(frame.cfa, meta.black_level, meta.white_level)
        fixed = correct_hot_and_dead(cfa, noise=noise_model_of(frame))
        neighbours = cfa[631:636:2, 707:712:2].ravel()[[0, 1, 2, 3, 5, 6, 7, 8]]
        assert cfa[633, 709] > 1.8 * neighbours.max()  # a white dot on image3's red wire
        assert neighbours.min() <= fixed[633, 709] <= neighbours.max()
        assert np.count_nonzero(fixed != cfa) <= 5


def test_correcting_in_place_gives_what_a_copy_gets_even_with_defects_by_the_thousand() -> None:
    # Every correction is found before any is written; rows with more defects than the
    # first search keeps (CORRECTIONS_PER_ROW) are searched again.
    rng = np.random.default_rng(8)
    cfa = (0.1 + rng.normal(0.0, 0.01, (120, 400))).astype(np.float32)
    sites = rng.choice(cfa.size, 6000, replace=False)
    cfa.ravel()[sites] = rng.choice([0.0, 0.9], sites.size)  # about 50 a row
    model = NoiseModel(7.6e-4, 2e-8)
    copied = correct_hot_and_dead(cfa, noise=model)
    in_place = cfa.copy()
    assert correct_hot_and_dead(in_place, noise=model, out=in_place) is in_place
    np.testing.assert_array_equal(in_place, copied)
    assert np.count_nonzero(copied != cfa) > 1000
    assert max(np.count_nonzero(copied[y] != cfa[y]) for y in range(120)) > 32
