"""`obscura looks` with user looks (one broken), and `obscura contact-sheet`."""

from __future__ import annotations

from firmware.cli import main
from pipeline.look import builtin_looks

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
