"""Flat-field calibration on the simulator's vignetting."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from hardware.imx477_simulator import Imx477Simulator, SensorSettings
from pipeline.colour.metrics import srgb_encode
from pipeline.errors import InvalidParameterError
from pipeline.stages import lens_shading
from pipeline.stages.black_level import normalize
from pipeline.stages.flat_field import FlatFieldError, lens_shading_from_flat


def _flat_frames(count: int, seed: int):
    white = np.full((8, 8, 3), 255, dtype=np.uint8)
    camera = Imx477Simulator(white, seed=seed, output_size=(384, 512), hot_pixel_count=0)
    settings = SensorSettings(exposure_time_us=camera.exposure_time_us_for(2.0))
    frames = [camera.capture(settings) for _ in range(count)]
    # Drop the simulator's exact (oracle) table: calibration must find it from the data.
    return [
        dataclasses.replace(f, metadata=dataclasses.replace(f.metadata, lens_shading=None))
        for f in frames
    ]


def _site_means(cfa: np.ndarray, block: int = 32) -> np.ndarray:
    h, w = cfa.shape
    out = []
    for dy in range(2):
        for dx in range(2):
            plane = cfa[dy::2, dx::2]
            ph, pw = plane.shape[0] // block, plane.shape[1] // block
            out.append(plane[: ph * block, : pw * block].reshape(ph, block, pw, block).mean(axis=(1, 3)))
    return np.array(out)


def test_flat_field_is_flat_within_two_percent_after_correction() -> None:
    calibration = _flat_frames(3, seed=1)
    table = lens_shading_from_flat(calibration, grid_size=(12, 16))
    test = _flat_frames(1, seed=2)[0]
    meta = test.metadata
    cfa = normalize(test.cfa, meta.black_level, meta.white_level)
    before = _site_means(cfa)
    corrected = _site_means(lens_shading.apply(cfa, table))
    assert np.max(before.max(axis=(1, 2)) / before.min(axis=(1, 2))) > 1.3  # real vignetting
    ratio = corrected / corrected.mean(axis=(1, 2), keepdims=True)
    # The simulated lens shades as the IMX477 tuning's tables, bilinear between measured
    # cells, which a smooth fit alone follows to about 1 % RMS (2.1 % at worst): the
    # table keeps what the blocks depart from it by.
    assert np.abs(ratio - 1).max() < 0.012


def test_gains_are_one_at_the_centre_and_grow_to_the_corners() -> None:
    table = lens_shading_from_flat(_flat_frames(2, seed=3), grid_size=(9, 11))
    centre = table.gains[:, 4, 5]
    np.testing.assert_allclose(centre, 1.0, atol=0.02)
    assert np.all(table.gains[:, 0, 0] > 1.3)


def test_bad_flat_fields_are_rejected() -> None:
    with pytest.raises(InvalidParameterError, match="empty"):
        lens_shading_from_flat([])
    black = Imx477Simulator(np.zeros((8, 8, 3), np.uint8), seed=0, output_size=(256, 384))
    dark = black.capture(SensorSettings(exposure_time_us=1000))
    with pytest.raises(InvalidParameterError, match="too dark or clipped"):
        lens_shading_from_flat([dark])


def _frame_of(scene: np.ndarray, scene_value: float, **sim):
    camera = Imx477Simulator(scene, seed=5, output_size=(384, 512), hot_pixel_count=0, **sim)
    return camera.capture(SensorSettings(exposure_time_us=camera.exposure_time_us_for(scene_value)))


def test_a_scene_is_not_a_flat_field() -> None:
    # Mid-grey texture exposed so that nothing clips or drops to black: only its
    # departure from a smooth falloff gives it away.
    texture = np.random.default_rng(0).normal(128, 60, size=(24, 32, 3)).clip(0, 255)
    with pytest.raises(FlatFieldError, match=r"departs from a smooth falloff by \d+(\.\d)?% RMS"):
        lens_shading_from_flat([_frame_of(texture.astype(np.uint8), 0.6)])


def test_a_half_dark_frame_is_not_a_flat_field() -> None:
    half = np.full((8, 8, 3), 255, dtype=np.uint8)
    half[:, :4] = 0
    with pytest.raises(FlatFieldError, match=r"4\d% of the frame is too dark or clipped"):
        lens_shading_from_flat([_frame_of(half, 2.0)])


def _falloff_scene(corner_gain: float, size=(384, 512)) -> np.ndarray:
    """A white surface lit to fall off as 1 / (1 + a r^2), ``corner_gain`` = 1 + a at the
    corners (r = 1): sRGB-encoded floats."""
    ys = np.arange(size[0]) + 0.5 - size[0] / 2
    xs = np.arange(size[1]) + 0.5 - size[1] / 2
    r2 = (ys[:, None] ** 2 + xs[None, :] ** 2) / ((size[0] / 2) ** 2 + (size[1] / 2) ** 2)
    linear = 1.0 / (1.0 + (corner_gain - 1.0) * r2)
    return np.repeat(srgb_encode(linear)[..., None], 3, axis=2).astype(np.float32)


def test_falloff_beyond_what_a_lens_does_is_refused() -> None:
    # Falloff as of a lens (the simulated lens's own shading off): 4.5x at the corners
    # still calibrates (under 8x, 3 EV), to its true corner gain ...
    table = lens_shading_from_flat([_frame_of(_falloff_scene(4.5), 1.05, vignetting_strength=0)])
    assert table.gains.max() == pytest.approx(4.5, rel=0.02)
    # ... 9x needs more than 3 EV at the corners: uneven light, not a lens.
    with pytest.raises(FlatFieldError, match=r"gains of 1.0\d to 8.\d\d"):
        lens_shading_from_flat([_frame_of(_falloff_scene(9.0), 1.05, vignetting_strength=0)])


def test_calibrate_flat_refuses_a_real_scene_naming_its_file(raw_data, tmp_path, capsys) -> None:
    from firmware.cli import main

    scene = raw_data / "pi_arducam_pivariety_1920x1200" / "image1.dng"
    argv = ["calibrate", "flat", str(scene), "--lens", "Raspberry Pi 6mm f/1.2 wide angle",
            "--lens-dir", str(tmp_path)]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "image1.dng: not a flat field" in err, err
    assert not list(tmp_path.glob("*.npz"))


def test_calibrate_flat_refuses_a_synthetic_scene_among_flats(tmp_path, capsys) -> None:
    from firmware.cli import main
    from pipeline.formats.encoders.dng import encode_dng

    white = np.full((8, 8, 3), 255, dtype=np.uint8)
    texture = np.random.default_rng(1).normal(128, 60, size=(24, 32, 3)).clip(0, 255)
    paths = [tmp_path / "flat.dng", tmp_path / "scene.dng"]
    paths[0].write_bytes(encode_dng(_frame_of(white, 2.0)))
    paths[1].write_bytes(encode_dng(_frame_of(texture.astype(np.uint8), 0.6)))
    argv = ["calibrate", "flat", *map(str, paths), "--lens", "Raspberry Pi 6mm f/1.2 wide angle",
            "--lens-dir", str(tmp_path)]
    assert main(argv) == 1
    assert "scene.dng: not a flat field" in capsys.readouterr().err
    assert not list(tmp_path.glob("*.npz"))
