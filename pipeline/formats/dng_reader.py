"""Read a DNG file into a :class:`~pipeline.raw_frame.RawFrame`.

tifffile parses the TIFF structure and decodes the raw strips or tiles (bit-packed 10/12/14-bit
samples, and lossless JPEG through imagecodecs); this module finds the CFA image, checks that
all its data are in the file, and maps the DNG tags onto :class:`CameraMetadata`.

Reference: Adobe, *Digital Negative (DNG) Specification* 1.4.0.0 (2012), the DNG tag chapter;
https://helpx.adobe.com/camera-raw/digital-negative.html
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import math
import numbers
import os
import re
import struct
import threading
from collections.abc import Callable, Iterator, Sequence
from enum import IntEnum
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import tifffile

from pipeline.cfa import CfaPattern
from pipeline.colour.matrix import check_colour_metadata
from pipeline.errors import InvalidParameterError, RawFormatError
from pipeline.formats.gain_map import lens_shading_from_opcodes
from pipeline.raw_frame import (
    CameraMetadata,
    LensShadingMap,
    Matrix3x3,
    RawFrame,
    check_metadata,
)
from pipeline.stages.demosaic import MIN_SIZE

logger = logging.getLogger(__name__)

_TIFF_SIGNATURES = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
_PHOTOMETRIC_CFA = 32803
_PHOTOMETRIC_LINEAR_RAW = 34892
_COMPRESSIONS = frozenset({1, 7})  # uncompressed, lossless JPEG (decoded by imagecodecs)
_RATIONAL_TYPES = (5, 10)  # TIFF RATIONAL, SRATIONAL: stored as (numerator, denominator) pairs
_ASCII_TYPE = 2
_DNG_VERSION_TAG = 50706
_MAX_IFD0_ENTRIES = 4096
_TIFFFILE_TAG_CODE = re.compile(r"TiffTag (\d+) @|for tag #(\d+)")
_TIFFFILE_TAG_ERROR = re.compile(
    r"<TiffTag\.fromfile> raised \w+\('<tifffile\.TiffTag (\d+) @\d+> (.*)'\)"
)
_MAX_SUBIFD_DEPTH = 4
_EXIF_DATETIME_FORMAT = "%Y:%m:%d %H:%M:%S"
#: The black level the Raspberry Pi's ISP assumes for a sensor whose tuning gives none, in
#: 16-bit units ("64 in 10 bits scaled to 16 bits": libcamera,
#: src/ipa/rpi/controller/rpi/black_level.cpp).
PI_DEFAULT_BLACK_16_BIT = 4096
#: Software tags of the Raspberry Pi's DNG writers, lower case.
_PI_DNG_WRITERS = ("pidng", "picamera2", "rpicam", "libcamera")


class _Tag(IntEnum):
    """TIFF, TIFF/EP, EXIF and DNG tag codes read here."""

    MAKE = 271
    MODEL = 272
    ORIENTATION = 274
    SOFTWARE = 305
    CFA_REPEAT_PATTERN_DIM = 33421
    CFA_PATTERN = 33422
    EXPOSURE_TIME = 33434
    F_NUMBER = 33437
    EXIF_IFD = 34665
    ISO_SPEED_RATINGS = 34855
    DATE_TIME_ORIGINAL = 36867
    FOCAL_LENGTH = 37386
    FOCAL_LENGTH_IN_35MM_FILM = 41989
    LENS_MODEL = 42036
    CFA_PLANE_COLOR = 50710
    LINEARIZATION_TABLE = 50712
    BLACK_LEVEL_REPEAT_DIM = 50713
    BLACK_LEVEL = 50714
    BLACK_LEVEL_DELTA_H = 50715
    BLACK_LEVEL_DELTA_V = 50716
    WHITE_LEVEL = 50717
    COLOR_MATRIX_1 = 50721
    COLOR_MATRIX_2 = 50722
    CAMERA_CALIBRATION_1 = 50723
    CAMERA_CALIBRATION_2 = 50724
    AS_SHOT_NEUTRAL = 50728
    BASELINE_EXPOSURE = 50730
    CALIBRATION_ILLUMINANT_1 = 50778
    CALIBRATION_ILLUMINANT_2 = 50779
    ACTIVE_AREA = 50829
    FORWARD_MATRIX_1 = 50964
    FORWARD_MATRIX_2 = 50965
    OPCODE_LIST_2 = 51009
    NOISE_PROFILE = 51041


#: Tags whose loss changes the image (the structure, levels, pattern and colour).
_IMAGE_TAGS = frozenset(
    {254, 256, 257, 258, 259, 262, 273, 277, 278, 279, 322, 323, 324, 325, 330, 339}
    | {
        int(tag)
        for tag in _Tag
        if tag.name.startswith(("CFA_", "BLACK_", "WHITE_", "COLOR_", "CAMERA_", "AS_SHOT",
                                "BASELINE", "CALIBRATION", "ACTIVE", "FORWARD", "LINEAR"))
    }
)


class _DngProblem(Exception):
    """Internal: what is wrong with the file; :func:`read_dng` prefixes the file name."""


class _TifffileMessages(logging.Filter):
    """Keeps tifffile's log records away from the user while this thread reads a DNG.

    tifffile logs (at ERROR) every malformed tag it skips; while :meth:`captured` is active
    in a thread, the records that thread logs are collected instead of emitted, so a
    failed read can say what tifffile saw, in its one-line error. Other threads' records
    pass through untouched.
    """

    def __init__(self) -> None:
        super().__init__()
        self._local = threading.local()

    @contextlib.contextmanager
    def captured(self) -> Iterator[list[str]]:
        """Collect this thread's tifffile messages into the yielded list."""
        logging.getLogger("tifffile").addFilter(self)  # no-op once added
        outer = getattr(self._local, "messages", None)
        self._local.messages = messages = []
        try:
            yield messages
        finally:
            self._local.messages = outer

    def filter(self, record: logging.LogRecord) -> bool:
        messages = getattr(self._local, "messages", None)
        if messages is None:
            return True
        messages.append(" ".join(record.getMessage().split()))
        return False


