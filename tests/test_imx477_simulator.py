"""Tests of the IMX477 simulator and of the picamera2 -> DNG metadata conversion."""

from __future__ import annotations

import logging
import math

import numpy as np
import pytest

from hardware.imx477_simulator import (
    IMX477_CCMS,
    Imx477Simulator,
    MovingObject,
    SensorModel,
    SensorSettings,
    awb_gains,
    colour_correction_matrix,
    render_colorchecker,
)
from hardware.picamera2_metadata import (
    IMX477_MODES,
    RGB_TO_XYZ_LINDBLOOM,
    camera_metadata_from_picamera2,
    imx477_applied_exposure,
    imx477_mode,
)
from pipeline.cfa import CfaPattern
from pipeline.colour.alsc_tuning import pi_alsc
from pipeline.colour import metrics as colour_metrics
from pipeline.errors import InvalidParameterError
from pipeline.formats.picamera2_raw import unpack_raw
from pipeline.stages import lens_shading

SIZE = (192, 256)
BLACK = 256
WHITE = 4095
FULL_SCALE = WHITE - BLACK


def _flat_scene(srgb: float, size: tuple[int, int] = SIZE) -> np.ndarray:
    return np.full((*size, 3), srgb, dtype=np.float32)


def _textured_scene(seed: int, size: tuple[int, int] = SIZE) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.random((*size, 3)) * 255).astype(np.uint8)


def _site_planes(cfa: np.ndarray) -> dict[str, np.ndarray]:
    """BGGR mosaic -> its B, G (both) and R samples."""
    return {
        "B": cfa[0::2, 0::2],
        "G": np.concatenate([cfa[0::2, 1::2], cfa[1::2, 0::2]]),
        "R": cfa[1::2, 1::2],
    }


def _blob_centroid(cfa: np.ndarray) -> tuple[float, float]:
    """Centroid (y, x) of the black-subtracted green samples."""
    weights = np.zeros(cfa.shape)
    weights[0::2, 1::2] = cfa[0::2, 1::2]
    weights[1::2, 0::2] = cfa[1::2, 0::2]
    weights = np.where(weights > BLACK + 100, weights - BLACK, 0.0)
    ys, xs = np.indices(cfa.shape)
    total = weights.sum()
    return (float((ys * weights).sum() / total), float((xs * weights).sum() / total))


def test_capture_is_deterministic_per_seed() -> None:
    scene = _textured_scene(0)
    settings = SensorSettings(exposure_time_us=8000, analogue_gain=2.0)
    a = Imx477Simulator(scene, seed=11, motion_px=6.0, motion_rotation_deg=0.2)
    b = Imx477Simulator(scene, seed=11, motion_px=6.0, motion_rotation_deg=0.2)
    c = Imx477Simulator(scene, seed=12, motion_px=6.0, motion_rotation_deg=0.2)
    for _ in range(3):
        fa, fb, fc = a.capture(settings), b.capture(settings), c.capture(settings)
        np.testing.assert_array_equal(fa.cfa, fb.cfa)
        assert not np.array_equal(fa.cfa, fc.cfa)
    assert a.poses == b.poses
    # Successive frames carry fresh noise.
    assert not np.array_equal(a.capture(settings).cfa, a.capture(settings).cfa)


def test_raw_frame_is_12_bit_bggr_with_black_256_and_white_4095() -> None:
    sim = Imx477Simulator(_flat_scene(0.0), seed=1, hot_pixel_count=0)
    dark = sim.capture(SensorSettings(exposure_time_us=1000))
    assert dark.cfa.dtype == np.uint16 and dark.shape == SIZE
    assert dark.metadata.cfa_pattern is CfaPattern.BGGR
    assert dark.metadata.black_level == (256.0, 256.0, 256.0, 256.0)
    assert dark.metadata.white_level == 4095.0
    # Read noise straddles the black level.
    assert abs(float(dark.cfa.mean()) - BLACK) < 0.1
    assert dark.cfa.min() < BLACK < dark.cfa.max()

    bright = Imx477Simulator(_flat_scene(1.0), seed=1, hot_pixel_count=0, vignetting_strength=0.0)
    exposure = 4 * bright.exposure_time_us_for(1.0)
    clipped = bright.capture(SensorSettings(exposure_time_us=exposure, analogue_gain=2.0))
    assert np.all(clipped.cfa == WHITE)
    # At unity gain the full well (8180 e-) and the ADC clip together: a full well reads
    # 4100.6 DN before clipping, so read noise leaves almost every pixel at 4095.
    clipped = bright.capture(SensorSettings(exposure_time_us=exposure, analogue_gain=1.0))
    assert clipped.cfa.max() == WHITE and np.mean(clipped.cfa == WHITE) > 0.999


