"""Compile every numba kernel once so the camera and the CLI start fast.

numba compiles per argument type, not per image size, so developing a tiny synthetic
frame through every path fills the on-disk cache (``cache=True``) for real frames too.
"""

from __future__ import annotations

import numpy as np

from pipeline.cfa import CfaPattern
from pipeline.develop import DevelopParams, develop
from pipeline.look import builtin_looks
from pipeline.output_transform import quantize
from pipeline.raw_frame import CameraMetadata, RawFrame


def warm_numba_cache() -> None:
    """Develop a small synthetic frame with every look, to both output depths."""
    rng = np.random.default_rng(0)
    cfa = rng.integers(256, 4095, size=(64, 96), dtype=np.uint16)
    metadata = CameraMetadata(
        cfa_pattern=CfaPattern.BGGR,
        black_level=(256.0, 256.0, 256.0, 256.0),
        white_level=4095.0,
        as_shot_neutral=(0.5, 1.0, 0.6),
    )
    frame = RawFrame(cfa, metadata)
    for name in builtin_looks():
        rgb = develop(frame, DevelopParams(look=name))
        quantize(rgb, np.uint8)
        quantize(rgb, np.uint16)
