"""Look files: every shipped look loads; malformed files get errors naming file and key;
user looks (.toml and .cube) are found, and a broken one never hides the others."""

from __future__ import annotations

import pytest

from pipeline.errors import InvalidParameterError, ObscuraError
from pipeline.looks.look import (
    available_looks,
    builtin_looks,
    find_look,
    load_look,
    look_names,
)
from pipeline.looks.lut3d import CubeFormatError

SHIPPED = {"neutral", "standard", "authentic", "vibrant", "monochrome", "monochrome-hc",
           "classic", "contemporary", "sepia"}  # fmt: skip


@pytest.fixture
def user_dir(tmp_path, monkeypatch):
    folder = tmp_path / "looks"
    folder.mkdir()
    monkeypatch.setenv("OBSCURA_LOOKS_DIR", str(folder))
    return folder


def _cube(size: int = 2, title: str = "warm") -> str:
    rows = [f"{r / (size - 1)} {g / (size - 1)} {b / (size - 1) * 0.9}"
            for b in range(size) for g in range(size) for r in range(size)]  # fmt: skip
    return f'TITLE "{title}"\nLUT_3D_SIZE {size}\n' + "\n".join(rows) + "\n"


def test_every_shipped_look_loads_with_a_description() -> None:
    looks = builtin_looks()
    assert SHIPPED <= set(looks)
    assert all(look.description for look in looks.values())
    assert find_look("neutral").colorimetric and not find_look("standard").colorimetric
    assert find_look("monochrome").colour.monochrome


def test_look_names_are_the_shipped_looks_in_order_without_reading_them(monkeypatch) -> None:
    names = look_names()
    assert names == tuple(builtin_looks()) and SHIPPED <= set(names)
    assert names.index("monochrome-hc") < names.index("monochrome")  # file-name order

    def unreadable(path):
        raise AssertionError(f"{path} read only to list its name")

    monkeypatch.setattr("pipeline.looks.look.load_look", unreadable)
    assert look_names() == names


def test_version_1_flat_files_still_load(tmp_path) -> None:
    path = tmp_path / "punchy.toml"
    path.write_text('description = "x"\ncontrast = 2\nsharpen_amount = 0.5\n')
    look = load_look(path)
    assert look.tone.contrast == 2 and look.sharpen.amount == 0.5 and look.name == "punchy"


def test_version_2_sections(tmp_path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text(
        'version = 2\ndescription = "x"\n[colour]\nmonochrome_mix = [1, 1, 0]\n'
        "[colour.saturation_by_hue]\nblue = 1.2\n[grain]\namount = 0.1\n"
    )
    look = load_look(path)
    assert look.colour.monochrome_mix == (1.0, 1.0, 0.0)
    assert look.colour.saturation_by_hue.blue == 1.2 and look.grain.amount == 0.1


@pytest.mark.parametrize(
    "text, expected",
    [
        ("contrast = 1.2\nsparkle = 3\n", "sparkle"),
        ('contrast = "high"\n', "contrast"),
        ("colorimetric = 1\n", "colorimetric"),
        ("contrast = \n", "bad.toml"),
        ("version = 2\n[tone]\nsparkle = 1\n", "tone.sparkle"),
        ("version = 2\n[grain]\namount = -0.1\n", "grain.amount"),
        ("version = 2\n[grain]\namount = true\n", "grain.amount"),
        ("version = 2\n[colour]\nmonochrome_mix = [1, 2]\n", "colour.monochrome_mix"),
        ("version = 2\n[colour.hue_shift_deg]\nteal = 3\n", "colour.hue_shift_deg.teal"),
        ("version = 2\n[colour.hue_shift_deg]\nred = 90\n", "colour.hue_shift_deg.red"),
        ("version = 2\ntone = 3\n", "tone"),
        ("version = 7\n", "version"),
        ('version = 2\n[lut]\nfile = "missing.cube"\n', "missing.cube"),
        ('version = 2\n[lut]\nfile = "x.cube"\ninput_space = "log"\n', "lut.input_space"),
    ],
)
def test_malformed_look_files_name_file_and_key(tmp_path, text: str, expected: str) -> None:
    (tmp_path / "x.cube").write_text(_cube())
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ObscuraError, match=expected) as error:
        load_look(path)
    assert isinstance(error.value, ValueError)
    assert "bad.toml" in str(error.value) or "missing.cube" in str(error.value)


def test_user_cube_and_toml_looks_are_found(user_dir) -> None:
    (user_dir / "my-film.cube").write_text(_cube(3, "My Film"))
    (user_dir / "mine.toml").write_text(
        'version = 2\ndescription = "mine"\n[lut]\nfile = "my-film.cube"\nstrength = 0.5\n'
    )
    film = find_look("my-film")
    assert film.lut is not None and film.lut.lut.title == "My Film" and film.lut.lut.size == 3
    assert film.tone == find_look("standard").tone  # a bare LUT sits on the standard look
    assert find_look("mine").lut.strength == 0.5  # type: ignore[union-attr]
    looks, errors = available_looks()
    assert {"my-film", "mine"} <= set(looks) and not errors


def test_a_broken_user_file_is_reported_and_the_rest_still_listed(user_dir) -> None:
    (user_dir / "good.cube").write_text(_cube())
    (user_dir / "broken.cube").write_text("LUT_3D_SIZE 2\n0 0 0\n1 1 x\n")
    (user_dir / "standard.toml").write_text('version = 2\ndescription = "clash"\n')
    looks, errors = available_looks()
    assert "good" in looks and SHIPPED <= set(looks) and "broken" not in looks
    messages = " ".join(str(e) for e in errors)
    assert "broken.cube:3" in messages and "built-in" in messages
    with pytest.raises(CubeFormatError, match="broken.cube:3"):
        find_look("broken")
    assert find_look("standard").description != "clash"  # built-ins are never shadowed


def test_unknown_look_names_the_choices(user_dir) -> None:
    (user_dir / "good.cube").write_text(_cube())
    with pytest.raises(InvalidParameterError, match="look='nope'.*good"):
        find_look("nope")
    with pytest.raises(InvalidParameterError, match="not a look name"):
        find_look("../standard")
