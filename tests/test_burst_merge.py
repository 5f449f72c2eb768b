"""Burst align and merge: noise falls, shifts are found, moving things leave no ghost."""

from __future__ import annotations

import dataclasses
import gc
import weakref

import numpy as np
import pytest
from PIL import Image

from hardware.imx477_simulator import Imx477Simulator, MovingObject, SensorSettings
from pipeline import align_and_merge
from pipeline.burst import BurstError, BurstParams, CaptureLimits, Metering, StreamedBurst, plan_capture
from pipeline.burst.align import AlignParams, align_tiles_hasinoff2016, bayer_grey, grey_pyramid
from pipeline.burst.kernel_regression import (
    KernelMergeParams,
    KernelRegressionMerge,
    _kernel_inverse_covariance,
)
from pipeline.burst.merge import MergeParams
from pipeline.burst.modes import develop_burst
from pipeline.burst.reference import select_reference_hasinoff2016
from pipeline.cfa import CfaPattern
from pipeline.develop import develop
from pipeline.errors import InvalidParameterError, ObscuraError
from pipeline.noise_model import estimate_noise_foi2008, noise_model_of
from pipeline.raw_frame import RawFrame
from tests.conftest import SHARED_DATA

SIZE = (256, 384)
KERNEL = BurstParams(merge=KernelMergeParams())  # the default
RESAMPLE = BurstParams(merge=MergeParams())
MERGES = {"kernel": KERNEL, "resample": RESAMPLE}


