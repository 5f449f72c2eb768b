"""Burst photography: align and merge raw bursts (HDR+), with HDR and night modes.

The pipeline is composed in :mod:`pipeline.burst.burst` (reference -> align -> merge);
:mod:`pipeline.burst.modes` finishes it per mode (burst, hdr, night) and develops it;
:func:`plan_capture` plans the exposures of a burst for the camera. Importing this
package does not import the develop pipeline.
"""

from pipeline.burst.burst import BURST_MODES, BurstMode, BurstParams, align_and_merge
from pipeline.burst.capture_plan import CaptureLimits, Metering, plan_capture
from pipeline.burst.frames import BurstError, StreamedBurst, check_burst

__all__ = [
    "BURST_MODES",
    "BurstMode",
    "BurstError",
    "BurstParams",
    "CaptureLimits",
    "Metering",
    "StreamedBurst",
    "align_and_merge",
    "check_burst",
    "plan_capture",
]
