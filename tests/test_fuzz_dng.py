"""Fuzz: mutated DNGs (header, IFD entry types, counts, offsets and values, truncations)
either develop, or fail with our error in one line that names the file; never a traceback,
a crash, or a line of tifffile's log.

The sources are the real Raspberry Pi DNGs when ../shared/data is there, and always a DNG
our encoder writes with every tag the reader maps, so the test runs on a bare clone. The
mutations are seeded: a failure names its case, which replays alone.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import re
import struct
from pathlib import Path

import numpy as np
import pytest

from firmware.cli import main as obscura
from pipeline.colour.output_transform import quantize
from pipeline.develop import develop
from pipeline.errors import ObscuraError, RawFormatError
from pipeline.formats.encoders.dng import encode_dng
from pipeline.formats.encoders.jpeg import encode_jpeg
from pipeline.formats.raw_files import read_raw
from pipeline.raw_frame import LensShadingMap, RawFrame
from tests.conftest import RAW_DATA, mosaic_frame

SEED = 20_260_118
#: Real files: (path under ../shared/data/raw, mutated cases); tiles, strips, SubIFDs, EXIF IFD.
REAL_SOURCES = {
    "pi_arducam_pivariety_1920x1200/image1.dng": 70,
    "pi_imx296_mex2025/rpicam_still_checkerboard_imx296.dng": 70,
    "pi_minimal_640x480/test.dng": 40,
}
SYNTHETIC_CASES = 120
CLI_CASES = 24
#: TIFF field type -> bytes per value (the types TIFF 6.0 and BigTIFF define).
TYPE_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4}
SUBIFD_TAGS = (330, 34665)  # SubIFDs, ExifIFD
READER_LOGGERS = ("pipeline.formats.dng_reader", "pipeline.formats.raw_files")
#: A line of tifffile's log as the CLI would format it (our errors may quote tifffile).
TIFFFILE_LOG_LINE = re.compile(r"(?m)^(DEBUG|INFO|WARNING|ERROR|CRITICAL):? ?tifffile")
DEVELOP_FIELDS = (
    "cfa_pattern", "black_level", "white_level", "color_matrix_1", "color_matrix_2",
    "calibration_illuminant_1", "calibration_illuminant_2", "forward_matrix_1",
    "forward_matrix_2", "camera_calibration_1", "camera_calibration_2", "as_shot_neutral",
    "noise_profile", "baseline_exposure_ev",
)  # fmt: skip


def synthetic_dng() -> bytes:
    """A small DNG with every tag the reader maps (colour, white balance, noise, EXIF, lens
    shading), as our encoder writes it."""
    rng = np.random.default_rng(SEED)
    frame = mosaic_frame(
        rng.uniform(0.05, 0.95, (48, 64, 3)),
        "GRBG",
        black=64.0,
        white=1023.0,
        neutral=(0.5, 1.0, 0.7),
        make="Raspberry Pi",
        model="imx477",
        color_matrix_1=(0.9, -0.3, -0.1, -0.4, 1.2, 0.2, -0.1, 0.2, 0.6),
        color_matrix_2=(1.1, -0.4, -0.1, -0.3, 1.1, 0.2, 0.0, 0.1, 0.7),
        calibration_illuminant_1=17,
        calibration_illuminant_2=21,
        forward_matrix_1=(0.6, 0.3, 0.1, 0.2, 0.8, 0.0, 0.0, 0.1, 0.7),
        camera_calibration_1=(1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0),
        noise_profile=((2e-4, 1e-6),) * 3,
        baseline_exposure_ev=0.5,
        exposure_time_s=1 / 125,
        iso=400.0,
        f_number=2.8,
        focal_length_mm=16.0,
        focal_length_35mm=88.0,
        datetime_original=dt.datetime(2026, 1, 18, 12, 0, 0),
        lens_model="CGL 16mm",
        orientation=6,
    )
    shading = LensShadingMap(rng.uniform(1.0, 1.6, (4, 5, 7)).astype(np.float32))
    return encode_dng(
        RawFrame(frame.cfa, dataclasses.replace(frame.metadata, lens_shading=shading))
    )


def ifd_entries(data: bytes) -> list[tuple[int, int, int, int, int]]:
    """(position, tag, type, count, value or offset) of every entry of every IFD: the IFD0
    chain, SubIFDs and the EXIF IFD."""
    order = "<" if data[:2] == b"II" else ">"
    entries = []
    pending, seen = [struct.unpack_from(order + "I", data, 4)[0]], set()
    while pending:
        ifd = pending.pop()
        if ifd == 0 or ifd in seen:
            continue
        seen.add(ifd)
        (count,) = struct.unpack_from(order + "H", data, ifd)
        for index in range(count):
            position = ifd + 2 + 12 * index
            tag, kind, n, value = struct.unpack_from(order + "HHII", data, position)
            entries.append((position, tag, kind, n, value))
            if tag in SUBIFD_TAGS:
                offsets = [value] if n == 1 else struct.unpack_from(order + f"{n}I", data, value)
                pending.extend(offsets)
        pending.append(struct.unpack_from(order + "I", data, ifd + 2 + 12 * count)[0])
    return entries


def mutate(data: bytes, rng: np.random.Generator) -> tuple[str, bytes]:
    """One random mutation of ``data`` and what it was."""
    order = "<" if data[:2] == b"II" else ">"
    mutated = bytearray(data)
    kind = rng.choice(["header", "type", "count", "offset", "value", "value", "truncate"])
    if kind == "truncate":
        length = int(rng.integers(8, len(data)))
        return f"truncated to {length} bytes", bytes(data[:length])
    if kind == "header":
        start = int(rng.integers(0, 8))
        mutated[start] = int(rng.integers(0, 256))
        return f"header byte {start}", bytes(mutated)
    entries = ifd_entries(data)
    position, tag, field_type, count, value = entries[int(rng.integers(len(entries)))]
    if kind == "type":
        new_type = int(rng.integers(0, 20))
        struct.pack_into(order + "H", mutated, position + 2, new_type)
        return f"tag {tag} type {field_type} -> {new_type}", bytes(mutated)
    if kind in ("count", "offset"):
        choices = [0, 1, 2, value + 1, value - 1, len(data), 2**31, 2**32 - 1]
        if kind == "count":
            choices += [count + 1, max(count - 1, 0), count * 2]
        new = int(rng.choice(choices + [int(rng.integers(0, 2**32))])) % 2**32
        struct.pack_into(order + "I", mutated, position + (4 if kind == "count" else 8), new)
        return f"tag {tag} {kind} -> {new}", bytes(mutated)
    size = TYPE_SIZES.get(field_type, 1) * count
    start = position + 8 if size <= 4 else value
    length = min(max(size, 1), 64)
    if start + length > len(data):
        return f"tag {tag} value out of file (unchanged)", bytes(mutated)
    mutated[start : start + length] = rng.bytes(length)
    return f"tag {tag} value bytes", bytes(mutated)


def develop_key(frame: RawFrame) -> tuple:
    """What decides a develop of ``frame``: the metadata fields the develop uses, the lens
    shading table, and the range of the mosaic (an all-black one is its own case)."""
    metadata = frame.metadata
    shading = metadata.lens_shading
    return (
        *(getattr(metadata, name) for name in DEVELOP_FIELDS),
        None if shading is None else shading.gains.tobytes(),
        int(frame.cfa.min()),
        int(frame.cfa.max()),
    )


def check_case(path: Path, description: str, developed_keys: set[tuple]) -> bool:
    """Read ``path``; if it reads, encode a crop of it as JPEG (with its EXIF) and as DNG,
    and develop the crop unless one with the same :func:`develop_key` was. Whether it read."""
    try:
        frame = read_raw(path)
    except RawFormatError as exc:
        message = str(exc)
        assert message.startswith((f"{path.name}: ", f"{path}: ")), (description, message)
        assert "\n" not in message, (description, message)
        return False
    crop = RawFrame(np.ascontiguousarray(frame.cfa[:64, :64]), frame.metadata)
    try:
        encode_dng(crop)
        key = develop_key(crop)
        image = np.full((8, 8, 3), 0.5, np.float32)
        if key not in developed_keys:  # develops are slow: one per distinct case
            developed_keys.add(key)
            image = develop(crop)
        encode_jpeg(quantize(image, np.uint8), crop.metadata)
    except ObscuraError as exc:  # the reader let through what the develop cannot use
        pytest.fail(f"{description}: read, then the develop failed: {exc}")
    return True


def sources() -> list[tuple[str, bytes, int]]:
    found = [("synthetic.dng", synthetic_dng(), SYNTHETIC_CASES)]
    for relative, cases in REAL_SOURCES.items():
        if (RAW_DATA / relative).is_file():
            found.append((Path(relative).name, (RAW_DATA / relative).read_bytes(), cases))
    return found


def no_tifffile_records(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name.startswith("tifffile")]


def test_mutated_dngs_develop_or_fail_by_name(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.WARNING)
    rng = np.random.default_rng(SEED)
    read, developed_keys = set(), set()
    for name, data, cases in sources():
        for case in range(cases):
            description, mutated = mutate(data, rng)
            path = tmp_path / f"{case:03d}_{name}"
            path.write_bytes(mutated)
            caplog.clear()
            read.add(check_case(path, f"{name} case {case} ({description})", developed_keys))
            readers = [r.getMessage() for r in caplog.records if r.name in READER_LOGGERS]
            assert all(m.startswith((f"{path.name}: ", f"{path}: ")) for m in readers), readers
            assert not no_tifffile_records(caplog), (description, no_tifffile_records(caplog))
            path.unlink()
    assert read == {True, False}  # the mutations both spare and break files
    assert not TIFFFILE_LOG_LINE.search(capsys.readouterr().err)


def test_mutated_dngs_through_the_cli_exit_0_or_1_with_one_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = np.random.default_rng(SEED + 1)
    data = synthetic_dng()
    statuses = set()
    for case in range(CLI_CASES):
        description, mutated = mutate(data, rng)
        source, out = tmp_path / f"shot_{case:02d}.dng", tmp_path / f"shot_{case:02d}.jpg"
        source.write_bytes(mutated)
        status = obscura(["develop", str(source), "-o", str(out)])
        err = capsys.readouterr().err
        statuses.add(status)
        assert status in (0, 1), (description, status, err)
        assert "Traceback" not in err and not TIFFFILE_LOG_LINE.search(err), (description, err)
        if status == 1:
            assert err.count("\n") == 1 and source.name in err, (description, err)
            assert not out.exists(), description
        else:
            assert out.stat().st_size > 0, description
    assert statuses == {0, 1}  # the mutations both spare and break files
    assert not no_tifffile_records(caplog)
