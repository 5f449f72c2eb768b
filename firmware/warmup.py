"""Compile every numba kernel once so the camera and the CLI start fast.

numba compiles per argument type, not per image size, so running tiny inputs through
every path fills the on-disk cache (``cache=True``) for real frames too.
"""

from __future__ import annotations

import numpy as np

from hardware.imx477_simulator import Imx477Simulator, SensorSettings
from pipeline.burst.modes import develop_burst
from pipeline.colour.output_transform import quantize
from pipeline.develop import DevelopParams, develop
from pipeline.focus.measure import focus_measure
from pipeline.focus.peaking import focus_peaking_overlay, grey_preview_from_raw
from pipeline.formats.journal_frames import pack_frame, unpack_frame
from pipeline.formats.picamera2_raw import pack_raw, unpack_raw
from pipeline.looks import lut3d
from pipeline.looks.look import look_names
from pipeline.noise_model import estimate_noise_foi2008
from pipeline.raw_frame import RawFrame
from pipeline.stages import chroma_denoise

WARM_FORMATS = ("SBGGR10_CSI2P", "SBGGR12_CSI2P", "SBGGR12", "BGGR_PISP_COMP1")


def warm_numba_cache() -> None:
    """Simulate a small frame, unpack it from every raw format, develop it with every look.

    Every look runs the look pass (vignette, baked colour LUT, grain); a user LUT is baked
    with :func:`pipeline.looks.lut3d.apply`, warmed here too.
    """
    camera = Imx477Simulator(np.full((32, 48, 3), 128, dtype=np.uint8), seed=0, motion_px=2.0)
    frame = camera.capture(SensorSettings(exposure_time_us=camera.exposure_time_us_for(1.0)))
    height, width = frame.shape
    for name in WARM_FORMATS:
        values = frame.cfa >> 2 if name.endswith("10_CSI2P") else frame.cfa
        if name.endswith("PISP_COMP1"):
            values = frame.cfa << 4
        unpack_raw(pack_raw(values, name), name, width, height)
    # The journal's packing: of the camera's mosaics, and of the simulator's (read-only).
    read_only = frame.cfa.copy()
    read_only.flags.writeable = False
    for mosaic in (frame.cfa, read_only):
        packed = pack_frame(RawFrame(mosaic, frame.metadata))
        unpack_frame(packed.data, packed.fields)
    lut3d.apply(np.zeros((2, 2, 3), dtype=np.float32), lut3d.identity_lut(2))
    # Focus assist (a region of the frame) and the preview's focus peaking (all of it).
    focus_measure(frame)
    focus_peaking_overlay(grey_preview_from_raw(frame, (8, 12)))
    # A clean simulated frame skips chroma noise reduction: warm it on its own.
    chroma_denoise.reduce_chroma_noise(np.zeros((16, 16, 3), dtype=np.float32), sigma=1.0)
    for name in look_names():
        rgb = develop(frame, DevelopParams(look=name))
        quantize(rgb, np.uint8)
        quantize(rgb, np.uint16)
    # Burst: align, merge and exposure fusion, and the noise fit for files without a profile.
    burst = [frame, camera.capture(SensorSettings(camera.exposure_time_us_for(1.0)))]
    develop_burst(burst, "hdr")
    estimate_noise_foi2008(frame)