@pytest.mark.parametrize("gain", [1.0, 4.0, 16.0])
def test_flat_field_noise_matches_noise_profile(gain: float) -> None:
    grey = 0.5
    sim = Imx477Simulator(_flat_scene(grey), seed=3, hot_pixel_count=0, vignetting_strength=0.0)
    linear = float(colour_metrics.srgb_decode(grey))
    exposure = 0.3 * sim.exposure_time_us_for(linear, analogue_gain=gain)
    frame = sim.capture(SensorSettings(exposure_time_us=exposure, analogue_gain=gain))
    scale, offset = frame.metadata.noise_profile[1]
    for name, plane in _site_planes(frame.cfa.astype(np.float64)).items():
        x = (plane.mean() - BLACK) / FULL_SCALE
        measured = plane.var() / FULL_SCALE**2
        assert measured == pytest.approx(scale * x + offset, rel=0.06), name


def test_noise_grows_with_gain_at_fixed_exposure() -> None:
    variances = []
    for gain in (1.0, 2.0, 4.0, 8.0, 16.0):
        sim = Imx477Simulator(_flat_scene(0.2), seed=4, hot_pixel_count=0, vignetting_strength=0.0)
        frame = sim.capture(SensorSettings(exposure_time_us=500, analogue_gain=gain))
        variances.append(float(_site_planes(frame.cfa.astype(np.float64))["G"].var()))
    assert all(b > 1.5 * a for a, b in zip(variances, variances[1:]))


def test_sensor_model_read_noise_reproduces_hogan_measurements() -> None:
    model = SensorModel()
    assert model.read_noise_dn(1.0) == pytest.approx(1.53, abs=0.01)
    assert model.read_noise_dn(16.0) == pytest.approx(11.50, abs=0.05)
    scale, _ = model.noise_profile(1.0)
    assert scale * FULL_SCALE == pytest.approx(0.47)


@pytest.mark.parametrize("temperature_k", [2500.0, 2960.0, 4000.0, 5000.0, 6500.0, 9000.0])
def test_colour_gains_neutralise_a_grey_patch(temperature_k: float) -> None:
    sim = Imx477Simulator(_flat_scene(0.6), seed=5, hot_pixel_count=0, vignetting_strength=0.0)
    frame = sim.capture(SensorSettings(exposure_time_us=6000, colour_temperature_k=temperature_k))
    planes = _site_planes(frame.cfa.astype(np.float64))
    neutral = np.array(frame.metadata.as_shot_neutral)
    balanced = np.array([planes[c].mean() - BLACK for c in "RGB"]) / neutral
    np.testing.assert_allclose(balanced / balanced[1], 1.0, atol=0.01)


def test_metadata_colour_model_inverts_the_sensor_response() -> None:
    # Camera RGB means of each ColorChecker patch, white balanced with AsShotNeutral and
    # taken to XYZ with inv(ColorMatrix1), land on the reference colours (D65 -> D50 Bradford).
    chart = render_colorchecker(patch_size_px=24, border_px=8)
    sim = Imx477Simulator(chart.image_srgb, seed=6, hot_pixel_count=0, vignetting_strength=0.0)
    frame = sim.capture(
        SensorSettings(exposure_time_us=sim.exposure_time_us_for(1.0), colour_temperature_k=4200)
    )
    md = frame.metadata
    camera_to_xyz = np.linalg.inv(np.array(md.color_matrix_1).reshape(3, 3))
    cfa = frame.cfa.astype(np.float64) - BLACK
    camera = []
    for cy, cx in chart.patch_centres_yx:
        planes = _site_planes(cfa[cy - 8 : cy + 8, cx - 8 : cx + 8])
        camera.append([planes[c].mean() / FULL_SCALE for c in "RGB"])
    xyz = np.array(camera) @ camera_to_xyz.T
    linear = xyz @ np.linalg.inv(RGB_TO_XYZ_LINDBLOOM).T
    delta_e = colour_metrics.delta_e_ciede2000(
        colour_metrics.linear_srgb_to_lab_d50(linear), colour_metrics.COLORCHECKER_LAB_D50
    )
    assert float(delta_e.mean()) < 0.5 and float(delta_e.max()) < 1.5


