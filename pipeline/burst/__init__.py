"""Burst photography: align and merge raw bursts (HDR+), with HDR and night modes.

The pipeline is composed in :mod:`pipeline.burst.burst` (reference -> align -> merge);
:mod:`pipeline.burst.modes` finishes it per mode (burst, hdr, night) and develops it;
:func:`plan_capture` plans the exposures of a burst for the camera. Importing this
package does not import the develop pipeline, nor the burst pipeline's kernels until
:class:`BurstParams` or :func:`align_and_merge` is used (a command-line develop of one
frame does not pay for them).
"""

from typing import Literal, get_args

from pipeline.burst.capture_plan import CaptureLimits, Metering, plan_capture
from pipeline.burst.frames import BurstError, StreamedBurst, check_burst

BurstMode = Literal["burst", "hdr", "night"]
#: The burst modes: how the merged frame is finished (:mod:`pipeline.burst.modes`).
BURST_MODES: tuple[str, ...] = ("burst", "hdr", "night")

MergeMethod = Literal["kernel", "resample"]
#: The merges (:meth:`BurstParams.for_merge`), the default first: "kernel" accumulates every
#: raw sample at its true position (Wronski et al. 2019,
#: :mod:`pipeline.burst.kernel_regression`); "resample" resamples each frame's colour planes
#: into the reference's geometry and merges them robustly (:mod:`pipeline.burst.merge`):
#: about 0.7x the kernel merge's time and memory, and less gain wherever the scene is sharp
#: to the pixel.
MERGE_METHODS: tuple[str, ...] = get_args(MergeMethod)

_IN_BURST_MODULE = ("BurstParams", "align_and_merge", "align_and_merge_rgb")


def __getattr__(name: str) -> object:
    """:class:`BurstParams` and :func:`align_and_merge`, imported on first use (PEP 562)."""
    if name in _IN_BURST_MODULE:
        from pipeline.burst import burst

        return getattr(burst, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = [
    "BURST_MODES",
    "BurstMode",
    "MERGE_METHODS",
    "MergeMethod",
    "BurstError",
    "BurstParams",
    "CaptureLimits",
    "Metering",
    "StreamedBurst",
    "align_and_merge",
    "align_and_merge_rgb",
    "check_burst",
    "plan_capture",
]
