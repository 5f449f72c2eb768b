"""DNG encoding of raw frames (Adobe DNG specification 1.6), with tifffile.

One uncompressed 16-bit CFA image in IFD0 with the colour, white balance, noise and EXIF
tags of its :class:`~pipeline.raw_frame.CameraMetadata`, and its lens shading table as
GainMap opcodes (:mod:`pipeline.formats.gain_map`); LibRaw, darktable and RawTherapee read this
layout. A linear (already demosaiced) camera-RGB image is written as a LinearRaw DNG
(PhotometricInterpretation 34892, three samples per pixel) with the same tags but the
mosaic's (:func:`encode_linear_raw_dng`).
"""

from __future__ import annotations

import dataclasses
import io
import math
from fractions import Fraction

import numpy as np
import numpy.typing as npt
import tifffile

from pipeline.errors import InvalidParameterError
from pipeline.formats.encoders.exif import (
    MAX_SHORT,
    SOFTWARE,
    ascii_text,
    checked_number,
    checked_short,
    exif_datetime,
)
from pipeline.formats.gain_map import OPCODE_LIST_2, gain_map_opcodes
from pipeline.raw_frame import CameraMetadata, Matrix3x3, RawFrame

# TIFF field types.
_BYTE, _ASCII, _SHORT, _LONG, _RATIONAL, _UNDEFINED, _SRATIONAL, _DOUBLE = 1, 2, 3, 4, 5, 7, 10, 12
_PHOTOMETRIC_LINEAR_RAW = 34892


