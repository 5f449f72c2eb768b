"""A JPEG compressed in strips on several threads decodes to the same pixels as one
compressed whole."""

from __future__ import annotations

import io

import numpy as np
import pytest
import simplejpeg
from PIL import Image

from pipeline.cfa import CfaPattern
from pipeline.errors import InvalidParameterError
from pipeline.formats.encoders.jpeg import encode_jpeg
from pipeline.formats.encoders.jpeg_strips import join_strips, strip_rows
from pipeline.raw_frame import CameraMetadata

META = CameraMetadata(cfa_pattern=CfaPattern.RGGB, black_level=(0.0,) * 4, white_level=1.0)


def _photo_like(height: int, width: int) -> np.ndarray:
    """Smooth gradients, an edge and noise: every DC and AC coefficient busy."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    rng = np.random.default_rng(7)
    base = np.stack([x / width, y / height, ((x + y) % 37) / 37], axis=-1) * 200
    base[:, width // 3 :] += 40
    return np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("quality", [95, 70])  # 4:4:4 (8 px MCUs) and 4:2:0 (16 px)
@pytest.mark.parametrize(("height", "width", "threads"), [
    (203, 157, 2),  # height and width not whole MCUs
    (203, 157, 3),
    (200, 64, 12),  # more than 8 strips: the restart markers' numbers wrap
])  # fmt: skip
def test_strips_decode_to_the_pixels_of_one_whole_encode(quality, height, width, threads):
    image = _photo_like(height, width)
    whole = encode_jpeg(image, META, quality=quality, threads=1)
    strips = encode_jpeg(image, META, quality=quality, threads=threads)
    assert b"\xff\xdd" in strips and b"\xff\xdd" not in whole  # a restart interval
    for decode in (lambda d: np.asarray(Image.open(io.BytesIO(d)).convert("RGB")),
                   lambda d: simplejpeg.decode_jpeg(d, colorspace="RGB")):  # fmt: skip
        assert decode(strips).shape == (height, width, 3)
        np.testing.assert_array_equal(decode(strips), decode(whole))
    with Image.open(io.BytesIO(strips)) as jpeg:  # EXIF and ICC still behind SOI
        assert "icc_profile" in jpeg.info and jpeg.getexif()


def test_a_strip_holds_whole_mcu_rows_and_at_most_a_restart_interval():
    # 12 MP at 4:4:4: half the frame would be 96 330 MCUs, more than a DRI can count;
    # four strips of 95 MCU rows (48 165 MCUs) keep two threads equally busy.
    assert strip_rows(3040, 4056, (8, 8), 2) == 760
    assert strip_rows(3040, 4056, (8, 8), 3) == 8 * 127  # 3 strips of at most 129 rows
    assert strip_rows(3040, 4056, (16, 16), 2) == 1520  # 95 x 254 MCUs fit
    assert strip_rows(10, 4056, (8, 8), 4) == 8


def test_strips_encoded_differently_are_refused():
    image = _photo_like(64, 64)
    top = simplejpeg.encode_jpeg(image[:32], quality=90, colorspace="RGB")
    bottom = simplejpeg.encode_jpeg(image[32:], quality=50, colorspace="RGB")
    with pytest.raises(InvalidParameterError, match="strip 1: not encoded like the first"):
        join_strips([top, bottom], 64, 32)
