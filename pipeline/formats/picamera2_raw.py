"""picamera2 raw buffers to and from (H, W) uint16 Bayer mosaics.

picamera2 hands a raw stream over as ``height`` rows of ``stride`` bytes (``make_array``
gives (H, stride) uint8, ``make_buffer`` the same bytes 1-D). Its Bayer format names
(``picamera2/formats.py``) come in three layouts:

``S{order}{10,12}_CSI2P``
    MIPI CSI-2 packing, as the Pi 4 (unicam) writes it: 10-bit packs 4 pixels in 5 bytes
    (the 8 high bits of each, then one byte of the four 2-bit remainders, pixel 0 in the
    lowest bits); 12-bit packs 2 pixels in 3 bytes (high bytes, then pixel 0's low nibble in
    bits 0-3 and pixel 1's in bits 4-7). Values unpack to 0 .. 2**bit_depth - 1.
``S{order}{8,10,12,16}``
    One pixel per byte (8) or per little-endian 16-bit word. On a Pi 4 the value is
    right-justified (``SRGGB12`` holds 0..4095); on a Pi 5 the PiSP front end only writes
    16-bit, left-justified (``SRGGB16`` holds the sensor value shifted up to 16 bits). The
    words are returned as they are: an unpacked format's values keep its own justification.
``{order}_PISP_COMP1``
    The Pi 5's fixed-rate lossy compression, 8 bytes per 8 pixels; Pi 5 delivers it whenever
    a ``_CSI2P`` format is asked for. Decodes to 16-bit scale like ``SRGGB16``; the codec
    is in :mod:`pipeline.formats.pisp_compression`.

Sources: picamera2 ``formats.py``, ``request.py`` (``Helpers.decompress``); rpicam-apps
``image/dng.cpp`` (unpack_10bit/12bit, ``uncompress``); libcamera
``pipeline/rpi/pisp/pisp.cpp`` (Pi 5 turns CSI2P into PISP_COMP1 and other depths into
16-bit; ``DefaultCompressionOffset = 2048``); libpisp ``compute_optimal_stride`` (64-byte
strides, compressed rows padded to 8 pixels); the Raspberry Pi kernel unicam driver
(``BPL_ALIGNMENT 32``); Linux media docs ``pixfmt-srggb10p``, ``pixfmt-srggb12p`` and
``pixfmt-srggb8-pisp-comp``; "Raspberry Pi Camera software" docs (raw pixel formats).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
from numba import njit

from pipeline.cfa import CfaPattern
from pipeline.errors import InvalidParameterError, RawFormatError
from pipeline.formats.pisp_compression import PISP_COMPRESSION_OFFSET, decode_rows, encode_rows

UNICAM_STRIDE_ALIGN_BYTES = 32
"""Pi 4 (unicam) raw row alignment: the kernel driver's ``BPL_ALIGNMENT``."""

PISP_STRIDE_ALIGN_BYTES = 64
"""Pi 5 (PiSP) row alignment: libpisp ``compute_optimal_stride``."""

Packing = Literal["unpacked", "csi2", "pisp_comp1"]

_ORDERS = "RGGB|GRBG|GBRG|BGGR"
_SENSOR_FORMAT = re.compile(rf"S({_ORDERS})(8|10|12|16)(_CSI2P)?")
_PISP_FORMAT = re.compile(rf"({_ORDERS})_PISP_COMP1")
_MONO_FORMATS = {"R8", "R10", "R12", "R16", "R8_CSI2P", "R10_CSI2P", "R12_CSI2P", "MONO_PISP_COMP1"}
_CSI2_DEPTHS = (10, 12)


