"""3D LUTs: .cube parsing (order, keywords, domain), tetrahedral interpolation, errors."""

from __future__ import annotations

import re

import numpy as np
import pytest

from pipeline.looks import lut3d
from pipeline.looks.lut3d import CubeFormatError, identity_lut, read_cube


def _rows(size: int, fn) -> list[str]:
    axis = np.linspace(0.0, 1.0, size)
    return [" ".join(f"{v:.6f}" for v in fn(r, g, b)) for b in axis for g in axis for r in axis]


def test_identity_lut_round_trips_within_a_thousandth() -> None:
    rng = np.random.default_rng(5)
    rgb = rng.random((64, 48, 3), dtype=np.float32)
    out = lut3d.apply(rgb.copy(), identity_lut(17))
    assert np.abs(out - rgb).max() < 1e-3


def test_identity_cube_file_round_trips(tmp_path) -> None:
    path = tmp_path / "id.cube"
    path.write_text("# made by hand\nTITLE \"identity\"\n\nLUT_3D_SIZE 5\n"
                    + "\n".join(_rows(5, lambda r, g, b: (r, g, b))) + "\n")  # fmt: skip
    lut = read_cube(path)
    assert lut.title == "identity" and lut.size == 5
    rgb = np.random.default_rng(6).random((16, 16, 3), dtype=np.float32)
    assert np.abs(lut3d.apply(rgb.copy(), lut) - rgb).max() < 1e-3


def test_red_varies_fastest_and_domain_is_honoured(tmp_path) -> None:
    # Output = (r, g, b) scaled to the domain [0, 2]: a LUT that halves its input.
    path = tmp_path / "half.cube"
    path.write_text("LUT_3D_SIZE 3\nDOMAIN_MIN 0 0 0\nDOMAIN_MAX 2 2 2\n"
                    + "\n".join(_rows(3, lambda r, g, b: (r, g * 0.5, 1 - b))) + "\n")  # fmt: skip
    lut = read_cube(path)
    np.testing.assert_allclose(lut.table[2, 0, 0], [1.0, 0.0, 1.0])  # table is [r, g, b]
    np.testing.assert_allclose(lut.table[0, 2, 1], [0.0, 0.5, 0.5])
    out = lut3d.apply(np.array([[[1.0, 1.0, 2.0]]], dtype=np.float32), lut)
    np.testing.assert_allclose(out[0, 0], [0.5, 0.25, 0.0], atol=1e-6)


def test_tetrahedral_interpolation_is_exact_for_linear_maps_and_keeps_greys() -> None:
    rng = np.random.default_rng(7)
    matrix = np.array([[0.9, 0.1, 0.0], [0.05, 0.8, 0.15], [0.0, 0.2, 0.8]], dtype=np.float32)
    axis = np.linspace(0.0, 1.0, 9, dtype=np.float32)
    grid = np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), axis=-1)
    lut = lut3d.Lut3D(np.ascontiguousarray(grid @ matrix.T), np.zeros(3, np.float32),
                      np.ones(3, np.float32))  # fmt: skip
    rgb = rng.random((32, 32, 3), dtype=np.float32)
    np.testing.assert_allclose(lut3d.apply(rgb.copy(), lut), rgb @ matrix.T, atol=1e-5)
    # A LUT that maps greys to greys: grey inputs between nodes stay exactly grey.
    warped = identity_lut(9)
    r, g, b = np.moveaxis(warped.table, -1, 0)
    table = np.ascontiguousarray(
        np.stack([r**0.7 + 0.1 * (g - b), g**0.7 + 0.1 * (b - r), b**0.7 + 0.1 * (r - g)], -1)
    )
    grey = np.repeat(rng.random((8, 8, 1), dtype=np.float32), 3, axis=2)
    out = lut3d.apply(grey, lut3d.Lut3D(table, warped.domain_min, warped.domain_max))
    assert np.ptp(out, axis=2).max() < 1e-6


