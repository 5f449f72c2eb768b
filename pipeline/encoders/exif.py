"""EXIF metadata for developed images (EXIF 2.32, CIPA DC-008)."""

from __future__ import annotations

from fractions import Fraction

from PIL import Image
from PIL.TiffImagePlugin import IFDRational

from pipeline.raw_frame import CameraMetadata

SOFTWARE = "Obscura"

# Tag numbers, named as in the EXIF specification.
MAKE, MODEL, ORIENTATION, SOFTWARE_TAG, DATETIME = 0x010F, 0x0110, 0x0112, 0x0131, 0x0132
EXIF_IFD = 0x8769
EXPOSURE_TIME, F_NUMBER, ISO_SPEED = 0x829A, 0x829D, 0x8827
DATETIME_ORIGINAL, FOCAL_LENGTH, COLOR_SPACE = 0x9003, 0x920A, 0xA001
FOCAL_LENGTH_35MM, LENS_MODEL = 0xA405, 0xA434
COLOR_SPACE_SRGB = 1


def _rational(value: float, max_denominator: int = 100_000) -> IFDRational:
    f = Fraction(value).limit_denominator(max_denominator)
    return IFDRational(f.numerator, f.denominator)


def build_exif(metadata: CameraMetadata) -> Image.Exif:
    """EXIF for an sRGB image developed from a capture with ``metadata``.

    Always tags the colour space as sRGB; camera, exposure, lens and date fields are
    written when the metadata knows them.
    """
    exif = Image.Exif()
    exif[SOFTWARE_TAG] = SOFTWARE
    if metadata.make:
        exif[MAKE] = metadata.make
    if metadata.model:
        exif[MODEL] = metadata.model
    if metadata.orientation != 1:
        exif[ORIENTATION] = metadata.orientation
    ifd = exif.get_ifd(EXIF_IFD)
    ifd[COLOR_SPACE] = COLOR_SPACE_SRGB
    if metadata.exposure_time_s:
        ifd[EXPOSURE_TIME] = _rational(metadata.exposure_time_s)
    if metadata.iso:
        ifd[ISO_SPEED] = int(round(metadata.iso))
    if metadata.f_number:
        ifd[F_NUMBER] = _rational(metadata.f_number, 100)
    if metadata.focal_length_mm:
        ifd[FOCAL_LENGTH] = _rational(metadata.focal_length_mm, 100)
    if metadata.focal_length_35mm:
        ifd[FOCAL_LENGTH_35MM] = int(round(metadata.focal_length_35mm))
    if metadata.lens_model:
        ifd[LENS_MODEL] = metadata.lens_model
    if metadata.datetime_original is not None:
        stamp = metadata.datetime_original.strftime("%Y:%m:%d %H:%M:%S")
        ifd[DATETIME_ORIGINAL] = stamp
        exif[DATETIME] = stamp
    return exif
