"""Raspberry Pi PiSP raw compression, mode 1: the codec arithmetic, compiled.

The Pi 5's PiSP front end can write raw Bayer data at a fixed 8 bits per pixel
(``V4L2_PIX_FMT_PISP_COMP1_*``, picamera2 ``{order}_PISP_COMP1``). Rows are padded to a
multiple of 8 pixels; each block of 8 pixels is two little-endian 32-bit words, the first
coding pixels 0, 2, 4, 6 (one colour) and the second 1, 3, 5, 7. The 2 low bits of a word are
its quantisation mode:

* modes 0, 1, 2 quantise the four samples q0..q3 on a grid of FSD/4096 up to level 320 then
  FSD/2048 (mode 0), FSD/1024 (mode 1) or FSD/512 (mode 2), and pack fields of 2, 9, 7, 7, 7
  bits (LSB first): the mode, min(q1, q2), q2 - q1 + 64, q0 - max(0, q1 - 64) and
  q3 - max(0, q2 - 64). Mode 2 differs twice: q1, q2 both in 384..511 are coded as q1 and
  q2 - 384, and the outer samples' base max(0, q - 64) is capped at 384;
* mode 3 is a "7.5-bit" escape: 176 levels (multiples of FSD/256 up to level 94, then of
  FSD/128), each pair (q0, q1) and (q2, q3) jointly coded in 15 bits as
  ``2816 * (q0 >> 4) + 16 * q1 + (q0 & 15)``.

The front end subtracts an offset (2048 on the 16-bit scale in all Raspberry Pi drivers)
before compressing; decoders add it back and saturate at 65535.

References
----------
Linux media documentation, "Raspberry Pi PiSP compressed 8-bit Bayer formats"
(``Documentation/userspace-api/media/v4l/pixfmt-srggb8-pisp-comp.rst``), which describes
compression mode 1 of the Raspberry Pi PiSP specification. The decoder is bit-exact with rpicam-apps ``image/dng.cpp`` (``uncompress``) and picamera2
``request.py`` (``Helpers.decompress``); the encoder is written from the format description
(the finest mode whose fields fit, each sample rounded to its nearest level).
"""

from __future__ import annotations

import numpy as np
from numba import njit

PISP_COMPRESSION_OFFSET = 2048
"""Offset removed before compression and added back after (16-bit scale): libcamera's
``DefaultCompressionOffset``, rpicam-apps' ``COMPRESS_OFFSET``."""


@njit(cache=True, nogil=True)
def _dequantise(q, qmode):
    if qmode == 0:
        return 16 * q if q < 320 else 32 * (q - 160)
    if qmode == 1:
        return 64 * q
    if qmode == 2:
        return 128 * q
    return 256 * q if q < 94 else min(65535, 512 * (q - 47))


@njit(cache=True, nogil=True)
def _quantise(value, qmode):
    """Nearest level of ``qmode`` to ``value`` (0 .. 65535, offset already removed)."""
    if qmode == 0:
        return (value + 8) >> 4 if value < 5120 else ((value + 16) >> 5) + 160
    if qmode == 1:
        return (value + 32) >> 6
    if qmode == 2:
        return (value + 64) >> 7
    level = (value + 128) >> 8 if value < 24064 else ((value + 256) >> 9) + 47
    return min(level, 175)


