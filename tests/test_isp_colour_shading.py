"""Colour shading recovered from an ISP's JPEG of the same raw: on a frame rendered through
a known ISP (shading, white balance, CCM, a tone curve, JPEG), and on the Pi's own JPEG."""

from __future__ import annotations

import io
from dataclasses import replace

import numpy as np
import pytest
from PIL import Image

from pipeline.colour.matrix import camera_to_srgb_matrix
from pipeline.colour.metrics import linear_srgb_to_lab_d50, srgb_decode, srgb_encode
from pipeline.develop import DevelopParams, develop
from pipeline.formats.raw_files import read_raw
from pipeline.raw_frame import RawFrame
from pipeline.stages.isp_colour_shading import IspShadingError, fit_isp_colour_shading
from tests.conftest import mosaic_frame

# A real camera's matrix (the Arducam Pivariety DNGs' ColorMatrix1, D65) and white balance.
ARDUCAM_CM = (1.5161, -0.5051, -0.1079, -0.0784, 1.0367, 0.0347, 0.0967, 0.099, 0.4973)
NEUTRAL = (0.818, 1.0, 0.733)
HEIGHT, WIDTH, PATCH_PX = 480, 640, 32


def _positions() -> tuple[np.ndarray, np.ndarray]:
    """Each pixel's distance from the centre over the half-diagonal, along y and x."""
    half_diag = np.hypot(HEIGHT / 2, WIDTH / 2)
    y = (np.arange(HEIGHT) + 0.5 - HEIGHT / 2) / half_diag
    x = (np.arange(WIDTH) + 0.5 - WIDTH / 2) / half_diag
    return np.meshgrid(y, x, indexing="ij")


def true_gains(y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """(..., 3) the made-up ISP's shading gains: a luminance falloff corrected (2x at the
    corners) times a colour shading, red and blue not 1 at the centre."""
    r2 = y * y + x * x
    luminance = 1.0 + 1.0 * r2
    red = 1.06 * (1.0 + 0.12 * r2)
    blue = 1.11 * (1.0 - 0.08 * r2 + 0.03 * r2 * r2)
    return np.stack([luminance * red, luminance, luminance * blue], axis=-1)


def isp_render(seed: int, tone_gamma: float = 1.0) -> tuple[RawFrame, np.ndarray]:
    """A raw frame of flat colour patches and its JPEG by a made-up ISP: shading gains,
    the white balance, the CCM, the sRGB curve with a contrast curve on top, JPEG at 90."""
    rng = np.random.default_rng(seed)
    patches = (HEIGHT // PATCH_PX, WIDTH // PATCH_PX)
    grey = rng.uniform(0.04, 0.5, patches)[..., None]
    # White-balanced camera RGB: greys with a slight tint, a third of them saturated colours.
    tint = np.where(rng.uniform(size=patches + (1,)) < 2 / 3, 0.06, 0.4)
    balanced = grey * (1.0 + tint * rng.uniform(-1.0, 1.0, patches + (3,)))
    balanced = np.kron(balanced, np.ones((PATCH_PX, PATCH_PX, 1)))
    gains = true_gains(*_positions())
    raw_rgb = balanced * np.asarray(NEUTRAL) / gains  # what the lens let through
    frame = mosaic_frame(raw_rgb, "GRBG", black=64.0, white=4095.0, neutral=NEUTRAL,
                         color_matrix_1=ARDUCAM_CM, calibration_illuminant_1=21)
    to_srgb = camera_to_srgb_matrix(frame.metadata, np.asarray(NEUTRAL)).astype(np.float64)
    srgb = np.clip(balanced @ to_srgb.T, 0, 1)
    encoded = srgb_encode(srgb) ** tone_gamma
    encoded = 0.5 + 0.5 * np.sin(np.pi * (encoded - 0.5)) * 0.9 + (encoded - 0.5) * 0.1  # S-curve
    buffer = io.BytesIO()
    Image.fromarray(np.round(np.clip(encoded, 0, 1) * 255).astype(np.uint8)).save(
        buffer, format="JPEG", quality=90)
    return frame, np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))


