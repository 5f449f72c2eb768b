"""Raw files: DNGs by our own reader, every other camera's raw format through LibRaw.

DNG (ours, the Pi's, phones') is read by :mod:`pipeline.formats.dng_reader`, which keeps every tag
the develop uses. Other formats (CR2/CR3, NEF, ARW, RAF, ORF, RW2, PEF...) are decoded by
LibRaw through rawpy, the reference decoder for them: the visible mosaic, its CFA pattern,
black and white levels, the camera's white balance, exposure EXIF, and the colour matrix
LibRaw carries for the camera model (Adobe's XYZ -> camera matrix for D65, i.e. a DNG
ColorMatrix). Only Bayer sensors can be developed; X-Trans, Foveon and four-colour
sensors are refused with a message saying so. rawpy is needed only for these formats.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from pipeline.cfa import CfaPattern
from pipeline.colour.matrix import check_colour_metadata
from pipeline.errors import InvalidParameterError, RawFormatError
from pipeline.formats.dng_reader import is_dng, read_dng
from pipeline.raw_frame import CameraMetadata, RawFrame, check_metadata
from pipeline.stages.demosaic import MIN_SIZE

logger = logging.getLogger(__name__)

#: EXIF LightSource code of D65, the illuminant of LibRaw's (Adobe's) camera matrices.
_D65 = 21
#: LibRaw's ``flip`` -> EXIF Orientation.
_ORIENTATION = {0: 1, 3: 3, 5: 8, 6: 6}


def read_raw(path: str | os.PathLike[str]) -> RawFrame:
    """The raw frame in ``path``: a DNG by :func:`~pipeline.formats.dng_reader.read_dng`, any other
    raw format by :func:`read_with_libraw`. Raises :class:`RawFormatError` naming the file.

    A DNG is known by its content (:func:`~pipeline.formats.dng_reader.is_dng`), whatever its name,
    so a DNG renamed .nef keeps every tag our reader maps; a file named .dng always goes to
    our reader, which says what is wrong with it.
    """
    if Path(path).suffix.lower() == ".dng" or is_dng(path):
        return read_dng(path)
    return read_with_libraw(path)


def read_with_libraw(path: str | os.PathLike[str]) -> RawFrame:
    """A Bayer raw file of any format LibRaw reads, as a :class:`RawFrame`."""
    try:
        import rawpy
    except ImportError:
        raise RawFormatError(
            f"{path}: reading {Path(path).suffix or 'this'} files needs rawpy "
            "(pip install rawpy); DNGs do not"
        ) from None
    try:
        with rawpy.imread(os.fspath(path)) as raw:
            return _frame(raw, path)
    except rawpy.LibRawError as exc:
        raise RawFormatError(f"{path}: LibRaw cannot read it: {_libraw_message(exc)}") from None
    except OSError as exc:
        raise RawFormatError(f"{path}: {exc.strerror or exc}") from None


def _libraw_message(exc: Exception) -> str:
    """rawpy's message as text (rawpy passes LibRaw's C string as bytes)."""
    parts = [a.decode("utf-8", "replace") if isinstance(a, bytes) else str(a) for a in exc.args]
    return " ".join(" ".join(parts).split()) or type(exc).__name__


def _frame(raw, path: str | os.PathLike[str]) -> RawFrame:  # noqa: ANN001 - rawpy.RawPy
    import rawpy

    if raw.raw_type != rawpy.RawType.Flat or raw.num_colors != 3 or raw.raw_pattern is None \
            or raw.raw_pattern.shape != (2, 2):
        raise RawFormatError(f"{path}: not a Bayer sensor (X-Trans, Foveon or four colours): "
                             "only Bayer raws can be developed")
    height, width = raw.raw_image_visible.shape
    if height < MIN_SIZE or width < MIN_SIZE:
        raise RawFormatError(f"{path}: raw image of {width}x{height} pixels is too small to "
                             f"develop (at least {MIN_SIZE}x{MIN_SIZE})")
    cfa = np.array(raw.raw_image_visible[: height - height % 2, : width - width % 2],
                   dtype=np.uint16)
    colours = raw.raw_colors_visible[:2, :2]
    letters = raw.color_desc.decode("ascii")
    try:
        pattern = CfaPattern.parse("".join(letters[c] for c in colours.ravel()))
    except (ValueError, IndexError):
        raise RawFormatError(f"{path}: CFA colours {letters!r} {colours.tolist()}: not RGB "
                             "Bayer") from None
    black = tuple(float(raw.black_level_per_channel[c]) for c in colours.ravel())
    multipliers = np.asarray(raw.camera_whitebalance[:3], dtype=np.float64)
    neutral = None
    if np.all(multipliers > 0):
        neutral = tuple(float(v) for v in multipliers[1] / multipliers)
    matrix = np.asarray(raw.rgb_xyz_matrix[:3], dtype=np.float64)
    has_matrix = bool(np.any(matrix))
    other = raw.other
    metadata = CameraMetadata(
        cfa_pattern=pattern,
        black_level=black,  # type: ignore[arg-type]
        white_level=float(raw.white_level),
        color_matrix_1=tuple(matrix.ravel()) if has_matrix else None,  # type: ignore[arg-type]
        calibration_illuminant_1=_D65 if has_matrix else None,
        as_shot_neutral=neutral,  # type: ignore[arg-type]
        exposure_time_s=float(other.shutter_speed) or None,
        iso=float(other.iso_speed) or None,
        f_number=float(other.aperture) or None,
        focal_length_mm=float(other.focal_length) or None,
        datetime_original=other.timestamp,
        orientation=_ORIENTATION.get(int(raw.sizes.flip), 1),
        lens_model=raw.lens.model or None,
    )
    try:
        metadata, dropped = check_metadata(metadata)
        check_colour_metadata(metadata)
    except InvalidParameterError as exc:
        raise RawFormatError(f"{path}: {exc}") from None
    for message in dropped:
        logger.warning("%s: %s", path, message)
    return RawFrame(cfa, metadata)