@dataclass(frozen=True)
class RawFormat:
    """What a picamera2 Bayer format name says about the buffer layout.

    ``bit_depth`` is the number of significant bits of the unpacked values: 16 for the
    left-justified Pi 5 formats (``S....16`` and ``..._PISP_COMP1``).
    """

    name: str
    cfa_pattern: CfaPattern
    bit_depth: int
    packing: Packing

    @classmethod
    def parse(cls, format_name: str) -> "RawFormat":
        """Parse a picamera2 Bayer format name such as ``'SRGGB12_CSI2P'``.

        Raises
        ------
        RawFormatError
            The name is not one of picamera2's Bayer formats (monochrome formats included).
        """
        name = str(format_name)
        sensor = _SENSOR_FORMAT.fullmatch(name)
        if sensor is not None:
            order, depth, csi2 = sensor.group(1), int(sensor.group(2)), sensor.group(3)
            if csi2 and depth not in _CSI2_DEPTHS:
                raise RawFormatError(f"raw format {name!r}: CSI-2 packing is 10 or 12-bit only")
            return cls(name, CfaPattern(order), depth, "csi2" if csi2 else "unpacked")
        pisp = _PISP_FORMAT.fullmatch(name)
        if pisp is not None:
            return cls(name, CfaPattern(pisp.group(1)), 16, "pisp_comp1")
        if name in _MONO_FORMATS:
            raise RawFormatError(f"raw format {name!r} is monochrome, not a Bayer format")
        raise RawFormatError(
            f"unknown raw format {name!r}: expected a picamera2 Bayer format such as "
            "'SRGGB12_CSI2P', 'SRGGB12', 'SRGGB16' or 'RGGB_PISP_COMP1'"
        )

    def row_bytes(self, width: int) -> int:
        """Bytes a row of ``width`` pixels occupies before stride padding."""
        if self.packing == "csi2":
            return _csi2_row_bytes(width, self.bit_depth)
        if self.packing == "pisp_comp1":
            return _round_up(width, 8)
        return width if self.bit_depth == 8 else 2 * width

    def default_stride(self, width: int) -> int:
        """The stride picamera2 reports for this format: Pi 5 formats 64-, Pi 4 32-byte aligned."""
        is_pisp = self.packing == "pisp_comp1" or self.bit_depth == 16
        align = PISP_STRIDE_ALIGN_BYTES if is_pisp else UNICAM_STRIDE_ALIGN_BYTES
        return _round_up(self.row_bytes(width), align)


def cfa_pattern_of(format_name: str) -> CfaPattern:
    """Bayer order of a picamera2 raw format (``'SBGGR10_CSI2P'`` -> ``BGGR``)."""
    return RawFormat.parse(format_name).cfa_pattern


def bit_depth_of(format_name: str) -> int:
    """Significant bits of a format's unpacked values (16 for the Pi 5's left-justified ones)."""
    return RawFormat.parse(format_name).bit_depth


def unpack_raw(
    buffer: npt.ArrayLike, format_name: str, width: int, height: int, stride: int | None = None
) -> npt.NDArray[np.uint16]:
    """Unpack a picamera2 raw buffer into an (H, W) uint16 mosaic.

    Parameters
    ----------
    buffer : array_like of uint8
        (H, stride) as from ``make_array("raw")``, or 1-D as from ``make_buffer("raw")``.
    format_name : str
        The stream's picamera2 format, e.g. ``'SRGGB12_CSI2P'``, ``'SBGGR16'``,
        ``'RGGB_PISP_COMP1'``.
    width, height : int
        Image size in pixels (picamera2's ``config["raw"]["size"]``).
    stride : int, optional
        Bytes per row (``config["raw"]["stride"]``); defaults to ``buffer.shape[1]`` for a
        2-D buffer and is required for a 1-D one.

    Returns
    -------
    (H, W) uint16
        Values as the format defines them: 0 .. 2**bit_depth - 1 for CSI-2 and Pi 4 unpacked
        formats, 16-bit scale for ``S....16`` and PiSP-compressed formats.

    Raises
    ------
    RawFormatError
        Unknown format, or a buffer too small for ``height`` rows of ``stride`` bytes.
    InvalidParameterError
        A size or stride that cannot describe this format.
    """
    fmt = RawFormat.parse(format_name)
    rows = _buffer_rows(buffer, width, height, stride, fmt.row_bytes(width), fmt.name)
    if fmt.packing == "csi2":
        return unpack_csi2_packed(rows, width, height, fmt.bit_depth)
    if fmt.packing == "pisp_comp1":
        return decompress_pisp_comp1(rows, width, height)
    if fmt.bit_depth == 8:
        return rows[:, :width].astype(np.uint16)
    return unpack_unpacked16(rows, width, height)


def pack_raw(
    image: npt.NDArray[np.uint16], format_name: str, stride: int | None = None
) -> npt.NDArray[np.uint8]:
    """Lay out an (H, W) uint16 mosaic as a picamera2 buffer of ``format_name``.

    The inverse of :func:`unpack_raw` (lossy for PiSP compression). ``stride`` defaults to
    :meth:`RawFormat.default_stride`. Returns (H, stride) uint8.
    """
    fmt = RawFormat.parse(format_name)
    width = _check_image(image, fmt.bit_depth, "image")
    stride = fmt.default_stride(width) if stride is None else stride
    if fmt.packing == "csi2":
        return pack_csi2(image, fmt.bit_depth, stride)
    if fmt.packing == "pisp_comp1":
        return compress_pisp_comp1(image, stride)
    if fmt.bit_depth == 8:
        out = _zero_rows(image.shape[0], stride, fmt.row_bytes(width))
        out[:, :width] = image
        return out
    return pack_unpacked16(image, stride)


