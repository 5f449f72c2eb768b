"""JPEG encoding with EXIF and an embedded sRGB profile (Pillow's libjpeg-turbo)."""

from __future__ import annotations

import functools
import io

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageCms

from pipeline.encoders.exif import build_exif
from pipeline.errors import InvalidParameterError
from pipeline.raw_frame import CameraMetadata


@functools.cache
def srgb_icc_profile() -> bytes:
    """The ICC profile of sRGB (littleCMS's built-in), embedded so viewers need not guess."""
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def encode_jpeg(
    image: npt.NDArray[np.uint8], metadata: CameraMetadata, quality: int = 92
) -> bytes:
    """JPEG bytes of an (H, W, 3) uint8 sRGB image.

    Chroma is kept at full resolution (4:4:4) at quality 90 and above, and subsampled
    4:2:0 below, as cameras do.
    """
    if not 1 <= quality <= 100:
        raise InvalidParameterError(f"quality={quality}: expected 1..100")
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise InvalidParameterError(
            f"image is {image.dtype} {image.shape}: expected (H, W, 3) uint8"
        )
    buffer = io.BytesIO()
    Image.fromarray(image, "RGB").save(
        buffer,
        "JPEG",
        quality=quality,
        subsampling=0 if quality >= 90 else 2,
        exif=build_exif(metadata).tobytes(),
        icc_profile=srgb_icc_profile(),
    )
    return buffer.getvalue()
