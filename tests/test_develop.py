"""The single-frame develop pipeline: invariants on synthetic frames, and real DNGs."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.develop import DevelopParams, develop
from pipeline.errors import InvalidParameterError
from tests.conftest import ALL_PATTERNS, mosaic_frame

SRGB_IDENTITY_CM = (
    # XYZ (D65) -> linear sRGB: a camera whose native space is sRGB.
    3.2404542, -1.5371385, -0.4985314,
    -0.9692660, 1.8760108, 0.0415560,
    0.0556434, -0.2040259, 1.0572252,
)


def _srgb_decode(v: np.ndarray) -> np.ndarray:
    return np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4)


@pytest.mark.parametrize("pattern", ALL_PATTERNS)
@pytest.mark.parametrize("look", ["neutral", "standard"])
def test_grey_card_stays_grey(pattern: str, look: str) -> None:
    neutral = (0.55, 1.0, 0.7)  # a warm illuminant: the camera sees grey as this
    rng = np.random.default_rng(1)
    camera = np.empty((64, 96, 3))
    camera[:] = np.array(neutral) * 0.18
    camera += rng.normal(0, 0.002, camera.shape)
    frame = mosaic_frame(camera, pattern, neutral=neutral, color_matrix_1=SRGB_IDENTITY_CM,
                         calibration_illuminant_1=21)
    rgb = develop(frame, DevelopParams(look=look))
    mean = rgb[8:-8, 8:-8].reshape(-1, 3).mean(axis=0)
    assert np.ptp(mean) < 0.01, mean


@pytest.mark.parametrize("pattern", ALL_PATTERNS)
def test_flat_field_stays_flat(pattern: str) -> None:
    camera = np.full((48, 64, 3), 0.3)
    frame = mosaic_frame(camera, pattern, color_matrix_1=SRGB_IDENTITY_CM)
    rgb = develop(frame, DevelopParams(look="neutral"))
    assert rgb.std(axis=(0, 1)).max() < 1e-3
    # Neutral look is colorimetric: 0.3 linear comes out as sRGB-encoded 0.3.
    np.testing.assert_allclose(_srgb_decode(rgb.mean(axis=(0, 1))), 0.3, atol=2e-3)


@pytest.mark.parametrize("pattern", ALL_PATTERNS)
def test_clipped_highlights_stay_neutral_not_magenta(pattern: str) -> None:
    # Daylight gains lift R and B above G; a blown area clips all three raw channels.
    neutral = (0.5, 1.0, 0.62)
    camera = np.full((48, 64, 3), 0.1) * np.array(neutral)
    camera[16:32, 16:48] = 3.0  # far beyond the sensor's white
    frame = mosaic_frame(camera, pattern, neutral=neutral, color_matrix_1=SRGB_IDENTITY_CM)
    for look in ("neutral", "standard"):
        rgb = develop(frame, DevelopParams(look=look))
        blown = rgb[20:28, 22:42].reshape(-1, 3)
        assert blown.min() > 0.9, look
        assert np.ptp(blown, axis=1).max() < 0.02, look  # R = G = B: white, not magenta


def test_standard_look_brightens_a_dim_frame_and_keeps_order() -> None:
    ramp = np.linspace(0.001, 0.05, 96)[None, :, None] * np.ones((64, 1, 3))
    frame = mosaic_frame(ramp, "RGGB", color_matrix_1=SRGB_IDENTITY_CM)
    rgb = develop(frame, DevelopParams(look="standard"))
    row = rgb[32, 8:-8, 1]
    assert rgb.mean() > 0.25  # auto exposure lifted the dim frame
    assert np.all(np.diff(row) > -0.01)  # brightness still increases along the ramp


def test_exposure_compensation_brightens() -> None:
    camera = np.full((32, 32, 3), 0.05)
    frame = mosaic_frame(camera, "GRBG", color_matrix_1=SRGB_IDENTITY_CM)
    dark = develop(frame, DevelopParams(look="neutral")).mean()
    bright = develop(frame, DevelopParams(look="neutral", exposure_compensation_ev=1.0)).mean()
    np.testing.assert_allclose(_srgb_decode(bright), 2 * _srgb_decode(dark), rtol=0.02)


def test_auto_white_balance_removes_a_cast() -> None:
    rng = np.random.default_rng(7)
    scene = rng.uniform(0.05, 0.6, size=(16, 24, 3)).repeat(4, axis=0).repeat(4, axis=1)
    cast = np.array([0.6, 1.0, 0.45])
    frame = mosaic_frame(scene * cast, "BGGR", neutral=None, color_matrix_1=SRGB_IDENTITY_CM)
    rgb = _srgb_decode(develop(frame, DevelopParams(look="neutral")))
    ratio = rgb.reshape(-1, 3).mean(axis=0) / scene.reshape(-1, 3).mean(axis=0)
    assert np.ptp(ratio / ratio[1]) < 0.12


def test_bad_parameters_name_themselves() -> None:
    with pytest.raises(InvalidParameterError, match="look='no-such-look'"):
        DevelopParams(look="no-such-look")
    with pytest.raises(InvalidParameterError, match="white_balance"):
        DevelopParams(white_balance="sunny")  # type: ignore[arg-type]
    with pytest.raises(InvalidParameterError, match="exposure_compensation_ev"):
        DevelopParams(exposure_compensation_ev=99.0)


def test_real_dngs_develop_to_plausible_images(raw_data) -> None:
    from pipeline.formats.dng_reader import read_dng

    paths = sorted(raw_data.rglob("*.dng"))
    assert len(paths) >= 6
    for path in paths[:7]:
        rgb = develop(read_dng(path), DevelopParams(look="standard"))
        assert np.isfinite(rgb).all(), path.name
        assert 0.12 < rgb.mean() < 0.8, path.name


def test_real_dng_colour_agrees_with_libraw(raw_data) -> None:
    """The average colour of whole real scenes matches LibRaw's, both with as-shot WB."""
    rawpy = pytest.importorskip("rawpy")
    from pipeline.formats.dng_reader import read_dng

    paths = [p for p in sorted(raw_data.rglob("*.dng")) if "minimal" not in str(p)][:5]
    for path in paths:
        ours = _srgb_decode(develop(read_dng(path), DevelopParams(look="neutral")))
        with rawpy.imread(str(path)) as raw:
            libraw = raw.postprocess(
                use_camera_wb=True, output_bps=16, gamma=(1, 1), no_auto_bright=True
            )
        ours_rgb = ours.reshape(-1, 3).mean(axis=0)
        libraw_rgb = libraw.reshape(-1, 3).mean(axis=0)
        np.testing.assert_allclose(
            ours_rgb / ours_rgb[1], libraw_rgb / libraw_rgb[1], atol=0.08, err_msg=path.name
        )