@pytest.mark.parametrize(("tone_gamma", "scale"), [(1.0, 1), (0.8, 1), (1.0, 2)])
def test_recovers_the_colour_shading_and_not_the_vignetting(tone_gamma: float, scale: int) -> None:
    frame, jpeg = isp_render(seed=1, tone_gamma=tone_gamma)
    if scale > 1:  # the ISP's output scaled down, as picamera2's main stream may be
        jpeg = np.asarray(Image.fromarray(jpeg).resize((WIDTH // scale, HEIGHT // scale),
                                                       Image.BOX))
    fit = fit_isp_colour_shading(frame, jpeg, grid_size=(7, 9))
    grid_y = (np.linspace(0, HEIGHT - 1, 7) + 0.5 - HEIGHT / 2) / np.hypot(HEIGHT / 2, WIDTH / 2)
    grid_x = (np.linspace(0, WIDTH - 1, 9) + 0.5 - WIDTH / 2) / np.hypot(HEIGHT / 2, WIDTH / 2)
    truth = true_gains(*np.meshgrid(grid_y, grid_x, indexing="ij"))
    truth = truth / truth[..., 1:2]  # chrominance only: green 1 everywhere
    channels = frame.metadata.cfa_pattern.channels.ravel()
    gains = fit.shading.gains
    for site, channel in enumerate(channels):
        np.testing.assert_allclose(gains[site], truth[..., channel], rtol=0.015)
    assert fit.centre_gains == pytest.approx((1.06, 1.11), rel=0.01)
    assert fit.residual_levels < 2.0


def test_the_table_fitted_on_one_scene_develops_another_neutral_to_the_corners() -> None:
    frame, jpeg = isp_render(seed=2)
    fit = fit_isp_colour_shading(frame, jpeg)
    # A grey wall through the same lens, with the white balance the ISP would give it.
    wall = mosaic_frame(0.3 * np.asarray(NEUTRAL) / true_gains(*_positions()), "GRBG",
                        black=64.0, white=4095.0, neutral=NEUTRAL,
                        color_matrix_1=ARDUCAM_CM, calibration_illuminant_1=21)

    def worst_cast(metadata) -> float:
        """Largest a*b* distance from neutral of the 40 px blocks of the developed wall."""
        image = develop(RawFrame(wall.cfa, metadata), DevelopParams(look="neutral"))
        blocks = image.reshape(HEIGHT // 40, 40, WIDTH // 40, 40, 3).mean(axis=(1, 3))
        lab = linear_srgb_to_lab_d50(srgb_decode(blocks))
        return float(np.hypot(lab[..., 1], lab[..., 2]).max())

    assert worst_cast(wall.metadata) > 5.0
    assert worst_cast(replace(wall.metadata, lens_shading=fit.shading)) < 1.0


def test_refuses_a_jpeg_of_another_size_or_scene_and_a_frame_without_white_balance() -> None:
    frame, jpeg = isp_render(seed=3)
    with pytest.raises(IspShadingError, match="the JPEG is 640x360 and the raw 640x480: not the"):
        fit_isp_colour_shading(frame, jpeg[60:420])  # a 16:9 crop
    _, other_scene = isp_render(seed=4)
    with pytest.raises(IspShadingError, match="is the JPEG the ISP's of this raw"):
        fit_isp_colour_shading(frame, other_scene)
    no_wb = RawFrame(frame.cfa, replace(frame.metadata, as_shot_neutral=None))
    with pytest.raises(IspShadingError, match="no white balance"):
        fit_isp_colour_shading(no_wb, jpeg)
    with pytest.raises(IspShadingError, match="flat, unclipped, near-neutral blocks"):
        fit_isp_colour_shading(frame, np.full_like(jpeg, 255))


def white_ab(rgb: np.ndarray) -> tuple[float, float]:
    """Median a*, b* of the bright flat 24 px blocks of a developed image (0-1 sRGB)."""
    n = 24
    means = []
    for y in range(0, rgb.shape[0] - n + 1, n):
        for x in range(0, rgb.shape[1] - n + 1, n):
            block = rgb[y : y + n, x : x + n]
            grey = block.mean(axis=2)
            if grey.mean() > 0.7 and grey.std() < 0.02:
                means.append(block.reshape(-1, 3).mean(axis=0))
    lab = linear_srgb_to_lab_d50(srgb_decode(np.array(means)))
    return float(np.median(lab[:, 1])), float(np.median(lab[:, 2]))


def test_fitted_on_one_pi_jpeg_it_neutralises_the_whites_of_other_scenes(raw_data) -> None:
    folder = raw_data / "pi_arducam_pivariety_1920x1200"
    jpeg = np.asarray(Image.open(folder / "cap_dng_jpg0.jpg").convert("RGB"))
    fit = fit_isp_colour_shading(read_raw(folder / "image1.dng"), jpeg)
    for name in ("image3.dng", "image4.dng"):  # not the scene it was fitted on
        frame = read_raw(folder / name)
        a0, b0 = white_ab(develop(frame, DevelopParams()))
        shaded = RawFrame(frame.cfa, replace(frame.metadata, lens_shading=fit.shading))
        a1, b1 = white_ab(develop(shaded, DevelopParams()))
        assert np.hypot(a0, b0) > 6.0  # green-yellow as shot, without the Pi's shading
        assert np.hypot(a1, b1) < 2.5, (name, a0, b0, a1, b1)


def test_calibrate_pi_jpeg_then_develop_with_the_lens(tmp_path, capsys) -> None:
    from firmware.cli import main
    from firmware.lens_profiles import LensLibrary
    from pipeline.formats.encoders.dng import encode_dng

    frame, jpeg = isp_render(seed=5)
    (tmp_path / "scene.dng").write_bytes(encode_dng(frame))
    Image.fromarray(jpeg).save(tmp_path / "scene.jpg", quality=95)
    wall = mosaic_frame(0.3 * np.asarray(NEUTRAL) / true_gains(*_positions()), "GRBG",
                        black=64.0, white=4095.0, neutral=NEUTRAL,
                        color_matrix_1=ARDUCAM_CM, calibration_illuminant_1=21)
    (tmp_path / "wall.dng").write_bytes(encode_dng(wall))
    lenses = ["--lens-dir", str(tmp_path / "lenses")]
    assert main(["lens", "add", "Arducam stock", "--focal-length", "3.6",
                 "--max-aperture", "2", *lenses]) == 0
    # A JPEG that is not the raw's is refused, and nothing is stored.
    Image.fromarray(jpeg[60:420]).save(tmp_path / "crop.jpg")
    assert main(["calibrate", "pi-jpeg", str(tmp_path / "scene.dng"), str(tmp_path / "crop.jpg"),
                 "--lens", "Arducam stock", *lenses]) == 1
    assert "nothing saved" in capsys.readouterr().err
    assert LensLibrary(tmp_path / "lenses").shading("Arducam stock") is None
    assert main(["calibrate", "pi-jpeg", str(tmp_path / "scene.dng"), str(tmp_path / "scene.jpg"),
                 "--lens", "Arducam stock", *lenses]) == 0
    assert "red x1.06" in capsys.readouterr().out
    assert main(["lens", "list", *lenses]) == 0
    assert "pi-jpeg calibrated" in capsys.readouterr().out

    def corner_to_centre_ab(path) -> tuple[float, float]:
        """a*b* distance from neutral of the JPEG's top-left corner and of its centre."""
        rgb = np.asarray(Image.open(path).convert("RGB")) / 255.0
        lab = linear_srgb_to_lab_d50(srgb_decode(np.stack(
            [rgb[:40, :40].reshape(-1, 3).mean(0), rgb[220:260, 300:340].reshape(-1, 3).mean(0)])))
        return float(np.hypot(*lab[:, 1:].T)[0]), float(np.hypot(*lab[:, 1:].T)[1])

    assert main(["develop", str(tmp_path / "wall.dng"), "-o", str(tmp_path / "plain.jpg")]) == 0
    assert main(["develop", str(tmp_path / "wall.dng"), "-o", str(tmp_path / "lens.jpg"),
                 "--lens", "Arducam stock", *lenses]) == 0
    plain = corner_to_centre_ab(tmp_path / "plain.jpg")
    corrected = corner_to_centre_ab(tmp_path / "lens.jpg")
    assert min(plain) > 3.0  # corner and centre both tinted without the table
    assert max(corrected) < 1.5, (plain, corrected)
    assert main(["batch", str(tmp_path / "wall.dng"), "-o", str(tmp_path / "batch"), "--jobs", "1",
                 "--lens", "Arducam stock", *lenses]) == 0
    assert np.array_equal(np.asarray(Image.open(tmp_path / "batch" / "wall.jpg")),
                          np.asarray(Image.open(tmp_path / "lens.jpg")))
    assert main(["develop", str(tmp_path / "wall.dng"), "-o", str(tmp_path / "x.jpg"),
                 "--lens", "Noctilux", *lenses]) == 1


def test_for_a_sensor_whose_tuning_ships_the_table_is_stored_as_a_flat_field_is(tmp_path) -> None:
    """The camera multiplies a lens table by the tuning's centre gains
    (``with_pis_white_balance``), so the calibration stores it divided by them: what a
    frame gets is the table the JPEG showed, not that twice."""
    from firmware.cli import main
    from firmware.lens_profiles import LensInUse, LensLibrary
    from pipeline.formats.encoders.dng import encode_dng

    frame, jpeg = isp_render(seed=6)
    frame = RawFrame(frame.cfa, replace(frame.metadata, model="imx477"))
    (tmp_path / "hq.dng").write_bytes(encode_dng(frame))
    Image.fromarray(jpeg).save(tmp_path / "hq.jpg", quality=95)
    lenses = ["--lens-dir", str(tmp_path)]
    assert main(["lens", "add", "M 35mm", "--focal-length", "35", "--max-aperture", "2",
                 *lenses]) == 0
    assert main(["calibrate", "pi-jpeg", str(tmp_path / "hq.dng"), str(tmp_path / "hq.jpg"),
                 "--lens", "M 35mm", *lenses]) == 0
    library = LensLibrary(tmp_path)
    stored = library.shading("M 35mm")
    read = read_raw(tmp_path / "hq.dng")
    fitted = fit_isp_colour_shading(read, np.asarray(Image.open(tmp_path / "hq.jpg"))).shading
    assert not np.allclose(stored.gains, fitted.gains, rtol=0.005)  # the tuning's centre is out
    lens = LensInUse("M 35mm", 35.0, library.get("M 35mm"), shading=stored)
    applied = lens.stamp(read.metadata, read.shape).lens_shading
    np.testing.assert_allclose(applied.gains, fitted.gains, rtol=1e-5)