_TIFFFILE_MESSAGES = _TifffileMessages()


def is_dng(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` holds a DNG by its content: a TIFF header and a DNGVersion tag in
    IFD0 (DNG specification, chapter 4), whatever its name. Unreadable files give False."""
    try:
        with open(path, "rb") as fh:
            header = fh.read(8)
            if len(header) < 8 or header[:4] not in _TIFF_SIGNATURES[:2]:
                return False
            order = "<" if header[:2] == b"II" else ">"
            (offset,) = struct.unpack(order + "I", header[4:])
            fh.seek(offset)
            count_bytes = fh.read(2)
            if len(count_bytes) < 2:
                return False
            (count,) = struct.unpack(order + "H", count_bytes)
            entries = fh.read(12 * min(count, _MAX_IFD0_ENTRIES))
    except OSError:
        return False
    tags = struct.unpack_from(order + "H10x" * (len(entries) // 12), entries)
    return _DNG_VERSION_TAG in tags


def read_dng(path: str | os.PathLike[str]) -> RawFrame:
    """Read the raw CFA mosaic and its metadata from a DNG file.

    The raw image is the IFD (IFD0 or any SubIFD, searched depth first) with
    PhotometricInterpretation CFA (32803) and NewSubfileType 0. If it has an ActiveArea the
    mosaic is cropped to it (and to whole 2x2 tiles), and a LinearizationTable is applied;
    DefaultCrop is not. The CFA pattern and the BlackLevel
    pattern are both taken relative to the top-left of the ActiveArea, as the DNG SDK
    (``dng_mosaic_info``, which applies CFAPattern to the active-area stage-2 image) and
    LibRaw do. Tags missing from the file get DNG defaults: black 0, white
    ``2**BitsPerSample - 1``, and ``None`` for matrices, neutral and EXIF values.

    Parameters
    ----------
    path : str or os.PathLike
        The DNG file.

    Returns
    -------
    RawFrame
        ``cfa`` is the (H, W) uint16 mosaic, with H, W those of the ActiveArea if any.

    Raises
    ------
    RawFormatError
        The file is empty, not a TIFF, truncated or corrupt, holds no CFA image, or uses a
        CFA pattern, sample format or compression this reader does not handle; or its
        black/white levels or colour tags are unusable
        (:func:`~pipeline.raw_frame.check_metadata`). The message is one line that starts
        with the file name, and ends with the first problem tifffile met, if any.
        tifffile's own log records never reach the user; EXIF values that are not finite
        or out of range are dropped with a warning naming the file.
    OSError
        The file cannot be opened.
    """
    name = Path(path).name
    with open(path, "rb") as fh:
        signature = fh.read(4)
        file_size = os.fstat(fh.fileno()).st_size
    if file_size == 0:
        raise RawFormatError(f"{name}: empty file (0 bytes)")
    if signature not in _TIFF_SIGNATURES:
        raise RawFormatError(f"{name}: not a TIFF/DNG file (starts with {signature!r})")
    warnings: list[str] = []
    with _TIFFFILE_MESSAGES.captured() as tifffile_messages:
        try:
            with tifffile.TiffFile(path) as tif:
                frame = _read_raw_frame(tif, file_size, warnings)
        except _DngProblem as exc:
            problem = str(exc)
        except Exception as exc:  # tifffile, struct, numpy and imagecodecs errors on corrupt data
            problem = f"corrupt TIFF structure or data ({type(exc).__name__}: {exc})"
        else:
            problem = ""
    if problem and tifffile_messages:
        problem += f"; tifffile: {_shorter(tifffile_messages[0])}"
    problem = problem or _unreadable_image_tag(tifffile_messages)
    if problem:
        raise RawFormatError(f"{name}: {' '.join(problem.split())[:300]}") from None
    for message in tifffile_messages:
        logger.debug("%s: tifffile: %s", name, message)
    try:
        metadata, dropped = check_metadata(frame.metadata)
        check_colour_metadata(metadata)
    except InvalidParameterError as exc:
        raise RawFormatError(f"{name}: {exc}") from None
    for message in warnings + dropped:
        logger.warning("%s: %s", name, message)
    return RawFrame(frame.cfa, metadata)


def _unreadable_image_tag(tifffile_messages: list[str]) -> str:
    """The first tag tifffile skipped as unreadable that decides the image (so reading on
    without it would develop the file wrongly, e.g. without its colour), as a problem; ""
    when tifffile skipped none of them."""
    for message in tifffile_messages:
        for match in _TIFFFILE_TAG_CODE.finditer(message):
            code = int(match.group(1) or match.group(2))
            if code in _IMAGE_TAGS:
                tag = tifffile.TIFF.TAGS.get(code, "tag")
                return f"{tag} ({code}) is unreadable; tifffile: {_shorter(message)}"
    return ""


def _shorter(message: str) -> str:
    """tifffile's message about a tag it skipped, without its object reprs."""
    return _TIFFFILE_TAG_ERROR.sub(r"tag \1: \2", message)


def _read_raw_frame(tif: tifffile.TiffFile, file_size: int, warnings: list[str]) -> RawFrame:
    """The frame in ``tif``; what the frame is read without is appended to ``warnings``."""
    if not tif.pages:
        raise _DngProblem("no readable IFD (bad offset to IFD0)")
    ifd0 = tif.pages.first
    raw = _find_raw_ifd(tif)
    raw_first = (raw, ifd0)  # where raw-image tags belong (DNG: in the raw IFD)
    ifd0_first = (ifd0, raw)  # where camera-wide tags belong (DNG: in IFD0)
    bits = _check_layout(raw)
    _check_data_present(raw, file_size)

    cfa = raw.asarray()
    height, width = int(raw.imagelength), int(raw.imagewidth)
    if cfa.shape != (height, width):
        raise _DngProblem(f"decoded raw image has shape {cfa.shape}, expected {(height, width)}")
    top, left, bottom, right = _active_area(raw, height, width)
    bottom -= (bottom - top) % 2  # whole 2x2 tiles: the pattern stays relative to top-left
    right -= (right - left) % 2
    if bottom - top < MIN_SIZE or right - left < MIN_SIZE:
        raise _DngProblem(
            f"raw image of {right - left}x{bottom - top} pixels is too small to develop "
            f"(at least {MIN_SIZE}x{MIN_SIZE})"
        )
    cfa = np.ascontiguousarray(cfa[top:bottom, left:right], dtype=np.uint16)
    table_tag = raw.tags.get(_Tag.LINEARIZATION_TABLE)
    if table_tag is not None:  # values past the table's end map to its last entry
        table = _linearization_table(table_tag)
        cfa = table[np.minimum(cfa, table.size - 1)]

    exif = ifd0.tags.valueof(_Tag.EXIF_IFD)
    exif = exif if isinstance(exif, dict) else {}
    white = _first_float(raw_first, _Tag.WHITE_LEVEL)
    metadata = CameraMetadata(
        cfa_pattern=_cfa_pattern(raw_first),
        black_level=_black_level(raw_first, bottom - top, right - left, lambda: (
            _missing_black_level(_text(ifd0_first, _Tag.SOFTWARE), bits, cfa))),
        white_level=float(2**bits - 1) if white is None else white,
        make=_text(ifd0_first, _Tag.MAKE) or "",
        model=_text(ifd0_first, _Tag.MODEL) or "",
        color_matrix_1=_matrix(ifd0_first, _Tag.COLOR_MATRIX_1),
        color_matrix_2=_matrix(ifd0_first, _Tag.COLOR_MATRIX_2),
        calibration_illuminant_1=_first_int(ifd0_first, _Tag.CALIBRATION_ILLUMINANT_1),
        calibration_illuminant_2=_first_int(ifd0_first, _Tag.CALIBRATION_ILLUMINANT_2),
        forward_matrix_1=_matrix(ifd0_first, _Tag.FORWARD_MATRIX_1),
        forward_matrix_2=_matrix(ifd0_first, _Tag.FORWARD_MATRIX_2),
        camera_calibration_1=_matrix(ifd0_first, _Tag.CAMERA_CALIBRATION_1),
        camera_calibration_2=_matrix(ifd0_first, _Tag.CAMERA_CALIBRATION_2),
        as_shot_neutral=_neutral(ifd0_first),
        exposure_time_s=_exif_rational(exif, ifd0_first, _Tag.EXPOSURE_TIME, "ExposureTime"),
        iso=_exif_iso(exif, ifd0_first),
        noise_profile=_noise_profile(ifd0_first),
        baseline_exposure_ev=_first_float(ifd0_first, _Tag.BASELINE_EXPOSURE) or 0.0,
        datetime_original=_datetime_original(exif, ifd0_first),
        orientation=_orientation(ifd0_first),
        lens_model=_exif_text(exif, ifd0_first, _Tag.LENS_MODEL, "LensModel"),
        focal_length_mm=_exif_rational(exif, ifd0_first, _Tag.FOCAL_LENGTH, "FocalLength"),
        focal_length_35mm=_exif_number(
            exif, ifd0_first, _Tag.FOCAL_LENGTH_IN_35MM_FILM, "FocalLengthIn35mmFilm"
        ),
        f_number=_exif_rational(exif, ifd0_first, _Tag.F_NUMBER, "FNumber"),
        lens_shading=_lens_shading(raw, cfa.shape, warnings),
    )
    return RawFrame(cfa=cfa, metadata=metadata)


def _walk_ifds(page: tifffile.TiffPage, depth: int) -> Iterator[tifffile.TiffPage]:
    yield page
    if depth < _MAX_SUBIFD_DEPTH and page.pages is not None:
        for subifd in page.pages:
            yield from _walk_ifds(subifd, depth + 1)


def _find_raw_ifd(tif: tifffile.TiffFile) -> tifffile.TiffPage:
    is_linear_raw = False
    for top in tif.pages:
        for page in _walk_ifds(top, 0):
            if page.subfiletype != 0 or not isinstance(page.photometric, numbers.Integral):
                continue  # not the main image, or a corrupt IFD (tifffile made a tuple)
            if page.photometric == _PHOTOMETRIC_CFA:
                return page
            is_linear_raw |= page.photometric == _PHOTOMETRIC_LINEAR_RAW
    if is_linear_raw:
        raise _DngProblem("LinearRaw (already demosaiced) DNG; only CFA mosaics are read")
    raise _DngProblem("no CFA raw image (PhotometricInterpretation 32803, NewSubfileType 0)")


def _check_layout(raw: tifffile.TiffPage) -> int:
    """Reject what we do not decode; return BitsPerSample."""
    compression = _page_int(raw, "compression", "Compression")
    if compression not in _COMPRESSIONS:
        name = getattr(raw.compression, "name", "unknown")
        raise _DngProblem(f"unsupported raw compression {compression} ({name})")
    if _page_int(raw, "samplesperpixel", "SamplesPerPixel") != 1:
        raise _DngProblem(f"CFA image has SamplesPerPixel {raw.samplesperpixel}, expected 1")
    if _page_int(raw, "sampleformat", "SampleFormat") != 1:
        raise _DngProblem(f"unsupported SampleFormat {int(raw.sampleformat)} (unsigned only)")
    bits = _page_int(raw, "bitspersample", "BitsPerSample")
    if not 1 <= bits <= 16:
        raise _DngProblem(f"unsupported BitsPerSample {bits}")
    is_tiled = _page_int(raw, "tilewidth", "TileWidth") > 0  # 0 when the image is in strips
    for attribute, tag in [("imagelength", "ImageLength"), ("imagewidth", "ImageWidth")] + (
        [("tilelength", "TileLength")] if is_tiled else []
    ):
        if _page_int(raw, attribute, tag) <= 0:
            raise _DngProblem(f"{tag} {getattr(raw, attribute)} must be positive")
    if not is_tiled and _page_int(raw, "rowsperstrip", "RowsPerStrip") < 0:
        raise _DngProblem(f"RowsPerStrip {raw.rowsperstrip} must not be negative")
    return bits


def _page_int(raw: tifffile.TiffPage, attribute: str, tag: str) -> int:
    """An integer attribute tifffile parsed from a tag (a tuple or text when corrupt)."""
    value = getattr(raw, attribute)
    if not isinstance(value, numbers.Integral):
        raise _DngProblem(f"{tag} is {value!r}, expected one integer")
    return int(value)


def _check_data_present(raw: tifffile.TiffPage, file_size: int) -> None:
    """Check every strip or tile lies wholly inside the file (tifffile fills gaps with 0)."""
    kind = "tile" if raw.is_tiled else "strip"
    offsets, counts = raw.dataoffsets, raw.databytecounts
    height, width, bits = int(raw.imagelength), int(raw.imagewidth), int(raw.bitspersample)
    if raw.is_tiled:
        tile_h, tile_w = int(raw.tilelength), int(raw.tilewidth)
        n_chunks = math.ceil(height / tile_h) * math.ceil(width / tile_w)
        expected = [math.ceil(tile_w * bits / 8) * tile_h] * n_chunks
    else:
        rows = int(raw.rowsperstrip) or height
        n_chunks = math.ceil(height / rows)
        expected = [math.ceil(width * bits / 8) * min(rows, height - i * rows) for i in range(n_chunks)]
    if len(offsets) != n_chunks or len(counts) != n_chunks:
        raise _DngProblem(f"raw image has {len(offsets)} {kind}s, expected {n_chunks}")
    for index, (offset, count, needed) in enumerate(zip(offsets, counts, expected)):
        if offset == 0 or count == 0:
            raise _DngProblem(f"raw {kind} {index} is missing (offset {offset}, {count} bytes)")
        if offset + count > file_size:
            raise _DngProblem(
                f"truncated: raw {kind} {index} ends at byte {offset + count} "
                f"but the file has {file_size} bytes"
            )
        if raw.compression == 1 and count < needed:
            raise _DngProblem(f"raw {kind} {index} has {count} bytes, expected {needed}")


def _active_area(raw: tifffile.TiffPage, height: int, width: int) -> tuple[int, int, int, int]:
    tag = raw.tags.get(_Tag.ACTIVE_AREA)
    if tag is None:
        return 0, 0, height, width
    area = _ints(tag)
    if len(area) != 4:
        raise _DngProblem(f"ActiveArea has {len(area)} values, expected 4")
    top, left, bottom, right = area
    if not (0 <= top < bottom <= height and 0 <= left < right <= width):
        raise _DngProblem(f"ActiveArea {area} outside the {width}x{height} image")
    return top, left, bottom, right


def _lens_shading(
    raw: tifffile.TiffPage, shape: tuple[int, int], warnings: list[str]
) -> LensShadingMap | None:
    """The GainMaps of the raw IFD's OpcodeList2 (:mod:`pipeline.formats.gain_map`); a malformed
    list is left out, with a warning appended, as the image is still usable without it."""
    tag = raw.tags.get(_Tag.OPCODE_LIST_2)
    if tag is None:
        return None
    try:
        if not isinstance(tag.value, bytes):
            raise RawFormatError(f"OpcodeList2 of TIFF type {_type_name(tag)} is not binary data")
        return lens_shading_from_opcodes(tag.value, shape)
    except RawFormatError as exc:
        warnings.append(f"lens shading (OpcodeList2) not applied: {exc}")
        return None


def _cfa_pattern(ifds: Sequence[tifffile.TiffPage]) -> CfaPattern:
    dims_tag, pattern_tag = _tag(ifds, _Tag.CFA_REPEAT_PATTERN_DIM), _tag(ifds, _Tag.CFA_PATTERN)
    if dims_tag is None or pattern_tag is None:
        raise _DngProblem("CFA image lacks CFARepeatPatternDim or CFAPattern")
    dims = _ints(dims_tag)
    if dims != (2, 2):
        shape = "x".join(str(d) for d in dims)
        raise _DngProblem(f"CFA repeat pattern {shape} is not a 2x2 Bayer pattern")
    plane_tag = _tag(ifds, _Tag.CFA_PLANE_COLOR)
    plane_colors = _ints(plane_tag) if plane_tag is not None else (0, 1, 2)
    indices = _ints(pattern_tag)
    if len(indices) != 4 or any(not 0 <= i < len(plane_colors) for i in indices):
        raise _DngProblem(f"CFAPattern {indices} does not index CFAPlaneColor {plane_colors}")
    channels = tuple(plane_colors[i] for i in indices)
    try:
        return CfaPattern.from_channels(channels)
    except InvalidParameterError:
        raise _DngProblem(f"CFA pattern {channels} (0=R, 1=G, 2=B) is not a Bayer pattern") from None


def _missing_black_level(
    software: str | None, bits: int, cfa: npt.NDArray[np.uint16]
) -> float:
    """The black level of a file without a BlackLevel tag: 0, as the DNG specification
    says, except for a Raspberry Pi writer's (its raw data keep the sensor's pedestal),
    whose black is then the one the Pi's ISP assumes when a sensor's tuning gives none
    (:data:`PI_DEFAULT_BLACK_16_BIT` at the file's bit depth: 64 at 10 bits), unless some
    sample lies below half of it (then the pedestal is not there)."""
    if not any(writer in (software or "").lower() for writer in _PI_DNG_WRITERS):
        return 0.0
    black = PI_DEFAULT_BLACK_16_BIT / 2 ** (16 - bits)
    if int(cfa.min()) < black / 2:
        return 0.0
    logger.info("no BlackLevel in a %s file: the Pi's default black, %g", software, black)
    return black


def _black_level(
    ifds: Sequence[tifffile.TiffPage], height: int, width: int, missing: Callable[[], float]
) -> tuple[float, float, float, float]:
    """Black per site of the 2x2 tile: BlackLevel (else what ``missing`` gives) plus the
    mean BlackLevelDeltaH/V per phase."""
    dims_tag = _tag(ifds, _Tag.BLACK_LEVEL_REPEAT_DIM)
    dims = _ints(dims_tag) if dims_tag is not None else (1, 1)
    if len(dims) != 2 or dims[0] not in (1, 2) or dims[1] not in (1, 2):
        shape = "x".join(str(d) for d in dims)
        raise _DngProblem(f"BlackLevelRepeatDim {shape} is not supported (1 or 2 each)")
    rows, cols = dims
    level_tag = _tag(ifds, _Tag.BLACK_LEVEL)
    levels = _floats(level_tag) if level_tag is not None else (missing(),) * (rows * cols)
    if len(levels) != rows * cols:
        raise _DngProblem(f"BlackLevel has {len(levels)} values, expected {rows * cols}")
    delta_h = _black_deltas(ifds, _Tag.BLACK_LEVEL_DELTA_H, width)
    delta_v = _black_deltas(ifds, _Tag.BLACK_LEVEL_DELTA_V, height)
    sites = [
        levels[(y % rows) * cols + (x % cols)] + delta_v[y] + delta_h[x]
        for y in range(2)
        for x in range(2)
    ]
    return (sites[0], sites[1], sites[2], sites[3])


def _black_deltas(ifds: Sequence[tifffile.TiffPage], code: _Tag, length: int) -> tuple[float, float]:
    """Mean of a BlackLevelDelta tag over even and over odd positions (0 when absent)."""
    tag = _tag(ifds, code)
    if tag is None:
        return (0.0, 0.0)
    deltas = _floats(tag)
    if len(deltas) != length:
        raise _DngProblem(f"{code.name} has {len(deltas)} values, expected {length}")
    return (float(np.mean(deltas[0::2])), float(np.mean(deltas[1::2])) if length > 1 else 0.0)


def _matrix(ifds: Sequence[tifffile.TiffPage], code: _Tag) -> Matrix3x3 | None:
    tag = _tag(ifds, code)
    if tag is None:
        return None
    values = _floats(tag)
    if len(values) != 9:
        raise _DngProblem(f"{code.name} has {len(values)} values, expected 9 (3 colour planes)")
    return (
        values[0], values[1], values[2], values[3], values[4],
        values[5], values[6], values[7], values[8],
    )  # fmt: skip


def _neutral(ifds: Sequence[tifffile.TiffPage]) -> tuple[float, float, float] | None:
    tag = _tag(ifds, _Tag.AS_SHOT_NEUTRAL)
    if tag is None:
        return None
    values = _floats(tag)
    if len(values) != 3:
        raise _DngProblem(f"AsShotNeutral has {len(values)} values, expected 3")
    return (values[0], values[1], values[2])


def _noise_profile(ifds: Sequence[tifffile.TiffPage]) -> tuple[tuple[float, float], ...] | None:
    tag = _tag(ifds, _Tag.NOISE_PROFILE)
    if tag is None:
        return None
    values = _floats(tag)
    if not values or len(values) % 2:
        raise _DngProblem(f"NoiseProfile has {len(values)} values, expected (S, O) pairs")
    return tuple((values[i], values[i + 1]) for i in range(0, len(values), 2))


def _orientation(ifds: Sequence[tifffile.TiffPage]) -> int:
    """EXIF Orientation; anything but one value in 1..8 means the default, 1."""
    tag = _tag(ifds, _Tag.ORIENTATION)
    values = _exif_values(tag.value, int(tag.dtype) in _RATIONAL_TYPES) if tag else None
    return int(values[0]) if values is not None and values[0] in range(1, 9) else 1


def _exif_rational(
    exif: dict[str, Any], ifds: Sequence[tifffile.TiffPage], code: _Tag, name: str
) -> float | None:
    """A RATIONAL EXIF value from the EXIF IFD, else from IFD0 or the raw IFD (TIFF/EP);
    None when absent or not a number (EXIF values only inform: they never fail a read)."""
    if name in exif:
        values = _exif_values(exif[name], is_rational=True)
    else:
        tag = _tag(ifds, code)
        values = _exif_values(tag.value, int(tag.dtype) in _RATIONAL_TYPES) if tag else None
    return values[0] if values else None


def _exif_number(
    exif: dict[str, Any], ifds: Sequence[tifffile.TiffPage], code: _Tag, name: str
) -> float | None:
    """An integer EXIF value from the EXIF IFD, else from IFD0 or the raw IFD; 0 = unknown."""
    if name in exif:
        values = _exif_values(exif[name], is_rational=False)
    else:
        tag = _tag(ifds, code)
        values = _exif_values(tag.value, int(tag.dtype) in _RATIONAL_TYPES) if tag else None
    return (values[0] or None) if values else None


def _exif_iso(exif: dict[str, Any], ifds: Sequence[tifffile.TiffPage]) -> float | None:
    # EXIF 2.3 renamed ISOSpeedRatings (34855) to PhotographicSensitivity; same tag.
    for key in ("ISOSpeedRatings", "PhotographicSensitivity"):
        if key in exif:
            return _exif_number(exif, ifds, _Tag.ISO_SPEED_RATINGS, key)
    return _exif_number({}, ifds, _Tag.ISO_SPEED_RATINGS, "")


def _exif_values(value: object, is_rational: bool) -> tuple[float, ...] | None:
    """The numbers of an EXIF value as tifffile gives it, or None if it holds none."""
    if isinstance(value, (str, bytes, dict)):
        return None
    try:
        values = np.ravel(np.asarray(value, dtype=np.float64))
    except (TypeError, ValueError):
        return None
    if is_rational:
        if values.size < 2 or values.size % 2:
            return None
        with np.errstate(all="ignore"):
            values = values[0::2] / values[1::2]
    values = values[np.isfinite(values)]
    return tuple(float(v) for v in values) if values.size else None


def _exif_text(
    exif: dict[str, Any], ifds: Sequence[tifffile.TiffPage], code: _Tag, name: str
) -> str | None:
    if name in exif:
        return _clean_text(exif[name])
    return _text(ifds, code)


def _datetime_original(
    exif: dict[str, Any], ifds: Sequence[tifffile.TiffPage]
) -> dt.datetime | None:
    """EXIF 'YYYY:MM:DD HH:MM:SS'; a blank or malformed date (common in the wild) gives None."""
    text = _exif_text(exif, ifds, _Tag.DATE_TIME_ORIGINAL, "DateTimeOriginal")
    if text is None:
        return None
    try:
        return dt.datetime.strptime(text[:19], _EXIF_DATETIME_FORMAT)
    except ValueError:
        return None


def _tag(ifds: Sequence[tifffile.TiffPage], code: _Tag) -> tifffile.TiffTag | None:
    """The tag from the first IFD of ``ifds`` that has it."""
    for ifd in ifds:
        tag = ifd.tags.get(int(code))
        if tag is not None:
            return tag
    return None


def _numbers(tag: tifffile.TiffTag) -> npt.NDArray[np.float64]:
    """The tag's values as a flat float64 array (rational terms not yet divided)."""
    if int(tag.dtype) == _ASCII_TYPE:
        raise _DngProblem(f"{tag.name} is text, expected numbers")
    if isinstance(tag.value, bytes):  # BYTE and UNDEFINED arrays
        return np.frombuffer(tag.value, np.uint8).astype(np.float64)
    try:
        return np.ravel(np.asarray(tag.value, dtype=np.float64))
    except (TypeError, ValueError):
        raise _DngProblem(f"{tag.name} does not hold numbers") from None


def _floats(tag: tifffile.TiffTag) -> tuple[float, ...]:
    values = _numbers(tag)
    if int(tag.dtype) in _RATIONAL_TYPES:
        return _rational_pairs(values.tolist(), tag.name)
    if not np.all(np.isfinite(values)):
        raise _DngProblem(f"{tag.name} has values that are not finite")
    return tuple(float(v) for v in values)


def _rational_pairs(values: list[float], name: str) -> tuple[float, ...]:
    if len(values) % 2:
        raise _DngProblem(f"{name} has an odd number of rational terms")
    if any(den == 0 for den in values[1::2]):
        raise _DngProblem(f"{name} has a zero denominator")
    return tuple(num / den for num, den in zip(values[0::2], values[1::2]))


def _ints(tag: tifffile.TiffTag) -> tuple[int, ...]:
    values = _numbers(tag)
    if int(tag.dtype) in _RATIONAL_TYPES or not np.all(np.isfinite(values)) or np.any(
        values != np.round(values)
    ):
        raise _DngProblem(f"{tag.name} is of TIFF type {_type_name(tag)}, expected integers")
    return tuple(int(v) for v in values)


def _type_name(tag: tifffile.TiffTag) -> str:
    return getattr(tag.dtype, "name", str(tag.dtype))


def _linearization_table(tag: tifffile.TiffTag) -> npt.NDArray[np.uint16]:
    table = _ints(tag)
    if not table or not all(0 <= v <= 65535 for v in table):
        raise _DngProblem(f"LinearizationTable of {len(table)} values is not 1 or more in 0..65535")
    return np.asarray(table, dtype=np.uint16)


def _first_float(ifds: Sequence[tifffile.TiffPage], code: _Tag) -> float | None:
    tag = _tag(ifds, code)
    values = _floats(tag) if tag is not None else ()
    return values[0] if values else None


def _first_int(ifds: Sequence[tifffile.TiffPage], code: _Tag) -> int | None:
    tag = _tag(ifds, code)
    values = _ints(tag) if tag is not None else ()
    return values[0] if values else None


def _text(ifds: Sequence[tifffile.TiffPage], code: _Tag) -> str | None:
    tag = _tag(ifds, code)
    return None if tag is None else _clean_text(tag.value)


def _clean_text(value: object) -> str | None:
    """Text of an ASCII tag, without padding; None for a tag that holds no text."""
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    if not isinstance(value, str):
        return None
    return value.split("\x00", 1)[0].strip() or None  # TIFF ASCII ends at its first NUL
