"""EXIF metadata for developed images (EXIF 2.32, CIPA DC-008).

Everything written is checked first: metadata comes from files and cameras, and one value
out of its tag's range (an ISO read as 4.7e18 from a corrupt file) must cost that tag,
with a warning, never the photo after its develop. Text is written as printable 7-bit
ASCII, as TIFF and EXIF require, and kept short.
"""

from __future__ import annotations

import logging
import math
from fractions import Fraction

from PIL import Image
from PIL.TiffImagePlugin import IFDRational

from pipeline.raw_frame import EXIF_RANGES, CameraMetadata

logger = logging.getLogger(__name__)

SOFTWARE = "Obscura"

# Tag numbers, named as in the EXIF specification.
MAKE, MODEL, ORIENTATION, SOFTWARE_TAG, DATETIME = 0x010F, 0x0110, 0x0112, 0x0131, 0x0132
EXIF_IFD = 0x8769
EXPOSURE_TIME, F_NUMBER, ISO_SPEED = 0x829A, 0x829D, 0x8827
DATETIME_ORIGINAL, FOCAL_LENGTH, COLOR_SPACE = 0x9003, 0x920A, 0xA001
FOCAL_LENGTH_35MM, LENS_MODEL = 0xA405, 0xA434
COLOR_SPACE_SRGB = 1

#: Longest text written to a tag (EXIF sets no limit; real makes and lenses are far shorter).
MAX_TEXT_CHARS = 255
#: Largest SHORT, and the ISO written for every ISO above it (EXIF 2.3, PhotographicSensitivity).
MAX_SHORT = 65535
_MAX_LONG = 2**32 - 1


def ascii_text(text: str | None, name: str) -> str | None:
    """``text`` as printable 7-bit ASCII of at most :data:`MAX_TEXT_CHARS`, other characters
    replaced by "?" (logged when anything changed); None for no text."""
    if not text:
        return None
    cleaned = "".join(c if " " <= c <= "~" else "?" for c in text[:MAX_TEXT_CHARS]).strip()
    if cleaned != text:
        logger.warning("%s %r... written as %r... (printable ASCII, at most %d characters)",
                       name, text[:40], cleaned[:40], MAX_TEXT_CHARS)
    return cleaned or None


def checked_number(value: float | None, field: str) -> float | None:
    """``value`` when it is finite and within the range :data:`EXIF_RANGES` gives ``field``;
    else None, with a warning naming the tag."""
    if value is None:
        return None
    tag, low, high = EXIF_RANGES[field]
    if not (math.isfinite(value) and low <= value <= high):
        logger.warning("%s %s not written (expected %g..%g)", tag, value, low, high)
        return None
    return value


def checked_short(value: float | None, field: str) -> int | None:
    """A :func:`checked_number` rounded and clamped to a SHORT (logged when clamped)."""
    checked = checked_number(value, field)
    if checked is None:
        return None
    if checked > MAX_SHORT:
        logger.warning("%s %s written as %d, the largest a SHORT holds", EXIF_RANGES[field][0],
                       checked, MAX_SHORT)
    return min(int(round(checked)), MAX_SHORT)


def exif_datetime(metadata: CameraMetadata) -> str | None:
    """DateTimeOriginal as EXIF's "YYYY:MM:DD HH:MM:SS" (19 characters, zero-padded)."""
    d = metadata.datetime_original
    if d is None:
        return None
    return f"{d.year:04d}:{d.month:02d}:{d.day:02d} {d.hour:02d}:{d.minute:02d}:{d.second:02d}"


def _rational(value: float, max_denominator: int) -> IFDRational:
    """An unsigned RATIONAL near ``value`` (> 0, checked) whose terms fit 32 bits."""
    limit = max(1, min(max_denominator, int(_MAX_LONG // max(value, 1.0))))
    f = Fraction(value).limit_denominator(limit)
    return IFDRational(min(f.numerator, _MAX_LONG), f.denominator)


def build_exif(metadata: CameraMetadata) -> Image.Exif:
    """EXIF for an sRGB image developed from a capture with ``metadata``.

    Always tags the colour space as sRGB; camera, exposure, lens and date fields are
    written when the metadata knows them and their values fit their tags (see the module
    docstring).
    """
    exif = Image.Exif()
    exif[SOFTWARE_TAG] = SOFTWARE
    make, model = ascii_text(metadata.make, "Make"), ascii_text(metadata.model, "Model")
    if make:
        exif[MAKE] = make
    if model:
        exif[MODEL] = model
    if metadata.orientation in range(2, 9):
        exif[ORIENTATION] = int(metadata.orientation)
    ifd = exif.get_ifd(EXIF_IFD)
    ifd[COLOR_SPACE] = COLOR_SPACE_SRGB
    exposure_time_s = checked_number(metadata.exposure_time_s, "exposure_time_s")
    if exposure_time_s:
        ifd[EXPOSURE_TIME] = _rational(exposure_time_s, 100_000)
    iso = checked_short(metadata.iso, "iso")
    if iso:
        ifd[ISO_SPEED] = iso
    f_number = checked_number(metadata.f_number, "f_number")
    if f_number:
        ifd[F_NUMBER] = _rational(f_number, 100)
    focal_length_mm = checked_number(metadata.focal_length_mm, "focal_length_mm")
    if focal_length_mm:
        ifd[FOCAL_LENGTH] = _rational(focal_length_mm, 100)
    focal_length_35mm = checked_short(metadata.focal_length_35mm, "focal_length_35mm")
    if focal_length_35mm:
        ifd[FOCAL_LENGTH_35MM] = focal_length_35mm
    lens_model = ascii_text(metadata.lens_model, "LensModel")
    if lens_model:
        ifd[LENS_MODEL] = lens_model
    stamp = exif_datetime(metadata)
    if stamp is not None:
        ifd[DATETIME_ORIGINAL] = stamp
        exif[DATETIME] = stamp
    return exif
