"""Packed raw frames (the journal's format): bit-identical mosaics and equal metadata back,
12-bit and wider frames, odd widths, through JSON and a file; corrupt input is refused."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path

import numpy as np
import pytest

from hardware.storage import write_atomic
from pipeline.cfa import CfaPattern
from pipeline.errors import InvalidParameterError, RawFormatError
from pipeline.formats.journal_frames import (
    metadata_fields,
    metadata_from_fields,
    pack_frame,
    packed_nbytes,
    read_packed_frame,
    unpack_frame,
)
from pipeline.raw_frame import CameraMetadata, LensShadingMap, RawFrame


def full_metadata(pattern: CfaPattern = CfaPattern.BGGR) -> CameraMetadata:
    """Every field set, with values JSON must not round (thirds, tiny and huge numbers)."""
    matrix = tuple(float(v) for v in np.linspace(-1 / 3, 2 / 3, 9))
    return CameraMetadata(
        cfa_pattern=pattern, black_level=(256.0, 256.5, 255.75, 256.0), white_level=4095.0,
        make="Raspberry Pi", model="imx477", color_matrix_1=matrix, color_matrix_2=matrix[::-1],
        calibration_illuminant_1=17, calibration_illuminant_2=21, forward_matrix_1=matrix,
        forward_matrix_2=matrix, camera_calibration_1=matrix, camera_calibration_2=matrix,
        as_shot_neutral=(0.3085043956043956, 1.0, 0.7168681318681318),
        exposure_time_s=1 / 3, iso=250.0, analogue_gain=2.5,
        noise_profile=((1.2242771555e-4, 1.639444731270668e-07),) * 3,
        baseline_exposure_ev=-0.25, datetime_original=dt.datetime(2024, 5, 17, 10, 30, 5),
        orientation=6, lens_model="16mm f/1.4", focal_length_mm=16.0, focal_length_35mm=88.0,
        f_number=2.8, sensor_timestamp_ns=123_456_789_012_345,
        lens_shading=LensShadingMap(np.ones((4, 3, 4), np.float32)),
    )


def round_trip(frame: RawFrame, tmp_path: Path) -> RawFrame:
    """Through the journal's path: buffer to a file, fields through JSON."""
    packed = pack_frame(frame)
    path = write_atomic(tmp_path / "frame.raw", packed.data)
    return read_packed_frame(path, json.loads(json.dumps(packed.fields)))


def assert_same(back: RawFrame, frame: RawFrame) -> None:
    assert back.cfa.dtype == np.uint16 and back.cfa.shape == frame.cfa.shape
    np.testing.assert_array_equal(back.cfa, frame.cfa)
    assert back.metadata == frame.metadata
    for name in (f.name for f in dataclasses.fields(CameraMetadata) if f.name != "lens_shading"):
        # The same types too (tuples stay tuples, ints ints), not only equal values.
        assert type(getattr(back.metadata, name)) is type(getattr(frame.metadata, name)), name
    assert back.metadata.lens_shading is None  # the shot keeps it, not the frame


@pytest.mark.parametrize("pattern", list(CfaPattern))
@pytest.mark.parametrize("shape", [(6, 8), (5, 13), (3, 1), (4, 2)])
def test_12_bit_frames_pack_to_1_5_bytes_a_pixel_and_come_back_exactly(
    tmp_path: Path, pattern: CfaPattern, shape: tuple[int, int]
) -> None:
    rng = np.random.default_rng(11)
    cfa = rng.integers(0, 4096, size=shape, dtype=np.uint16)
    cfa.flat[0] = 4095  # the extremes
    cfa.flat[-1] = 0
    frame = RawFrame(cfa, full_metadata(pattern))
    packed = pack_frame(frame)
    assert packed.fields["packing"] == "csi2_12"
    whole_groups = -(-shape[1] // 2)
    assert packed.data.nbytes == packed_nbytes("csi2_12", *shape) == shape[0] * 3 * whole_groups
    assert_same(round_trip(frame, tmp_path), frame)


@pytest.mark.parametrize("white_level", [16383.0, 65535.0])
def test_wider_frames_are_kept_as_16_bit_words(tmp_path: Path, white_level: float) -> None:
    """Merged or replayed 14/16-bit frames: no value may be lost to the 12-bit packing."""
    rng = np.random.default_rng(12)
    cfa = rng.integers(0, int(white_level) + 1, size=(6, 7), dtype=np.uint16)
    cfa[0, 0] = int(white_level)
    frame = RawFrame(cfa, dataclasses.replace(full_metadata(), white_level=white_level))
    packed = pack_frame(frame)
    assert packed.fields["packing"] == "uint16_le" and packed.data.nbytes == 2 * cfa.size
    assert_same(round_trip(frame, tmp_path), frame)


def test_a_16_bit_frame_whose_values_fit_12_bits_packs_losslessly(tmp_path: Path) -> None:
    cfa = np.random.default_rng(13).integers(0, 4096, size=(4, 6), dtype=np.uint16)
    frame = RawFrame(cfa, dataclasses.replace(full_metadata(), white_level=65535.0))
    assert pack_frame(frame).fields["packing"] == "csi2_12"
    back = round_trip(frame, tmp_path)
    assert_same(back, frame)
    assert back.metadata.white_level == 65535.0


def test_sparse_metadata_and_numpy_scalars_round_trip() -> None:
    meta = CameraMetadata(CfaPattern.RGGB, tuple(np.float32(v) for v in (64, 64, 64, 64)),
                          np.float64(1023.0))
    fields = json.loads(json.dumps(metadata_fields(meta)))
    assert metadata_from_fields(fields) == meta
    assert metadata_from_fields({**fields, "added_by_a_newer_firmware": 1}) == meta


def test_corrupt_packed_frames_are_refused() -> None:
    frame = RawFrame(np.full((4, 6), 300, np.uint16), full_metadata())
    packed = pack_frame(frame)
    data = packed.data.tobytes()
    with pytest.raises(RawFormatError, match="bytes"):
        unpack_frame(data[:-1], packed.fields)
    with pytest.raises(RawFormatError, match="packing"):
        unpack_frame(data, {**packed.fields, "packing": "csi2_10"})
    with pytest.raises(RawFormatError):
        unpack_frame(data, {k: v for k, v in packed.fields.items() if k != "metadata"})
    with pytest.raises(RawFormatError):
        unpack_frame(data, {**packed.fields, "metadata": {"white_level": 4095}})
    with pytest.raises(InvalidParameterError, match="uint16"):
        pack_frame(RawFrame(np.zeros((4, 6), np.float32), full_metadata()))  # type: ignore
