"""picamera2 raw buffer layouts: CSI-2 packing, 16-bit words, PiSP compression, format names."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.cfa import CfaPattern
from pipeline.errors import InvalidParameterError, RawFormatError
from pipeline.formats.picamera2_raw import (
    RawFormat,
    bit_depth_of,
    cfa_pattern_of,
    compress_pisp_comp1,
    decompress_pisp_comp1,
    pack_csi2,
    pack_raw,
    pack_unpacked16,
    unpack_csi2_packed,
    unpack_raw,
    unpack_unpacked16,
)

ORDERS = [p.value for p in CfaPattern]


# --- CSI-2 packing ------------------------------------------------------------------------


@pytest.mark.parametrize("bit_depth", [10, 12])
@pytest.mark.parametrize("width", [16, 30, 37, 4056])
def test_csi2_round_trip_with_odd_stride(bit_depth: int, width: int) -> None:
    rng = np.random.default_rng(bit_depth * 10_000 + width)
    image = rng.integers(0, 2**bit_depth, (5, width), dtype=np.uint16)
    minimal = pack_csi2(image, bit_depth).shape[1]
    stride = minimal + 7  # deliberately odd, unaligned padding
    buffer = pack_csi2(image, bit_depth, stride)
    assert buffer.shape == (5, stride) and buffer.dtype == np.uint8
    np.testing.assert_array_equal(unpack_csi2_packed(buffer, width, 5, bit_depth), image)
    flat = buffer.ravel()  # picamera2's make_buffer gives the same bytes 1-D
    np.testing.assert_array_equal(unpack_csi2_packed(flat, width, 5, bit_depth, stride), image)


def test_csi2_10bit_byte_layout() -> None:
    # 4 pixels -> 4 high bytes, then their 2-bit remainders with pixel 0 in bits 0-1.
    image = np.array([[0x3FF, 0x000, 0x155, 0x2AA]], dtype=np.uint16)
    buffer = pack_csi2(image, 10, stride=5)
    assert buffer.tolist() == [[0xFF, 0x00, 0x55, 0xAA, 0b10_01_00_11]]
    np.testing.assert_array_equal(unpack_csi2_packed(buffer, 4, 1, 10), image)


def test_csi2_12bit_byte_layout() -> None:
    # 2 pixels -> 2 high bytes, then pixel 0's low nibble in bits 0-3 and pixel 1's in 4-7.
    image = np.array([[0xABC, 0x123]], dtype=np.uint16)
    buffer = pack_csi2(image, 12, stride=3)
    assert buffer.tolist() == [[0xAB, 0x12, 0x3C]]
    np.testing.assert_array_equal(unpack_csi2_packed(buffer, 2, 1, 12), image)


def test_csi2_default_stride_is_unicam_aligned() -> None:
    image = np.zeros((2, 4056), dtype=np.uint16)  # HQ camera full width
    assert pack_csi2(image, 12).shape == (2, 6112)  # 6084 bytes rounded up to 32
    assert pack_csi2(image, 10).shape == (2, 5088)  # 5070 bytes rounded up to 32


def test_csi2_rejects_out_of_range_values_and_depths() -> None:
    rng = np.random.default_rng(1)
    image = rng.integers(0, 1024, (2, 8), dtype=np.uint16)
    image[1, 3] = 1024
    with pytest.raises(InvalidParameterError, match="maximum 1024 does not fit in 10 bits"):
        pack_csi2(image, 10)
    with pytest.raises(InvalidParameterError, match="bit_depth=14"):
        unpack_csi2_packed(np.zeros((2, 16), np.uint8), 8, 2, 14)


# --- unpacked 16-bit words ----------------------------------------------------------------


def test_unpacked16_round_trip_with_odd_stride() -> None:
    rng = np.random.default_rng(2)
    image = rng.integers(0, 65536, (6, 27), dtype=np.uint16)
    buffer = pack_unpacked16(image, stride=2 * 27 + 5)
    np.testing.assert_array_equal(unpack_unpacked16(buffer, 27, 6), image)
    np.testing.assert_array_equal(unpack_unpacked16(buffer.ravel(), 27, 6, 59), image)


def test_unpacked16_is_little_endian_and_keeps_justification() -> None:
    buffer = np.array([[0x34, 0x12, 0xF0, 0xFF]], dtype=np.uint8)
    assert unpack_unpacked16(buffer, 2, 1).tolist() == [[0x1234, 0xFFF0]]
    pi4 = pack_raw(np.array([[4095, 7]], dtype=np.uint16), "SRGGB12")  # right-justified
    assert unpack_raw(pi4, "SRGGB12", 2, 1).tolist() == [[4095, 7]]
    pi5 = pack_raw(np.array([[4095 << 4, 7 << 4]], dtype=np.uint16), "SRGGB16")  # left
    assert unpack_raw(pi5, "SRGGB16", 2, 1).tolist() == [[65520, 112]]


def test_default_strides_per_platform() -> None:
    assert RawFormat.parse("SRGGB12").default_stride(4056) == 8128  # Pi 4: 32-byte
    assert RawFormat.parse("SRGGB16").default_stride(2028) == 4096  # Pi 5: 64-byte
    assert RawFormat.parse("RGGB_PISP_COMP1").default_stride(4056) == 4096
    assert RawFormat.parse("RGGB_PISP_COMP1").default_stride(1332) == 1344


# --- format names and dispatch ------------------------------------------------------------


@pytest.mark.parametrize("order", ORDERS)
def test_cfa_pattern_from_every_format_family(order: str) -> None:
    for name in (f"S{order}10_CSI2P", f"S{order}12_CSI2P", f"S{order}12", f"S{order}16",
                 f"S{order}8", f"{order}_PISP_COMP1"):  # fmt: skip
        assert cfa_pattern_of(name) == CfaPattern(order)


def test_bit_depths() -> None:
    assert bit_depth_of("SBGGR10_CSI2P") == 10
    assert bit_depth_of("SRGGB12_CSI2P") == 12
    assert bit_depth_of("SGRBG12") == 12
    assert bit_depth_of("SGBRG16") == 16
    assert bit_depth_of("SRGGB8") == 8
    assert bit_depth_of("BGGR_PISP_COMP1") == 16


@pytest.mark.parametrize(
    ("name", "match"),
    [
        ("YUV420", "unknown raw format 'YUV420'"),
        ("SRGGB14_CSI2P", "unknown raw format"),
        ("SRGGB8_CSI2P", "10 or 12-bit only"),
        ("R10_CSI2P", "monochrome"),
        ("MONO_PISP_COMP1", "monochrome"),
        ("srggb12", "unknown raw format"),
    ],
)
def test_bad_format_names(name: str, match: str) -> None:
    with pytest.raises(RawFormatError, match=match):
        cfa_pattern_of(name)
    with pytest.raises(RawFormatError, match=match):
        unpack_raw(np.zeros((2, 64), np.uint8), name, 8, 2)


@pytest.mark.parametrize(
    "name",
    ["SRGGB10_CSI2P", "SGRBG12_CSI2P", "SBGGR10", "SGBRG12", "SRGGB8", "SBGGR16"],
)
def test_lossless_formats_round_trip(name: str) -> None:
    rng = np.random.default_rng(sum(map(ord, name)))
    image = rng.integers(0, 2 ** bit_depth_of(name), (4, 42), dtype=np.uint16)
    buffer = pack_raw(image, name)
    assert buffer.shape == (4, RawFormat.parse(name).default_stride(42))
    np.testing.assert_array_equal(unpack_raw(buffer, name, 42, 4), image)
    np.testing.assert_array_equal(unpack_raw(buffer.ravel(), name, 42, 4, buffer.shape[1]), image)


def test_buffer_too_small_names_format_and_size() -> None:
    buffer = np.zeros(100, dtype=np.uint8)
    with pytest.raises(RawFormatError, match=r"SRGGB12_CSI2P buffer of 100 bytes .* 2 rows of 64"):
        unpack_raw(buffer, "SRGGB12_CSI2P", 40, 2, 64)
    with pytest.raises(RawFormatError, match="RGGB_PISP_COMP1 buffer of 100 bytes"):
        unpack_raw(buffer, "RGGB_PISP_COMP1", 40, 2, 64)
    with pytest.raises(RawFormatError, match=r"SRGGB16 buffer of 100 bytes .* \(200 bytes\)"):
        unpack_raw(buffer.reshape(1, 100), "SRGGB16", 40, 2)  # 1 row of a 2-row image
    with pytest.raises(RawFormatError, match="CSI-2 10-bit buffer of 100 bytes"):
        unpack_csi2_packed(buffer, 40, 2, 10, 64)
    with pytest.raises(RawFormatError, match="PiSP compressed buffer of 100 bytes"):
        decompress_pisp_comp1(buffer, 40, 2, 64)
    with pytest.raises(RawFormatError, match="unpacked 16-bit buffer of 100 bytes"):
        unpack_unpacked16(buffer, 40, 2, 80)


def test_bad_buffer_parameters() -> None:
    with pytest.raises(InvalidParameterError, match="stride=None"):
        unpack_raw(np.zeros(256, np.uint8), "SRGGB12_CSI2P", 8, 2)
    with pytest.raises(InvalidParameterError, match="stride=10: a 8-pixel SRGGB12_CSI2P row needs"):
        unpack_raw(np.zeros(256, np.uint8), "SRGGB12_CSI2P", 8, 2, 10)
    with pytest.raises(InvalidParameterError, match="stride=32: buffer rows are 64 bytes"):
        unpack_raw(np.zeros((2, 64), np.uint8), "SRGGB12_CSI2P", 8, 2, 32)
    with pytest.raises(InvalidParameterError, match="uint16 array, expected 1-D or"):
        unpack_raw(np.zeros((2, 32), np.uint16), "SRGGB16", 8, 2)
    with pytest.raises(InvalidParameterError, match="width=0"):
        unpack_raw(np.zeros((2, 32), np.uint8), "SRGGB16", 0, 2)


# --- PiSP compression mode 1 --------------------------------------------------------------

# Words decoded by hand from the format description (fields 2, 9, 7, 7, 7 bits, LSB first;
# mode 3 pairs 2816 * (q0 >> 4) + 16 * q1 + (q0 & 15)), each value + 2048 and capped at 65535.
KNOWN_WORDS = [
    # all-zero word: mode 0, field1 = 0 < 64 -> q1 = 64, q2 = 0 -> 16 * 64 = 1024
    (0x0000_0000, [2048, 3072, 2048, 2048]),
    # mode 1: min 100, delta 70 -> (q1, q2) = (100, 106); outer 36 + 5, 42 + 10; step 64
    (1 | 100 << 2 | 70 << 11 | 5 << 18 | 10 << 25, [4672, 8448, 8832, 5376]),
    # mode 0 above level 320: q = (336, 400, 400, 339) -> 32 * (q - 160)
    (0 | 400 << 2 | 64 << 11 | 0 << 18 | 3 << 25, [7680, 9728, 9728, 7776]),
    # mode 2, both middle samples in 384..511: q1 = 400, q2 = 384 + 20; outer base capped 384
    (2 | 400 << 2 | 20 << 11 | 7 << 18 | 127 << 25, [45952, 53248, 53760, 61824]),
    # mode 3: (q0, q1) = (100, 20), (q2, q3) = (0, 175): 512 * (100 - 47), 256 * 20, 0, saturated
    (3 | (2816 * 6 + 16 * 20 + 4) << 2 | (16 * 175) << 17, [29184, 7168, 2048, 65535]),
    # all ones: mode 3 with out-of-range levels q0 = 191 (saturates) and q1 = 111
    (0xFFFF_FFFF, [65535, 34816, 65535, 34816]),
]


def _block(even_word: int, odd_word: int) -> list[int]:
    return list(even_word.to_bytes(4, "little") + odd_word.to_bytes(4, "little"))


def test_pisp_decoder_matches_hand_decoded_words() -> None:
    for (even, even_values), (odd, odd_values) in zip(KNOWN_WORDS, KNOWN_WORDS[1:] + KNOWN_WORDS[:1]):
        buffer = np.array([_block(even, odd)], dtype=np.uint8)
        decoded = decompress_pisp_comp1(buffer, 8, 1)
        assert decoded[0, 0::2].tolist() == even_values  # first word: pixels 0, 2, 4, 6
        assert decoded[0, 1::2].tolist() == odd_values  # second word: pixels 1, 3, 5, 7


def test_pisp_decoder_crops_padded_row() -> None:
    row = _block(*[w for w, _ in KNOWN_WORDS[1:3]]) + _block(*[w for w, _ in KNOWN_WORDS[3:5]])
    buffer = np.array([row + [0] * 48], dtype=np.uint8)  # 64-byte stride
    decoded = decompress_pisp_comp1(buffer, 13, 1)
    assert decoded.shape == (1, 13)
    assert decoded[0, 8:].tolist() == [45952, 29184, 53248, 7168, 53760]


def _mode_of_each_pixel(buffer: np.ndarray, width: int) -> np.ndarray:
    blocks = -(-width // 8)
    words = np.ascontiguousarray(buffer[:, : 8 * blocks]).view("<u4")  # (H, 2 * blocks)
    modes = (words & 3).reshape(buffer.shape[0], blocks, 2)
    return np.repeat(modes[:, :, None, :], 4, axis=2).reshape(buffer.shape[0], -1)[:, :width]


def _error_bound(mode: np.ndarray, value: np.ndarray) -> np.ndarray:
    """Half the level spacing of the mode used (value: input minus the 2048 offset)."""
    fine0 = np.where(value >= 5120, 16, 8)
    fine3 = np.where(value >= 24064, 256, 128)
    return np.choose(mode, [fine0, np.full_like(value, 32), np.full_like(value, 64), fine3])


@pytest.mark.parametrize("width", [8, 37, 256])
def test_pisp_round_trip_within_documented_bound(width: int) -> None:
    rng = np.random.default_rng(width)
    full_range = rng.integers(0, 65536, (8, width))
    smooth = 6000 + np.cumsum(rng.integers(-40, 41, (8, width)), axis=1)
    steps = np.where(rng.random((8, width)) < 0.5, 3000, 40000) + rng.integers(0, 200, (8, width))
    image = np.concatenate([full_range, smooth, steps]).astype(np.uint16)
    stride = -(-width // 8) * 8 + 24
    buffer = compress_pisp_comp1(image, stride)
    assert buffer.shape == (24, stride)
    decoded = decompress_pisp_comp1(buffer, width, 24)
    expected = np.maximum(image, 2048).astype(np.int64)
    error = np.abs(decoded.astype(np.int64) - expected)
    value = expected - 2048
    assert np.all(error <= _error_bound(_mode_of_each_pixel(buffer, width), value))
    assert error.max() <= 256
    assert np.all(decoded[image < 2048] == 2048)
    assert np.all(error[8:16] <= 16)  # a smooth signal stays in the fine mode 0


def test_pisp_via_format_name_and_default_stride() -> None:
    rng = np.random.default_rng(3)
    image = (rng.integers(0, 4096, (4, 100), dtype=np.uint16) << 4).astype(np.uint16)
    buffer = pack_raw(image, "GBRG_PISP_COMP1")
    assert buffer.shape == (4, 128)
    decoded = unpack_raw(buffer, "GBRG_PISP_COMP1", 100, 4)
    assert np.abs(decoded.astype(np.int64) - np.maximum(image, 2048)).max() <= 256


def test_pisp_stride_too_small() -> None:
    rng = np.random.default_rng(4)
    image = rng.integers(0, 65536, (2, 13), dtype=np.uint16)
    with pytest.raises(InvalidParameterError, match="stride=8: rows need at least 16 bytes"):
        compress_pisp_comp1(image, stride=8)