@pytest.mark.parametrize(
    "text, expected",
    [
        ("LUT_3D_SIZE 2\n0 0 0\n1 0 0\n0 1 0\n", "bad.cube:4: 3 rows of data, expected 2^3"),
        ("LUT_3D_SIZE 2\n0 0 0\n1 0\n", "bad.cube:3: expected 3 numbers"),
        ("LUT_3D_SIZE 2\n0 0 0\n1 zero 0\n", "bad.cube:3:"),
        ("0 0 0\n", "bad.cube:1: data before LUT_3D_SIZE"),
        ("LUT_1D_SIZE 4\n", "bad.cube:1: a 1D LUT"),
        ("# fine\nLUT_3D_SIZE 1\n", "bad.cube:2: LUT_3D_SIZE"),
        ("LUT_3D_SIZE 2.5\n", "bad.cube:1: LUT_3D_SIZE"),
        ("SPARKLE 3\n", "bad.cube:1: unknown keyword"),
        ("TITLE \"x\"\n", "bad.cube:1: no LUT_3D_SIZE"),
        ("LUT_3D_SIZE 2\nDOMAIN_MAX 1 1\n", "bad.cube:2: expected 3 numbers"),
        ("LUT_3D_SIZE 2\n" + "0 0 nan\n" * 8, "bad.cube:2: 0 0 nan is not finite"),
        ("LUT_3D_SIZE 2\n" + "0 0 0\n" * 9, "bad.cube:10: more than 2^3"),
        # Fuzzed files that used to raise out of read_cube, or render black with exit 0:
        ("LUT_3D_SIZE nan\n", "bad.cube:1: LUT_3D_SIZE 'nan': expected one integer in 2..256"),
        ("LUT_3D_SIZE inf\n", "bad.cube:1: LUT_3D_SIZE 'inf'"),
        ("LUT_3D_SIZE -inf\n", "bad.cube:1: LUT_3D_SIZE '-inf'"),
        ("LUT_3D_SIZE 1e300\n", "bad.cube:1: LUT_3D_SIZE '1e300'"),
        ("LUT_3D_SIZE 2\nLUT_3D_SIZE 2\n", "bad.cube:2: LUT_3D_SIZE '2': expected one integer in 2..256, once"),
        ("LUT_3D_SIZE 2\nDOMAIN_MIN nan 0 0\n" + "0 0 0\n" * 8, "bad.cube:2: nan 0 0 is not finite"),
        ("LUT_3D_SIZE 2\nDOMAIN_MIN -inf 0 0\n" + "0 0 0\n" * 8, "bad.cube:2: -inf 0 0 is not finite"),
        ("LUT_3D_SIZE 2\nDOMAIN_MIN 0 2 0\n" + "0 0 0\n" * 8, "bad.cube:2: domain max [1.0, 1.0, 1.0] must exceed domain min [0.0, 2.0, 0.0]"),
        ("LUT_3D_SIZE 2\nLUT_3D_INPUT_RANGE 0 1e9\n" + "0 0 0\n" * 8, "bad.cube:2: domain"),
        ("LUT_3D_SIZE 2\nDOMAIN_MAX 1e-40 1 1\n" + "0 0 0\n" * 8, "bad.cube:2: domain max"),
        ("LUT_3D_SIZE 2\n" + "0 0 0\n" * 7 + "1e30 0 0\n", "bad.cube:9: 1e30 0 0 is beyond +-100"),
    ],
)
def test_malformed_cube_files_name_file_and_line(tmp_path, text: str, expected: str) -> None:
    path = tmp_path / "bad.cube"
    path.write_text(text)
    with pytest.raises(CubeFormatError, match=re.escape(expected)) as error:
        read_cube(path)
    assert isinstance(error.value, ValueError)


def test_bad_arguments_name_themselves() -> None:
    with pytest.raises(ValueError, match="rgb has shape"):
        lut3d.apply(np.zeros((4, 4), np.float32), identity_lut(2))
    with pytest.raises(ValueError, match="table has shape"):
        lut3d.Lut3D(np.zeros((2, 2, 3, 3), np.float32), np.zeros(3), np.ones(3))
