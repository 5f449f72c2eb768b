"""Tests of pipeline.colour.metrics against published data and colour-science."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from pipeline.colour import metrics as cm

# Sharma, Wu, Dalal (2005), Table 1: (L1, a1, b1), (L2, a2, b2), Delta E 2000.
SHARMA_2005_PAIRS = (
    ((50.0000, 2.6772, -79.7751), (50.0000, 0.0000, -82.7485), 2.0425),
    ((50.0000, 3.1571, -77.2803), (50.0000, 0.0000, -82.7485), 2.8615),
    ((50.0000, 2.8361, -74.0200), (50.0000, 0.0000, -82.7485), 3.4412),
    ((50.0000, -1.3802, -84.2814), (50.0000, 0.0000, -82.7485), 1.0000),
    ((50.0000, -1.1848, -84.8006), (50.0000, 0.0000, -82.7485), 1.0000),
    ((50.0000, -0.9009, -85.5211), (50.0000, 0.0000, -82.7485), 1.0000),
    ((50.0000, 0.0000, 0.0000), (50.0000, -1.0000, 2.0000), 2.3669),
    ((50.0000, -1.0000, 2.0000), (50.0000, 0.0000, 0.0000), 2.3669),
    ((50.0000, 2.4900, -0.0010), (50.0000, -2.4900, 0.0009), 7.1792),
    ((50.0000, 2.4900, -0.0010), (50.0000, -2.4900, 0.0010), 7.1792),
    ((50.0000, 2.4900, -0.0010), (50.0000, -2.4900, 0.0011), 7.2195),
    ((50.0000, 2.4900, -0.0010), (50.0000, -2.4900, 0.0012), 7.2195),
    ((50.0000, -0.0010, 2.4900), (50.0000, 0.0009, -2.4900), 4.8045),
    ((50.0000, -0.0010, 2.4900), (50.0000, 0.0010, -2.4900), 4.8045),
    ((50.0000, -0.0010, 2.4900), (50.0000, 0.0011, -2.4900), 4.7461),
    ((50.0000, 2.5000, 0.0000), (50.0000, 0.0000, -2.5000), 4.3065),
    ((50.0000, 2.5000, 0.0000), (73.0000, 25.0000, -18.0000), 27.1492),
    ((50.0000, 2.5000, 0.0000), (61.0000, -5.0000, 29.0000), 22.8977),
    ((50.0000, 2.5000, 0.0000), (56.0000, -27.0000, -3.0000), 31.9030),
    ((50.0000, 2.5000, 0.0000), (58.0000, 24.0000, 15.0000), 19.4535),
    ((50.0000, 2.5000, 0.0000), (50.0000, 3.1736, 0.5854), 1.0000),
    ((50.0000, 2.5000, 0.0000), (50.0000, 3.2972, 0.0000), 1.0000),
    ((50.0000, 2.5000, 0.0000), (50.0000, 1.8634, 0.5757), 1.0000),
    ((50.0000, 2.5000, 0.0000), (50.0000, 3.2592, 0.3350), 1.0000),
    ((60.2574, -34.0099, 36.2677), (60.4626, -34.1751, 39.4387), 1.2644),
    ((63.0109, -31.0961, -5.8663), (62.8187, -29.7946, -4.0864), 1.2630),
    ((61.2901, 3.7196, -5.3901), (61.4292, 2.2480, -4.9620), 1.8731),
    ((35.0831, -44.1164, 3.7933), (35.0232, -40.0716, 1.5901), 1.8645),
    ((22.7233, 20.0904, -46.6940), (23.0331, 14.9730, -42.5619), 2.0373),
    ((36.4612, 47.8580, 18.3852), (36.2715, 50.5065, 21.2231), 1.4146),
    ((90.8027, -2.0831, 1.4410), (91.1528, -1.6435, 0.0447), 1.4441),
    ((90.9257, -0.5406, -0.9208), (88.6381, -0.8985, -0.7239), 1.5381),
    ((6.7747, -0.2908, -2.4247), (5.8714, -0.0985, -2.2286), 0.6377),
    ((2.0776, 0.0795, -1.1350), (0.9033, -0.0636, -0.5514), 0.9082),
)


def _colour():
    """colour-science, imported only for cross-checks, without its matplotlib warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import colour
    return colour


