"""One baseline JPEG encoded as horizontal strips on several threads, joined at restart
markers.

A baseline JPEG's entropy-coded data depends on what came before only through the DC
predictions, and a restart marker (RSTm, with a DRI segment giving the interval in MCUs)
resets those (ITU-T T.81, sec. B.2.4.4 and F.1.2.3). So strips of whole MCU rows, each encoded
as a JPEG of its own with the same settings, are one image's scan once their entropy-coded
segments are put one after another with RST0, RST1, ... between them, behind the first
strip's headers with the full height and a DRI of one strip's MCUs. Every 8x8 block is
transformed and quantised exactly as in a whole-image encode, so the pixels decode the
same. libjpeg-turbo (simplejpeg) releases the GIL while it compresses, so the strips run
on threads; elsewhere they run one after another, at the same cost as one encode.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import numpy.typing as npt

from pipeline.errors import InvalidParameterError

#: Markers (T.81 Table B.1).
_SOI, _SOF0, _DRI, _SOS, _EOI, _RST0 = 0xD8, 0xC0, 0xDD, 0xDA, 0xD9, 0xD0
#: A DRI's restart interval is a 16-bit count of MCUs.
_MAX_RESTART_INTERVAL = 0xFFFF

#: ``encode(pixels) -> JPEG bytes`` of one strip, all strips with the same settings.
StripEncoder = Callable[[npt.NDArray[np.uint8]], bytes]


def strip_rows(height: int, width: int, mcu_px: tuple[int, int], threads: int) -> int:
    """Rows per strip: whole MCU rows (``mcu_px`` = (height, width) of an MCU), few enough
    MCUs for a DRI interval, and as many strips as a multiple of ``threads`` needs, so
    that every thread gets the same share."""
    mcu_h, mcu_w = mcu_px
    mcu_rows = -(-height // mcu_h)
    most = max(1, _MAX_RESTART_INTERVAL // -(-width // mcu_w))  # MCU rows in an interval
    strips = threads * -(-mcu_rows // (most * threads))
    return mcu_h * -(-mcu_rows // strips)


def encode_in_strips(
    image: npt.NDArray[np.uint8], encode: StripEncoder, mcu_px: tuple[int, int], threads: int
) -> bytes:
    """JPEG bytes of ``image`` (H, W, C), encoded by ``encode`` in strips on ``threads``
    threads and joined at restart markers; one plain encode when one strip would do.

    ``mcu_px`` is the (height, width) of the encoder's MCU: 8 x 8 without chroma
    subsampling, 16 x 16 for 4:2:0.
    """
    height, width = image.shape[:2]
    rows = strip_rows(height, width, mcu_px, max(1, threads))
    if threads <= 1 or rows >= height:
        return encode(image)
    starts = range(0, height, rows)
    with ThreadPoolExecutor(min(threads, len(starts))) as pool:
        encoded = list(pool.map(lambda y: encode(image[y : y + rows]), starts))
    interval = (rows // mcu_px[0]) * -(-width // mcu_px[1])
    return join_strips(encoded, height, interval)


def _segments(jpeg: bytes) -> tuple[list[tuple[int, bytes]], int]:
    """The marker segments before the scan, as (marker, whole segment), and where the
    entropy-coded data starts (after the SOS segment)."""
    segments, position = [], 2  # after SOI
    while True:
        if jpeg[position] != 0xFF:
            raise InvalidParameterError(f"JPEG strip: no marker at byte {position}")
        marker = jpeg[position + 1]
        (length,) = struct.unpack(">H", jpeg[position + 2 : position + 4])
        end = position + 2 + length
        segments.append((marker, jpeg[position:end]))
        if marker == _SOS:
            return segments, end
        position = end


def _with_height(sof: bytes, height: int) -> bytes:
    # SOF: marker, length, precision, then the number of lines (T.81 B.2.2).
    return sof[:5] + struct.pack(">H", height) + sof[7:]


def join_strips(strips: list[bytes], height: int, interval: int) -> bytes:
    """One JPEG of ``height`` rows from baseline JPEG ``strips`` of the same width and
    settings, each but the last ``interval`` MCUs, in order from the top."""
    header: list[bytes] = []
    scans = []
    for number, strip in enumerate(strips):
        segments, start = _segments(strip)
        markers = [m for m, _ in segments]
        if _SOF0 not in markers or _DRI in markers or strip[-2:] != bytes((0xFF, _EOI)):
            raise InvalidParameterError(f"JPEG strip {number}: not one baseline scan")
        tables = [_with_height(s, height) if m == _SOF0 else s for m, s in segments]
        if number == 0:
            header = tables
        elif tables != header:
            raise InvalidParameterError(f"JPEG strip {number}: not encoded like the first")
        if number:
            scans.append(bytes((0xFF, _RST0 + (number - 1) % 8)))
        scans.append(strip[start:-2])
    dri = struct.pack(">BBHH", 0xFF, _DRI, 4, interval)
    return b"".join([bytes((0xFF, _SOI)), *header[:-1], dri, header[-1], *scans,
                     bytes((0xFF, _EOI))])
