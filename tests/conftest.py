"""Shared test helpers: the real data folder and synthetic raw frames."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from pipeline.cfa import CfaPattern
from pipeline.raw_frame import CameraMetadata, RawFrame

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
RAW_DATA = SHARED_DATA / "raw"
ALL_PATTERNS = [p.value for p in CfaPattern]

# Every `obscura develop` a test runs is a fresh process: no warm developer is started or
# used (tests/test_warm_developer.py starts its own, in a folder of its own).
os.environ["OBSCURA_WARM_DEVELOPER"] = "0"


@pytest.fixture
def raw_data() -> Path:
    """The folder of real raw files; the test is skipped where it is absent."""
    if not RAW_DATA.is_dir():
        pytest.skip(f"real raw data not found at {RAW_DATA}")
    return RAW_DATA


def mosaic_frame(
    camera_rgb: np.ndarray,
    pattern: str | CfaPattern,
    black: float = 256.0,
    white: float = 4095.0,
    neutral: tuple[float, float, float] | None = (1.0, 1.0, 1.0),
    **metadata: object,
) -> RawFrame:
    """A RawFrame whose mosaic samples ``camera_rgb`` ((H, W, 3), 1.0 = white) at each site."""
    pattern = CfaPattern.parse(pattern)
    h, w, _ = camera_rgb.shape
    channels = pattern.channels
    idx = channels[np.arange(h)[:, None] % 2, np.arange(w)[None, :] % 2]
    values = np.take_along_axis(camera_rgb, idx[..., None], axis=2)[..., 0]
    raw = np.clip(np.round(black + values * (white - black)), 0, white).astype(np.uint16)
    meta = CameraMetadata(
        cfa_pattern=pattern,
        black_level=(black,) * 4,
        white_level=white,
        as_shot_neutral=neutral,
        **metadata,
    )
    return RawFrame(raw, meta)
