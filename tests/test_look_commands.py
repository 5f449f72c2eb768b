"""`obscura looks` with user looks (one broken), and `obscura contact-sheet`."""

from __future__ import annotations

import numpy as np

from firmware.cli import main
from pipeline.formats.encoders.dng import encode_dng
from pipeline.looks.look import builtin_looks
from tests.conftest import mosaic_frame

SMALL_DNG = "pi_minimal_640x480/test.dng"


def test_looks_lists_user_looks_and_reports_a_broken_one(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("OBSCURA_LOOKS_DIR", str(tmp_path))
    (tmp_path / "ok.cube").write_text("LUT_3D_SIZE 2\n" + "0.5 0.5 0.5\n" * 8)
    (tmp_path / "bad.toml").write_text("version = 2\n[grain]\nsize_um = 0\n")
    assert main(["looks"]) == 0
    out, err = capsys.readouterr()
    assert all(name in out for name in builtin_looks()) and "ok " in out
    assert "bad.toml" in err and "grain.size_um" in err


def test_contact_sheet_shows_every_look(raw_data, tmp_path, monkeypatch) -> None:
    from PIL import Image

    monkeypatch.setenv("OBSCURA_LOOKS_DIR", str(tmp_path / "none"))
    out = tmp_path / "sheet.jpg"
    argv = ["contact-sheet", str(raw_data / SMALL_DNG), "-o", str(out), "--tile-width", "120"]
    assert main(argv) == 0
    sheet = Image.open(out)
    rows = -(-len(builtin_looks()) // 3)
    assert sheet.width == 360 and sheet.height == rows * (90 + 18)
    assert main([*argv[:3], str(tmp_path / "sheet.png")]) == 1


def test_broken_luts_are_listed_with_their_reason_and_hide_nothing(
    tmp_path, monkeypatch, capsys
) -> None:
    # Each of these used to raise out of read_cube (hiding every look), or load and render
    # black or absurd colours.
    monkeypatch.setenv("OBSCURA_LOOKS_DIR", str(tmp_path))
    rows = "0.5 0.5 0.5\n" * 8
    (tmp_path / "ok.cube").write_text("LUT_3D_SIZE 2\n" + rows)
    broken = {
        "size_nan.cube": ("LUT_3D_SIZE nan\n" + rows, ":1: LUT_3D_SIZE 'nan'"),
        "size_inf.cube": ("LUT_3D_SIZE inf\n" + rows, ":1: LUT_3D_SIZE 'inf'"),
        "domain_nan.cube": ("LUT_3D_SIZE 2\nDOMAIN_MIN nan 0 0\n" + rows, ":2: nan 0 0 is not finite"),
        "domain_inf.cube": ("LUT_3D_SIZE 2\nDOMAIN_MIN -inf 0 0\n" + rows, ":2: -inf 0 0 is not finite"),
        "huge.cube": ("LUT_3D_SIZE 2\n" + "1e30 0 0\n" * 8, ":2: 1e30 0 0 is beyond"),
        "nested.toml": ("a = " + "[" * 5000 + "]" * 5000 + "\n", ": arrays or tables nested too deeply"),
    }
    for name, (text, _) in broken.items():
        (tmp_path / name).write_text(text)
    assert main(["looks"]) == 0
    out, err = capsys.readouterr()
    assert all(name in out for name in builtin_looks()) and "ok " in out
    for name, (_, reason) in broken.items():
        assert f"{tmp_path / name}{reason}" in err
    assert len(err.splitlines()) == len(broken)


def test_developing_with_a_broken_lut_fails_by_name(tmp_path, monkeypatch, capsys) -> None:
    # DOMAIN_MIN -inf used to give an all-black JPEG and exit status 0.
    monkeypatch.setenv("OBSCURA_LOOKS_DIR", str(tmp_path))
    (tmp_path / "black.cube").write_text("LUT_3D_SIZE 2\nDOMAIN_MIN -inf 0 0\n" + "1 1 1\n" * 8)
    raw = tmp_path / "in.dng"
    rng = np.random.default_rng(4)
    raw.write_bytes(encode_dng(mosaic_frame(rng.uniform(0.2, 0.8, (32, 32, 3)), "RGGB")))
    out = tmp_path / "out.jpg"
    assert main(["develop", str(raw), "-o", str(out), "--look", "black"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "black.cube:2: -inf 0 0 is not finite" in err
    assert not out.exists()
