"""JPEG encoding with EXIF and an embedded sRGB profile.

Pixels are compressed by simplejpeg (libjpeg-turbo; the encoder picamera2 itself uses),
about twice as fast here as Pillow's, in strips on the develop's threads
(:mod:`pipeline.formats.encoders.jpeg_strips`); the EXIF (APP1) and ICC profile (APP2)
segments are inserted after the JFIF header, as the JPEG/EXIF and ICC specifications lay
them out.
"""

from __future__ import annotations

import functools
import logging
import struct

import numba
import numpy as np
import numpy.typing as npt
import simplejpeg
from PIL import ImageCms

from pipeline.errors import InvalidParameterError
from pipeline.formats.encoders.exif import build_exif
from pipeline.formats.encoders.jpeg_strips import encode_in_strips
from pipeline.raw_frame import CameraMetadata

logger = logging.getLogger(__name__)

_SOI = b"\xff\xd8"
_APP0 = b"\xff\xe0"
_APP1 = b"\xff\xe1"
_APP2 = b"\xff\xe2"
_MAX_SEGMENT_PAYLOAD = 65533


@functools.cache
def srgb_icc_profile() -> bytes:
    """The ICC profile of sRGB (littleCMS's built-in), embedded so viewers need not guess."""
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def _segment(marker: bytes, payload: bytes) -> bytes:
    if len(payload) > _MAX_SEGMENT_PAYLOAD:
        raise InvalidParameterError(f"JPEG segment of {len(payload)} bytes exceeds 64 KiB")
    return marker + struct.pack(">H", len(payload) + 2) + payload


def _insert_segments(jpeg: bytes, segments: bytes) -> bytes:
    """Put ``segments`` after SOI and the JFIF APP0 segment (if there is one)."""
    position = len(_SOI)
    if jpeg[position : position + 2] == _APP0:
        (length,) = struct.unpack(">H", jpeg[position + 2 : position + 4])
        position += 2 + length
    return jpeg[:position] + segments + jpeg[position:]


def encode_jpeg(
    image: npt.NDArray[np.uint8], metadata: CameraMetadata, quality: int = 92,
    threads: int | None = None,
) -> bytes:
    """JPEG bytes of an (H, W, 3) uint8 sRGB image, compressed on ``threads`` threads (by
    default as many as this thread's numba kernels use).

    Chroma is kept at full resolution (4:4:4) at quality 90 and above, and subsampled
    4:2:0 below, as cameras do.
    """
    if not 1 <= quality <= 100:
        raise InvalidParameterError(f"quality={quality}: expected 1..100")
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise InvalidParameterError(
            f"image is {image.dtype} {image.shape}: expected (H, W, 3) uint8"
        )
    subsampling, mcu_px = ("444", (8, 8)) if quality >= 90 else ("420", (16, 16))

    def encode(pixels: npt.NDArray[np.uint8]) -> bytes:
        return simplejpeg.encode_jpeg(np.ascontiguousarray(pixels), quality=quality,
                                      colorspace="RGB", colorsubsampling=subsampling)

    threads = numba.get_num_threads() if threads is None else threads
    pixels = encode_in_strips(image, encode, mcu_px, threads)
    icc = _segment(_APP2, b"ICC_PROFILE\x00\x01\x01" + srgb_icc_profile())
    return _insert_segments(pixels, _exif_segment(metadata) + icc)


def _exif_segment(metadata: CameraMetadata) -> bytes:
    """The APP1 EXIF segment, or none (with a warning) if the EXIF cannot be written: the
    encoder runs after the develop, and losing the EXIF is better than losing the photo."""
    try:
        return _segment(_APP1, build_exif(metadata).tobytes())
    except (InvalidParameterError, struct.error, ValueError, OverflowError) as exc:
        logger.warning("JPEG written without EXIF: %s", exc)
        return b""