@njit(cache=True, nogil=True)
def _decode_word(word, q):
    """Fill q[0..3] with the dequantised samples of one 32-bit word."""
    qmode = word & 3
    if qmode < 3:
        field0 = (word >> 2) & 511
        field1 = (word >> 11) & 127
        if qmode == 2 and field0 >= 384:
            q1, q2 = field0, field1 + 384
        elif field1 >= 64:
            q1, q2 = field0, field0 + field1 - 64
        else:
            q1, q2 = field0 + 64 - field1, field0
        p1, p2 = max(0, q1 - 64), max(0, q2 - 64)
        if qmode == 2:
            p1, p2 = min(384, p1), min(384, p2)
        q0 = p1 + ((word >> 18) & 127)
        q3 = p2 + ((word >> 25) & 127)
    else:
        pack0, pack1 = (word >> 2) & 32767, (word >> 17) & 32767
        q0 = (pack0 & 15) + 16 * ((pack0 >> 8) // 11)
        q1 = (pack0 >> 4) % 176
        q2 = (pack1 & 15) + 16 * ((pack1 >> 8) // 11)
        q3 = (pack1 >> 4) % 176
    q[0] = _dequantise(q0, qmode)
    q[1] = _dequantise(q1, qmode)
    q[2] = _dequantise(q2, qmode)
    q[3] = _dequantise(q3, qmode)


@njit(cache=True, nogil=True)
def _encode_fields(q0, q1, q2, q3, qmode):
    """The mode 0-2 word for quantised samples q0..q3, or -1 if a field overflows."""
    if qmode == 2 and q1 >= 384 and q2 >= 384:
        if q1 > 511 or q2 > 511:
            return -1
        field0, field1 = q1, q2 - 384
    else:
        field0, field1 = min(q1, q2), q2 - q1 + 64
        if field0 > 511 or field1 < 0 or field1 > 127:
            return -1
    p1, p2 = max(0, q1 - 64), max(0, q2 - 64)
    if qmode == 2:
        p1, p2 = min(384, p1), min(384, p2)
    field2, field3 = q0 - p1, q3 - p2
    if field2 < 0 or field2 > 127 or field3 < 0 or field3 > 127:
        return -1
    return qmode | (field0 << 2) | (field1 << 11) | (field2 << 18) | (field3 << 25)


@njit(cache=True, nogil=True)
def _encode_word(v):
    for qmode in range(3):
        word = _encode_fields(
            _quantise(v[0], qmode),
            _quantise(v[1], qmode),
            _quantise(v[2], qmode),
            _quantise(v[3], qmode),
            qmode,
        )
        if word >= 0:
            return word
    q0, q1 = _quantise(v[0], 3), _quantise(v[1], 3)
    q2, q3 = _quantise(v[2], 3), _quantise(v[3], 3)
    pack0 = 2816 * (q0 >> 4) + 16 * q1 + (q0 & 15)
    pack1 = 2816 * (q2 >> 4) + 16 * q3 + (q2 & 15)
    return 3 | (pack0 << 2) | (pack1 << 17)


@njit(cache=True, nogil=True)
def decode_rows(rows, offset, out):
    """Decode PiSP mode-1 rows into ``out``, adding ``offset`` back and saturating at 65535.

    Unchecked kernel: :func:`pipeline.formats.picamera2_raw.decompress_pisp_comp1` validates
    and calls it.

    Parameters
    ----------
    rows : (H, S) uint8
        Compressed rows, ``S >= W`` rounded up to 8.
    offset : int
        The offset the encoder removed (:data:`PISP_COMPRESSION_OFFSET`).
    out : (H, W) uint16
        Written in full.
    """
    height, width = out.shape
    q = np.empty(4, dtype=np.int64)
    for y in range(height):
        for block in range((width + 7) // 8):
            for phase in range(2):
                at = block * 8 + phase * 4
                word = (
                    np.int64(rows[y, at])
                    | (np.int64(rows[y, at + 1]) << 8)
                    | (np.int64(rows[y, at + 2]) << 16)
                    | (np.int64(rows[y, at + 3]) << 24)
                )
                _decode_word(word, q)
                for i in range(4):
                    x = block * 8 + 2 * i + phase
                    if x < width:
                        out[y, x] = min(65535, q[i] + offset)


@njit(cache=True, nogil=True)
def encode_rows(image, offset, out):
    """Encode ``image`` in PiSP mode 1 into ``out``, removing ``offset`` first.

    Unchecked kernel: :func:`pipeline.formats.picamera2_raw.compress_pisp_comp1` validates
    and calls it.

    Parameters
    ----------
    image : (H, W) uint16
        16-bit-scale samples.
    offset : int
        Subtracted before quantisation, clamping at 0.
    out : (H, S) uint8
        The first ``W`` rounded up to 8 bytes of each row are written.
    """
    height, width = image.shape
    v = np.empty(4, dtype=np.int64)
    for y in range(height):
        for block in range((width + 7) // 8):
            for phase in range(2):
                for i in range(4):
                    x = block * 8 + 2 * i + phase
                    while x >= width:
                        x -= 2
                    if x < 0:
                        x = width - 1
                    v[i] = max(0, np.int64(image[y, x]) - offset)
                word = _encode_word(v)
                at = block * 8 + phase * 4
                for b in range(4):
                    out[y, at + b] = (word >> (8 * b)) & 255
