"""Burst modes: what happens between the merged raw and the developed image.

- "burst": the merged frame is developed as it is (HDR+ with a plain finish).
- "hdr" and "night": the merged frame is first tone mapped by synthetic exposure fusion
  (HDR+ sec. 6; :mod:`pipeline.burst.exposure_fusion`), lifting shadows the merge made
  clean enough to show; night keeps them darker, as a night scene should look.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from pipeline.burst.burst import BURST_MODES, BurstMode, BurstParams, align_and_merge
from pipeline.burst.exposure_fusion import FusionParams, fuse_exposures_mertens2007
from pipeline.develop import DevelopParams, develop
from pipeline.errors import InvalidParameterError
from pipeline.raw_frame import RawFrame
from pipeline.stage_timer import Timer, untimed


def develop_burst(
    frames: Sequence[RawFrame],
    mode: BurstMode = "burst",
    develop_params: DevelopParams | None = None,
    burst_params: BurstParams | None = None,
    timer: Timer | None = None,
) -> npt.NDArray[np.float32]:
    """Merge a burst and develop it: (H, W, 3) float32 sRGB-encoded in [0, 1].

    ``mode``: "burst" develops the merged frame as it is; "hdr" and "night" first tone
    map it by synthetic exposure fusion (HDR+ sec. 6), so the shadows the short
    exposures kept above the noise are lifted while the highlights stay unclipped.
    """
    _check_mode(mode)
    return finish_burst(align_and_merge(frames, burst_params, timer), mode, develop_params, timer)


def finish_burst(
    merged: RawFrame,
    mode: BurstMode = "burst",
    develop_params: DevelopParams | None = None,
    timer: Timer | None = None,
) -> npt.NDArray[np.float32]:
    """The second half of :func:`develop_burst`, for a caller that keeps the merged raw
    frame too (the camera writes it as a DNG): finish by ``mode``, then develop."""
    _check_mode(mode)
    stage = timer or untimed
    if mode in ("hdr", "night"):
        with stage("exposure fusion"):
            merged = fuse_exposures_mertens2007(merged, FusionParams.for_mode(mode))
    return develop(merged, develop_params, timer)


def _check_mode(mode: str) -> None:
    if mode not in BURST_MODES:
        raise InvalidParameterError(f"mode={mode!r}: expected one of {', '.join(BURST_MODES)}")