def test_the_lens_shades_as_the_tuning_calibrated_it() -> None:
    sim = Imx477Simulator(_flat_scene(0.7), seed=7, hot_pixel_count=0, adds_noise=False)
    settings = SensorSettings(exposure_time_us=0.5 * sim.exposure_time_us_for(0.45),
                              colour_temperature_k=4850.0)  # a calibration of the tuning's
    frame = sim.capture(settings)
    cfa = frame.cfa.astype(np.float64) - BLACK
    h, w = SIZE
    centre = _site_planes(cfa[h // 2 - 2 : h // 2 + 2, w // 2 - 2 : w // 2 + 2])
    corner = _site_planes(cfa[-2:, -2:])
    ratios = {c: corner[c].mean() / centre[c].mean() for c in "RGB"}
    # The tuning's tables at 4850 K with the whole luminance table: the frame's corner
    # pixel sees the corner cell's gain (the Pi's grid holds the outer cell centres'),
    # its centre pixel the mean of the four middle cells'.
    tuning = pi_alsc("imx477", "vc4")
    luminance = tuning.luminance_lut
    tables = {"R": tuning.cr_tables[1] * luminance, "G": luminance,
              "B": tuning.cb_tables[1] * luminance}  # fmt: skip
    assert luminance[-1, -1] == 1.611  # libcamera's vc4/data/imx477.json
    for c, table in tables.items():
        expected = table[5:7, 7:9].mean() / table[-1, -1]
        assert ratios[c] == pytest.approx(expected, rel=0.01), c
    assert ratios["G"] < 0.65
    # The metadata's lens shading map undoes it exactly, colour included.
    corrected = lens_shading.apply(cfa.astype(np.float32), frame.metadata.lens_shading)
    planes = _site_planes(corrected)
    for c in "RGB":
        assert np.ptp(planes[c]) < 0.01 * planes[c].mean() + 2, c
    flat = Imx477Simulator(_flat_scene(0.7), seed=7, vignetting_strength=0.0)
    assert flat.lens_shading_map() is None


def test_hot_pixels_are_bright_and_stay_put() -> None:
    sim = Imx477Simulator(_flat_scene(0.3), seed=8, hot_pixel_count=5)
    settings = SensorSettings(exposure_time_us=10000)
    first, second = sim.capture(settings), sim.capture(settings)
    hot = sim.hot_pixels
    assert hot.shape == (5, 2)
    for frame in (first, second):
        padded = np.pad(frame.cfa.astype(np.int64), 2, mode="reflect")
        for y, x in hot:
            # Same-colour neighbours are 2 pixels away.
            neighbours = [
                padded[y + 2 + dy, x + 2 + dx] for dy in (-2, 0, 2) for dx in (-2, 0, 2) if dy or dx
            ]
            assert frame.cfa[y, x] > np.median(neighbours) + 200
    np.testing.assert_array_equal(hot, sim.hot_pixels)
    assert Imx477Simulator(_flat_scene(0.3), seed=8, hot_pixel_count=0).hot_pixels.shape == (0, 2)


def _blob_scene(centres: list[tuple[int, int]], size: tuple[int, int] = SIZE) -> np.ndarray:
    scene = np.zeros((*size, 3), dtype=np.float32)
    for y, x in centres:
        scene[y - 6 : y + 6, x - 6 : x + 6] = 0.8
    return scene


def test_motion_shifts_content_by_the_random_walk_offset() -> None:
    sim = Imx477Simulator(
        _blob_scene([(96, 128)]), seed=9, motion_px=12.0, hot_pixel_count=0, vignetting_strength=0.0
    )
    settings = SensorSettings(exposure_time_us=sim.exposure_time_us_for(1.0))
    frames = [sim.capture(settings) for _ in range(6)]
    poses = sim.poses
    assert poses[0].dx_px == poses[0].dy_px == poses[0].rotation_deg == 0.0
    assert all(math.hypot(p.dx_px, p.dy_px) <= 12.0 + 1e-9 for p in poses)
    assert len({(p.dx_px, p.dy_px) for p in poses}) == 6
    y0, x0 = _blob_centroid(frames[0].cfa)
    for frame, pose in zip(frames[1:], poses[1:]):
        y, x = _blob_centroid(frame.cfa)
        assert y - y0 == pytest.approx(pose.dy_px, abs=0.3)
        assert x - x0 == pytest.approx(pose.dx_px, abs=0.3)


def test_rotation_turns_content_about_the_centre() -> None:
    sim = Imx477Simulator(
        _blob_scene([(96, 64), (96, 192)]), seed=10, motion_px=0.5, motion_rotation_deg=4.0,
        hot_pixel_count=0, vignetting_strength=0.0,
    )  # fmt: skip
    settings = SensorSettings(exposure_time_us=sim.exposure_time_us_for(1.0))
    frames = [sim.capture(settings) for _ in range(6)]
    assert all(abs(p.rotation_deg) <= 4.0 for p in sim.poses)
    turned = max(range(6), key=lambda i: abs(sim.poses[i].rotation_deg))
    frame, pose = frames[turned], sim.poses[turned]
    assert abs(pose.rotation_deg) > 0.5
    left = _blob_centroid(frame.cfa[:, :128])
    right = _blob_centroid(frame.cfa[:, 128:])
    angle = math.degrees(math.atan2(right[0] - left[0], right[1] + 128 - left[1]))
    assert angle == pytest.approx(pose.rotation_deg, abs=0.15)


def test_moving_object_moves_across_frames() -> None:
    obj = MovingObject(
        top_left_yx=(80.0, 40.0),
        size_yx=(16.0, 16.0),
        velocity_yx_px_per_frame=(0.0, 12.0),
        colour_srgb=(0.9, 0.9, 0.9),
    )
    sim = Imx477Simulator(
        _flat_scene(0.0), seed=11, moving_object=obj, hot_pixel_count=0, vignetting_strength=0.0
    )
    settings = SensorSettings(exposure_time_us=sim.exposure_time_us_for(1.0))
    centroids = [_blob_centroid(sim.capture(settings).cfa) for _ in range(3)]
    for i, (y, x) in enumerate(centroids):
        assert y == pytest.approx(88.0 - 0.5, abs=0.5)
        assert x == pytest.approx(48.0 - 0.5 + 12.0 * i, abs=0.5)


@pytest.mark.parametrize("format_name", ["SBGGR12_CSI2P", "SBGGR12"])
def test_picamera2_buffer_unpacks_to_the_same_mosaic(format_name: str) -> None:
    scene = _textured_scene(12)
    settings = SensorSettings(exposure_time_us=5000, analogue_gain=2.0)
    expected = Imx477Simulator(scene, seed=13).capture(settings).cfa
    buffer, _ = Imx477Simulator(scene, seed=13).capture_picamera2(settings, format_name)
    assert buffer.dtype == np.uint8 and buffer.shape[0] == SIZE[0]
    unpacked = unpack_raw(buffer, format_name, SIZE[1], SIZE[0], buffer.shape[1])
    np.testing.assert_array_equal(unpacked, expected)


def test_picamera2_metadata_has_libcamera_names_and_units() -> None:
    sim = Imx477Simulator(
        _flat_scene(float(colour_metrics.srgb_encode(0.18))),
        seed=14,
        vignetting_strength=0.0,
        illuminance_lux=800.0,
    )
    settings = SensorSettings(
        exposure_time_us=12345.4, analogue_gain=2.5, colour_temperature_k=5000
    )
    _, first = sim.capture_picamera2(settings)
    _, second = sim.capture_picamera2(settings)
    assert first["ExposureTime"] == 12345 and isinstance(first["ExposureTime"], int)
    assert first["AnalogueGain"] == 2.5 and first["DigitalGain"] == 1.0
    assert first["ColourGains"] == pytest.approx(awb_gains(5000))
    assert len(first["ColourCorrectionMatrix"]) == 9
    assert first["SensorBlackLevels"] == (4096, 4096, 4096, 4096)
    assert first["ColourTemperature"] == 5000
    assert first["FrameDuration"] >= first["ExposureTime"]
    assert second["SensorTimestamp"] - first["SensorTimestamp"] == first["FrameDuration"] * 1000
    assert isinstance(first["SensorTemperature"], float)
    assert first["ScalerCrop"] == (0, 0, SIZE[1], SIZE[0])
    # libcamera's lux estimate, on an 18 % grey scene, recovers the illuminance.
    assert first["Lux"] == pytest.approx(800.0, rel=0.05)


def test_ccm_interpolates_the_tuning_and_keeps_white() -> None:
    for temperature_k, matrix in IMX477_CCMS:
        ccm = colour_correction_matrix(temperature_k)
        np.testing.assert_allclose(ccm, np.reshape(matrix, (3, 3)), atol=5e-3)
        np.testing.assert_allclose(ccm.sum(axis=1), 1.0, atol=2e-3)
    between = colour_correction_matrix(0.5 * (2850.0 + 2960.0))
    np.testing.assert_allclose(
        between,
        0.5 * (colour_correction_matrix(2850.0) + colour_correction_matrix(2960.0)),
        atol=1e-12,
    )
    np.testing.assert_array_equal(
        colour_correction_matrix(2000.0), colour_correction_matrix(2850.0)
    )
    red, blue = awb_gains(6125.0)
    assert (red, blue) == pytest.approx((1 / 0.3129, 1 / 0.71))


def test_camera_metadata_follows_rpicam_apps_dng() -> None:
    sim = Imx477Simulator(_flat_scene(0.5), seed=15)
    settings = SensorSettings(exposure_time_us=20000, analogue_gain=3.0, colour_temperature_k=3500)
    md = sim.capture(settings).metadata
    red, blue = awb_gains(3500)
    assert md.make == "Raspberry Pi" and md.model == "imx477"
    assert md.as_shot_neutral == pytest.approx((1 / red, 1.0, 1 / blue))
    assert md.calibration_illuminant_1 == 21
    assert md.exposure_time_s == pytest.approx(0.02) and md.iso == 300 and md.analogue_gain == 3.0
    assert md.sensor_timestamp_ns == 1_000_000_000
    cm = np.array(md.color_matrix_1).reshape(3, 3)
    expected = np.linalg.inv(
        RGB_TO_XYZ_LINDBLOOM @ colour_correction_matrix(3500) @ np.diag([red, 1.0, blue])
    )
    np.testing.assert_allclose(cm, expected, rtol=1e-12)
    # The neutral maps to the D65 white of the sRGB matrix.
    white = np.linalg.solve(cm, np.array(md.as_shot_neutral))
    np.testing.assert_allclose(white / white[1], RGB_TO_XYZ_LINDBLOOM.sum(axis=1), atol=3e-3)
    assert len(md.noise_profile) == 3


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        (CfaPattern.RGGB, (62.5, 125.0, 187.5, 250.0)),
        (CfaPattern.BGGR, (250.0, 187.5, 125.0, 62.5)),
        (CfaPattern.GRBG, (125.0, 62.5, 250.0, 187.5)),
        (CfaPattern.GBRG, (187.5, 250.0, 62.5, 125.0)),
    ],
)
def test_black_levels_are_placed_per_cfa_site(
    pattern: CfaPattern, expected: tuple[float, ...]
) -> None:
    # SensorBlackLevels are in R, Gr, Gb, B order and 16-bit units.
    md = camera_metadata_from_picamera2(
        {"SensorBlackLevels": (1000, 2000, 3000, 4000)}, pattern, 12, "imx477"
    )
    assert md.black_level == expected


