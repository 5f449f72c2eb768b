"""The `obscura` command: develop real DNGs, and fail cleanly on bad input."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import tifffile
from PIL import Image

from firmware.cli import main

IMAGE1 = "pi_arducam_pivariety_1920x1200/image1.dng"


def test_develop_real_dng_to_jpeg_with_exif(raw_data, tmp_path) -> None:
    out = tmp_path / "photo.jpg"
    assert main(["develop", str(raw_data / IMAGE1), "-o", str(out), "--quality", "90"]) == 0
    with Image.open(out) as jpeg:
        assert jpeg.format == "JPEG" and jpeg.size == (1920, 1200)
        assert jpeg.getexif()[0x010F] == "RaspberryPi"
        pixels = np.asarray(jpeg)
    assert 60 < pixels.mean() < 200


def test_develop_neutral_to_16_bit_tiff(raw_data, tmp_path) -> None:
    out = tmp_path / "photo.tif"
    source = raw_data / "pi_minimal_640x480/test.dng"
    assert main(["develop", str(source), "-o", str(out), "--look", "neutral"]) == 0
    image = tifffile.imread(out)
    assert image.dtype == np.uint16 and image.shape == (480, 640, 3)
    assert image.max() > 256  # real 16-bit values, not 8-bit ones widened


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


def test_truncated_dng_is_a_one_line_error(raw_data, tmp_path, capsys) -> None:
    broken = tmp_path / "broken.dng"
    broken.write_bytes((raw_data / IMAGE1).read_bytes()[:100_000])
    assert main(["develop", str(broken), "-o", str(tmp_path / "x.jpg")]) == 1
    assert "broken.dng" in _one_line_error(capsys)
    assert not (tmp_path / "x.jpg").exists()


@pytest.mark.parametrize(
    "args, expected",
    [
        (["develop", "{tmp}/missing.dng", "-o", "{tmp}/x.jpg"], "missing.dng"),
        (["develop", "{raw}", "-o", "{tmp}/x.png"], "x.png"),
        (["develop", "{raw}", "-o", "{tmp}/x.jpg", "--look", "sepia-dream"], "sepia-dream"),
        (["develop", "{raw}", "-o", "{tmp}/x.jpg", "--quality", "0"], "quality=0"),
        (["develop", "{raw}", "-o", "{tmp}/no-such-dir/x.jpg"], "no-such-dir"),
    ],
)
def test_bad_arguments_are_one_line_errors(raw_data, tmp_path, capsys, args, expected) -> None:
    argv = [a.format(tmp=tmp_path, raw=raw_data / IMAGE1) for a in args]
    assert main(argv) == 1
    assert expected in _one_line_error(capsys)


def test_console_script_never_prints_a_traceback(tmp_path) -> None:
    garbage = tmp_path / "garbage.dng"
    garbage.write_bytes(b"II*\x00" + bytes(range(256)) * 8)
    result = subprocess.run(
        [sys.executable, "-m", "firmware.cli", "develop", str(garbage), "-o", str(tmp_path / "o.jpg")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert result.stderr.startswith("obscura: error: ") and "garbage.dng" in result.stderr
    assert "Traceback" not in result.stderr


def test_looks_lists_every_builtin_look(capsys) -> None:
    assert main(["looks"]) == 0
    out = capsys.readouterr().out
    assert "neutral" in out and "standard" in out