def _scene(rng: np.random.Generator) -> np.ndarray:
    """A Kodak photo if present, else random texture at every scale (sRGB uint8): like a
    photo, it has structure for every level of the alignment pyramid, and a photo's spread
    of levels: deep shadows, mid-tones near sRGB 72 (kodim05's median) and a tail of
    highlights up to white. (A sum of octaves alone is nearly Gaussian: mid-grey, with
    almost nothing bright enough to clip.)"""
    path = SHARED_DATA / "kodak24" / "kodim05.png"
    if path.exists():
        return np.asarray(Image.open(path).convert("RGB"))
    texture = np.zeros((512, 768, 3), dtype=np.float32)
    for rows in (4, 8, 16, 32, 64, 128, 256):
        octave = rng.uniform(-1, 1, size=(rows, rows * 3 // 2, 3)).astype(np.float32)
        texture += np.stack([np.asarray(Image.fromarray(octave[..., c]).resize(
            (768, 512), Image.BICUBIC)) for c in range(3)], axis=-1)
    ranks = texture.reshape(-1, 3).argsort(axis=0).argsort(axis=0).reshape(texture.shape)
    quantiles = ranks / (ranks.shape[0] * ranks.shape[1] - 1)  # uniform in [0, 1]
    return (255 * quantiles**1.8).astype(np.uint8)


def _burst(seed: int, count: int, gain: float, is_noisy: bool = True, **sim) -> tuple[list[RawFrame], Imx477Simulator]:
    rng = np.random.default_rng(seed)
    camera = Imx477Simulator(
        _scene(rng), seed=seed, output_size=SIZE, hot_pixel_count=0, vignetting_strength=0.0,
        adds_noise=is_noisy, **sim,
    )  # fmt: skip
    settings = SensorSettings(camera.exposure_time_us_for(1.2, gain), analogue_gain=gain)
    return [camera.capture(settings) for _ in range(count)], camera


def _normalised(frame: RawFrame) -> np.ndarray:
    meta = frame.metadata
    black = np.tile(np.asarray(meta.black_level).reshape(2, 2), (frame.shape[0] // 2, frame.shape[1] // 2))
    return (frame.cfa - black) / (meta.white_level - black)


@pytest.mark.parametrize("merge", MERGES)
def test_static_burst_merges_to_lower_noise(merge: str) -> None:
    frames, _ = _burst(seed=1, count=6, gain=8.0)
    clean, _ = _burst(seed=1, count=1, gain=8.0, is_noisy=False)
    merged = align_and_merge(frames, MERGES[merge])
    truth = _normalised(clean[0])
    error_single = np.std(_normalised(frames[0]) - truth)
    error_merged = np.std(_normalised(merged) - truth)
    assert error_merged < error_single / 1.8  # ideal sqrt(6) = 2.45
    assert merged.cfa.dtype == np.uint16 and merged.shape == SIZE
    assert merged.metadata.white_level > 60000  # 16-bit
    assert merged.metadata.noise_profile[0][0] < frames[0].metadata.noise_profile[0][0] / 3


@pytest.mark.parametrize("motion_px", [3.0, 30.0])
def test_shifted_burst_aligns_within_a_tenth_of_a_pixel(motion_px: float) -> None:
    # Handheld shake up to motion_px, sub-pixel: the simulator's poses are the truth.
    frames, camera = _burst(seed=3, count=4, gain=1.0, motion_px=motion_px)
    params = AlignParams()
    pyramid = grey_pyramid(bayer_grey(frames[0]), params)
    for frame, pose in zip(frames[1:], camera.poses[1:]):
        flow = align_tiles_hasinoff2016(pyramid, bayer_grey(frame), params)
        # Raw pixels are half grey pixels; edge tiles see content leave the frame.
        found = np.median(flow.flow[1:-1, 1:-1].reshape(-1, 2), axis=0) * 2.0
        assert np.all(np.abs(found - (pose.dy_px, pose.dx_px)) < 0.1), (found, pose)


def test_moving_object_leaves_no_ghost() -> None:
    obj = MovingObject((150.0, 60.0), (80.0, 90.0), (0.0, 40.0), (0.95, 0.1, 0.05))
    frames, camera = _burst(seed=4, count=5, gain=4.0, moving_object=obj)
    clean, _ = _burst(seed=4, count=5, gain=4.0, moving_object=obj, is_noisy=False)
    merged = align_and_merge(frames, RESAMPLE)  # the kernel merge: a test of its own below
    ref = select_reference_hasinoff2016(frames)
    truth = _normalised(clean[ref])
    # Where the object was in any frame (scene and output share a scale up to 0.5x here).
    mask = np.zeros(SIZE, dtype=bool)
    sy, sx = SIZE[0] / 512, SIZE[1] / 768
    for i in range(5):
        y0, x0 = int((150 + 0 * i) * sy), int((60 + 40 * i) * sx)
        mask[y0 : y0 + int(80 * sy), x0 : x0 + int(90 * sx)] = True
    single_error = np.mean((_normalised(frames[ref]) - truth)[mask] ** 2)
    merged_error = np.mean((_normalised(merged) - truth)[mask] ** 2)
    assert 10 * np.log10(single_error / merged_error) > -0.5  # no ghost: never worse


@pytest.mark.parametrize("merge", MERGES)
def test_bracketed_burst_fills_clipped_highlights_from_the_short_frames(merge: str) -> None:
    rng = np.random.default_rng(5)
    camera = Imx477Simulator(_scene(rng), seed=5, output_size=SIZE, hot_pixel_count=0)
    long = SensorSettings(camera.exposure_time_us_for(0.25))  # highlights clip at EV 0
    short = SensorSettings(long.exposure_time_us / 4.0)  # EV -2
    frames = [camera.capture(long), camera.capture(short), camera.capture(short)]
    merged = align_and_merge(frames, MERGES[merge])
    assert select_reference_hasinoff2016(frames) == 0
    clipped = frames[0].cfa >= 4095
    assert clipped.mean() > 0.01
    meta = merged.metadata
    values = (merged.cfa[clipped] - meta.black_level[0]) / (meta.white_level - meta.black_level[0])
    # Clipped at 1/4 of the merged range; the short frames recorded what lies above.
    assert np.median(values) > 0.3
    expected_ev = frames[0].metadata.baseline_exposure_ev + 2.0
    assert meta.baseline_exposure_ev == pytest.approx(expected_ev, abs=0.01)  # whole us


def test_only_a_burst_of_one_exposure_is_drawn_back_to_its_reference() -> None:
    # pipeline.burst.reference_shrink assumes the merged noise is the reference's over N.
    from pipeline.stage_timer import StageTimer

    frames, _ = _burst(seed=7, count=3, gain=4.0)
    one_exposure, bracket = StageTimer(), StageTimer()
    align_and_merge(frames, timer=one_exposure)
    short = dataclasses.replace(frames[2].metadata,
                                exposure_time_s=frames[2].metadata.exposure_time_s / 2)  # fmt: skip
    align_and_merge([*frames[:2], RawFrame(frames[2].cfa, short)], timer=bracket)
    assert "shrink to reference" in one_exposure.seconds
    assert "shrink to reference" not in bracket.seconds and "merge" in bracket.seconds


@pytest.mark.parametrize("merge", MERGES)
def test_every_cfa_pattern_merges(merge: str) -> None:
    frames, _ = _burst(seed=6, count=3, gain=2.0)
    for pattern in CfaPattern:
        relabelled = [
            RawFrame(f.cfa, dataclasses.replace(f.metadata, cfa_pattern=pattern)) for f in frames
        ]
        merged = align_and_merge(relabelled, MERGES[merge])
        assert merged.metadata.cfa_pattern == pattern


def test_noise_fit_finds_the_simulated_noise_profile() -> None:
    # A smooth ramp: the fit's residuals then see noise, not texture.
    ramp = np.linspace(0.05, 1.0, SIZE[1], dtype=np.float32)
    scene = np.repeat(np.repeat(ramp[None, :, None], SIZE[0], axis=0), 3, axis=2)
    camera = Imx477Simulator(scene, seed=7, hot_pixel_count=0, vignetting_strength=0.0)
    frame = camera.capture(SensorSettings(camera.exposure_time_us_for(1.0, 8.0), analogue_gain=8.0))
    scale, offset = frame.metadata.noise_profile[0]
    model = estimate_noise_foi2008(frame)
    for x in (0.05, 0.2, 0.6):
        assert model.variance(x) == pytest.approx(scale * x + offset, rel=0.25)


def test_a_small_frame_without_a_noise_profile_still_develops() -> None:
    # Too few samples at any one level for the fit: a constant model, not a crash.
    camera = Imx477Simulator(np.full((8, 8, 3), 120, np.uint8), seed=1, output_size=(32, 48))
    frame = camera.capture(SensorSettings(exposure_time_us=1000))
    bare = RawFrame(frame.cfa, dataclasses.replace(frame.metadata, noise_profile=None))
    model = estimate_noise_foi2008(bare)
    assert model.scale == 0.0 and model.offset > 0.0
    assert develop(bare).shape == (32, 48, 3)


@pytest.mark.parametrize("mode", ["burst", "hdr", "night"])
def test_develop_burst_in_every_mode(mode: str) -> None:
    frames, _ = _burst(seed=8, count=3, gain=4.0)
    image = develop_burst(frames, mode)
    assert image.shape == SIZE + (3,) and image.dtype == np.float32
    assert 0.05 < float(image.mean()) < 0.95


def test_burst_errors_name_the_parameter_and_value() -> None:
    frames, _ = _burst(seed=9, count=2, gain=1.0)
    with pytest.raises(BurstError, match="at least 2") as info:
        align_and_merge(frames[:1])
    assert isinstance(info.value, ObscuraError) and isinstance(info.value, ValueError)
    cropped = RawFrame(frames[1].cfa[:128, :128].copy(), frames[1].metadata)
    with pytest.raises(BurstError, match=r"frames\[1\] is 128x128"):
        align_and_merge([frames[0], cropped])
    other = RawFrame(frames[1].cfa, dataclasses.replace(frames[1].metadata, cfa_pattern=CfaPattern.RGGB))
    with pytest.raises(BurstError, match="CFA pattern RGGB"):
        align_and_merge([frames[0], other])
    with pytest.raises(InvalidParameterError, match="mode='sunset'"):
        develop_burst(frames, "sunset")


def test_plan_capture_for_each_mode() -> None:
    metering = Metering(exposure_time_us=20_000, analogue_gain=2.0, highlight_headroom_ev=2.0)
    assert plan_capture("burst", metering) == [(20_000.0, 2.0)] * 8
    hdr = plan_capture("hdr", metering)
    assert len(hdr) == 8 and hdr[0][0] * hdr[0][1] == pytest.approx(40_000 / 4)
    dark = Metering(exposure_time_us=100_000, analogue_gain=16.0, motion_px_per_s=10.0)
    night = plan_capture("night", dark)
    time_us, gain = night[0]
    assert time_us == 100_000 and gain == 16.0  # 1 px of blur at 10 px/s
    assert CaptureLimits().night_min_frames <= len(night) <= 15
    tripod = plan_capture("night", Metering(exposure_time_us=100_000, analogue_gain=16.0))
    assert tripod[0] == (1_000_000.0, 1.6) and len(tripod) == 6
    with pytest.raises(InvalidParameterError, match="mode='panorama'"):
        plan_capture("panorama", metering)
    with pytest.raises(InvalidParameterError, match="exposure_time_us=0"):
        Metering(exposure_time_us=0)


def test_a_streamed_burst_merges_alike_holding_two_frames_at_a_time() -> None:
    frames, _ = _burst(seed=5, count=6, gain=4.0, motion_px=3.0)
    reads: list[int] = []
    alive: list[weakref.ref] = []
    most_alive = 0

    def read(index: int) -> RawFrame:
        nonlocal most_alive
        reads.append(index)
        frame = RawFrame(frames[index].cfa.copy(), frames[index].metadata)
        gc.collect()
        alive[:] = [ref for ref in alive if ref() is not None]
        most_alive = max(most_alive, len(alive) + 1)
        alive.append(weakref.ref(frame))
        return frame

    streamed = StreamedBurst([f.metadata for f in frames], SIZE, read)
    merged = align_and_merge(streamed)
    assert np.array_equal(merged.cfa, align_and_merge(frames).cfa)
    candidates = 3
    assert len(reads) == candidates + 1 + (len(frames) - 1)  # each other frame read once
    assert most_alive == 2  # the reference and the frame being merged


def test_a_streamed_burst_checks_each_frame_as_it_is_read() -> None:
    frames, _ = _burst(seed=6, count=3, gain=1.0)
    small = RawFrame(frames[2].cfa[:128], frames[2].metadata)
    streamed = StreamedBurst([f.metadata for f in frames], SIZE,
                             lambda i: small if i == 2 else frames[i])
    with pytest.raises(BurstError, match=r"frames\[2\] is 384x128, the burst 384x256"):
        align_and_merge(streamed)
    with pytest.raises(BurstError, match="at least 2"):
        align_and_merge(StreamedBurst(frames[:1] and [frames[0].metadata], SIZE, frames.__getitem__))



@pytest.mark.skipif(not (SHARED_DATA / "kodak24" / "kodim05.png").exists(),
                    reason="needs a photo's spectrum (../shared/data/kodak24): on the fallback "
                           "texture, whose finest octave is 2 px, both merges sit at the "
                           "resampling floor (issue 15)")
def test_kernel_regression_merge_lowers_noise_at_sub_pixel_shifts() -> None:
    # Sub-pixel handheld shake: every frame's samples land between the reference's.
    frames, camera = _burst(seed=11, count=6, gain=8.0, motion_px=3.0)
    clean, _ = _burst(seed=11, count=6, gain=8.0, motion_px=3.0, is_noisy=False)
    ref = select_reference_hasinoff2016(frames)
    truth = _normalised(clean[ref])[16:-16, 16:-16]
    error_single = np.std(_normalised(frames[ref])[16:-16, 16:-16] - truth)
    merged = align_and_merge(frames, KERNEL)
    error_merged = np.std(_normalised(merged)[16:-16, 16:-16] - truth)
    error_resampled = np.std(_normalised(align_and_merge(frames, RESAMPLE))[16:-16, 16:-16] - truth)
    # The scene is sharp to the pixel here (a Kodak photo at half size): what a merge
    # gains is what it loses less to resampling.
    assert error_merged < error_resampled and error_merged < error_single / 1.04
    assert merged.cfa.dtype == np.uint16 and merged.metadata.white_level > 60000


def test_kernel_regression_merge_leaves_no_ghost() -> None:
    obj = MovingObject((150.0, 60.0), (80.0, 90.0), (0.0, 40.0), (0.95, 0.1, 0.05))
    frames, _ = _burst(seed=4, count=5, gain=4.0, moving_object=obj)
    clean, _ = _burst(seed=4, count=5, gain=4.0, moving_object=obj, is_noisy=False)
    merged = align_and_merge(frames, KERNEL)
    ref = select_reference_hasinoff2016(frames)
    truth = _normalised(clean[ref])
    mask = np.zeros(SIZE, dtype=bool)
    sy, sx = SIZE[0] / 512, SIZE[1] / 768
    for i in range(5):
        y0, x0 = int(150 * sy), int((60 + 40 * i) * sx)
        mask[y0 : y0 + int(80 * sy), x0 : x0 + int(90 * sx)] = True
    single_error = np.mean((_normalised(frames[ref]) - truth)[mask] ** 2)
    merged_error = np.mean((_normalised(merged) - truth)[mask] ** 2)
    assert 10 * np.log10(single_error / merged_error) > 0.0  # never worse than the reference


def test_kernel_regression_demosaics_in_the_merge() -> None:
    # Flat colour patches: every channel of every pixel is known, not only each site's.
    scene = np.zeros((64, 96, 3), dtype=np.uint8)
    scene[:, :48] = (200, 60, 30)
    scene[:, 48:] = (40, 120, 220)
    camera = Imx477Simulator(scene, seed=12, output_size=(128, 192), hot_pixel_count=0,
                             vignetting_strength=0.0, motion_px=2.0)  # fmt: skip
    settings = SensorSettings(camera.exposure_time_us_for(1.2, 2.0), analogue_gain=2.0)
    frames = [camera.capture(settings) for _ in range(4)]
    reference = frames[0]
    grey = bayer_grey(reference)
    params = AlignParams()
    merge = KernelRegressionMerge(reference, grey, noise_model_of(reference), KernelMergeParams())
    pyramid = grey_pyramid(grey, params)
    for frame in frames[1:]:
        merge.add(frame, align_tiles_hasinoff2016(pyramid, bayer_grey(frame), params), 1.0,
                  noise_model_of(frame))  # fmt: skip
    rgb = merge.finish_rgb()
    assert rgb.shape == (128, 192, 3) and rgb.dtype == np.float32
    mosaic = _normalised(reference)
    channels = reference.metadata.cfa_pattern.channels
    for x0, x1 in ((8, 80), (112, 184)):
        patch = rgb[8:-8, x0:x1]
        for c in range(3):
            sites = np.zeros(reference.shape, dtype=bool)
            sites[8:-8, x0:x1] = np.tile(channels == c, (64, 96))[8:-8, x0:x1]
            # Each channel everywhere matches that channel's raw samples.
            assert float(patch[..., c].mean()) == pytest.approx(float(mosaic[sites].mean()), rel=0.02)


def _neutral_kernel(mosaic: np.ndarray, kp: KernelMergeParams) -> np.ndarray:
    # The kernel of a neutral (white-balanced) RGGB mosaic at a low noise level.
    return _kernel_inverse_covariance(
        mosaic, CfaPattern.RGGB.channels.astype(np.int64), np.ones(3, dtype=np.float32),
        np.array([1e-4, 1e-6], dtype=np.float32), kp,
    )  # fmt: skip


def test_kernel_covariance_follows_the_edges_of_the_reference() -> None:
    # A vertical edge: the kernel is narrow across it (x) and k_max wide along it (y);
    # in the flat parts it is k_max wide both ways (a, c = 1 / k**2).
    mosaic = np.full((64, 64), 0.2, dtype=np.float32)
    mosaic[:, 32:] = 0.7
    kp = KernelMergeParams()
    inv_cov = _neutral_kernel(mosaic, kp)
    edge = inv_cov[8, 16]  # the Bayer tile whose 3x3 cells straddle x = 32
    flat = inv_cov[8, 4]
    assert edge[0] > 4 * edge[2] and abs(edge[1]) < 1e-3 * edge[0]  # a / c: across >> along
    assert edge[2] == pytest.approx(1 / kp.k_max**2, rel=1e-4)
    assert flat[0] == pytest.approx(1 / kp.k_max**2, rel=1e-4) == flat[2]
    assert edge[0] <= 1 / kp.k_min**2 * (1 + 1e-5)
    with pytest.raises(InvalidParameterError, match="k_min=0"):
        KernelMergeParams(k_min=0)
    with pytest.raises(InvalidParameterError, match="noise_to_gradient=-1"):
        KernelMergeParams(noise_to_gradient=-1)


def test_kernel_sees_detail_finer_than_a_bayer_tile() -> None:
    # Stripes one pixel wide (a scene sharp to the pixel, as at 1:1 scale): every 2x2
    # Bayer tile has the same mean, so a half-resolution grey image is flat, but the
    # kernel must still be narrow across them, or the merge blurs them away.
    mosaic = np.full((64, 64), 0.2, dtype=np.float32)
    mosaic[:, 1::2] = 0.6
    kp = KernelMergeParams()
    inv_cov = _neutral_kernel(mosaic, kp)
    centre = inv_cov[16, 16]
    assert centre[0] > 10 / kp.k_max**2  # across the stripes: a = 1 / width**2