def test_missing_metadata_falls_back_to_rpicam_apps_defaults(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="hardware.picamera2_metadata"):
        md = camera_metadata_from_picamera2({}, CfaPattern.BGGR, 10, "imx219")
    assert md.black_level == (64.0, 64.0, 64.0, 64.0) and md.white_level == 1023.0
    assert md.exposure_time_s == 0.01 and md.iso == 100 and md.as_shot_neutral == (1.0, 1.0, 1.0)
    assert md.sensor_timestamp_ns is None
    assert "ColourCorrectionMatrix" in caplog.text


def test_metadata_errors_name_the_value() -> None:
    with pytest.raises(InvalidParameterError, match="bit_depth=20"):
        camera_metadata_from_picamera2({}, CfaPattern.BGGR, 20, "imx477")
    with pytest.raises(InvalidParameterError, match="ColourGains"):
        camera_metadata_from_picamera2({"ColourGains": (0.0, 1.0)}, CfaPattern.BGGR, 12, "imx477")
    with pytest.raises(InvalidParameterError, match="ColourCorrectionMatrix"):
        camera_metadata_from_picamera2(
            {"ColourCorrectionMatrix": (1.0,) * 4}, CfaPattern.BGGR, 12, "imx477"
        )


def test_invalid_settings_and_construction_are_rejected() -> None:
    with pytest.raises(InvalidParameterError, match="exposure_time_us=0"):
        SensorSettings(exposure_time_us=0)
    with pytest.raises(InvalidParameterError, match="analogue_gain=20"):
        SensorSettings(exposure_time_us=1000, analogue_gain=20)
    with pytest.raises(InvalidParameterError, match="colour_temperature_k=1500"):
        SensorSettings(exposure_time_us=1000, colour_temperature_k=1500)
    with pytest.raises(InvalidParameterError, match="output_size"):
        Imx477Simulator(_flat_scene(0.5), seed=0, output_size=(191, 256))
    with pytest.raises(InvalidParameterError, match="scene_srgb has shape"):
        Imx477Simulator(np.zeros((4, 4)), seed=0)
    with pytest.raises(InvalidParameterError, match="format_name"):
        Imx477Simulator(_flat_scene(0.5), seed=0).capture_picamera2(
            SensorSettings(1000), "SRGGB10_CSI2P"
        )


