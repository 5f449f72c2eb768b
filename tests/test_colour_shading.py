"""Colour shading from the Pi's IMX477 tuning: the tables, their use, and who wins."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from pipeline.cfa import CfaPattern
from pipeline.colour.alsc_tuning import DATA_DIR, PLATFORMS, SENSORS, pi_alsc
from pipeline.develop import DevelopParams, develop
from pipeline.errors import InvalidParameterError
from pipeline.raw_frame import CameraMetadata, LensShadingMap
from pipeline.stage_timer import StageTimer
from pipeline.stages import colour_shading
from tests.conftest import ALL_PATTERNS, mosaic_frame


def test_tables_match_the_tuning_files() -> None:
    # Numbers read from libcamera's src/ipa/rpi/{vc4,pisp}/data/imx477.json.
    vc4 = pi_alsc("imx477", "vc4")
    assert vc4.luminance_lut.shape == (12, 16) and vc4.luminance_strength == 0.5
    assert vc4.luminance_lut.ravel()[:3].tolist() == [1.548, 1.499, 1.387]
    assert vc4.luminance_lut.ravel()[-3:].tolist() == [1.427, 1.559, 1.611]
    assert vc4.cr_temperatures_k.tolist() == [2960, 4850, 5930]
    assert vc4.cb_temperatures_k.tolist() == [2960, 4850, 5930]
    assert vc4.cr_tables.shape == (3, 12, 16)
    assert [t.ravel()[0] for t in vc4.cr_tables] == [2.088, 2.973, 3.312]
    assert [t.ravel()[-1] for t in vc4.cb_tables] == [2.148, 1.472, 1.455]
    pisp = pi_alsc("imx477", "pisp")
    assert pisp.luminance_lut.shape == (32, 32) and pisp.luminance_strength == 0.8
    assert pisp.cr_temperatures_k.tolist() == [3000, 5000]
    assert pisp.cr_tables[1].ravel()[:2].tolist() == [3.869, 3.852]
    assert pisp.cb_tables[0].ravel()[-1] == 2.659
    assert vc4.ct_curve[0].tolist() == [2360.0, 0.6009, 0.3093]
    # Another sensor's: libcamera's src/ipa/rpi/vc4/data/imx296.json.
    gs = pi_alsc("imx296")
    assert gs.luminance_lut.ravel()[:3].tolist() == [1.112, 1.098, 1.078]
    assert gs.cr_temperatures_k.tolist() == [4000, 6000]
    assert gs.cr_tables[0].ravel()[:2].tolist() == [2.726, 2.736]


def test_every_data_file_is_a_shipped_sensors_and_carries_the_copyright_and_licence() -> None:
    files = sorted(DATA_DIR.glob("*.json"))
    assert {f.stem.rsplit("_", 1)[0] for f in files} == set(SENSORS)
    assert set(colour_shading.SENSOR_ARRAYS_PX) == set(SENSORS)
    for path in files:
        data = json.loads(path.read_text())
        assert "Raspberry Pi Ltd" in data["_copyright"]
        assert data["_license"] == "BSD-2-Clause"
        assert any("Redistributions of source code" in line for line in data["_license_text"])
        sensor, platform = path.stem.rsplit("_", 1)
        pi_alsc(sensor, platform)  # loads: its tables fit its grid


def test_gains_follow_alsc_cpp() -> None:
    tuning = pi_alsc("imx477", "vc4")
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
    tuning = pi_alsc("imx477", platform)
    for ct, r, b in tuning.ct_curve[1:-1]:
        neutral = np.array([r, 1.0, b]) * 0.7  # scale does not matter, only R/G and B/G
        assert tuning.colour_temperature_k(neutral) == pytest.approx(ct, abs=5)
    with pytest.raises(InvalidParameterError, match="neutral"):
        tuning.colour_temperature_k((0.5, 0.0, 0.5))


def test_unknown_platform_or_sensor_is_refused() -> None:
    with pytest.raises(InvalidParameterError, match="platform='pi3'"):
        pi_alsc("imx477", "pi3")  # type: ignore[arg-type]
    with pytest.raises(InvalidParameterError, match="sensor='imx290'"):
        pi_alsc("imx290")
    with pytest.raises(InvalidParameterError, match="no pisp tuning ships for the imx708"):
        pi_alsc("imx708", "pisp")


def _shaded_grey(pattern: CfaPattern, neutral: np.ndarray, platform: str, shape=(120, 160)):
    """A flat grey seen through the tuning's own shading: the inverse of its gains,
    interpolated per pixel from the cell centres (an independent path from the stage's).
    ``neutral`` is the white balance for the raw after the tables, as the Pi's AWB gives it."""
    tuning = pi_alsc("imx477", platform)
    cells = tuning.rgb_gains(tuning.colour_temperature_k(neutral))
    rows, cols = cells.shape[1:]
    h, w = shape
    v = (np.arange(h) + 0.5) / h * rows - 0.5
    u = (np.arange(w) + 0.5) / w * cols - 0.5
    per_pixel = np.empty((3, h, w))
    for c in range(3):
        along_x = np.array([np.interp(u, np.arange(cols), row) for row in cells[c]])
        per_pixel[c] = np.array([np.interp(v, np.arange(rows), col) for col in along_x.T]).T
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
    for model in ("imx290", "", "arducam-pivariety"):  # no tuning of theirs ships
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
    assert colour_shading.applies_to(frame.metadata, frame.shape)
    assert not colour_shading.applies_to(profiled.metadata, frame.shape)
    cfa = frame.cfa.astype(np.float32)
    np.testing.assert_array_equal(colour_shading.apply(cfa.copy(), profiled.metadata, (1, 1, 1)), cfa)
    with_profile, without = StageTimer(), StageTimer()
    develop(profiled, DevelopParams(look="neutral"), timer=with_profile)
    develop(frame, DevelopParams(look="neutral"), timer=without)
    assert "lens shading" in with_profile.seconds and "colour shading" not in with_profile.seconds
    assert "colour shading" in without.seconds


#: sRGB (D65) to XYZ as PiDNG and rpicam-apps once wrote it, and the D50 one newer
#: rpicam-apps uses (both Lindbloom's).
SRGB_TO_XYZ_D65 = np.array([[0.4124564, 0.3575761, 0.1804375],
                            [0.2126729, 0.7151522, 0.0721750],
                            [0.0193339, 0.1191920, 0.9503041]])  # fmt: skip
SRGB_TO_XYZ_D50 = np.array([[0.4360747, 0.3850649, 0.1430804],
                            [0.2225045, 0.7168786, 0.0606169],
                            [0.0139322, 0.0971045, 0.7141733]])  # fmt: skip


def _pidng_tags(
    ccm: np.ndarray, gains: np.ndarray, srgb_to_xyz: np.ndarray = SRGB_TO_XYZ_D65
) -> dict:
    """ColorMatrix1 and AsShotNeutral as PiDNG's Picamera2Camera writes them: the matrix
    inverse(sRGB->XYZ @ CCM @ diag(gains)) and the neutral 10000 / int(gain * 10000),
    each matrix element stored as int(value * 10000) / 10000."""
    matrix = np.linalg.inv(srgb_to_xyz @ ccm @ np.diag(gains))
    return {
        "color_matrix_1": tuple((np.trunc(matrix * 10000) / 10000).ravel().tolist()),
        "as_shot_neutral": tuple((10000 / np.trunc(gains * 10000)).tolist()),
        "model": "PiDNG / PiCamera2",
    }


def _tuning_ccm(ct: float, saturation: float) -> np.ndarray:
    """The Pi's CCM for the IMX477 at ``ct`` K and ``saturation``, from libcamera's numbers
    (rpi.ccm of imx477.json; ccm.cpp's calculateCcm and applySaturation)."""
    ccms = {
        2850: [1.97469, -0.71439, -0.26031, -0.43521, 2.09769,
               -0.66248, -0.04826, -0.84642, 1.89468],
        2960: [2.12952, -0.91185, -0.21768, -0.38018, 1.90789,
               -0.52771, 0.03988, -1.10079, 2.06092],
        3580: [2.03422, -0.80048, -0.23374, -0.39089, 1.97221,
               -0.58132, -0.08969, -0.61439, 1.70408],
        4559: [2.15423, -0.98143, -0.17279, -0.38131, 2.14763,
               -0.76632, -0.10069, -0.54383, 1.64452],
        5881: [2.18464, -0.95493, -0.22971, -0.36826, 2.00298,
               -0.63471, -0.15219, -0.38055, 1.53274],
        7600: [2.30687, -0.97295, -0.33392, -0.30872, 2.32779,
               -1.01908, -0.17761, -0.55891, 1.73651],
    }  # fmt: skip
    below = max(t for t in ccms if t <= ct)
    above = min(t for t in ccms if t >= ct)
    share = 0.0 if above == below else (ct - below) / (above - below)
    ccm = (1 - share) * np.array(ccms[below]) + share * np.array(ccms[above])
    rgb2y = np.array([[0.299, 0.587, 0.114], [-0.169, -0.331, 0.500], [0.500, -0.419, -0.081]])
    y2rgb = np.array([[1.000, 0.000, 1.402], [1.000, -0.345, -0.714], [1.000, 1.771, 0.000]])
    return y2rgb @ np.diag([1, saturation, saturation]) @ rgb2y @ ccm.reshape(3, 3)


@pytest.mark.parametrize(("ct", "saturation"), [(2850, 1.0), (3100, 1.0), (4660, 1.0), (7600, 1.0),
                                                (5200, 1.3), (4000, 0.6)])  # fmt: skip
def test_a_picamera2_dng_of_the_hq_camera_is_known_by_its_colour_matrix(ct, saturation) -> None:
    # PiDNG's Model is "PiDNG / PiCamera2" whatever the sensor; its colour matrix holds
    # the CCM the Pi's tuning chose for the frame.
    gains = np.array([2.31, 1.0, 1.58])
    for srgb_to_xyz in (SRGB_TO_XYZ_D65, SRGB_TO_XYZ_D50):  # PiDNG's; newer rpicam-apps'
        tags = _pidng_tags(_tuning_ccm(ct, saturation), gains, srgb_to_xyz)
        meta = CameraMetadata(CfaPattern.BGGR, (256.0,) * 4, 4095.0, **tags)
        assert colour_shading.sensor_of(meta, (3040, 4056)) == "imx477"
        assert colour_shading.applies_to(meta, (1520, 2028))  # binned: the whole array
        assert not colour_shading.applies_to(meta, (1080, 2028))  # a crop of it


def test_other_colour_matrices_are_not_the_hq_cameras() -> None:
    gains = np.array([2.31, 1.0, 1.58])
    # The Global Shutter camera's tuning (libcamera's vc4/data/imx296.json) at 2900 K.
    imx296_ccm = np.array([1.91828, -0.59569, -0.32258, -0.51902, 2.09091, -0.57189,
                           -0.03324, -0.73462, 1.76785])  # fmt: skip
    perturbed = _tuning_ccm(4000, 1.0)
    perturbed[1, 2] += 0.02  # a manual CCM near the tuning's, off its family
    for ccm, sensor in ((np.eye(3), None), (imx296_ccm.reshape(3, 3), "imx296"),
                        (perturbed, None)):  # fmt: skip
        meta = CameraMetadata(CfaPattern.BGGR, (256.0,) * 4, 4095.0, **_pidng_tags(ccm, gains))
        assert colour_shading.sensor_of(meta, (1088, 1456)) == sensor
    # No colour matrix or no neutral: nothing to recognise.
    tags = _pidng_tags(_tuning_ccm(4000, 1.0), gains)
    for missing in ("color_matrix_1", "as_shot_neutral"):
        meta = CameraMetadata(CfaPattern.BGGR, (256.0,) * 4, 4095.0, **{**tags, missing: None})
        assert colour_shading.sensor_of(meta, (3040, 4056)) is None


@pytest.mark.parametrize("writer", ["rpicam-apps", "picamera2"])
def test_develop_neutralises_the_hq_lens_colour_shading(writer: str) -> None:
    neutral = np.array([0.35, 1.0, 0.68])  # the tuning's 4660 K point
    # Either writer's white balance is the Pi's AWB's, for the raw after the tables.
    camera = _shaded_grey(CfaPattern.BGGR, neutral, "vc4", shape=(96, 128))
    if writer == "picamera2":
        tags = _pidng_tags(_tuning_ccm(4660, 1.0), 1 / neutral)
        frame = mosaic_frame(camera, "BGGR", neutral=tags.pop("as_shot_neutral"), **tags)
    else:
        frame = mosaic_frame(camera, "BGGR", neutral=tuple(neutral), model="imx477")
    rgb = develop(frame, DevelopParams(look="neutral"))
    corners = [rgb[:8, :8], rgb[:8, -8:], rgb[-8:, :8], rgb[-8:, -8:], rgb[44:52, 60:68]]
    for corner in corners:  # and the centre
        mean = corner.reshape(-1, 3).mean(axis=0)
        assert np.ptp(mean) < 0.01, mean  # grey, not tinted
    # Unrecognised (another model; for PiDNG, a CCM just off the tuning's), the corners stay tinted.
    off_tuning = _tuning_ccm(4660, 1.0)
    off_tuning[1, 2] += 0.02
    other = {"model": "other"}
    if writer == "picamera2":
        other["color_matrix_1"] = _pidng_tags(off_tuning, 1 / neutral)["color_matrix_1"]
    plain = develop(replace(frame, metadata=replace(frame.metadata, **other)),
                    DevelopParams(look="neutral"))  # fmt: skip
    assert np.ptp(plain[:8, -8:].reshape(-1, 3).mean(axis=0)) > 0.005 > 5 * np.ptp(
        rgb[:8, -8:].reshape(-1, 3).mean(axis=0))


def test_the_metadata_model_names_the_sensor() -> None:
    meta = CameraMetadata(CfaPattern.BGGR, (256.0,) * 4, 4095.0, model=" IMX477 ")
    assert colour_shading.sensor_of(meta, (120, 160)) == "imx477"
    assert colour_shading.sensor_of(replace(meta, model="imx708_wide"), (120, 160)) == "imx708_wide"
    assert colour_shading.sensor_of(replace(meta, model="arducam-pivariety"), (120, 160)) is None


def test_real_pidng_files_are_known_by_their_colour_matrix(raw_data) -> None:
    # PiDNG writes "PiDNG / PiCamera2" as every camera's Model: the Global Shutter
    # camera's burst is known by its colour matrix (the IMX296 tuning's at 3998 K), the
    # Arducam Pivariety's (a tuning libcamera does not have) is not, and is left alone.
    from pipeline.formats.raw_files import read_raw

    gs = read_raw(raw_data / "pi_imx296_mex2025" / "burst_static_64set_first10" / "image_00.dng")
    arducam = read_raw(raw_data / "pi_arducam_pivariety_1920x1200" / "image1.dng")
    for frame in (gs, arducam):
        assert frame.metadata.model == "PiDNG / PiCamera2"
    assert colour_shading.sensor_of(gs.metadata, gs.shape) == "imx296"
    assert not colour_shading.applies_to(arducam.metadata, arducam.shape)


def _simulated_grey(colour_temperature_k: float):
    """A noiseless grey wall from the simulated HQ camera, shaded as its tuning calibrated
    the lens, and the white-balanced raw's (R/G, B/G) at the centre and the four corners
    after ``shading``."""
    from hardware.imx477_simulator import Imx477Simulator, SensorSettings

    camera = Imx477Simulator(np.full((8, 8, 3), 110, np.uint8), seed=3, output_size=(240, 320),
                             hot_pixel_count=0, adds_noise=False)  # fmt: skip
    settings = SensorSettings(camera.exposure_time_us_for(1.0),
                              colour_temperature_k=colour_temperature_k)  # fmt: skip
    return camera.capture(settings)


def _balanced_ratios(frame, shading: LensShadingMap | None) -> np.ndarray:
    from pipeline.stages import black_level, lens_shading

    meta = frame.metadata
    cfa = black_level.normalize(frame.cfa, meta.black_level, meta.white_level)
    if shading is None:
        cfa = colour_shading.apply(cfa, meta, meta.as_shot_neutral)
    else:
        cfa = lens_shading.apply(cfa, shading)
    neutral = np.asarray(meta.as_shot_neutral)
    ratios = []
    for place in (np.s_[116:124, 156:164], np.s_[:8, :8], np.s_[:8, -8:], np.s_[-8:, :8],
                  np.s_[-8:, -8:]):  # fmt: skip
        block = cfa[place]  # BGGR
        b, g, r = block[0::2, 0::2].mean(), block[0::2, 1::2].mean(), block[1::2, 1::2].mean()
        ratios.append((r / g / neutral[0], b / g / neutral[2]))
    return np.array(ratios)


@pytest.mark.parametrize("colour_temperature_k", [3000.0, 4850.0, 6500.0])
def test_the_simulators_white_balance_is_the_pis(colour_temperature_k: float) -> None:
    # Its lens shades as the tuning calibrated it and it records the Pi's white balance:
    # the tables, applied as the Pi applies them, leave a grey wall grey everywhere
    # (the tables' luminance at half strength leaves the corners dark, not tinted).
    frame = _simulated_grey(colour_temperature_k)
    without_lens_profile = replace(frame, metadata=replace(frame.metadata, lens_shading=None))
    np.testing.assert_allclose(_balanced_ratios(without_lens_profile, None), 1.0, atol=0.006)
    exact = frame.metadata.lens_shading  # the simulator's own
    np.testing.assert_allclose(_balanced_ratios(frame, exact), 1.0, atol=0.006)
    # The raw itself is not white balanced at the centre: the tables' centre gains.
    raw = _balanced_ratios(frame, LensShadingMap(np.ones((4, 2, 2), np.float32)))
    assert raw[0, 1] < 0.99


def test_a_lens_profile_takes_on_the_pis_white_balance() -> None:
    frame = _simulated_grey(4850.0)
    exact = frame.metadata.lens_shading.gains
    h, w = exact.shape[1:]
    # A flat-field calibration's table: gains 1 at the centre for every site.
    profile = LensShadingMap(exact / exact[:, (h - 1) // 2, (w - 1) // 2][:, None, None])
    off = _balanced_ratios(frame, profile)
    assert off[0, 1] == pytest.approx(1 / 1.017, abs=0.003)  # 1.7 % less blue at the centre
    scaled = colour_shading.with_pis_white_balance(profile, frame.metadata, frame.shape)
    np.testing.assert_allclose(_balanced_ratios(frame, scaled), 1.0, atol=0.006)
    # Another sensor's frame, or one with no white balance, keeps the profile as it is.
    other = replace(frame.metadata, model="other", color_matrix_1=None)
    for meta in (other, replace(frame.metadata, as_shot_neutral=None)):
        assert colour_shading.with_pis_white_balance(profile, meta, frame.shape) is profile
