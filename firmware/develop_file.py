"""Develop a raw file on disk into an image file on disk."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from hardware.storage import write_atomic
from pipeline.develop import DevelopParams, develop
from pipeline.dng_reader import read_dng
from pipeline.encoders.jpeg import encode_jpeg
from pipeline.encoders.tiff import encode_tiff16
from pipeline.output_transform import quantize

logger = logging.getLogger(__name__)


def develop_file(
    source: Path, destination: Path, params: DevelopParams, jpeg_quality: int = 92
) -> Path:
    """Read ``source`` (DNG), develop it, and write a JPEG or 16-bit TIFF atomically.

    The output type follows ``destination``'s suffix (.jpg/.jpeg or .tif/.tiff).
    """
    frame = read_dng(source)
    is_tiff = destination.suffix.lower() in (".tif", ".tiff")
    image = quantize(develop(frame, params), np.uint16 if is_tiff else np.uint8)
    if is_tiff:
        data = encode_tiff16(image, frame.metadata)
    else:
        data = encode_jpeg(image, frame.metadata, quality=jpeg_quality)
    logger.info("writing %s (%d bytes)", destination, len(data))
    return write_atomic(destination, data)
