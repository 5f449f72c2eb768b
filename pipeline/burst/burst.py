"""The burst pipeline, in order on one screen: reference -> align -> merge -> shrink.

HDR+ (Hasinoff et al., "Burst photography for high dynamic range and low-light imaging on
mobile cameras", ACM TOG 35(6), 2016, DOI 10.1145/2980179.2980254) as analysed by Monod,
Delon and Veit (IPOL 11, 2021, DOI 10.5201/ipol.2021.336): the merge happens on raw
mosaics, so its result is again a raw frame that the single-frame develop (or any raw
converter, as a DNG) finishes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

# Defined in the light package (pipeline/burst/__init__.py); re-exported here.
from pipeline.burst import BURST_MODES, MERGE_METHODS, BurstMode, MergeMethod  # noqa: F401
from pipeline.burst.align import AlignParams, align_tiles_hasinoff2016, bayer_grey, grey_pyramid
from pipeline.burst.frames import check_burst
from pipeline.burst.kernel_regression import KernelMergeParams, KernelRegressionMerge
from pipeline.burst.merge import MergeParams, RobustMerge
from pipeline.burst.reference import exposure_product, select_reference_hasinoff2016
from pipeline.burst.reference_shrink import shrink_to_reference
from pipeline.errors import InvalidParameterError
from pipeline.noise_model import NoiseModel, noise_model_of
from pipeline.raw_frame import CameraMetadata, RawFrame
from pipeline.stages import lens_shading
from pipeline.stage_timer import Timer, untimed

@dataclass(frozen=True)
class BurstParams:
    """How to align and merge a burst."""

    align: AlignParams = field(default_factory=AlignParams)
    merge: MergeParams | KernelMergeParams = field(default_factory=KernelMergeParams)
    reference_candidates: int = 3

    @classmethod
    def for_merge(cls, method: MergeMethod) -> BurstParams:
        """The default parameters with the merge ``method`` names (:data:`MERGE_METHODS`)."""
        if method not in MERGE_METHODS:
            raise InvalidParameterError(f"merge={method!r}: expected one of {MERGE_METHODS}")
        return cls(merge=KernelMergeParams() if method == "kernel" else MergeParams())

    def __post_init__(self) -> None:
        if self.reference_candidates < 1:
            raise InvalidParameterError(
                f"reference_candidates={self.reference_candidates}: expected >= 1"
            )


def align_and_merge(
    frames: Sequence[RawFrame], params: BurstParams | None = None, timer: Timer | None = None
) -> RawFrame:
    """Merge a burst of raw frames into one less noisy raw frame of the reference's geometry.

    Parameters
    ----------
    frames : sequence of RawFrame
        Two or more frames of one size and CFA pattern, in capture order. Exposures may
        differ (a bracket): frames are compared and merged in the reference's scale. A
        :class:`~pipeline.burst.frames.StreamedBurst` is read one frame at a time: the
        reference candidates, then each other frame once, as it is merged.
    params : BurstParams, optional
    timer : callable, optional
        A :data:`pipeline.stage_timer.Timer` (e.g. a :class:`~pipeline.stage_timer.StageTimer`): collects "reference", "align", "merge" and, for a burst of one
        exposure, "shrink to reference" (:mod:`pipeline.burst.reference_shrink`).

    Returns
    -------
    RawFrame
        16-bit mosaic; the reference's metadata with a deeper white level, its black
        level scaled alike, and a NoiseProfile lowered by the frames merged.

    Raises
    ------
    BurstError
        Fewer than two frames, or frames of different sizes or CFA patterns.
    """
    stage = timer or untimed
    merge, reference, reference_noise, one_exposure = _merge(frames, params or BurstParams(), stage)
    with stage("merge"):
        merged = merge.finish()
    if not one_exposure:
        return merged
    with stage("shrink to reference"):
        return shrink_to_reference(merged, reference, reference_noise, len(frames))


def align_and_merge_rgb(
    frames: Sequence[RawFrame], params: BurstParams | None = None, timer: Timer | None = None
) -> tuple[npt.NDArray[np.float32], CameraMetadata]:
    """The kernel merge's own full colour, as :func:`align_and_merge` merges the burst.

    The kernel-regression merge demosaics as it merges (each output pixel gathers every
    frame's samples of each colour around it); :func:`align_and_merge` keeps each site's
    own colour of it, a mosaic like any raw frame's, and this returns all three, for a
    LinearRaw DNG. Not drawn back to the reference (:mod:`pipeline.burst.reference_shrink`
    works on the mosaic).

    Returns
    -------
    rgb : (H, W, 3) float32
        Linear camera RGB, black 0 and white 1, the lens shading map of the reference's
        metadata applied (none of the sensor's own tables: a raw converter sees the
        file's).
    metadata : CameraMetadata
        The merged mosaic's (:func:`align_and_merge`), its NoiseProfile lowered by the
        frames merged.

    Raises
    ------
    InvalidParameterError
        ``params`` asks for the resampling merge, which keeps one colour per site.
    BurstError
        As :func:`align_and_merge`.
    """
    params = params or BurstParams()
    if not isinstance(params.merge, KernelMergeParams):
        raise InvalidParameterError(
            "a full-colour merge needs the kernel merge: the resampling merge keeps one "
            "colour per site")
    stage = timer or untimed
    merge, *_ = _merge(frames, params, stage)
    with stage("merge"):
        rgb = merge.finish_rgb()
        metadata = merge.metadata()
    if metadata.lens_shading is not None:
        with stage("lens shading"):
            lens_shading.apply_to_rgb(rgb, metadata.lens_shading, metadata.cfa_pattern.channels)
    return rgb, metadata


def _merge(
    frames: Sequence[RawFrame], params: BurstParams, stage: Timer
) -> tuple[RobustMerge | KernelRegressionMerge, RawFrame, NoiseModel, bool]:
    """The merge of ``frames`` with every alternate added, before it is finished; the
    reference, its noise model, and whether the burst is of one exposure."""
    check_burst(frames)

    with stage("reference"):
        ref_index = select_reference_hasinoff2016(frames, params.reference_candidates)
        reference = frames[ref_index]
        reference_exposure = exposure_product(reference.metadata)
    with stage("align"):
        reference_grey = bayer_grey(reference)
        reference_pyramid = grey_pyramid(reference_grey, params.align)
    reference_noise = noise_model_of(reference)
    with stage("merge"):
        merge_class = KernelRegressionMerge if isinstance(params.merge, KernelMergeParams) else RobustMerge
        merge = merge_class(reference, reference_grey, reference_noise, params.merge)
    one_exposure = True
    for i in range(len(frames)):
        if i == ref_index:
            continue
        frame = frames[i]
        ratio = exposure_product(frame.metadata) / reference_exposure
        one_exposure &= abs(ratio - 1.0) < 1e-3
        with stage("align"):
            grey = bayer_grey(frame, 1.0 / ratio)
            flow = align_tiles_hasinoff2016(reference_pyramid, grey, params.align)
        with stage("merge"):
            merge.add(frame, flow, ratio, noise_model_of(frame))
        del frame, grey  # before the next is read: a streamed burst holds one at a time
    return merge, reference, reference_noise, one_exposure