def unpack_csi2_packed(
    buffer: npt.ArrayLike, width: int, height: int, bit_depth: int, stride: int | None = None
) -> npt.NDArray[np.uint16]:
    """Unpack MIPI CSI-2 packed 10 or 12-bit rows into an (H, W) uint16 mosaic.

    A row's last group is whole even when ``width`` does not fill it (5 bytes per 4
    pixels, 3 per 2), as rpicam-apps' ``unpack_10bit``/``unpack_12bit`` read it.

    Parameters
    ----------
    buffer : array_like of uint8
        (H, stride) or 1-D bytes.
    width, height : int
        Image size in pixels.
    bit_depth : {10, 12}
        Bits per pixel.
    stride : int, optional
        Bytes per row; defaults to ``buffer.shape[1]`` for a 2-D buffer.

    Returns
    -------
    (H, W) uint16
        Values 0 .. 2**bit_depth - 1.
    """
    if bit_depth not in _CSI2_DEPTHS:
        raise InvalidParameterError(f"bit_depth={bit_depth!r}: expected 10 or 12")
    label = f"CSI-2 {bit_depth}-bit"
    rows = _buffer_rows(buffer, width, height, stride, _csi2_row_bytes(width, bit_depth), label)
    out = np.empty((height, width), dtype=np.uint16)
    _unpack_csi2(rows, bit_depth, out)
    return out


def pack_csi2(
    image: npt.NDArray[np.uint16], bit_depth: int, stride: int | None = None
) -> npt.NDArray[np.uint8]:
    """Pack an (H, W) uint16 mosaic into MIPI CSI-2 10 or 12-bit rows.

    Parameters
    ----------
    image : (H, W) uint16
        Values below ``2**bit_depth``.
    bit_depth : {10, 12}
        Bits per pixel.
    stride : int, optional
        Bytes per row; defaults to the packed row rounded up to 32 bytes, the Pi 4 unicam
        alignment (the only Pi that hands CSI-2 packed rows to picamera2).

    Returns
    -------
    (H, stride) uint8
        Padding (a partial last group, and the row tail) is zero.
    """
    if bit_depth not in _CSI2_DEPTHS:
        raise InvalidParameterError(f"bit_depth={bit_depth!r}: expected 10 or 12")
    width = _check_image(image, bit_depth, "image")
    row_bytes = _csi2_row_bytes(width, bit_depth)
    stride = _round_up(row_bytes, UNICAM_STRIDE_ALIGN_BYTES) if stride is None else stride
    out = _zero_rows(image.shape[0], stride, row_bytes)
    _pack_csi2(np.ascontiguousarray(image), bit_depth, out)
    return out


def unpack_unpacked16(
    buffer: npt.ArrayLike, width: int, height: int, stride: int | None = None
) -> npt.NDArray[np.uint16]:
    """Read rows of little-endian 16-bit words into an (H, W) uint16 mosaic.

    The words are returned unchanged: right-justified for the Pi 4's ``S....10/12``
    (0 .. 2**bits - 1), left-justified full 16-bit scale for the Pi 5's ``S....16``. Shift
    or rescale in the caller if one scale is needed for both.

    Parameters
    ----------
    buffer : array_like of uint8
        (H, stride) or 1-D bytes.
    width, height : int
        Image size in pixels.
    stride : int, optional
        Bytes per row (at least ``2 * width``); defaults to ``buffer.shape[1]`` for 2-D.

    Returns
    -------
    (H, W) uint16
    """
    rows = _buffer_rows(buffer, width, height, stride, 2 * width, "unpacked 16-bit")
    return rows[:, : 2 * width].view("<u2").astype(np.uint16)


def pack_unpacked16(
    image: npt.NDArray[np.uint16], stride: int | None = None
) -> npt.NDArray[np.uint8]:
    """Write an (H, W) uint16 mosaic as rows of little-endian 16-bit words.

    ``stride`` defaults to ``2 * W`` rounded up to 32 bytes (Pi 4 unicam, ``S....10/12``);
    :func:`pack_raw` uses 64 for the Pi 5's ``S....16``. Returns (H, stride) uint8.
    """
    width = _check_image(image, 16, "image")
    stride = _round_up(2 * width, UNICAM_STRIDE_ALIGN_BYTES) if stride is None else stride
    out = _zero_rows(image.shape[0], stride, 2 * width)
    out[:, : 2 * width] = image.astype("<u2").view(np.uint8).reshape(image.shape[0], 2 * width)
    return out


