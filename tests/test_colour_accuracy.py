"""End to end colour accuracy: a simulated HQ-camera ColorChecker through the neutral develop."""

from __future__ import annotations

import numpy as np
import pytest

from hardware.imx477_simulator import Imx477Simulator, SensorSettings, render_colorchecker
from pipeline.colour import metrics as colour_metrics
from pipeline.develop import DevelopParams, develop


@pytest.mark.parametrize("temperature_k", [2850.0, 4500.0, 6500.0])
def test_neutral_develop_reproduces_the_colorchecker(temperature_k: float) -> None:
    chart = render_colorchecker(patch_size_px=64, border_px=16)
    sim = Imx477Simulator(chart.image_srgb, seed=2024)
    # Linear scene 1.0 reaches the white level, so the normalised raw is the scene itself
    # (BaselineExposure 0); the white patch (linear ~0.88) stays below clipping.
    settings = SensorSettings(
        exposure_time_us=sim.exposure_time_us_for(1.0),
        analogue_gain=1.0,
        colour_temperature_k=temperature_k,
    )
    frame = sim.capture(settings)
    assert frame.metadata.baseline_exposure_ev == 0.0

    rgb = develop(frame, DevelopParams(look="neutral"))
    assert rgb.shape == (*frame.shape, 3) and rgb.dtype == np.float32
    assert float(rgb.min()) >= 0.0 and float(rgb.max()) <= 1.0

    half = chart.patch_size_px // 4
    patches = np.array(
        [
            rgb[y - half : y + half, x - half : x + half].reshape(-1, 3).mean(axis=0)
            for y, x in chart.patch_centres_yx
        ]
    )
    lab = colour_metrics.linear_srgb_to_lab_d50(
        colour_metrics.srgb_decode(patches.astype(np.float64))
    )
    delta_e = colour_metrics.delta_e_ciede2000(lab, colour_metrics.COLORCHECKER_LAB_D50)
    assert float(delta_e.mean()) <= 2.0, np.round(delta_e, 2)


def _chart_delta_e(frame, chart) -> np.ndarray:
    rgb = develop(frame, DevelopParams(look="neutral"))
    half = chart.patch_size_px // 4
    patches = np.array([rgb[y - half : y + half, x - half : x + half].reshape(-1, 3).mean(axis=0)
                        for y, x in chart.patch_centres_yx])
    lab = colour_metrics.linear_srgb_to_lab_d50(
        colour_metrics.srgb_decode(patches.astype(np.float64)))
    return colour_metrics.delta_e_ciede2000(lab, colour_metrics.COLORCHECKER_LAB_D50)


def test_a_dng_with_only_colormatrix2_develops_as_accurately() -> None:
    import dataclasses

    chart = render_colorchecker(patch_size_px=48, border_px=12)
    sim = Imx477Simulator(chart.image_srgb, seed=5)
    frame = sim.capture(SensorSettings(exposure_time_us=sim.exposure_time_us_for(1.0),
                                       colour_temperature_k=4500.0))
    meta = frame.metadata
    only_second = dataclasses.replace(
        meta, color_matrix_1=None, color_matrix_2=meta.color_matrix_1,
        calibration_illuminant_1=None, calibration_illuminant_2=meta.calibration_illuminant_1)
    both = _chart_delta_e(frame, chart)
    second = _chart_delta_e(type(frame)(frame.cfa, only_second), chart)
    assert float(second.mean()) <= 1.5, np.round(second, 2)
    np.testing.assert_allclose(second, both, atol=1e-3)