def _rationals(values: tuple[float, ...] | list[float], signed: bool = False) -> tuple[int, ...]:
    """(numerator, denominator) terms of RATIONAL (or SRATIONAL) values, each fitting its
    32 bits: the denominator is as fine as the value's magnitude leaves room for."""
    largest = 2**31 - 1 if signed else 2**32 - 1
    pairs: list[int] = []
    for v in values:
        if not math.isfinite(v) or abs(v) > largest:
            raise InvalidParameterError(f"value {v} does not fit a TIFF rational")
        if not signed and v < 0:
            raise InvalidParameterError(f"value {v} must not be negative in an unsigned rational")
        limit = min(1_000_000 if signed else 10_000_000, int(largest // max(abs(v), 1.0)))
        f = Fraction(float(v)).limit_denominator(max(limit, 1))
        pairs += [max(-largest, min(f.numerator, largest)), f.denominator]
    return tuple(pairs)


def _matrix_tag(code: int, matrix: Matrix3x3 | None) -> list[tuple]:
    if matrix is None:
        return []
    return [(code, _SRATIONAL, 9, _rationals(matrix, signed=True), True)]


def encode_dng(frame: RawFrame) -> bytes:
    """DNG bytes of ``frame``: its (H, W) uint16 mosaic and its metadata."""
    cfa = np.ascontiguousarray(frame.cfa)
    if cfa.dtype != np.uint16 or cfa.ndim != 2:
        raise InvalidParameterError(f"frame.cfa is {cfa.dtype} {cfa.shape}: expected (H, W) uint16")
    m = frame.metadata
    tags: list[tuple] = [
        (33421, _SHORT, 2, (2, 2), True),  # CFARepeatPatternDim
        (33422, _BYTE, 4, tuple(int(c) for c in m.cfa_pattern.channels.ravel()), True),
        (50713, _SHORT, 2, (2, 2), True),  # BlackLevelRepeatDim
        (50714, _RATIONAL, 4, _rationals(m.black_level), True),  # BlackLevel
        (50717, _LONG, 1, int(round(m.white_level)), True),  # WhiteLevel
    ]
    if m.lens_shading is not None:  # for other raw converters too
        opcodes = gain_map_opcodes(m.lens_shading, cfa.shape)
        tags.append((OPCODE_LIST_2, _UNDEFINED, len(opcodes), opcodes, True))
    return _write(cfa, tifffile.PHOTOMETRIC.CFA, tags, m, m.baseline_exposure_ev)


def encode_linear_raw_dng(rgb: npt.NDArray[np.floating], metadata: CameraMetadata) -> bytes:
    """LinearRaw DNG bytes of ``rgb``, (H, W, 3) linear camera RGB with black 0 and the
    sensor's white 1 (its lens shading already corrected), with ``metadata``'s colour,
    noise and EXIF tags (its mosaic's levels and lens shading left out). Stored as 16 bits
    with white 65535 at the brightest value (at least 1); BaselineExposure gains what
    that scale took, so a converter shows it as bright as the mosaic."""
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or not np.issubdtype(rgb.dtype, np.floating):
        raise InvalidParameterError(f"rgb is {rgb.dtype} {rgb.shape}: expected (H, W, 3) float")
    peak = max(float(np.max(rgb)), 1.0)
    data = np.empty(rgb.shape, dtype=np.uint16)
    np.clip(np.rint(rgb * (65535.0 / peak)), 0, 65535, out=data, casting="unsafe")
    if metadata.noise_profile:  # variance S x + O of a value x scaled by 1 / peak
        scale, offset = np.mean(np.asarray(metadata.noise_profile, dtype=np.float64), axis=0)
        noise = ((float(scale) / peak, float(offset) / peak**2),)
        metadata = dataclasses.replace(metadata, noise_profile=noise)
    tags: list[tuple] = [
        (50713, _SHORT, 2, (1, 1), True),  # BlackLevelRepeatDim
        (50714, _RATIONAL, 3, _rationals([0.0, 0.0, 0.0]), True),  # BlackLevel, per sample
        (50717, _LONG, 3, (65535, 65535, 65535), True),  # WhiteLevel, per sample
    ]
    return _write(data, _PHOTOMETRIC_LINEAR_RAW, tags, metadata,
                  metadata.baseline_exposure_ev + math.log2(peak))  # fmt: skip


def _write(data: np.ndarray, photometric: int, tags: list[tuple], m: CameraMetadata,
           baseline_exposure_ev: float) -> bytes:
    """One IFD0 of ``data`` with ``tags`` and the tags of ``m`` the layouts share."""
    make = ascii_text(m.make, "Make")
    model = ascii_text(m.model, "Model") or "unknown"
    tags = [
        *tags,
        (50706, _BYTE, 4, (1, 4, 0, 0), True),  # DNGVersion
        (50707, _BYTE, 4, (1, 1, 0, 0), True),  # DNGBackwardVersion
        (50708, _ASCII, 0, f"{make or ''} {model}".strip(), True),  # UniqueCameraModel
        (50730, _SRATIONAL, 1, _rationals([baseline_exposure_ev], signed=True), True),
    ]
    tags += _matrix_tag(50721, m.color_matrix_1)
    tags += _matrix_tag(50722, m.color_matrix_2)
    tags += _matrix_tag(50723, m.camera_calibration_1)
    tags += _matrix_tag(50724, m.camera_calibration_2)
    tags += _matrix_tag(50964, m.forward_matrix_1)
    tags += _matrix_tag(50965, m.forward_matrix_2)
    for code, illuminant in ((50778, m.calibration_illuminant_1),
                             (50779, m.calibration_illuminant_2)):
        if illuminant is not None and 0 <= illuminant <= MAX_SHORT:
            tags.append((code, _SHORT, 1, illuminant, True))
    if m.as_shot_neutral is not None:
        tags.append((50728, _RATIONAL, 3, _rationals(m.as_shot_neutral), True))
    if m.noise_profile:
        flat = tuple(float(v) for pair in m.noise_profile for v in pair)
        tags.append((51041, _DOUBLE, len(flat), flat, True))
    for code, field in ((33434, "exposure_time_s"), (33437, "f_number"),
                        (37386, "focal_length_mm")):
        value = checked_number(getattr(m, field), field)
        if value:
            tags.append((code, _RATIONAL, 1, _rationals([value]), True))
    for code, field in ((34855, "iso"), (41989, "focal_length_35mm")):
        short = checked_short(getattr(m, field), field)
        if short:
            tags.append((code, _SHORT, 1, short, True))
    stamp = exif_datetime(m)
    if stamp is not None:
        tags.append((36867, _ASCII, 0, stamp, True))
    lens_model = ascii_text(m.lens_model, "LensModel")
    if lens_model:
        tags.append((42036, _ASCII, 0, lens_model, True))
    if m.orientation in range(2, 9):
        tags.append((274, _SHORT, 1, m.orientation, True))
    buffer = io.BytesIO()
    tifffile.imwrite(
        buffer,
        data,
        photometric=photometric,
        subfiletype=0,
        software=SOFTWARE,
        metadata=None,
        extratags=tags + _make_model_tags(make, model),
    )
    return buffer.getvalue()


def _make_model_tags(make: str | None, model: str) -> list[tuple]:
    return [(271, _ASCII, 0, make or "Obscura", True), (272, _ASCII, 0, model, True)]
