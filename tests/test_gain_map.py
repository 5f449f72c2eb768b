"""DNG GainMap opcodes (OpcodeList2): lens shading read from phone/camera DNGs and written
into ours, applied as the DNG SDK applies it."""

from __future__ import annotations

import dataclasses
import logging
import struct

import numpy as np
import pytest

from hardware.imx477_simulator import Imx477Simulator, SensorSettings
from pipeline.errors import RawFormatError
from pipeline.formats.dng_reader import read_dng
from pipeline.formats.encoders.dng import encode_dng
from pipeline.formats.gain_map import gain_map_opcodes, lens_shading_from_opcodes
from pipeline.raw_frame import LensShadingMap, RawFrame
from pipeline.stages import lens_shading


def _opcode(top: int, left: int, bottom: int, right: int, gains: np.ndarray, pitch: int = 2,
            spacing: tuple[float, float] | None = None, origin=(0.0, 0.0)) -> bytes:
    """One GainMap opcode as Android's DngCreator writes it."""
    points_v, points_h = gains.shape
    spacing = spacing or (1.0 / (points_v - 1), 1.0 / (points_h - 1))
    params = struct.pack(">IIIIIIIIIIddddI", top, left, bottom, right, 0, 1, pitch, pitch,
                         points_v, points_h, *spacing, *origin, 1)
    params += gains.astype(">f4").tobytes()
    return struct.pack(">IIII", 9, 0x01030000, 0, len(params)) + params


def _opcode_list(*opcodes: bytes) -> bytes:
    return struct.pack(">I", len(opcodes)) + b"".join(opcodes)


def test_android_style_gain_maps_are_applied_as_the_dng_sdk_does() -> None:
    # Site (0, 0): gain 1 + v down the frame; site (1, 1): 2 + u across; the greens 1.5.
    # Bilinear maps of linear functions: exact at every pixel, v = (row + 0.5) / H.
    height, width = 60, 80
    v, u = np.meshgrid(np.linspace(0, 1, 5), np.linspace(0, 1, 7), indexing="ij")
    data = _opcode_list(_opcode(0, 0, height, width, 1 + v), _opcode(0, 1, height, width, 1.5 + 0 * v),
                        _opcode(1, 0, height, width, 1.5 + 0 * v), _opcode(1, 1, height, width, 2 + u))
    shading = lens_shading_from_opcodes(data, (height, width))
    applied = lens_shading.apply(np.ones((height, width), np.float32), shading)
    rows, cols = np.mgrid[0:height, 0:width]
    expected = np.full((height, width), 1.5)
    red = (rows % 2 == 0) & (cols % 2 == 0)
    blue = (rows % 2 == 1) & (cols % 2 == 1)
    expected[red] = 1 + (rows[red] + 0.5) / height
    expected[blue] = 2 + (cols[blue] + 0.5) / width
    np.testing.assert_allclose(applied, expected, rtol=1e-5)


def test_our_dngs_carry_the_lens_shading_exactly() -> None:
    camera = Imx477Simulator(np.full((8, 8, 3), 120, np.uint8), seed=1, output_size=(120, 160))
    frame = camera.capture(SensorSettings(exposure_time_us=2000))
    gains = np.random.default_rng(0).uniform(1.0, 2.5, (4, 6, 8)).astype(np.float32)
    frame = RawFrame(frame.cfa, dataclasses.replace(frame.metadata,
                                                    lens_shading=LensShadingMap(gains)))
    back = read_dng_bytes(encode_dng(frame))
    image = np.random.default_rng(1).uniform(0, 1, frame.shape).astype(np.float32)
    np.testing.assert_allclose(lens_shading.apply(image, back.metadata.lens_shading),
                               lens_shading.apply(image, frame.metadata.lens_shading), rtol=1e-6)
    bare = RawFrame(frame.cfa, dataclasses.replace(frame.metadata, lens_shading=None))
    assert read_dng_bytes(encode_dng(bare)).metadata.lens_shading is None


def read_dng_bytes(data: bytes) -> RawFrame:
    import tempfile

    with tempfile.NamedTemporaryFile(suffix=".dng") as file:
        file.write(data)
        file.flush()
        return read_dng(file.name)


def test_maps_that_are_not_lens_shading_are_skipped_and_bad_lists_rejected(caplog) -> None:
    flat = np.full((3, 3), 2.0)
    partial = _opcode_list(_opcode(10, 0, 30, 80, flat, pitch=1))
    with caplog.at_level(logging.WARNING):
        assert lens_shading_from_opcodes(partial, (60, 80)) is None
    assert "rows 10-30" in caplog.text
    everywhere = lens_shading_from_opcodes(_opcode_list(_opcode(0, 0, 60, 80, flat, pitch=1)),
                                           (60, 80))
    np.testing.assert_allclose(everywhere.gains, 2.0)  # pitch 1: every site
    with pytest.raises(RawFormatError, match="OpcodeList2.*truncated"):
        lens_shading_from_opcodes(_opcode_list(_opcode(0, 0, 60, 80, flat))[:-5], (60, 80))


def test_written_opcodes_place_points_on_the_grid() -> None:
    gains = np.arange(4 * 3 * 4, dtype=np.float32).reshape(4, 3, 4) + 1
    data = gain_map_opcodes(LensShadingMap(gains), (31, 41))
    back = lens_shading_from_opcodes(data, (31, 41))
    # The denser grid read back holds the written points at every fourth point.
    np.testing.assert_allclose(back.gains[:, ::4, ::4], gains, rtol=1e-6)