def decompress_pisp_comp1(
    buffer: npt.ArrayLike, width: int, height: int, stride: int | None = None
) -> npt.NDArray[np.uint16]:
    """Decode a PiSP compression mode 1 buffer into an (H, W) uint16 mosaic.

    Bit-exact with rpicam-apps ``uncompress`` and picamera2 ``Helpers.decompress``: the
    :data:`~pipeline.formats.pisp_compression.PISP_COMPRESSION_OFFSET` is added back and values
    saturate at 65535. The format is described in :mod:`pipeline.formats.pisp_compression`.

    Parameters
    ----------
    buffer : array_like of uint8
        (H, stride) or 1-D bytes, as picamera2 gives a ``..._PISP_COMP1`` raw stream.
    width, height : int
        Image size in pixels.
    stride : int, optional
        Bytes per row (at least ``width`` rounded up to 8); defaults to ``buffer.shape[1]``.

    Returns
    -------
    (H, W) uint16
        16-bit scale, 2048 .. 65535.
    """
    rows = _buffer_rows(buffer, width, height, stride, _round_up(width, 8), "PiSP compressed")
    out = np.empty((height, width), dtype=np.uint16)
    decode_rows(rows, PISP_COMPRESSION_OFFSET, out)
    return out


def compress_pisp_comp1(
    image16: npt.NDArray[np.uint16], stride: int | None = None
) -> npt.NDArray[np.uint8]:
    """Encode an (H, W) uint16 mosaic (16-bit scale) in PiSP compression mode 1.

    The offset (2048) is subtracted, clamping at 0; each 4-sample phase of each 8-pixel block
    is coded in the finest quantisation mode whose fields fit. Pixels past ``W`` repeat the
    row's last pixel of the same phase. For ``x >= 2048`` the round-trip error
    ``|decompress(compress(x)) - x|`` is at most half a quantisation step of the mode used:
    8 (16 above 5120) in mode 0, 32 in mode 1, 64 in mode 2, 128 (256 above 24064) in
    mode 3, so never more than 256; ``x < 2048`` decodes to 2048.

    Parameters
    ----------
    image16 : (H, W) uint16
        Mosaic on the 16-bit scale (a 12-bit sensor value shifted left by 4).
    stride : int, optional
        Bytes per row; defaults to ``W`` rounded up to 8, then to 64 bytes (libpisp).

    Returns
    -------
    (H, stride) uint8
    """
    width = _check_image(image16, 16, "image16")
    row_bytes = _round_up(width, 8)
    stride = _round_up(row_bytes, PISP_STRIDE_ALIGN_BYTES) if stride is None else stride
    out = _zero_rows(image16.shape[0], stride, row_bytes)
    encode_rows(np.ascontiguousarray(image16), PISP_COMPRESSION_OFFSET, out)
    return out


