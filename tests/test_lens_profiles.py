"""Lens profiles: built-ins, user lenses, calibrations, and what reaches EXIF and DNG."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from firmware.lens_profiles import IMX477_CROP_FACTOR, LensError, LensLibrary, LensProfile, with_lens
from pipeline.cfa import CfaPattern
from pipeline.formats.dng_reader import read_dng
from pipeline.formats.encoders.dng import encode_dng
from pipeline.formats.encoders.exif import (
    EXIF_IFD,
    F_NUMBER,
    FOCAL_LENGTH,
    FOCAL_LENGTH_35MM,
    LENS_MODEL,
)
from pipeline.formats.encoders.jpeg import encode_jpeg
from pipeline.raw_frame import CameraMetadata, LensShadingMap, RawFrame

META = CameraMetadata(CfaPattern.BGGR, (256.0,) * 4, 4095.0, make="Raspberry Pi", model="imx477")


def test_crop_factor_of_the_hq_sensor() -> None:
    assert IMX477_CROP_FACTOR == pytest.approx(5.51, abs=0.01)
    assert LensProfile("x", 16.0, 1.4).focal_length_35mm == pytest.approx(88.1, abs=0.2)


def test_user_lenses_persist_and_override_builtins(tmp_path) -> None:
    library = LensLibrary(tmp_path)
    assert "Raspberry Pi 16mm f/1.4 telephoto" in library.lenses()
    summicron = LensProfile('Summicron-M 35mm "v4"', 35.0, 2.0, "M")
    library.add(summicron)
    library.add(LensProfile("Fujinon 12.5mm", 12.5, 1.4, "C"))
    reopened = LensLibrary(tmp_path)
    assert reopened.get('Summicron-M 35mm "v4"') == summicron
    assert len(reopened.lenses()) == 4


def test_shading_calibration_round_trips(tmp_path) -> None:
    library = LensLibrary(tmp_path)
    library.add(LensProfile("Fujinon 12.5mm", 12.5, 1.4, "C"))
    assert library.shading("Fujinon 12.5mm") is None
    gains = np.random.default_rng(4).uniform(1, 2, size=(4, 6, 8)).astype(np.float32)
    library.save_shading("Fujinon 12.5mm", LensShadingMap(gains))
    np.testing.assert_array_equal(library.shading("Fujinon 12.5mm").gains, gains)


def test_lens_fields_reach_jpeg_exif_and_dng(tmp_path) -> None:
    lens = LensProfile("Summicron-M 35mm", 35.0, 2.0, "M")
    meta = with_lens(META, lens, f_number=5.6)
    with Image.open(io.BytesIO(encode_jpeg(np.zeros((8, 8, 3), np.uint8), meta))) as jpeg:
        ifd = jpeg.getexif().get_ifd(EXIF_IFD)
    assert ifd[LENS_MODEL] == "Summicron-M 35mm" and float(ifd[FOCAL_LENGTH]) == 35.0
    assert float(ifd[F_NUMBER]) == 5.6 and ifd[FOCAL_LENGTH_35MM] == 193
    path = tmp_path / "lens.dng"
    path.write_bytes(encode_dng(RawFrame(np.full((16, 16), 300, np.uint16), meta)))
    read = read_dng(path).metadata
    assert (read.lens_model, read.focal_length_mm, read.f_number) == ("Summicron-M 35mm", 35.0, 5.6)
    assert read.focal_length_35mm == 193


def test_bad_profiles_and_apertures_are_errors(tmp_path) -> None:
    with pytest.raises(LensError, match="focal_length_mm=0"):
        LensProfile("x", 0.0, 2.0)
    with pytest.raises(LensError, match="mount='EF'"):
        LensProfile("x", 50.0, 1.8, "EF")
    with pytest.raises(LensError, match="f_number=1.0"):
        with_lens(META, LensProfile("x", 50.0, 1.8), f_number=1.0)
    with pytest.raises(LensError, match="unknown lens"):
        LensLibrary(tmp_path).get("Noctilux")
    (tmp_path / "lenses.toml").write_text('[lens."bad"]\nfocal_length_mm = 50\ncolour = 1\n')
    with pytest.raises(LensError, match="lenses.toml"):
        LensLibrary(tmp_path).get("bad")


@pytest.mark.parametrize(
    "entry, expected",
    [
        ("focal_length_mm = 50\nmax_f_number = 2\nfoo = 1", "lens 'bad': unknown field 'foo'"),
        ('focal_length_mm = 50\nmax_f_number = "fast"', "bad: max_f_number='fast': expected a number"),
        ("focal_length_mm = true\nmax_f_number = 2", "bad: focal_length_mm=True: expected a number"),
        ("max_f_number = 2", "lens 'bad': focal_length_mm is missing"),
        ('focal_length_mm = 50\nmax_f_number = 2\nmount = 3', "bad: mount=3: expected one of"),
    ],
)
def test_a_bad_entry_is_named_and_leaves_the_others_usable(tmp_path, entry, expected) -> None:
    index = tmp_path / "lenses.toml"
    index.write_text(f'[lens."good"]\nfocal_length_mm = 25\nmax_f_number = 1.4\n\n[lens."bad"]\n{entry}\n')
    library = LensLibrary(tmp_path)
    lenses, problems = library.load()
    assert "good" in lenses and "bad" not in lenses and list(problems) == ["bad"]
    with pytest.raises(LensError) as info:
        library.get("bad")
    assert str(info.value).startswith(f"{index}: ") and expected in str(info.value)
    assert library.get("good").focal_length_mm == 25


def test_lens_list_shows_a_broken_entry_and_the_rest(tmp_path, capsys) -> None:
    from firmware.cli import main

    (tmp_path / "lenses.toml").write_text(
        '[lens."Fujinon"]\nfocal_length_mm = 12.5\nmax_f_number = 1.4\n\n'
        '[lens."Odd"]\nfocal_length_mm = 50\nmax_f_number = "2"\n'
    )
    assert main(["lens", "list", "--lens-dir", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert any(line.startswith("Fujinon ") for line in lines)
    assert any(line.startswith("Raspberry Pi 16mm") for line in lines)
    broken = [line for line in lines if line.startswith("Odd ")]
    assert len(broken) == 1 and "BROKEN" in broken[0] and "max_f_number='2'" in broken[0]


def test_lens_add_refuses_an_existing_name_unless_replace(tmp_path, capsys) -> None:
    from firmware.cli import main

    add = ["lens", "add", "Fujinon 12.5mm", "--max-aperture", "1.4", "--lens-dir", str(tmp_path)]
    assert main([*add, "--focal-length", "12.5"]) == 0
    assert main([*add, "--focal-length", "25"]) == 1
    assert "exists; --replace replaces it" in capsys.readouterr().err
    assert LensLibrary(tmp_path).get("Fujinon 12.5mm").focal_length_mm == 12.5
    assert main([*add, "--focal-length", "25", "--replace"]) == 0
    assert LensLibrary(tmp_path).get("Fujinon 12.5mm").focal_length_mm == 25
    builtin = ["lens", "add", "Raspberry Pi 16mm f/1.4 telephoto", "--focal-length", "16",
               "--max-aperture", "1.4", "--lens-dir", str(tmp_path)]
    assert main(builtin) == 1


def test_add_keeps_a_broken_library_file_untouched(tmp_path) -> None:
    index = tmp_path / "lenses.toml"
    index.write_text('[lens."Odd"]\nfocal_length_mm = 50\nmax_f_number = "2"\n')
    with pytest.raises(LensError, match="broken entries; fix or remove them first"):
        LensLibrary(tmp_path).add(LensProfile("New", 35.0, 2.0))
    assert "Odd" in index.read_text()


def _npz(**arrays: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


@pytest.mark.parametrize(
    "corrupt",
    [
        lambda good: b"not a zip file",
        lambda good: good[:60],  # truncated
        lambda good: _npz(gains=np.ones((3, 3))),  # not (4, gh, gw)
        lambda good: _npz(gains=np.full((4, 3, 3), np.nan)),
        lambda good: _npz(other=np.ones((4, 3, 3))),
    ],
)
def test_a_corrupt_shading_table_is_refused_at_lens_set_and_named(tmp_path, corrupt) -> None:
    from firmware.lens_profiles import lens_settings

    library = LensLibrary(tmp_path)
    library.add(LensProfile("Fujinon 12.5mm", 12.5, 1.4, "C"))
    table = library.save_shading("Fujinon 12.5mm", LensShadingMap(np.ones((4, 3, 3), np.float32)))
    table.write_bytes(corrupt(table.read_bytes()))
    with pytest.raises(LensError, match=f"{table.name}"):
        library.shading("Fujinon 12.5mm")
    with pytest.raises(LensError, match=f"{table.name}"):
        lens_settings(library, "Fujinon 12.5mm", 2.0)


def test_a_corrupt_shading_table_at_shot_time_is_a_warning(tmp_path, caplog) -> None:
    from firmware.lens_profiles import lens_in_use

    library = LensLibrary(tmp_path)
    library.add(LensProfile("Fujinon 12.5mm", 12.5, 1.4, "C"))
    (tmp_path / "fujinon-12-5mm.shading.npz").write_bytes(b"PK\x03\x04 garbage")
    with caplog.at_level("WARNING"):
        lens = lens_in_use("Fujinon 12.5mm", 0.0, 0.0, tmp_path)  # never raises: the shot goes ahead
    assert lens.shading is None
    assert "fujinon-12-5mm.shading.npz" in caplog.text
    assert lens.profile is not None and lens.profile.name == "Fujinon 12.5mm"  # still in EXIF


def test_lens_and_calibrate_commands(tmp_path, capsys) -> None:
    import dataclasses

    from firmware.cli import main
    from hardware.imx477_simulator import Imx477Simulator, SensorSettings

    lens_dir = tmp_path / "lenses"
    assert main(["lens", "add", "Fujinon 12.5mm", "--focal-length", "12.5",
                 "--max-aperture", "1.4", "--lens-dir", str(lens_dir)]) == 0
    camera = Imx477Simulator(np.full((8, 8, 3), 255, np.uint8), seed=1, output_size=(256, 384))
    settings = SensorSettings(exposure_time_us=camera.exposure_time_us_for(2.0))
    paths = []
    for i in range(2):
        frame = camera.capture(settings)
        frame = dataclasses.replace(frame, metadata=dataclasses.replace(frame.metadata, lens_shading=None))
        paths.append(tmp_path / f"flat{i}.dng")
        paths[-1].write_bytes(encode_dng(frame))
    assert main(["calibrate", "flat", *map(str, paths), "--lens", "Fujinon 12.5mm",
                 "--lens-dir", str(lens_dir)]) == 0
    assert LensLibrary(lens_dir).shading("Fujinon 12.5mm") is not None
    assert main(["lens", "list", "--lens-dir", str(lens_dir)]) == 0
    out = capsys.readouterr().out
    assert "Fujinon 12.5mm" in out and "flat-field calibrated" in out
    assert main(["calibrate", "flat", str(paths[0]), "--lens", "Noctilux",
                 "--lens-dir", str(lens_dir)]) == 1


def test_default_library_is_the_one_the_daemon_uses(monkeypatch, tmp_path) -> None:
    from firmware.config import default_config
    from firmware.lens_profiles import default_library_dir

    monkeypatch.delenv("OBSCURA_LENS_DIR", raising=False)
    monkeypatch.setattr("firmware.lens_profiles.DEFAULT_CONFIG_PATHS", (tmp_path / "none.toml",))
    assert default_library_dir() == Path(default_config()["lens.library_dir"])
    monkeypatch.setenv("OBSCURA_LENS_DIR", str(tmp_path))
    assert default_library_dir() == tmp_path
