"""Tone curve, local tone mapping and DNG colour matrices."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.cfa import CfaPattern
from pipeline.colour.matrix import camera_to_srgb_matrix, temperature_from_xy
from pipeline.colour.metrics import srgb_decode
from pipeline.errors import InvalidParameterError
from pipeline.raw_frame import CameraMetadata
from pipeline.stages import local_tone_mapping, tone_curve


@pytest.mark.parametrize("contrast", [1.0, 1.3, 1.8])
def test_filmic_curve_is_monotonic_and_maps_grey_and_white(contrast: float) -> None:
    curve = tone_curve.FilmicCurve(contrast=contrast, white=8.0)
    x = np.geomspace(1e-5, 20.0, 2000)
    y = curve(x)
    assert np.all(np.diff(y) >= 0)
    assert curve(8.0) == pytest.approx(1.0)
    assert 0.17 < curve(0.18) < 0.24


def test_tone_curve_kernel_matches_reference_on_greys_and_keeps_hue() -> None:
    curve = tone_curve.FilmicCurve(contrast=1.4, white=6.0)
    greys = np.geomspace(0.001, 5.0, 50).astype(np.float32)
    rgb = np.repeat(greys[None, :, None], 3, axis=2).copy()
    tone_curve.apply(rgb, curve)
    np.testing.assert_allclose(srgb_decode(rgb[0, :, 1]), curve(greys), rtol=2e-3, atol=1e-5)
    colour = np.array([[[0.1, 0.05, 0.02]]], dtype=np.float32)
    tone_curve.apply(colour, curve)
    linear = srgb_decode(colour[0, 0])
    ratios = linear / linear[0]
    np.testing.assert_allclose(ratios, [1.0, 0.5, 0.2], rtol=2e-3)


def test_bad_curve_parameters_are_rejected() -> None:
    with pytest.raises(InvalidParameterError, match="contrast"):
        tone_curve.FilmicCurve(contrast=10.0)
    with pytest.raises(InvalidParameterError, match="white"):
        tone_curve.FilmicCurve(white=0.1)


def test_local_tone_mapping_compresses_only_high_contrast_scenes() -> None:
    low = np.full((64, 64), 0.18, dtype=np.float32)
    low[:, 32:] = 0.36
    assert local_tone_mapping.fit(low, strength=1.0).is_identity

    high = np.full((64, 64), 0.01, dtype=np.float32)
    high[:, 32:] = 20.0  # a window 11 EV above the room
    tone_map = local_tone_mapping.fit(high, strength=1.0)
    assert not tone_map.is_identity
    rgb = np.repeat(np.kron(high, np.ones((4, 4), dtype=np.float32))[..., None], 3, axis=2)
    local_tone_mapping.apply(rgb, tone_map)
    dark, bright = rgb[:, :100, 1].mean(), rgb[:, 156:, 1].mean()
    assert dark > 0.01 and bright < 20.0
    assert np.log2(bright / dark) < np.log2(20.0 / 0.01) - 2.0
    # The edge between the two regions stays sharp: no halo wider than a few pixels.
    assert rgb[:, 120, 1].std() < 1e-3 and abs(rgb[:, 110, 1].mean() - dark) < 0.1 * dark


def _metadata(**kwargs) -> CameraMetadata:
    return CameraMetadata(CfaPattern.RGGB, (0.0,) * 4, 1.0, **kwargs)


def test_camera_white_maps_to_srgb_white() -> None:
    cm = (0.75, -0.2, -0.05, -0.4, 1.2, 0.2, -0.05, 0.15, 0.6)
    meta = _metadata(color_matrix_1=cm, calibration_illuminant_1=21)
    for neutral in ([0.5, 1.0, 0.7], [0.8, 1.0, 0.4]):
        m = camera_to_srgb_matrix(meta, np.array(neutral))
        np.testing.assert_allclose(m @ np.ones(3), 1.0, atol=1e-5)


def test_dual_illuminant_matrices_interpolate_by_temperature() -> None:
    cm_a = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.3)  # tungsten-calibrated
    cm_d65 = (0.6, 0.1, 0.0, 0.1, 1.0, 0.0, 0.0, 0.1, 1.0)
    meta = _metadata(
        color_matrix_1=cm_a, calibration_illuminant_1=17,
        color_matrix_2=cm_d65, calibration_illuminant_2=21,
    )
    # A neutral measured under D65 through the D65 matrix selects that matrix.
    d65_xyz = np.array([0.95047, 1.0, 1.08883])
    neutral = np.asarray(cm_d65).reshape(3, 3) @ d65_xyz
    m = camera_to_srgb_matrix(meta, neutral / neutral[1])
    only_d65 = camera_to_srgb_matrix(_metadata(color_matrix_1=cm_d65, calibration_illuminant_1=21),
                                     neutral / neutral[1])
    np.testing.assert_allclose(m, only_d65, atol=0.03)


def test_mccamy_temperature_of_standard_illuminants() -> None:
    assert temperature_from_xy((0.31271, 0.32902)) == pytest.approx(6504, abs=30)
    assert temperature_from_xy((0.44757, 0.40745)) == pytest.approx(2856, abs=30)


def test_plausible_whites_are_kept_and_impossible_ones_bounded() -> None:
    from pipeline.colour.matrix import PLAUSIBLE_CCT_K, plausible_white_xy

    for xy in [(0.3127, 0.3290), (0.4476, 0.4074), (0.34567, 0.3585), (0.3805, 0.3768)]:
        assert plausible_white_xy(xy) == xy  # D65, A, D50, F-ish 4000 K
    bounded = plausible_white_xy((0.326, 0.612))  # a white estimated on a green scene
    assert 0.30 < bounded[0] < 0.36 and 0.33 < bounded[1] < 0.40
    assert PLAUSIBLE_CCT_K[0] <= temperature_from_xy(bounded) <= PLAUSIBLE_CCT_K[1]


def test_an_implausible_white_gives_a_bounded_matrix_that_keeps_white_white() -> None:
    from hardware.imx477_simulator import Imx477Simulator, SensorSettings, render_colorchecker

    chart = render_colorchecker(patch_size_px=8, border_px=2)
    sim = Imx477Simulator(chart.image_srgb, seed=3)
    meta = sim.capture(SensorSettings(exposure_time_us=sim.exposure_time_us_for(1.0))).metadata
    green_cast = np.asarray(meta.as_shot_neutral) * np.array([0.5, 1.0, 0.3])
    matrix = camera_to_srgb_matrix(meta, green_cast)
    np.testing.assert_allclose(matrix @ np.ones(3), np.ones(3), atol=1e-5)
    assert np.abs(matrix).max() < 3.0  # was a blue row of about [-1, -5, 7]


def test_nan_never_indexes_outside_a_table() -> None:
    # A NaN converts to any integer; before the integer clamp this was a segfault.
    from pipeline.colour.output_transform import encode_srgb
    from pipeline.looks import lut3d

    rgb = np.full((4, 4, 3), np.nan, dtype=np.float32)
    tone_curve.apply(rgb, tone_curve.FilmicCurve())
    encode_srgb(np.full((4, 4, 3), np.nan, dtype=np.float32))
    lut3d.apply(np.full((4, 4, 3), np.nan, dtype=np.float32), lut3d.identity_lut(5))