# --- validation and layout helpers -------------------------------------------------------


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def _csi2_row_bytes(width: int, bit_depth: int) -> int:
    pixels_per_group = 8 // (bit_depth - 8)  # 4 for 10-bit, 2 for 12-bit
    return -(-width // pixels_per_group) * (pixels_per_group + 1)


def _check_size(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise InvalidParameterError(f"{name}={value!r}: expected a positive integer")


def _buffer_rows(
    buffer: npt.ArrayLike,
    width: int,
    height: int,
    stride: int | None,
    row_bytes: int,
    label: str,
) -> npt.NDArray[np.uint8]:
    """``height`` rows of ``stride`` bytes of ``buffer`` as an (H, stride) uint8 view."""
    _check_size("width", width)
    _check_size("height", height)
    data = np.asarray(buffer)
    if data.dtype != np.uint8 or data.ndim not in (1, 2):
        raise InvalidParameterError(
            f"buffer: {data.ndim}-D {data.dtype} array, expected 1-D or (H, stride) uint8"
        )
    if stride is None:
        if data.ndim == 1:
            raise InvalidParameterError("stride=None: a 1-D buffer needs its stride in bytes")
        stride = data.shape[1]
    _check_size("stride", stride)
    if stride < row_bytes:
        raise InvalidParameterError(
            f"stride={stride}: a {width}-pixel {label} row needs at least {row_bytes} bytes"
        )
    if data.ndim == 2 and data.shape[1] != stride:
        raise InvalidParameterError(f"stride={stride}: buffer rows are {data.shape[1]} bytes")
    needed = height * stride
    if data.size < needed:
        raise RawFormatError(
            f"{label} buffer of {data.size} bytes is too small for {height} rows "
            f"of {stride} bytes ({needed} bytes)"
        )
    return data[:height] if data.ndim == 2 else data[:needed].reshape(height, stride)


def _check_image(image: npt.NDArray[np.uint16], bit_depth: int, name: str) -> int:
    """Validate an (H, W) uint16 mosaic with values below 2**bit_depth; return W."""
    if not isinstance(image, np.ndarray) or image.dtype != np.uint16 or image.ndim != 2:
        got = f"{image.ndim}-D {image.dtype}" if isinstance(image, np.ndarray) else type(image)
        raise InvalidParameterError(f"{name}: {got}, expected an (H, W) uint16 array")
    if image.size == 0:
        raise InvalidParameterError(f"{name}: empty {image.shape} array")
    peak = int(image.max())
    if peak >= 2**bit_depth:
        raise InvalidParameterError(
            f"{name}: maximum {peak} does not fit in {bit_depth} bits (limit {2**bit_depth - 1})"
        )
    return int(image.shape[1])


def _zero_rows(height: int, stride: int, row_bytes: int) -> npt.NDArray[np.uint8]:
    _check_size("stride", stride)
    if stride < row_bytes:
        raise InvalidParameterError(f"stride={stride}: rows need at least {row_bytes} bytes")
    return np.zeros((height, stride), dtype=np.uint8)


# --- compiled kernels ----------------------------------------------------------------------
# A whole group at a time, one loop per depth (numba vectorises these: about 10x the speed
# of one generic loop over the pixels of a group); a partial last group is zero-padded.


@njit(cache=True, nogil=True)
def _unpack_csi2(rows, bit_depth, out):
    low_bits = bit_depth - 8
    per_group = 8 // low_bits
    mask = (1 << low_bits) - 1
    height, width = out.shape
    groups = width // per_group
    for y in range(height):
        packed = rows[y]
        row = out[y]
        if bit_depth == 12:
            for g in range(groups):
                low = np.uint16(packed[3 * g + 2])
                row[2 * g] = (np.uint16(packed[3 * g]) << 4) | (low & 15)
                row[2 * g + 1] = (np.uint16(packed[3 * g + 1]) << 4) | (low >> 4)
        else:
            for g in range(groups):
                low = np.uint16(packed[5 * g + 4])
                row[4 * g] = (np.uint16(packed[5 * g]) << 2) | (low & 3)
                row[4 * g + 1] = (np.uint16(packed[5 * g + 1]) << 2) | ((low >> 2) & 3)
                row[4 * g + 2] = (np.uint16(packed[5 * g + 2]) << 2) | ((low >> 4) & 3)
                row[4 * g + 3] = (np.uint16(packed[5 * g + 3]) << 2) | (low >> 6)
        base = groups * (per_group + 1)
        for k in range(width - groups * per_group):
            high = np.int64(packed[base + k])
            low_part = (np.int64(packed[base + per_group]) >> (k * low_bits)) & mask
            row[groups * per_group + k] = (high << low_bits) | low_part


@njit(cache=True, nogil=True)
def _pack_csi2(image, bit_depth, out):
    low_bits = bit_depth - 8
    per_group = 8 // low_bits
    mask = (1 << low_bits) - 1
    height, width = image.shape
    groups = width // per_group
    for y in range(height):
        row = image[y]
        packed = out[y]
        if bit_depth == 12:
            for g in range(groups):
                a = row[2 * g]
                b = row[2 * g + 1]
                packed[3 * g] = a >> 4
                packed[3 * g + 1] = b >> 4
                packed[3 * g + 2] = (a & 15) | ((b & 15) << 4)
        else:
            for g in range(groups):
                a = row[4 * g]
                b = row[4 * g + 1]
                c = row[4 * g + 2]
                d = row[4 * g + 3]
                packed[5 * g] = a >> 2
                packed[5 * g + 1] = b >> 2
                packed[5 * g + 2] = c >> 2
                packed[5 * g + 3] = d >> 2
                packed[5 * g + 4] = (a & 3) | ((b & 3) << 2) | ((c & 3) << 4) | ((d & 3) << 6)
        if groups * per_group < width:
            base = groups * (per_group + 1)
            low = 0
            for k in range(width - groups * per_group):
                value = np.int64(row[groups * per_group + k])
                packed[base + k] = value >> low_bits
                low |= (value & mask) << (k * low_bits)
            packed[base + per_group] = low
