"""read_dng on the real Raspberry Pi DNGs, on synthetic DNG layouts, and on broken files."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import threading
from pathlib import Path

import imagecodecs
import numpy as np
import pytest
import rawpy
import tifffile

from pipeline.cfa import CfaPattern
from pipeline.colour.matrix import camera_to_srgb_matrix, check_colour_metadata
from pipeline.errors import InvalidParameterError, ObscuraError, RawFormatError
from pipeline.formats.dng_reader import _TIFFFILE_MESSAGES, read_dng
from pipeline.raw_frame import CameraMetadata

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "raw"
REAL_DNGS = sorted(DATA.rglob("*.dng")) if DATA.is_dir() else []
needs_data = pytest.mark.skipif(not REAL_DNGS, reason=f"real DNGs not found under {DATA}")

DNG_VERSION = (50706, "B", 4, (1, 4, 0, 0), True)
CFA_2X2 = (33421, "H", 2, (2, 2), True)
RGGB_TAG = (33422, "B", 4, (0, 1, 1, 2), True)


def write_cfa_dng(path: Path, cfa: np.ndarray, *extratags: tuple, **kwargs) -> Path:
    """A minimal DNG: one CFA IFD holding ``cfa``, RGGB unless ``extratags`` say otherwise."""
    codes = {tag[0] for tag in extratags}
    base = [t for t in (DNG_VERSION, CFA_2X2, RGGB_TAG) if t[0] not in codes]
    tifffile.imwrite(path, cfa, photometric="cfa", extratags=base + list(extratags), **kwargs)
    return path


def rawpy_pattern(raw: rawpy.RawPy) -> CfaPattern:
    letters = raw.color_desc.decode()
    return CfaPattern.parse("".join(letters[i] for i in raw.raw_pattern.ravel()))


def assert_one_line_error(path: Path, match: str) -> RawFormatError:
    with pytest.raises(RawFormatError) as info:
        read_dng(path)
    message = str(info.value)
    assert message.startswith(f"{path.name}: ")
    assert "\n" not in message
    assert match in message
    assert isinstance(info.value, ObscuraError) and isinstance(info.value, ValueError)
    return info.value


# --- real files ---------------------------------------------------------------------------


@needs_data
@pytest.mark.parametrize("path", REAL_DNGS, ids=lambda p: p.name)
def test_real_dng_matches_rawpy(path: Path) -> None:
    frame = read_dng(path)
    with rawpy.imread(str(path)) as raw:
        expected = raw.raw_image_visible.copy()
        pattern = rawpy_pattern(raw)
        black_per_site = tuple(float(raw.black_level_per_channel[i]) for i in raw.raw_pattern.ravel())
        white = float(raw.white_level)
    assert frame.cfa.dtype == np.uint16
    np.testing.assert_array_equal(frame.cfa, expected)
    assert frame.metadata.cfa_pattern == pattern
    if path.name == "test.dng":  # no BlackLevel: LibRaw takes 0, we the Pi's pedestal
        black_per_site = (64.0,) * 4
    assert frame.metadata.black_level == black_per_site
    assert frame.metadata.white_level == white


@needs_data
def test_pidng_file_values() -> None:
    meta = read_dng(DATA / "pi_arducam_pivariety_1920x1200" / "image1.dng").metadata
    assert meta.cfa_pattern == CfaPattern.GRBG
    assert meta.black_level == (32.0, 32.0, 32.0, 32.0)
    assert meta.white_level == 1023.0
    assert meta.exposure_time_s == pytest.approx(1 / 33)
    assert meta.iso == 325.0
    assert meta.make == "RaspberryPi"
    assert meta.color_matrix_1 == pytest.approx(
        (1.5161, -0.5051, -0.1079, -0.0784, 1.0367, 0.0347, 0.0967, 0.0990, 0.4973)
    )
    assert meta.calibration_illuminant_1 == 21
    assert meta.as_shot_neutral == pytest.approx((10000 / 12219, 1.0, 10000 / 13650))
    assert meta.camera_calibration_1 == (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)
    assert meta.baseline_exposure_ev == 1.0
    assert meta.color_matrix_2 is None and meta.forward_matrix_1 is None


@needs_data
def test_rpicam_still_subifd_rational_black_and_exif_ifd() -> None:
    frame = read_dng(DATA / "pi_imx296_mex2025" / "rpicam_still_checkerboard_imx296.dng")
    meta = frame.metadata
    assert frame.shape == (1088, 1456)  # the SubIFD raw, not the 91x68 thumbnail in IFD0
    assert meta.cfa_pattern == CfaPattern.BGGR
    assert meta.black_level == (60.0, 60.0, 60.0, 60.0)  # RATIONAL 60/1
    assert meta.white_level == 1023.0
    assert meta.exposure_time_s == pytest.approx(1 / 100, rel=1e-3)  # from the EXIF IFD
    assert meta.iso == 100.0
    assert meta.datetime_original == dt.datetime(2025, 3, 31, 11, 39, 31)
    assert (meta.make, meta.model) == ("Raspberry Pi", "imx296")
    assert meta.as_shot_neutral == (1.0, 1.0, 1.0)


@needs_data
def test_minimal_file_gets_defaults() -> None:
    meta = read_dng(DATA / "pi_minimal_640x480" / "test.dng").metadata
    assert meta.cfa_pattern == CfaPattern.GBRG
    # No BlackLevel in a PiDNG file whose samples all lie above 64 (the darkest is 70): the
    # Pi ISP's default pedestal, 64 at 10 bits. With 0 its shadows and its white balance
    # (estimated from the frame) carried the pedestal: a green cast.
    assert meta.black_level == (64.0, 64.0, 64.0, 64.0)
    assert meta.white_level == 1023.0  # 2**BitsPerSample - 1 for 10-bit
    assert (meta.make, meta.model) == ("", "")
    assert meta.color_matrix_1 is None and meta.as_shot_neutral is None
    assert meta.exposure_time_s is None and meta.iso is None


@needs_data
def test_truncated_real_file(tmp_path: Path) -> None:
    data = (DATA / "pi_arducam_pivariety_1920x1200" / "image1.dng").read_bytes()
    path = tmp_path / "image1.dng"
    path.write_bytes(data[:1024])
    assert_one_line_error(path, "truncated: raw tile 0 ends at byte 2880760 but the file has 1024")
    path.write_bytes(data[:300])  # cut inside IFD0
    assert_one_line_error(path, "corrupt")


# --- synthetic layouts --------------------------------------------------------------------


def test_active_area_even_offset_matches_rawpy(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    cfa = rng.integers(0, 4096, (64, 96), dtype=np.uint16)
    path = write_cfa_dng(
        tmp_path / "aa.dng",
        cfa,
        (50829, "I", 4, (2, 4, 62, 94), True),
        (50713, "H", 2, (2, 2), True),
        (50714, "H", 4, (10, 20, 30, 40), True),
        (50717, "H", 1, 4095, True),
    )
    frame = read_dng(path)
    np.testing.assert_array_equal(frame.cfa, cfa[2:62, 4:94])
    assert frame.metadata.black_level == (10.0, 20.0, 30.0, 40.0)
    assert frame.metadata.white_level == 4095.0
    with rawpy.imread(str(path)) as raw:
        np.testing.assert_array_equal(frame.cfa, raw.raw_image_visible)
        assert frame.metadata.cfa_pattern == rawpy_pattern(raw)


def test_active_area_odd_offset_keeps_pattern_relative_to_area(tmp_path: Path) -> None:
    # DNG SDK (dng_mosaic_info) and LibRaw apply CFAPattern from the ActiveArea's top-left.
    rng = np.random.default_rng(2)
    cfa = rng.integers(0, 4096, (64, 96), dtype=np.uint16)
    path = write_cfa_dng(tmp_path / "odd.dng", cfa, (50829, "I", 4, (1, 1, 63, 95), True))
    frame = read_dng(path)
    np.testing.assert_array_equal(frame.cfa, cfa[1:63, 1:95])
    assert frame.metadata.cfa_pattern == CfaPattern.RGGB
    with rawpy.imread(str(path)) as raw:  # LibRaw rounds odd margins up to even ones
        dy, dx = raw.sizes.top_margin - 1, raw.sizes.left_margin - 1
        visible = raw.raw_image_visible.copy()
        libraw_pattern = rawpy_pattern(raw)
    np.testing.assert_array_equal(visible, frame.cfa[dy : dy + visible.shape[0], dx : dx + visible.shape[1]])
    assert libraw_pattern == frame.metadata.cfa_pattern.shifted(dy, dx)


def test_black_level_rational_with_deltas(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    cfa = rng.integers(0, 4096, (8, 12), dtype=np.uint16)
    delta_h = tuple(v for x in range(12) for v in (1 if x % 2 == 0 else 3, 1))
    delta_v = tuple(v for y in range(8) for v in (1 if y % 2 == 0 else -1, 2))
    path = write_cfa_dng(
        tmp_path / "black.dng",
        cfa,
        (50714, "2I", 1, (1201, 10), True),  # BlackLevel 120.1, repeat dim 1x1 by default
        (50715, "2i", 12, delta_h, True),  # +1 on even columns, +3 on odd
        (50716, "2i", 8, delta_v, True),  # +0.5 on even rows, -0.5 on odd
    )
    black = read_dng(path).metadata.black_level
    assert black == pytest.approx((121.6, 123.6, 120.6, 122.6))


def test_all_metadata_tags(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    cfa = rng.integers(0, 4096, (8, 12), dtype=np.uint16)
    matrix = (2, 1, -1, 2, 0, 1, -1, 4, 3, 2, 1, 4, 0, 1, -1, 8, 5, 4)
    path = write_cfa_dng(
        tmp_path / "meta.dng",
        cfa,
        (33422, "B", 4, (1, 2, 0, 1), True),  # GBRG
        (271, "s", 0, "Raspberry Pi", True),
        (272, "s", 0, "imx477", True),
        (274, "H", 1, 6, True),
        (50721, "2i", 9, matrix, True),
        (50722, "2i", 9, (5, 4, -1, 8, 0, 1, 1, 4, 3, 2, -1, 4, 0, 1, -1, 2, 2, 1), True),
        (50778, "H", 1, 17, True),
        (50779, "H", 1, 21, True),
        (50964, "2i", 9, matrix, True),
        (50723, "2i", 9, matrix, True),
        (50728, "2I", 3, (1, 2, 1, 1, 2, 3), True),
        (50730, "2i", 1, (-1, 2), True),
        (51041, "d", 6, (1e-4, 2e-6, 1.1e-4, 2.1e-6, 1.2e-4, 2.2e-6), True),
        (33434, "2I", 1, (1, 250), True),  # TIFF/EP: EXIF tags in the main IFD
        (33437, "2I", 1, (28, 10), True),
        (37386, "2I", 1, (16, 1), True),
        (34855, "H", 1, 400, True),
        (36867, "s", 0, "2024:05:06 07:08:09", True),
        (42036, "s", 0, "CGL 16mm", True),
    )
    meta = read_dng(path).metadata
    expected_matrix = (2.0, -0.5, 0.0, -0.25, 1.5, 0.25, 0.0, -0.125, 1.25)
    assert meta.cfa_pattern == CfaPattern.GBRG
    assert (meta.make, meta.model, meta.orientation) == ("Raspberry Pi", "imx477", 6)
    assert meta.color_matrix_1 == expected_matrix
    assert meta.color_matrix_2 == (1.25, -0.125, 0.0, 0.25, 1.5, -0.25, 0.0, -0.5, 2.0)
    assert (meta.calibration_illuminant_1, meta.calibration_illuminant_2) == (17, 21)
    assert meta.forward_matrix_1 == expected_matrix and meta.forward_matrix_2 is None
    assert meta.camera_calibration_1 == expected_matrix
    assert meta.as_shot_neutral == pytest.approx((0.5, 1.0, 2 / 3))
    assert meta.baseline_exposure_ev == -0.5
    assert meta.noise_profile == ((1e-4, 2e-6), (1.1e-4, 2.1e-6), (1.2e-4, 2.2e-6))
    assert meta.exposure_time_s == pytest.approx(1 / 250)
    assert (meta.f_number, meta.focal_length_mm, meta.iso) == (2.8, 16.0, 400.0)
    assert meta.datetime_original == dt.datetime(2024, 5, 6, 7, 8, 9)
    assert meta.lens_model == "CGL 16mm"


def test_defaults_without_optional_tags(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    cfa = rng.integers(0, 65536, (8, 10), dtype=np.uint16)
    meta = read_dng(write_cfa_dng(tmp_path / "bare.dng", cfa)).metadata
    assert meta.black_level == (0.0, 0.0, 0.0, 0.0)
    assert meta.white_level == 65535.0
    assert meta.noise_profile is None and meta.datetime_original is None
    assert meta.orientation == 1 and meta.baseline_exposure_ev == 0.0


@pytest.mark.parametrize(("software", "darkest", "black"), [
    ("PiDNG", 3000, 4096.0),  # 16-bit samples: the Pi's 4096 (64 at 10 bits, 256 at 12)
    ("Raspberry Pi - picamera2", 3000, 4096.0),
    ("PiDNG", 1000, 0.0),  # samples below half the pedestal: it is not there
    ("Adobe DNG Converter", 3000, 0.0),  # the DNG specification's default
])  # fmt: skip
def test_a_pi_dng_without_black_level_gets_the_pi_isps_default_black(
    tmp_path: Path, software: str, darkest: int, black: float
) -> None:
    cfa = np.full((8, 10), 20000, dtype=np.uint16)
    cfa[3, 4] = darkest
    path = write_cfa_dng(tmp_path / "pi.dng", cfa, software=software)
    assert read_dng(path).metadata.black_level == (black,) * 4


def test_linearization_table_applied(tmp_path: Path) -> None:
    rng = np.random.default_rng(19)
    cfa = rng.integers(0, 1100, (16, 24), dtype=np.uint16)
    table = np.arange(1024) * 3 + 5
    path = write_cfa_dng(tmp_path / "lin.dng", cfa, (50712, "H", 1024, tuple(table), True))
    expected = table[np.minimum(cfa, 1023)]  # past the end: the last entry (DNG spec)
    np.testing.assert_array_equal(read_dng(path).cfa, expected)


def test_raw_in_subifd_behind_thumbnail(tmp_path: Path) -> None:
    rng = np.random.default_rng(6)
    cfa = rng.integers(0, 1024, (32, 48), dtype=np.uint16)
    path = tmp_path / "sub.dng"
    with tifffile.TiffWriter(path) as tif:
        thumbnail = rng.integers(0, 256, (2, 3, 3), dtype=np.uint8)
        tif.write(thumbnail, photometric="rgb", subfiletype=1, subifds=1, extratags=[DNG_VERSION])
        tif.write(cfa, photometric="cfa", extratags=[CFA_2X2, (33422, "B", 4, (2, 1, 1, 0), True)])
    frame = read_dng(path)
    np.testing.assert_array_equal(frame.cfa, cfa)
    assert frame.metadata.cfa_pattern == CfaPattern.BGGR


def test_lossless_jpeg_tiles_match_source_and_rawpy(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    cfa = rng.integers(0, 4096, (64, 96), dtype=np.uint16)
    tiles = [
        imagecodecs.ljpeg_encode(np.ascontiguousarray(cfa[y : y + 32, x : x + 48]), bitspersample=12)
        for y in (0, 32)
        for x in (0, 48)
    ]
    path = tmp_path / "ljpeg.dng"
    tifffile.imwrite(
        path, iter(tiles), shape=cfa.shape, dtype=cfa.dtype, photometric="cfa", compression=7,
        tile=(32, 48), extratags=[DNG_VERSION, CFA_2X2, RGGB_TAG],
    )  # fmt: skip
    frame = read_dng(path)
    np.testing.assert_array_equal(frame.cfa, cfa)
    with rawpy.imread(str(path)) as raw:
        np.testing.assert_array_equal(frame.cfa, raw.raw_image_visible)


# --- broken and unsupported files ---------------------------------------------------------


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.dng"
    path.write_bytes(b"")
    assert_one_line_error(path, "empty file")


def test_garbage_bytes(tmp_path: Path) -> None:
    rng = np.random.default_rng(8)
    path = tmp_path / "garbage.dng"
    path.write_bytes(b"\x89PNG" + rng.integers(0, 256, 4096, dtype=np.uint8).tobytes())
    assert_one_line_error(path, "not a TIFF/DNG file")


def test_tiff_header_then_garbage(tmp_path: Path) -> None:
    rng = np.random.default_rng(9)
    path = tmp_path / "noise.dng"
    path.write_bytes(b"II*\x00" + rng.integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(RawFormatError) as info:
        read_dng(path)
    assert str(info.value).startswith("noise.dng: ") and "\n" not in str(info.value)


def test_truncated_synthetic_strip(tmp_path: Path) -> None:
    rng = np.random.default_rng(10)
    path = write_cfa_dng(tmp_path / "cut.dng", rng.integers(0, 4096, (64, 96), dtype=np.uint16))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 100])
    assert_one_line_error(path, "truncated: raw strip 0 ends at byte")


def test_strip_shorter_than_image(tmp_path: Path) -> None:
    rng = np.random.default_rng(11)
    path = write_cfa_dng(tmp_path / "short.dng", rng.integers(0, 4096, (64, 96), dtype=np.uint16))
    with tifffile.TiffFile(path, mode="r+") as tif:
        tif.pages.first.tags["StripByteCounts"].overwrite((64 * 96 * 2 - 100,))
    assert_one_line_error(path, f"raw strip 0 has {64 * 96 * 2 - 100} bytes, expected {64 * 96 * 2}")


def test_rgb_tiff_has_no_cfa_image(tmp_path: Path) -> None:
    rng = np.random.default_rng(12)
    path = tmp_path / "photo.tif"
    tifffile.imwrite(path, rng.integers(0, 256, (20, 30, 3), dtype=np.uint8), photometric="rgb")
    assert_one_line_error(path, "no CFA raw image")


def test_linear_raw_rejected(tmp_path: Path) -> None:
    rng = np.random.default_rng(13)
    path = tmp_path / "linear.dng"
    tifffile.imwrite(path, rng.integers(0, 4096, (20, 30, 3), dtype=np.uint16), photometric=34892)
    assert_one_line_error(path, "LinearRaw")


def test_xtrans_pattern_rejected(tmp_path: Path) -> None:
    rng = np.random.default_rng(14)
    cfa = rng.integers(0, 4096, (24, 36), dtype=np.uint16)
    path = write_cfa_dng(
        tmp_path / "xtrans.dng",
        cfa,
        (33421, "H", 2, (6, 6), True),
        (33422, "B", 36, tuple(rng.integers(0, 3, 36)), True),
    )
    assert_one_line_error(path, "6x6 is not a 2x2 Bayer pattern")


def test_non_bayer_2x2_rejected(tmp_path: Path) -> None:
    rng = np.random.default_rng(15)
    cfa = rng.integers(0, 4096, (8, 8), dtype=np.uint16)
    path = write_cfa_dng(tmp_path / "rrgb.dng", cfa, (33422, "B", 4, (0, 0, 1, 2), True))
    assert_one_line_error(path, "is not a Bayer pattern")


def test_unsupported_compression(tmp_path: Path) -> None:
    rng = np.random.default_rng(16)
    cfa = rng.integers(0, 4096, (16, 16), dtype=np.uint16)
    path = write_cfa_dng(tmp_path / "deflate.dng", cfa, compression="zlib")
    assert_one_line_error(path, "unsupported raw compression 8")


def test_missing_file_is_an_os_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_dng(tmp_path / "absent.dng")


def test_zero_denominator_in_matrix(tmp_path: Path) -> None:
    rng = np.random.default_rng(17)
    cfa = rng.integers(0, 4096, (8, 8), dtype=np.uint16)
    matrix = (1, 1, 0, 1, 0, 1, 0, 1, 1, 0, 0, 1, 0, 1, 0, 1, 1, 1)  # 5th term is 1/0
    path = write_cfa_dng(tmp_path / "zero.dng", cfa, (50721, "2i", 9, matrix, True))
    assert_one_line_error(path, "ColorMatrix1 has a zero denominator")


def test_float_samples_rejected(tmp_path: Path) -> None:
    rng = np.random.default_rng(18)
    cfa = rng.random((8, 8)).astype(np.float32)
    assert_one_line_error(write_cfa_dng(tmp_path / "float.dng", cfa), "unsupported SampleFormat 3")


# --- corrupt metadata: one line naming the file, never a library's log ------------------

IDENTITY = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)


def srationals(values: tuple[float, ...]) -> tuple[int, ...]:
    return tuple(v for value in values for v in (round(value * 10000), 10000))


@pytest.mark.parametrize(
    ("matrix", "problem"),
    [
        ((1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0), "a singular matrix"),
        ((1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0), "a singular matrix"),
        ((50000.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0), "an entry beyond +-100"),
    ],
)
def test_garbage_colour_matrix_is_refused_by_name(
    tmp_path: Path, matrix: tuple[float, ...], problem: str
) -> None:
    cfa = np.random.default_rng(30).integers(0, 4096, (8, 8), dtype=np.uint16)
    path = write_cfa_dng(tmp_path / "cm.dng", cfa, (50721, "2i", 9, srationals(matrix), True))
    error = assert_one_line_error(path, f"ColorMatrix1 is unusable ({problem}")
    assert "the colours cannot be developed" in str(error)


def test_non_finite_forward_matrix_as_doubles_is_refused(tmp_path: Path) -> None:
    # A type-changed tag (SRATIONAL -> DOUBLE) reads NaN and inf.
    cfa = np.random.default_rng(31).integers(0, 4096, (8, 8), dtype=np.uint16)
    forward = (np.nan, 0.0, 0.0, 0.0, np.inf, 0.0, 0.0, 0.0, 1.0)
    path = write_cfa_dng(tmp_path / "fm.dng", cfa,
                         (50721, "2i", 9, srationals(IDENTITY), True),
                         (50964, "d", 9, forward, True))
    assert_one_line_error(path, "ForwardMatrix1 has values that are not finite")


@pytest.mark.parametrize("neutral", [(0.0, 1.0, 1.0), (2.6e-310, 2.1e-310, 2.9e-310), (1e9, 1.0, 1.0)])
def test_unusable_as_shot_neutral_is_refused(tmp_path: Path, neutral: tuple[float, ...]) -> None:
    # The denormal triple came from a fuzzed file: it used to reach the tone curve as NaN.
    cfa = np.random.default_rng(32).integers(0, 4096, (8, 8), dtype=np.uint16)
    path = write_cfa_dng(tmp_path / "wb.dng", cfa,
                         (50721, "2i", 9, srationals(IDENTITY), True),
                         (50728, "d", 3, neutral, True))
    assert_one_line_error(path, "AsShotNeutral")


def test_black_level_at_or_above_white_names_the_file(tmp_path: Path) -> None:
    cfa = np.random.default_rng(33).integers(0, 4096, (8, 8), dtype=np.uint16)
    path = write_cfa_dng(tmp_path / "levels.dng", cfa, (50714, "H", 1, 600, True),
                         (50717, "H", 1, 5, True))
    assert_one_line_error(path, "BlackLevel (600.0, 600.0, 600.0, 600.0) must lie below WhiteLevel 5.0")


def test_type_changed_tags_are_named(tmp_path: Path) -> None:
    cfa = np.random.default_rng(34).integers(0, 4096, (8, 8), dtype=np.uint16)
    text = write_cfa_dng(tmp_path / "text.dng", cfa, (50717, "s", 0, "white", True))
    assert_one_line_error(text, "WhiteLevel is text, expected numbers")
    rational = write_cfa_dng(tmp_path / "rational.dng", cfa, (50713, "2I", 2, (2, 1, 2, 1), True))
    assert_one_line_error(rational, "BlackLevelRepeatDim is of TIFF type RATIONAL, expected integers")


def test_garbage_exif_is_dropped_with_a_warning_naming_the_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # An ISO read as 4.7e18 (a type-changed tag) used to crash the JPEG writer later.
    cfa = np.random.default_rng(35).integers(0, 4096, (8, 8), dtype=np.uint16)
    path = write_cfa_dng(tmp_path / "exif.dng", cfa, (34855, "d", 1, 4.7e18, True),
                         (33434, "d", 1, np.nan, True), (33437, "2I", 1, (28, 10), True))
    with caplog.at_level("WARNING", logger="pipeline.formats.dng_reader"):
        meta = read_dng(path).metadata
    assert meta.iso is None and meta.exposure_time_s is None and meta.f_number == 2.8
    assert "exif.dng: ISOSpeedRatings 4.7e+18 ignored" in caplog.text


def test_odd_sized_image_is_cropped_to_whole_cfa_tiles(tmp_path: Path) -> None:
    cfa = np.random.default_rng(36).integers(0, 4096, (11, 13), dtype=np.uint16)
    frame = read_dng(write_cfa_dng(tmp_path / "odd.dng", cfa))
    np.testing.assert_array_equal(frame.cfa, cfa[:10, :12])


def test_image_too_small_to_develop_is_refused_by_name(tmp_path: Path) -> None:
    # Fuzzed files with a 3-row ActiveArea used to fail in demosaic without the file's name.
    cfa = np.random.default_rng(37).integers(0, 4096, (3, 1456), dtype=np.uint16)
    path = write_cfa_dng(tmp_path / "thin.dng", cfa)
    assert_one_line_error(path, "raw image of 1456x2 pixels is too small to develop")


def test_tifffile_log_is_captured_into_the_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    cfa = np.random.default_rng(38).integers(0, 4096, (16, 16), dtype=np.uint16)
    path = write_cfa_dng(tmp_path / "offset.dng", cfa)
    with tifffile.TiffFile(path) as tif:  # point StripOffsets' and CFAPattern's values nowhere
        entries = {code: tag.offset for code, tag in tif.pages.first.tags.items()}
    data = bytearray(path.read_bytes())
    data[entries[33422] + 2 : entries[33422] + 4] = (7).to_bytes(2, "little")  # type UNDEFINED
    data[entries[33422] + 4 : entries[33422] + 8] = (40).to_bytes(4, "little")  # count 40
    data[entries[33422] + 8 : entries[33422] + 12] = (10**8).to_bytes(4, "little")  # offset
    path.write_bytes(bytes(data))
    with caplog.at_level("DEBUG"):
        error = assert_one_line_error(path, "lacks CFARepeatPatternDim or CFAPattern")
    assert "; tifffile: tag 33422: invalid value offset 100000000" in str(error)
    assert not [r for r in caplog.records if r.name == "tifffile" and r.levelno >= logging.INFO]
    assert capsys.readouterr().err == ""


def test_tifffile_log_of_other_threads_is_left_alone(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("ERROR", logger="tifffile"):
        with _TIFFFILE_MESSAGES.captured() as messages:
            thread = threading.Thread(target=logging.getLogger("tifffile").error, args=("other",))
            thread.start()
            thread.join()
            logging.getLogger("tifffile").error("ours")
    assert messages == ["ours"]
    assert [r.getMessage() for r in caplog.records if r.name == "tifffile"] == ["other"]


def test_a_colour_tag_tifffile_cannot_read_is_an_error_not_lost_colour(tmp_path: Path) -> None:
    # tifffile skips a tag whose value offset points past the end; reading on without it
    # developed the file as if it had no ColorMatrix (exit 0, other colours).
    cfa = np.random.default_rng(39).integers(0, 4096, (16, 16), dtype=np.uint16)
    path = write_cfa_dng(tmp_path / "lost.dng", cfa, (50721, "2i", 9, srationals(IDENTITY), True))
    with tifffile.TiffFile(path) as tif:
        entry = tif.pages.first.tags[50721].offset
    data = bytearray(path.read_bytes())
    data[entry + 8 : entry + 12] = (10**8).to_bytes(4, "little")
    path.write_bytes(bytes(data))
    assert_one_line_error(
        path, "ColorMatrix1 (50721) is unreadable; tifffile: tag 50721: invalid value offset"
    )


def test_unusable_colour_metadata_raises_in_the_colour_code_too() -> None:
    # The develop's own guard, for metadata that did not come through a reader.
    singular = (1.0, 2.0, 3.0, 2.0, 4.0, 6.0, 0.0, 0.0, 1.0)
    metadata = CameraMetadata(CfaPattern.RGGB, (0.0,) * 4, 1023.0, color_matrix_1=singular)
    with pytest.raises(InvalidParameterError, match="colour metadata unusable"):
        camera_to_srgb_matrix(metadata, np.array([0.5, 1.0, 0.7]))
    with pytest.raises(InvalidParameterError, match="colour metadata unusable"):
        check_colour_metadata(dataclasses.replace(metadata, as_shot_neutral=(0.5, 1.0, 0.7)))
