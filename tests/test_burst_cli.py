"""`obscura merge` and `obscura develop` of a burst: files in, files out, one-line errors."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from PIL import Image

from firmware.cli import main
from hardware.imx477_simulator import Imx477Simulator, SensorSettings
from pipeline.cfa import CfaPattern
from pipeline.formats.dng_reader import read_dng
from pipeline.formats.encoders.dng import encode_dng
from pipeline.raw_frame import RawFrame


@pytest.fixture
def burst(tmp_path) -> list:
    """Four small handheld frames as DNGs."""
    rng = np.random.default_rng(11)
    scene = rng.uniform(0, 255, size=(32, 48, 3)).astype(np.uint8)
    scene = np.asarray(Image.fromarray(scene).resize((384, 256), Image.BICUBIC))
    camera = Imx477Simulator(scene, seed=11, motion_px=6.0)
    settings = SensorSettings(camera.exposure_time_us_for(1.0, 4.0), analogue_gain=4.0)
    paths = []
    for i in range(4):
        path = tmp_path / f"burst_{i}.dng"
        path.write_bytes(encode_dng(camera.capture(settings)))
        paths.append(path)
    return paths


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


def test_merge_writes_a_16_bit_dng_that_libraw_opens(burst, tmp_path) -> None:
    rawpy = pytest.importorskip("rawpy")
    out = tmp_path / "merged.dng"
    assert main(["merge", *map(str, burst), "-o", str(out)]) == 0
    merged = read_dng(out)
    first = read_dng(burst[0])
    assert merged.shape == first.shape and merged.metadata.white_level > 60000
    assert merged.metadata.noise_profile[0][0] < first.metadata.noise_profile[0][0]
    with rawpy.imread(str(out)) as raw:
        assert raw.raw_image.shape == first.shape
        rgb = raw.postprocess(use_camera_wb=True, output_bps=8)
    assert 20 < rgb.mean() < 235


def test_merge_writes_the_kernel_merges_full_colour_as_a_linear_raw_dng(
        burst, tmp_path, capsys) -> None:
    rawpy = pytest.importorskip("rawpy")
    import tifffile

    from pipeline.burst import align_and_merge_rgb

    mosaic, linear = tmp_path / "mosaic.dng", tmp_path / "linear.dng"
    assert main(["merge", *map(str, burst), "-o", str(mosaic)]) == 0
    assert main(["merge", *map(str, burst), "-o", str(linear), "--linear-raw"]) == 0
    with tifffile.TiffFile(linear) as tif:
        page = tif.pages[0]
        assert page.photometric == 34892 and page.shape == (256, 384, 3)
        stored = page.asarray().astype(np.float64)
        tags = {tag.code: tag.value for tag in page.tags}
    assert 50728 in tags and 50721 in tags  # AsShotNeutral, ColorMatrix1: its colour
    rgb, metadata = align_and_merge_rgb([read_dng(p) for p in burst])
    peak = max(float(rgb.max()), 1.0)
    np.testing.assert_allclose(stored / 65535 * peak, rgb, atol=peak / 65535)
    assert metadata.noise_profile[0][0] < read_dng(burst[0]).metadata.noise_profile[0][0]
    # LibRaw develops it as it develops the mosaic of the same merge: the same picture.
    renders = []
    for path in (mosaic, linear):
        with rawpy.imread(str(path)) as raw:
            renders.append(raw.postprocess(use_camera_wb=True, no_auto_bright=True,
                                           gamma=(1, 1), output_bps=16).astype(np.float64))
    from_mosaic, from_linear = (r.reshape(-1, 3) for r in renders)
    ratio = from_linear.mean(axis=0) / from_mosaic.mean(axis=0)
    assert np.allclose(ratio, ratio.mean(), rtol=0.06), ratio  # same colour balance
    assert np.corrcoef(from_linear.mean(axis=1), from_mosaic.mean(axis=1))[0, 1] > 0.95
    # Our develop reads mosaics only, and says so.
    capsys.readouterr()
    assert main(["develop", str(linear), "-o", str(tmp_path / "photo.jpg")]) == 1
    assert "LinearRaw" in _one_line_error(capsys)
    assert main(["merge", *map(str, burst), "-o", str(tmp_path / "no.dng"), "--linear-raw",
                 "--merge", "resample"]) == 1  # fmt: skip
    assert "--linear-raw needs the kernel merge" in _one_line_error(capsys)


@pytest.mark.parametrize("method", ["resample", "kernel"])
def test_merge_uses_the_merge_it_is_asked_for(burst, tmp_path, method) -> None:
    from pipeline.burst import BurstParams, align_and_merge

    out = tmp_path / "merged.dng"
    assert main(["merge", *map(str, burst), "-o", str(out), "--merge", method]) == 0
    frames = [read_dng(p) for p in burst]
    for other in ("resample", "kernel"):
        expected = align_and_merge(frames, BurstParams.for_merge(other)).cfa
        assert np.array_equal(read_dng(out).cfa, expected) == (other == method)


def test_develop_merges_a_burst_with_kernel_regression(burst, tmp_path) -> None:
    out = tmp_path / "photo.jpg"
    assert main(["develop", *map(str, burst), "-o", str(out), "--merge", "kernel"]) == 0
    with Image.open(out) as jpeg:
        assert jpeg.size == (384, 256)


def test_an_unknown_merge_is_refused(burst, tmp_path, capsys) -> None:
    from pipeline.burst import BurstParams
    from pipeline.errors import InvalidParameterError

    with pytest.raises(SystemExit):
        main(["merge", *map(str, burst), "-o", str(tmp_path / "m.dng"), "--merge", "median"])
    assert "invalid choice: 'median'" in capsys.readouterr().err
    with pytest.raises(InvalidParameterError, match="merge='median'"):
        BurstParams.for_merge("median")


@pytest.mark.parametrize("mode", [[], ["--mode", "hdr"], ["--mode", "night"]])
def test_develop_a_burst_to_jpeg(burst, tmp_path, mode) -> None:
    out = tmp_path / "photo.jpg"
    assert main(["develop", *map(str, burst), "-o", str(out), *mode]) == 0
    with Image.open(out) as jpeg:
        assert jpeg.size == (384, 256)


def test_burst_of_one_frame_is_a_one_line_error(burst, tmp_path, capsys) -> None:
    assert main(["merge", str(burst[0]), "-o", str(tmp_path / "m.dng")]) == 1
    assert "at least 2" in _one_line_error(capsys)
    assert main(["develop", str(burst[0]), "-o", str(tmp_path / "x.jpg"), "--mode", "burst"]) == 1
    assert "at least 2" in _one_line_error(capsys)


def test_frames_of_other_sizes_or_patterns_are_named(burst, tmp_path, capsys) -> None:
    frame = read_dng(burst[1])
    smaller = tmp_path / "smaller.dng"
    smaller.write_bytes(encode_dng(RawFrame(frame.cfa[:128, :192].copy(), frame.metadata)))
    assert main(["merge", str(burst[0]), str(smaller), "-o", str(tmp_path / "m.dng")]) == 1
    err = _one_line_error(capsys)
    assert "smaller.dng" in err and "192x128" in err
    rggb = tmp_path / "rggb.dng"
    meta = dataclasses.replace(frame.metadata, cfa_pattern=CfaPattern.RGGB)
    rggb.write_bytes(encode_dng(RawFrame(frame.cfa, meta)))
    assert main(["develop", str(burst[0]), str(rggb), "-o", str(tmp_path / "x.jpg")]) == 1
    err = _one_line_error(capsys)
    assert "rggb.dng" in err and "RGGB" in err


def test_corrupt_dng_in_a_burst_is_named(burst, tmp_path, capsys) -> None:
    broken = tmp_path / "broken.dng"
    broken.write_bytes(burst[2].read_bytes()[:5000])
    out = tmp_path / "m.dng"
    assert main(["merge", str(burst[0]), str(broken), "-o", str(out)]) == 1
    assert "broken.dng" in _one_line_error(capsys)
    assert not out.exists()


def test_merge_output_must_be_a_dng(burst, tmp_path, capsys) -> None:
    assert main(["merge", *map(str, burst), "-o", str(tmp_path / "m.jpg")]) == 1
    assert "m.jpg" in _one_line_error(capsys)


@pytest.mark.parametrize("link", ["same name", "symlink", "hard link"])
def test_merge_refuses_to_overwrite_one_of_its_inputs(burst, tmp_path, capsys, link) -> None:
    original = burst[0].read_bytes()
    output = {"same name": burst[0], "symlink": tmp_path / "out.dng",
              "hard link": tmp_path / "out.dng"}[link]
    if link == "symlink":
        output.symlink_to(burst[0])
    elif link == "hard link":
        output.hardlink_to(burst[0])
    assert main(["merge", *map(str, burst), "-o", str(output)]) == 1
    err = _one_line_error(capsys)
    assert f"is the input {burst[0]}" in err and output.name in err
    assert burst[0].read_bytes() == original


def test_develop_of_a_burst_refuses_an_input_as_output(burst, tmp_path, capsys) -> None:
    jpeg_named = tmp_path / "frame.jpg"
    jpeg_named.hardlink_to(burst[3])  # odd, but the same file under an image name
    assert main(["develop", *map(str, burst), str(jpeg_named), "-o", str(jpeg_named)]) == 1
    assert "writing it would destroy that raw file" in _one_line_error(capsys)


def test_merge_checks_its_output_folder_before_the_work(tmp_path, capsys) -> None:
    # The inputs do not even exist: the output is refused first, before any reading.
    missing = [str(tmp_path / "a.dng"), str(tmp_path / "b.dng")]
    assert main(["merge", *missing, "-o", str(tmp_path / "gone" / "m.dng")]) == 1
    assert "no folder" in _one_line_error(capsys)
    (tmp_path / "file").write_bytes(b"")
    assert main(["merge", *missing, "-o", str(tmp_path / "file" / "m.dng")]) == 1
    assert "no folder" in _one_line_error(capsys)
    assert main(["merge", *missing, "-o", "/proc/self/m.dng"]) == 1
    assert "cannot write in /proc/self" in _one_line_error(capsys)


def test_long_work_is_quiet_off_a_terminal(burst, tmp_path, capsys) -> None:
    assert main(["merge", *map(str, burst), "-o", str(tmp_path / "m.dng")]) == 0
    assert capsys.readouterr().err == ""
