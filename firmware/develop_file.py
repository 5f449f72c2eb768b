"""Develop raw files on disk into an image file on disk: one frame, or a burst merged first."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from hardware.storage import write_atomic
from pipeline.burst import BurstError, BurstMode, align_and_merge, check_burst
from pipeline.burst.modes import develop_burst
from pipeline.develop import DevelopParams, develop
from pipeline.encoders.dng import encode_dng
from pipeline.encoders.jpeg import encode_jpeg
from pipeline.encoders.tiff import encode_tiff16
from pipeline.output_transform import quantize
from pipeline.raw_files import read_raw
from pipeline.raw_frame import CameraMetadata, RawFrame

logger = logging.getLogger(__name__)


def _write_image(
    image: np.ndarray, metadata: CameraMetadata, destination: Path, jpeg_quality: int
) -> Path:
    """Quantise a developed image and write it as JPEG or 16-bit TIFF (by suffix), atomically."""
    is_tiff = destination.suffix.lower() in (".tif", ".tiff")
    pixels = quantize(image, np.uint16 if is_tiff else np.uint8)
    if is_tiff:
        data = encode_tiff16(pixels, metadata)
    else:
        data = encode_jpeg(pixels, metadata, quality=jpeg_quality)
    logger.info("writing %s (%d bytes)", destination, len(data))
    return write_atomic(destination, data)


def develop_file(
    source: Path, destination: Path, params: DevelopParams, jpeg_quality: int = 92
) -> Path:
    """Read ``source`` (a DNG or another camera's raw file), develop it, and write a JPEG
    or 16-bit TIFF atomically.

    The output type follows ``destination``'s suffix (.jpg/.jpeg or .tif/.tiff).
    """
    frame = read_raw(source)
    return _write_image(develop(frame, params), frame.metadata, destination, jpeg_quality)


def read_burst(sources: Sequence[Path]) -> list[RawFrame]:
    """Read the raw files of a burst; a frame that does not fit the others is named by its
    file.

    Raises
    ------
    RawFormatError
        A file is corrupt or not a raw file (named by :func:`pipeline.raw_files.read_raw`).
    BurstError
        Fewer than two files, or files of different sizes or CFA patterns.
    """
    frames = [read_raw(path) for path in sources]
    try:
        check_burst(frames)
    except BurstError as exc:
        if exc.frame_index is None:
            raise
        raise BurstError(f"{sources[exc.frame_index]}: {exc}", exc.frame_index) from None
    return frames


def develop_burst_files(
    sources: Sequence[Path],
    destination: Path,
    params: DevelopParams,
    mode: BurstMode = "burst",
    jpeg_quality: int = 92,
) -> Path:
    """Merge the DNGs of a burst, develop the result in ``mode``, write JPEG or TIFF."""
    frames = read_burst(sources)
    image = develop_burst(frames, mode, params)
    metadata = frames[0].metadata
    del frames
    return _write_image(image, metadata, destination, jpeg_quality)


def merge_files(sources: Sequence[Path], destination: Path) -> Path:
    """Merge the DNGs of a burst into one 16-bit DNG (the reference's geometry), atomically."""
    merged = align_and_merge(read_burst(sources))
    data = encode_dng(merged)
    logger.info("writing %s (%d bytes)", destination, len(data))
    return write_atomic(destination, data)