def test_ciede2000_matches_sharma_2005_table_1() -> None:
    lab1 = np.array([p[0] for p in SHARMA_2005_PAIRS])
    lab2 = np.array([p[1] for p in SHARMA_2005_PAIRS])
    expected = np.array([p[2] for p in SHARMA_2005_PAIRS])
    np.testing.assert_allclose(cm.delta_e_ciede2000(lab1, lab2), expected, atol=5e-5)
    # Symmetric in its arguments (the table lists pairs 7 and 8 both ways).
    np.testing.assert_allclose(cm.delta_e_ciede2000(lab2, lab1), expected, atol=5e-5)


def test_ciede2000_agrees_with_colour_science_on_random_pairs() -> None:
    rng = np.random.default_rng(7)
    lab1 = rng.uniform([0, -100, -100], [100, 100, 100], size=(500, 3))
    lab2 = lab1 + rng.normal(scale=10.0, size=(500, 3))
    expected = _colour().delta_E(lab1, lab2, method="CIE 2000")
    np.testing.assert_allclose(cm.delta_e_ciede2000(lab1, lab2), expected, rtol=1e-9, atol=1e-9)


def test_ciede2000_is_zero_for_identical_colours_and_broadcasts() -> None:
    lab = np.array([[50.0, 10.0, -20.0], [0.0, 0.0, 0.0]])
    np.testing.assert_array_equal(cm.delta_e_ciede2000(lab, lab), [0.0, 0.0])
    assert cm.delta_e_ciede2000(lab, lab[0]).shape == (2,)


def test_srgb_transfer_round_trip_and_breakpoints() -> None:
    linear = np.linspace(-0.5, 2.0, 2001)
    np.testing.assert_allclose(cm.srgb_decode(cm.srgb_encode(linear)), linear, atol=1e-12)
    # IEC 61966-2-1: 12.92 slope below 0.0031308, 1.0 -> 1.0, 0.5 encodes to ~0.7354.
    np.testing.assert_allclose(
        cm.srgb_encode([0.001, 1.0, 0.5]), [0.01292, 1.0, 0.735356983], atol=1e-8
    )
    np.testing.assert_allclose(cm.srgb_decode(0.04045), 0.04045 / 12.92, rtol=1e-12)


def test_srgb_functions_keep_float32() -> None:
    image = np.random.default_rng(1).random((4, 5, 3), dtype=np.float32)
    assert cm.srgb_encode(image).dtype == np.float32
    assert cm.srgb_decode(image).dtype == np.float32
    assert cm.linear_srgb_to_xyz(image).dtype == np.float32
    assert cm.xyz_to_lab(cm.linear_srgb_to_xyz(image)).dtype == np.float32
    assert cm.linear_srgb_to_oklab(image).dtype == np.float32


def test_srgb_xyz_lab_round_trip() -> None:
    rgb = np.random.default_rng(2).random((64, 3))
    xyz = cm.linear_srgb_to_xyz(rgb)
    np.testing.assert_allclose(cm.xyz_to_linear_srgb(xyz), rgb, atol=1e-12)
    lab = cm.xyz_to_lab(xyz)
    np.testing.assert_allclose(cm.lab_to_xyz(lab), xyz, atol=1e-12)
    # Dark colours exercise the linear segment of the Lab function.
    dark = rgb * 1e-3
    np.testing.assert_allclose(
        cm.lab_to_xyz(cm.xyz_to_lab(cm.linear_srgb_to_xyz(dark))),
        cm.linear_srgb_to_xyz(dark),
        atol=1e-15,
    )


def test_srgb_white_is_d65_and_lab_100() -> None:
    np.testing.assert_allclose(cm.D65_WHITE_XYZ, [0.95046, 1.0, 1.08906], atol=1e-5)
    np.testing.assert_allclose(
        cm.xyz_to_lab(cm.linear_srgb_to_xyz(np.ones(3))), [100.0, 0.0, 0.0], atol=1e-12
    )
    np.testing.assert_allclose(cm.linear_srgb_to_lab_d50(np.ones(3)), [100.0, 0.0, 0.0], atol=1e-10)


