"""Look files: every shipped look loads; malformed files get errors naming file and key."""

from __future__ import annotations

import pytest

from pipeline.errors import InvalidParameterError
from pipeline.look import builtin_looks, find_look, load_look


def test_every_shipped_look_loads_with_a_description() -> None:
    looks = builtin_looks()
    assert {"neutral", "standard"} <= set(looks)
    assert all(look.description for look in looks.values())
    assert find_look("neutral").colorimetric and not find_look("standard").colorimetric


def test_integer_is_accepted_for_a_float_key(tmp_path) -> None:
    path = tmp_path / "punchy.toml"
    path.write_text('description = "x"\ncontrast = 2\n')
    assert load_look(path).contrast == 2 and load_look(path).name == "punchy"


@pytest.mark.parametrize(
    "text, expected",
    [
        ("contrast = 1.2\nsparkle = 3\n", "sparkle"),
        ('contrast = "high"\n', "contrast"),
        ("colorimetric = 1\n", "colorimetric"),
        ("contrast = \n", "bad.toml"),
    ],
)
def test_malformed_look_files_name_file_and_key(tmp_path, text: str, expected: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(InvalidParameterError, match=expected) as error:
        load_look(path)
    assert "bad.toml" in str(error.value)