def test_output_size_resamples_the_scene() -> None:
    sim = Imx477Simulator(_textured_scene(16, (96, 128)), seed=17, output_size=SIZE)
    assert sim.capture(SensorSettings(exposure_time_us=5000)).shape == SIZE


def test_colorchecker_chart_layout() -> None:
    chart = render_colorchecker(patch_size_px=40, border_px=8)
    assert chart.image_srgb.shape == (200, 296, 3) and chart.image_srgb.dtype == np.float32
    linear = colour_metrics.srgb_decode(chart.image_srgb[tuple(chart.patch_centres_yx.T)])
    np.testing.assert_allclose(linear, colour_metrics.colorchecker_linear_srgb(), atol=1e-6)
    assert np.all(chart.image_srgb[:8] == 0.0)


# ------------------------------------------- what libcamera reports for an IMX477 exposure
def test_imx477_modes_line_times_follow_the_kernel_driver() -> None:
    full, binned, cropped, fast = IMX477_MODES
    assert full.line_time_us == pytest.approx(28.5714, abs=1e-4)  # 24000 px / 840 MHz
    assert binned.line_time_us == cropped.line_time_us == pytest.approx(15.1667, abs=1e-4)
    assert fast.bit_depth == 10 and fast.line_time_us == pytest.approx(7.9333, abs=1e-4)
    assert imx477_mode((4056, 3040), 12) is full and imx477_mode((1332, 990), 10) is fast
    assert imx477_mode((2028, 1080), 12) is cropped
    # a scaled-down stand-in of the sensor finds the same modes
    assert imx477_mode((96, 46), 12, pixel_array_size=(192, 128)) is cropped
    with pytest.raises(InvalidParameterError, match="bit_depth=8"):
        imx477_mode((4056, 3040), 8)


@pytest.mark.parametrize(
    ("asked_us", "gain", "reported_us", "reported_gain"),
    [
        (250, 1.0, 228, 1.0),            # 8 lines of 28.57 us
        (10_020, 2.0, 10_000, 2.0),      # 350 lines; gain code 512
        (50, 1.5, 114, 1024 / 683),      # at least 4 lines; gain code 341
        (20_000, 16.0, 20000, 16.0),     # 700 lines exactly; gain code 960
        (20_000, 30.0, 20000, 1024 / 46),  # the largest gain code, 978
    ],
)
def test_imx477_exposure_is_truncated_to_lines_and_gain_to_its_code(
    asked_us: float, gain: float, reported_us: int, reported_gain: float
) -> None:
    exposure, applied_gain = imx477_applied_exposure(asked_us, gain, IMX477_MODES[0].line_time_us)
    assert type(exposure) is int and exposure == reported_us
    assert applied_gain == pytest.approx(reported_gain)