def test_lab_agrees_with_colour_science() -> None:
    colour = _colour()
    xyz = np.random.default_rng(3).random((50, 3))
    white_xy = colour.XYZ_to_xy(cm.D50_WHITE_XYZ)
    np.testing.assert_allclose(
        cm.xyz_to_lab(xyz, cm.D50_WHITE_XYZ), colour.XYZ_to_Lab(xyz, white_xy), atol=1e-10
    )


def test_bradford_maps_white_to_white() -> None:
    m = cm.bradford_matrix(cm.D65_WHITE_XYZ, cm.D50_WHITE_XYZ)
    np.testing.assert_allclose(m @ cm.D65_WHITE_XYZ, cm.D50_WHITE_XYZ, atol=1e-12)


def test_oklab_of_white_and_round_trip() -> None:
    np.testing.assert_allclose(cm.linear_srgb_to_oklab(np.ones(3)), [1.0, 0.0, 0.0], atol=1e-7)
    np.testing.assert_allclose(cm.linear_srgb_to_oklab(np.zeros(3)), [0.0, 0.0, 0.0], atol=1e-12)
    rgb = np.random.default_rng(4).random((64, 3))
    np.testing.assert_allclose(
        cm.oklab_to_linear_srgb(cm.linear_srgb_to_oklab(rgb)), rgb, atol=1e-8
    )
    lch = cm.linear_srgb_to_oklch(rgb)
    assert np.all((lch[:, 2] >= 0) & (lch[:, 2] < 360)) and np.all(lch[:, 1] >= 0)
    np.testing.assert_allclose(cm.oklch_to_oklab(lch), cm.linear_srgb_to_oklab(rgb), atol=1e-12)


def test_oklab_matches_ottosson_reference_values() -> None:
    # Ottosson (2020), "Table of example XYZ and Oklab pairs" (via D65 XYZ -> sRGB).
    xyz = np.array(
        [[0.950, 1.000, 1.089], [1.000, 0.000, 0.000], [0.000, 1.000, 0.000], [0.000, 0.000, 1.000]]
    )
    expected = np.array(
        [
            [1.000, 0.000, 0.000],
            [0.450, 1.236, -0.019],
            [0.922, -0.671, 0.263],
            [0.153, -1.415, -0.449],
        ]
    )
    np.testing.assert_allclose(
        cm.linear_srgb_to_oklab(cm.xyz_to_linear_srgb(xyz)), expected, atol=2e-3
    )


def test_colorchecker_reference_matches_colour_science_dataset() -> None:
    colour = _colour()
    checker = colour.CCS_COLOURCHECKERS["ColorChecker24 - After November 2014"]
    assert len(cm.COLORCHECKER_NAMES) == 24
    for i, (name, xyy) in enumerate(checker.data.items()):
        assert name.startswith(cm.COLORCHECKER_NAMES[i])
        lab = colour.XYZ_to_Lab(colour.xyY_to_XYZ(xyy), checker.illuminant)
        np.testing.assert_allclose(cm.COLORCHECKER_LAB_D50[i], lab, atol=0.006)


def test_colorchecker_linear_srgb_round_trips_to_the_reference() -> None:
    rgb = cm.colorchecker_linear_srgb()
    np.testing.assert_allclose(cm.linear_srgb_to_lab_d50(rgb), cm.COLORCHECKER_LAB_D50, atol=1e-10)
    neutral = rgb[list(cm.COLORCHECKER_NEUTRALS)]
    # The neutral patches are near-neutral in sRGB (within 0.05 of their mean)...
    assert np.all(np.abs(neutral - neutral.mean(axis=1, keepdims=True)) < 0.05)
    # ...and only cyan leaves the gamut, and only just.
    assert np.argwhere(rgb < 0).tolist() == [[17, 0]] and rgb[17, 0] > -0.06


def test_bad_shapes_are_rejected() -> None:
    with pytest.raises(ValueError, match=r"\(\.\.\., 3\)"):
        cm.linear_srgb_to_xyz(np.zeros((4, 2)))
    with pytest.raises(ValueError, match="lab1"):
        cm.delta_e_ciede2000(np.zeros(4), np.zeros(3))
