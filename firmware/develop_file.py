"""Develop raw files on disk into an image file on disk: one frame, or a burst merged first.

:func:`check_output` refuses, before any work, an output that cannot be written or that
is one of the inputs.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from hardware.storage import write_atomic
from pipeline.burst import BurstError, BurstMode, MergeMethod, check_burst
from pipeline.colour.output_transform import quantize
from pipeline.develop import DevelopParams, develop
from pipeline.errors import InvalidParameterError
from pipeline.formats.encoders.jpeg import encode_jpeg
from pipeline.formats.raw_files import read_raw
from pipeline.numba_runtime import start_numba
from pipeline.raw_frame import CameraMetadata, RawFrame

if TYPE_CHECKING:
    from firmware.lens_profiles import LensInUse
from pipeline.stage_timer import Timer, untimed

# The TIFF and DNG encoders and the burst pipeline are imported where used: a command-line
# develop of one file to JPEG does not pay for them.

logger = logging.getLogger(__name__)

#: Output suffixes of a developed image, by format.
IMAGE_SUFFIXES = {".jpg": "jpeg", ".jpeg": "jpeg", ".tif": "tiff", ".tiff": "tiff"}


def check_output(destination: Path, suffixes: Collection[str],
                 sources: Sequence[Path] = ()) -> None:
    """Refuse ``destination`` before the work starts: an unknown suffix, a folder that is
    missing or not writable, or a file that is one of ``sources`` (the same file by
    device and inode, so also through a symbolic or hard link), which writing would
    destroy.

    Raises
    ------
    InvalidParameterError
        Naming ``destination`` and the problem.
    """
    if destination.suffix.lower() not in suffixes:
        raise InvalidParameterError(
            f"{destination}: unknown output type {destination.suffix or '(none)'!r}; "
            f"use {', '.join(sorted(suffixes))}"
        )
    if destination.is_dir():
        raise InvalidParameterError(f"{destination}: is a folder; give a file name")
    folder = destination.parent
    if not folder.is_dir():
        raise InvalidParameterError(f"{destination}: no folder {folder}")
    try:  # the real test: access() says yes to root on a read-only file system
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise InvalidParameterError(
            f"{destination}: cannot write in {folder}: {exc.strerror or exc}"
        ) from None
    if destination.exists():
        for source in sources:
            if source.exists() and os.path.samefile(source, destination):
                raise InvalidParameterError(
                    f"{destination}: is the input {source}; writing it would destroy that "
                    "raw file: choose another output name"
                )


def _write_image(
    image: np.ndarray, metadata: CameraMetadata, destination: Path, jpeg_quality: int
) -> Path:
    """Quantise a developed image and write it as JPEG or 16-bit TIFF (by suffix), atomically."""
    is_tiff = destination.suffix.lower() in (".tif", ".tiff")
    pixels = quantize(image, np.uint16 if is_tiff else np.uint8)
    if is_tiff:
        from pipeline.formats.encoders.tiff import encode_tiff16

        data = encode_tiff16(pixels, metadata)
    else:
        data = encode_jpeg(pixels, metadata, quality=jpeg_quality)
    logger.info("writing %s (%d bytes)", destination, len(data))
    return write_atomic(destination, data)


def _read(source: Path, lens: LensInUse | None) -> RawFrame:
    """A raw file, as shot through ``lens`` (its EXIF fields and shading table) if given."""
    frame = read_raw(source)
    if lens is None:
        return frame
    return RawFrame(frame.cfa, lens.stamp(frame.metadata, frame.shape))


def develop_file(
    source: Path, destination: Path, params: DevelopParams, jpeg_quality: int = 92,
    timer: Timer | None = None, lens: LensInUse | None = None,
) -> Path:
    """Read ``source`` (a DNG or another camera's raw file), develop it, and write a JPEG
    or 16-bit TIFF atomically.

    The output type follows ``destination``'s suffix (.jpg/.jpeg or .tif/.tiff). ``timer``
    (a stage timer, e.g. :class:`firmware.progress.Progress`) sees each stage. ``lens``:
    the frame is developed as shot through it (:meth:`LensInUse.stamp`).
    """
    check_output(destination, IMAGE_SUFFIXES, [source])
    start_numba()
    stage = timer or untimed
    with stage("reading"):
        frame = _read(source, lens)
    image = develop(frame, params, timer)
    with stage("writing"):
        return _write_image(image, frame.metadata, destination, jpeg_quality)


def read_burst(sources: Sequence[Path], timer: Timer | None = None,
               lens: LensInUse | None = None) -> list[RawFrame]:
    """Read the raw files of a burst (as shot through ``lens``, if given); a frame that does
    not fit the others is named by its file.

    Raises
    ------
    RawFormatError
        A file is corrupt or not a raw file (named by :func:`pipeline.formats.raw_files.read_raw`).
    BurstError
        Fewer than two files, or files of different sizes or CFA patterns.
    """
    stage = timer or untimed
    frames = []
    for number, path in enumerate(sources, 1):
        with stage(f"reading {number} of {len(sources)}"):
            frames.append(_read(path, lens))
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
    timer: Timer | None = None,
    merge: MergeMethod = "kernel",
    lens: LensInUse | None = None,
) -> Path:
    """Merge the DNGs of a burst with ``merge`` (:data:`pipeline.burst.MERGE_METHODS`),
    develop the result in ``mode``, write JPEG or TIFF; ``lens`` as in :func:`develop_file`."""
    from pipeline.burst import BurstParams
    from pipeline.burst.modes import develop_burst

    check_output(destination, IMAGE_SUFFIXES, sources)
    burst_params = BurstParams.for_merge(merge)
    start_numba()
    frames = read_burst(sources, timer, lens)
    image = develop_burst(frames, mode, params, burst_params, timer=timer)
    metadata = frames[0].metadata
    del frames
    with (timer or untimed)("writing"):
        return _write_image(image, metadata, destination, jpeg_quality)


def merge_files(sources: Sequence[Path], destination: Path, timer: Timer | None = None,
                merge: MergeMethod = "kernel", linear_raw: bool = False) -> Path:
    """Merge the DNGs of a burst with ``merge`` (:data:`pipeline.burst.MERGE_METHODS`) into
    one 16-bit DNG (the reference's geometry), atomically: a mosaic, or with
    ``linear_raw`` the kernel merge's three colours as a LinearRaw DNG."""
    from pipeline.burst import BurstParams, align_and_merge, align_and_merge_rgb
    from pipeline.formats.encoders.dng import encode_dng, encode_linear_raw_dng

    check_output(destination, {".dng"}, sources)
    burst_params = BurstParams.for_merge(merge)
    if linear_raw and merge != "kernel":
        raise InvalidParameterError(f"--linear-raw needs the kernel merge, not --merge {merge}: "
                                    "the resampling merge keeps one colour per site")
    start_numba()
    frames = read_burst(sources, timer)
    if linear_raw:
        rgb, metadata = align_and_merge_rgb(frames, burst_params, timer=timer)
    else:
        merged = align_and_merge(frames, burst_params, timer=timer)
    with (timer or untimed)("writing"):
        data = encode_linear_raw_dng(rgb, metadata) if linear_raw else encode_dng(merged)
        logger.info("writing %s (%d bytes)", destination, len(data))
        return write_atomic(destination, data)
