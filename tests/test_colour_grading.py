"""Looks end to end and colour grading: determinism, monotonic tone, neutral greys,
monochrome without chroma, skin hues kept in every look, gamut-safe saturation."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from hardware.imx477_simulator import Imx477Simulator, SensorSettings, render_colorchecker
from pipeline.colour import metrics as cm
from pipeline.develop import DevelopParams, develop
from pipeline.looks.colour_grading import GradingParams, HueShift, SplitToning, grade, skin_weight
from pipeline.looks.grain import GrainParams
from pipeline.looks.look import builtin_looks, find_look
from pipeline.looks.look_pass import apply_look
from pipeline.looks.vignette import VignetteParams
from pipeline.stages.tone_curve import FilmicCurve
from pipeline.stages.tone_curve import apply as apply_tone_curve

LOOKS = [name for name, look in builtin_looks().items() if not look.colorimetric]
COLOUR_LOOKS = [n for n in LOOKS if not find_look(n).colour.monochrome]
SKIN = (cm.COLORCHECKER_NAMES.index("dark skin"), cm.COLORCHECKER_NAMES.index("light skin"))


@pytest.fixture(scope="module")
def chart():
    chart = render_colorchecker(patch_size_px=24, border_px=2)
    sim = Imx477Simulator(chart.image_srgb, seed=7)
    frame = sim.capture(SensorSettings(exposure_time_us=sim.exposure_time_us_for(1.0)))
    return chart, frame


def _patch_lch(chart, rgb: np.ndarray) -> np.ndarray:
    half = chart.patch_size_px // 4
    means = np.array([rgb[y - half : y + half, x - half : x + half].reshape(-1, 3).mean(0)
                      for y, x in chart.patch_centres_yx])  # fmt: skip
    return cm.linear_srgb_to_oklch(cm.srgb_decode(means.astype(np.float64)))


def test_skin_hue_stays_within_3_degrees_of_neutral_in_every_colour_look(chart) -> None:
    chart, frame = chart
    reference = _patch_lch(chart, develop(frame, DevelopParams(look="neutral")))[list(SKIN)]
    for name in COLOUR_LOOKS:
        # One stop down keeps light skin off the tone curve's shoulder, whose path to white
        # (shared by every look, `standard` included) desaturates and turns near-whites.
        rgb = develop(frame, DevelopParams(look=name, exposure_compensation_ev=-1.0))
        skin = _patch_lch(chart, rgb)[list(SKIN)]
        shift = (skin[:, 2] - reference[:, 2] + 180.0) % 360.0 - 180.0
        assert np.abs(shift).max() < 3.0, (name, shift)


def test_every_look_is_deterministic(chart) -> None:
    _, frame = chart
    for name in LOOKS:
        a = develop(frame, DevelopParams(look=name))
        assert np.array_equal(a, develop(frame, DevelopParams(look=name))), name


def test_monochrome_looks_have_zero_chroma(chart) -> None:
    _, frame = chart
    for name in LOOKS:
        look = find_look(name)
        if look.colour.monochrome and look.split_toning.is_identity:
            rgb = develop(frame, DevelopParams(look=name))
            assert np.ptp(rgb, axis=2).max() == 0.0, name


@pytest.mark.parametrize("name", LOOKS)
def test_tone_is_monotonic(name: str) -> None:
    # Grain and vignette off: along a grey ramp every channel and the luma must not fall.
    look = dataclasses.replace(find_look(name), grain=GrainParams(), vignette=VignetteParams())
    ramp = np.repeat(np.geomspace(1e-4, 8.0, 2048, dtype=np.float32)[None, :, None], 3, axis=2)
    rgb = apply_look(apply_tone_curve(ramp, FilmicCurve(contrast=look.tone.contrast)), look)
    assert np.all(np.diff(rgb[0], axis=0) >= -1e-6), name
    assert rgb[0, -1].min() > rgb[0, 0].max() + 0.5, name


def test_a_neutral_grey_stays_neutral_in_authentic() -> None:
    look = find_look("authentic")
    assert look.vignette.amount > 0  # the vignette is in the test too
    levels = np.linspace(0.0, 1.0, 97, dtype=np.float32)
    grey = np.repeat(np.tile(levels, (64, 1))[..., None], 3, axis=2)
    rgb = apply_look(np.ascontiguousarray(grey), look)
    assert np.ptp(rgb, axis=2).max() < 1e-6


def test_saturation_changes_chroma_not_hue_and_stays_in_gamut() -> None:
    rng = np.random.default_rng(9)
    rgb = rng.random((4000, 3))
    before = cm.linear_srgb_to_oklch(rgb)
    params = GradingParams(saturation=1.6, skin_protection=0.0)
    after = cm.linear_srgb_to_oklch(grade(rgb, params, SplitToning()))
    graded = grade(rgb, params, SplitToning())
    assert graded.min() >= 0.0 and graded.max() <= 1.0
    coloured = before[:, 1] > 0.05
    turn = (after[coloured, 2] - before[coloured, 2] + 180.0) % 360.0 - 180.0
    assert np.abs(turn).max() < 0.5
    assert np.all(after[coloured, 1] >= before[coloured, 1] - 1e-4)
    # Saturated colours are compressed toward the gamut edge, not clipped flat: order kept.
    reds = np.stack([np.ones(50), np.linspace(0.0, 0.5, 50), np.linspace(0.0, 0.5, 50)], 1)
    chroma = cm.linear_srgb_to_oklch(grade(reds, params, SplitToning()))[:, 1]
    assert np.all(np.diff(chroma) < 0)


def test_skin_is_spared_smoothly_by_hue_edits() -> None:
    hues = np.arange(0.0, 360.0, 0.5)
    weight = skin_weight(hues)
    assert weight[hues == 45.0] == 1.0 and weight[hues == 200.0] == 0.0
    assert np.abs(np.diff(weight)).max() < 0.05  # no band: a smooth ramp
    skin = cm.colorchecker_linear_srgb()[list(SKIN)]
    params = GradingParams(hue_shift_deg=HueShift(red=25.0, orange=-25.0, yellow=20.0))
    before = cm.linear_srgb_to_oklch(skin)
    after = cm.linear_srgb_to_oklch(grade(skin, params, SplitToning()))
    np.testing.assert_allclose(after[:, 2], before[:, 2], atol=0.5)


def test_monochrome_grade_has_equal_channels_and_toning_tints() -> None:
    rgb = np.random.default_rng(4).random((500, 3))
    grey = grade(rgb, GradingParams(monochrome=True), SplitToning())
    assert np.ptp(grey, axis=1).max() == 0.0
    sepia = grade(rgb, GradingParams(monochrome=True),
                  SplitToning(shadows_hue_deg=60.0, shadows_chroma=0.04,
                              highlights_hue_deg=60.0, highlights_chroma=0.04))  # fmt: skip
    lch = cm.linear_srgb_to_oklch(sepia)
    toned = lch[:, 1] > 0.01
    assert toned.mean() > 0.9
    assert np.all(np.abs((lch[toned, 2] - 60.0 + 180.0) % 360.0 - 180.0) < 3.0)
