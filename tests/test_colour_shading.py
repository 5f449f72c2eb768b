"""Colour shading from the Pi's IMX477 tuning: the tables, their use, and who wins."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from pipeline.cfa import CfaPattern
from pipeline.colour.alsc_tuning import DATA_DIR, PLATFORMS, imx477_alsc
from pipeline.develop import DevelopParams, develop
from pipeline.errors import InvalidParameterError
from pipeline.raw_frame import CameraMetadata, LensShadingMap
from pipeline.stage_timer import StageTimer
from pipeline.stages import colour_shading
from tests.conftest import ALL_PATTERNS, mosaic_frame


def test_tables_match_the_tuning_files() -> None:
    # Numbers read from libcamera's src/ipa/rpi/{vc4,pisp}/data/imx477.json.
    vc4 = imx477_alsc("vc4")
    assert vc4.luminance_lut.shape == (12, 16) and vc4.luminance_strength == 0.5
    assert vc4.luminance_lut.ravel()[:3].tolist() == [1.548, 1.499, 1.387]
    assert vc4.luminance_lut.ravel()[-3:].tolist() == [1.427, 1.559, 1.611]
    assert vc4.cr_temperatures_k.tolist() == [2960, 4850, 5930]
    assert vc4.cb_temperatures_k.tolist() == [2960, 4850, 5930]
    assert vc4.cr_tables.shape == (3, 12, 16)
    assert [t.ravel()[0] for t in vc4.cr_tables] == [2.088, 2.973, 3.312]
    assert [t.ravel()[-1] for t in vc4.cb_tables] == [2.148, 1.472, 1.455]
    pisp = imx477_alsc("pisp")
    assert pisp.luminance_lut.shape == (32, 32) and pisp.luminance_strength == 0.8
    assert pisp.cr_temperatures_k.tolist() == [3000, 5000]
    assert pisp.cr_tables[1].ravel()[:2].tolist() == [3.869, 3.852]
    assert pisp.cb_tables[0].ravel()[-1] == 2.659
    assert vc4.ct_curve[0].tolist() == [2360.0, 0.6009, 0.3093]


@pytest.mark.parametrize("platform", PLATFORMS)
def test_data_files_carry_the_copyright_and_licence(platform: str) -> None:
    data = json.loads((DATA_DIR / f"imx477_{platform}.json").read_text())
    assert "Raspberry Pi Ltd" in data["_copyright"]
    assert data["_license"] == "BSD-2-Clause"
    assert any("Redistributions of source code" in line for line in data["_license_text"])


def test_gains_follow_alsc_cpp() -> None:
    tuning = imx477_alsc("vc4")
    gains = tuning.rgb_gains(3905.0)  # halfway between the 2960 K and 4850 K calibrations
    cr = (tuning.cr_tables[0] + tuning.cr_tables[1]) / 2
    luminance = (tuning.luminance_lut - 1) * 0.5 + 1
    np.testing.assert_allclose(gains[0], cr / cr.min() * luminance)
    np.testing.assert_allclose(gains[1], luminance)
    # Beyond the calibrations the end tables hold.
    cb = tuning.cb_tables[-1]
    np.testing.assert_allclose(tuning.rgb_gains(9000.0)[2], cb / cb.min() * luminance)


@pytest.mark.parametrize("platform", PLATFORMS)
def test_colour_temperature_is_read_off_the_ct_curve(platform: str) -> None:
    tuning = imx477_alsc(platform)
    for ct, r, b in tuning.ct_curve[1:-1]:
        neutral = np.array([r, 1.0, b]) * 0.7  # scale does not matter, only R/G and B/G
        assert tuning.colour_temperature_k(neutral) == pytest.approx(ct, abs=5)
    with pytest.raises(InvalidParameterError, match="neutral"):
        tuning.colour_temperature_k((0.5, 0.0, 0.5))


def test_unknown_platform_is_refused() -> None:
    with pytest.raises(InvalidParameterError, match="platform='pi3'"):
        imx477_alsc("pi3")  # type: ignore[arg-type]


def _shaded_grey(pattern: CfaPattern, neutral: np.ndarray, platform: str, shape=(120, 160)):
    """A flat grey seen through the tuning's own shading: the inverse of its gains,
    interpolated per pixel from the cell centres (an independent path from the stage's)."""
    tuning = imx477_alsc(platform)
    cells = tuning.rgb_gains(tuning.colour_temperature_k(neutral))
    rows, cols = cells.shape[1:]
    h, w = shape
    v = (np.arange(h) + 0.5) / h * rows - 0.5
    u = (np.arange(w) + 0.5) / w * cols - 0.5
    per_pixel = np.empty((3, h, w))
    for c in range(3):
        along_x = np.array([np.interp(u, np.arange(cols), row) for row in cells[c]])
        per_pixel[c] = np.array([np.interp(v, np.arange(rows), col) for col in along_x.T]).T
    # The white balance holds at the frame centre (colour_shading.shading_map).
    centre = per_pixel[:, (h - 1) // 2 : h // 2 + 1, (w - 1) // 2 : w // 2 + 1].mean(axis=(1, 2))
    per_pixel *= (centre[1] / centre)[:, None, None]
    camera = 0.4 * neutral[None, None, :] / np.moveaxis(per_pixel, 0, -1)
    return camera


@pytest.mark.parametrize("platform", PLATFORMS)
@pytest.mark.parametrize("pattern", ALL_PATTERNS)
def test_flat_grey_shaded_by_the_tuning_comes_back_flat(pattern: str, platform: str) -> None:
    pattern = CfaPattern.parse(pattern)
    for neutral in (np.array([0.52, 1.0, 0.42]), np.array([0.31, 1.0, 0.71])):  # ~2900 K, ~5900 K
        camera = _shaded_grey(pattern, neutral, platform)
        frame = mosaic_frame(camera, pattern, black=0.0, white=65535.0,
                             neutral=tuple(neutral), model="imx477")  # fmt: skip
        cfa = frame.cfa.astype(np.float32) / 65535.0
        before = _site_departures(cfa, pattern, neutral)
        corrected = colour_shading.apply(cfa, frame.metadata, neutral, platform)
        after = _site_departures(corrected, pattern, neutral)
        assert before.max() > 0.15  # the corners were 20-35 % darker, and tinted
        assert np.percentile(after, 99.5) < 0.01, (neutral, np.percentile(after, 99.5))
        # The PiSP's vertices sit at cell corners, each the mean of four cell centres (as
        # the Pi's resampleTable does), which smooths the tables' noisiest edge cells.
        assert after.max() < 0.015, (neutral, after.max())


def _site_departures(cfa: np.ndarray, pattern: CfaPattern, neutral: np.ndarray) -> np.ndarray:
    """Each white-balanced site's relative departure from the mean grey."""
    channels = pattern.channels[np.arange(cfa.shape[0])[:, None] % 2,
                                np.arange(cfa.shape[1])[None, :] % 2]  # fmt: skip
    balanced = cfa / neutral[channels]
    return np.abs(balanced / balanced.mean() - 1)


def test_another_sensors_frame_is_unchanged() -> None:
    rng = np.random.default_rng(3)
    camera = 0.3 + rng.normal(0, 0.002, (64, 96, 3))
    for model in ("imx296", "", "arducam-pivariety"):
        frame = mosaic_frame(camera, "GRBG", model=model)
        cfa = frame.cfa.astype(np.float32) / 4095
        out = np.empty_like(cfa)
        assert colour_shading.apply(cfa.copy(), frame.metadata, (0.5, 1, 0.6), out=out) is out
        np.testing.assert_array_equal(out, cfa)
        timer = StageTimer()
        develop(frame, DevelopParams(look="neutral"), timer=timer)
        assert "colour shading" not in timer.seconds


def test_a_lens_profiles_flat_field_takes_precedence() -> None:
    camera = np.full((48, 64, 3), 0.3)
    frame = mosaic_frame(camera, "BGGR", model="imx477")
    profile = LensShadingMap(gains=np.full((4, 3, 3), 1.25, dtype=np.float32))
    profiled = replace(frame, metadata=replace(frame.metadata, lens_shading=profile))
    assert colour_shading.applies_to(frame.metadata)
    assert not colour_shading.applies_to(profiled.metadata)
    cfa = frame.cfa.astype(np.float32)
    np.testing.assert_array_equal(colour_shading.apply(cfa.copy(), profiled.metadata, (1, 1, 1)), cfa)
    with_profile, without = StageTimer(), StageTimer()
    develop(profiled, DevelopParams(look="neutral"), timer=with_profile)
    develop(frame, DevelopParams(look="neutral"), timer=without)
    assert "lens shading" in with_profile.seconds and "colour shading" not in with_profile.seconds
    assert "colour shading" in without.seconds


def test_develop_neutralises_the_hq_lens_colour_shading() -> None:
    neutral = np.array([0.35, 1.0, 0.68])  # the tuning's 4660 K point
    camera = _shaded_grey(CfaPattern.BGGR, neutral, "vc4", shape=(96, 128))
    frame = mosaic_frame(camera, "BGGR", neutral=tuple(neutral), model="imx477")
    rgb = develop(frame, DevelopParams(look="neutral"))
    corners = [rgb[:8, :8], rgb[:8, -8:], rgb[-8:, :8], rgb[-8:, -8:]]
    for corner in corners:
        mean = corner.reshape(-1, 3).mean(axis=0)
        assert np.ptp(mean) < 0.01, mean  # grey, not tinted
    plain = develop(replace(frame, metadata=replace(frame.metadata, model="other")),
                    DevelopParams(look="neutral"))  # fmt: skip
    assert np.ptp(plain[:8, -8:].reshape(-1, 3).mean(axis=0)) > np.ptp(
        rgb[:8, -8:].reshape(-1, 3).mean(axis=0))


def test_the_metadata_model_names_the_sensor() -> None:
    meta = CameraMetadata(CfaPattern.BGGR, (256.0,) * 4, 4095.0, model=" IMX477 ")
    assert colour_shading.is_imx477(meta)
    assert not colour_shading.is_imx477(replace(meta, model="imx296"))


def test_real_pidng_files_are_not_taken_for_an_imx477(raw_data) -> None:
    # image1 is an Arducam Pivariety; PiDNG writes "PiDNG / PiCamera2" as every camera's
    # Model, so nothing in the file names the sensor and the Pi's HQ tables stay off.
    from pipeline.formats.raw_files import read_raw

    frame = read_raw(raw_data / "pi_arducam_pivariety_1920x1200" / "image1.dng")
    assert not colour_shading.applies_to(frame.metadata)
