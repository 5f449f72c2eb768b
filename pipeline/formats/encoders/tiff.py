"""16-bit TIFF encoding (tifffile), for measurement and editing."""

from __future__ import annotations

import io

import numpy as np
import numpy.typing as npt
import tifffile

from pipeline.errors import InvalidParameterError
from pipeline.formats.encoders.exif import SOFTWARE, ascii_text
from pipeline.formats.encoders.jpeg import srgb_icc_profile
from pipeline.raw_frame import CameraMetadata


def encode_tiff16(image: npt.NDArray[np.uint16], metadata: CameraMetadata) -> bytes:
    """Uncompressed RGB TIFF bytes of an (H, W, 3) uint16 sRGB image, with an sRGB profile."""
    if image.dtype != np.uint16 or image.ndim != 3 or image.shape[2] != 3:
        raise InvalidParameterError(
            f"image is {image.dtype} {image.shape}: expected (H, W, 3) uint16"
        )
    description = ascii_text(" ".join(p for p in (metadata.make, metadata.model) if p), "ImageDescription")
    buffer = io.BytesIO()
    tifffile.imwrite(
        buffer,
        image,
        photometric="rgb",
        software=SOFTWARE,
        description=description,
        iccprofile=srgb_icc_profile(),
        metadata=None,
    )
    return buffer.getvalue()
