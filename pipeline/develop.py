"""The single-frame develop pipeline: every stage, in order, on one screen.

Raw mosaic (sensor units) -> normalised mosaic -> scene-linear camera RGB -> scene-linear
sRGB -> display-linear -> sRGB-encoded float32 in [0, 1]. Encoders take it from there.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt

from pipeline.colour.matrix import camera_to_srgb_matrix
from pipeline.colour.metrics import srgb_encode
from pipeline.colour.output_transform import encode_srgb
from pipeline.colour.transforms import apply_matrix, box_downsample, luminance
from pipeline.errors import InvalidParameterError
from pipeline.looks.look import Look, find_look
from pipeline.looks.look_pass import apply_look
from pipeline.noise_model import display_luma_sigma, noise_model_of
from pipeline.raw_frame import CameraMetadata, RawFrame
from pipeline.stage_timer import Timer, untimed
from pipeline.stages import (
    black_level,
    black_point,
    chroma_denoise,
    colour_shading,
    defect_pixels,
    display_pass,
    highlights,
    lens_shading,
    local_tone_mapping,
    luma_denoise,
    sharpen,
    tone_curve,
    white_balance,
)
from pipeline.stages.demosaic import demosaic
from pipeline.stages.exposure import auto_exposure_ev

logger = logging.getLogger(__name__)

STATS_LONG_SIDE_PX = 512


@dataclass(frozen=True)
class DevelopParams:
    """How to develop a frame.

    ``white_balance``: "as-shot" uses the camera's AsShotNeutral (falling back to "auto"
    when the file has none); "auto" estimates it from the image. ``luma_noise_reduction``
    (0..1): how much of the luminance noise the noise model finds is smoothed away
    (:mod:`pipeline.stages.luma_denoise`; not in colorimetric looks).
    """

    look: str | Look = "standard"
    white_balance: Literal["as-shot", "auto"] = "as-shot"
    exposure_compensation_ev: float = 0.0
    correct_defects: bool = True
    luma_noise_reduction: float = 0.6
    resolved_look: Look = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.white_balance not in ("as-shot", "auto"):
            raise InvalidParameterError(
                f"white_balance={self.white_balance!r}: expected 'as-shot' or 'auto'"
            )
        if not 0.0 <= self.luma_noise_reduction <= 1.0:
            raise InvalidParameterError(
                f"luma_noise_reduction={self.luma_noise_reduction}: expected 0..1"
            )
        if not -8.0 <= self.exposure_compensation_ev <= 8.0:
            raise InvalidParameterError(
                f"exposure_compensation_ev={self.exposure_compensation_ev}: expected -8..8"
            )
        look = self.look if isinstance(self.look, Look) else find_look(self.look)
        object.__setattr__(self, "resolved_look", look)


def scene_neutral(
    cfa: npt.NDArray[np.float32], metadata: CameraMetadata, mode: str
) -> npt.NDArray[np.float64]:
    """Camera response to the scene white: as shot when known and asked for, else estimated."""
    if mode == "as-shot" and metadata.as_shot_neutral is not None:
        return np.asarray(metadata.as_shot_neutral, dtype=np.float64)
    if mode == "as-shot":
        logger.info("no AsShotNeutral: estimating the white balance from the image")
    return white_balance.estimate_neutral_shades_of_grey(cfa, metadata.cfa_pattern)


def develop(
    frame: RawFrame, params: DevelopParams | None = None, timer: Timer | None = None
) -> npt.NDArray[np.float32]:
    """Develop one raw frame into an sRGB-encoded (H, W, 3) float32 image in [0, 1]."""
    params = params or DevelopParams()
    stage = timer or untimed
    look = params.resolved_look
    meta = frame.metadata
    pattern = meta.cfa_pattern

    with stage("noise model"):
        noise = noise_model_of(frame)

    # Raw domain: one float32 mosaic, modified in place.
    with stage("black level"):
        cfa = black_level.normalize(frame.cfa, meta.black_level, meta.white_level)
    if params.correct_defects:
        with stage("defect pixels"):
            defect_pixels.correct_hot_and_dead(cfa, noise=noise, out=cfa)
    if meta.lens_shading is not None:
        with stage("lens shading"):
            lens_shading.apply(cfa, meta.lens_shading, out=cfa)
    elif colour_shading.applies_to(meta, cfa.shape):  # the Pi's own tables for its lens
        with stage("colour shading"):
            colour_shading.apply(cfa, meta, scene_neutral(cfa, meta, params.white_balance), out=cfa)
    with stage("white balance + highlights"):
        neutral = scene_neutral(cfa, meta, params.white_balance)
        gains = white_balance.gains_from_neutral(neutral)
        white_balance.apply(cfa, pattern, gains, out=cfa)
        highlights.clip_to_neutral(cfa)
    with stage("demosaic"):
        rgb = demosaic(cfa, pattern)
    del cfa
    with stage("highlights"):
        highlights.desaturate_near_clipping(rgb)
    if not look.colorimetric:
        with stage("chroma noise"):
            sigma = chroma_denoise.chroma_noise_sigma(noise.scale, noise.offset, gains)
            chroma_denoise.reduce_chroma_noise(rgb, sigma, noise=noise, gains=gains)
        with stage("luma noise"):
            luma_denoise.reduce_luma_noise(rgb, noise, gains, params.luma_noise_reduction)

    # Scene-referred colour.
    matrix = camera_to_srgb_matrix(meta, neutral)
    if look.colorimetric:
        with stage("colour"):
            # Scene-linear, 1.0 = the sensor's white: no BaselineExposure push, which would
            # clip the highlights the raw holds (only the user's own compensation).
            gain = 2.0 ** params.exposure_compensation_ev
            apply_matrix(rgb, matrix * gain)
        with stage("output"):
            return encode_srgb(rgb)
    with stage("exposure + glare (measured)"):
        factor = max(1, round(max(rgb.shape[:2]) / STATS_LONG_SIDE_PX))
        small = apply_matrix(box_downsample(rgb, factor), matrix)
        small_luminance = luminance(small)
        glare = black_point.estimate_glare(small_luminance)
        black_point.remove_glare(small_luminance, glare)
        ev = auto_exposure_ev(small_luminance) + params.exposure_compensation_ev
        gain = 2.0 ** (ev + look.tone.exposure_ev)
    with stage("local tone mapping (fit)"):
        strength = look.tone.local_tone_strength
        tone_map = local_tone_mapping.fit(small_luminance * np.float32(gain), strength)
        curve = tone_curve.FilmicCurve(contrast=look.tone.contrast, white=tone_map.mapped(gain))

    # One pass: colour matrix and exposure, black point, local tone map, tone curve, sRGB
    # encoding. Then sharpening; then the look's display-referred stages in one pass
    # (grading, vignette, LUT, levels, grain).
    with stage("colour, black point, tone + sRGB"):
        display_pass.render(rgb, matrix * gain, glare * gain, tone_map, curve)
    with stage("sharpen"):
        noise_sigma = display_luma_sigma(
            noise, gains, matrix, gain, glare * gain,
            lambda scene: srgb_encode(curve(tone_map.mapped(scene))))
        sharpen.unsharp_mask(rgb, look.sharpen.amount, look.sharpen.radius_px,
                             noise_sigma=noise_sigma)
    with stage("look"):
        return apply_look(rgb, look)
