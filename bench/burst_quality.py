"""Quality of the burst merge: PSNR against the clean reference frame, and real-burst noise.

    .venv/bin/python bench/burst_quality.py [--scale 2] [--frames 8] [--images kodim01 ...]

1. Simulated bursts: Kodak photos through the IMX477 simulator at analogue gains 1, 4
   and 16 (exposed so the scene's white just clips, as the metered exposure would),
   handheld shake up to 20 px with a little rotation, and a red rectangle crossing the
   frame. The merged frame and the reference frame alone are compared, in the raw domain
   (black 0, white 1), with the reference frame rendered again without noise: PSNR over
   the frame and inside the moving object's region (everywhere the object was in any
   frame, seen from the reference: where ghosts would be).
   ``--scale 2`` renders each 768x512 photo onto 1536x1024 pixels: the HQ camera's lens
   blurs over about 2 of its 1.55 um pixels (Airy disc about 3.8 um at f/2.8), while a
   Kodak photo is sharp to the pixel; ``--scale 1`` shows the harder, aliased case.
   ``--merge`` chooses the merge (``robust``: the resampling merge of
   :mod:`pipeline.burst.merge`; ``kernel``: the kernel regression of
   :mod:`pipeline.burst.kernel_regression`; ``both``: each on the same bursts).
   Diagnostics: ``--static`` holds the camera still (no shake, no rotation: a merge
   should then reach about 10 log10(frames) dB, +9 for 8); ``--noiseless`` renders every
   frame without noise, so the "merged" column is the floor the alignment and the
   merge's geometry leave on their own (the "single" column is then infinite);
   ``--alternate-floor`` measures, instead of merging, how well each alternate frame,
   without noise and aligned exactly, can predict the reference's samples (demosaiced,
   then resampled bicubically): what any merge that interpolates the alternates can use;
   ``--band-limited`` renders a band-limited scene, so that at 1x no frame is sharper than
   another for its sub-pixel phase (:func:`simulated_burst`).
2. The real static burst (Pi Global Shutter camera, 10 frames, no NoiseProfile, so the
   noise model is fitted to the frames): frames 0-7 are merged; the other two frames'
   mean is the comparison. That comparison carries noise of its own (sigma**2 / 2), so
   the measured ratio single / merged error is reported as it is, beside the ratio a
   perfect 8-frame average would measure the same way: sqrt((1 + 1/2) / (1/8 + 1/2)) =
   1.55x. (Subtracting an estimate of the comparison's noise instead divides by a small
   difference of two noisy variances: it read 3.05x, above the physical 2.83x.)
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
KODAK = REPO.parent / "shared" / "data" / "kodak24"
REAL_BURST = REPO.parent / "shared" / "data" / "raw" / "pi_imx296_mex2025" / "burst_static_64set_first10"
GAINS = (1.0, 4.0, 16.0)


def normalised(frame) -> np.ndarray:
    """(H, W) float64 raw values, black 0 and white 1 per CFA site."""
    meta = frame.metadata
    h, w = frame.shape
    black = np.tile(np.asarray(meta.black_level, dtype=np.float64).reshape(2, 2), (h // 2, w // 2))
    return (frame.cfa - black) / (meta.white_level - black)


def psnr_db(image: np.ndarray, truth: np.ndarray, mask: np.ndarray | None = None) -> float:
    error = (image - truth) ** 2
    return float(10.0 * np.log10(1.0 / np.mean(error if mask is None else error[mask])))


#: Factor the photo is enlarged by (Lanczos) for a band-limited scene (``--band-limited``).
BAND_LIMITED_UPSAMPLING = 4


def simulated_burst(image: Path, gain: float, frames: int, scale: int, seed: int,
                    static: bool = False, noisy: bool = True, band_limited: bool = False):
    """A simulated burst of ``image`` (noisy unless ``noisy`` is False; shaken unless
    ``static``), the clean reference frame (raw, white = 1), the moving object's
    footprint seen from the reference, the reference's index and every frame's pose.

    The simulator point-samples the photo interpolated bilinearly, so at 1x a frame
    shifted by whole pixels is sharper than one shifted by half a pixel (there it averages
    two photo pixels); real pixels are alike at every phase. ``band_limited`` renders the
    photo enlarged :data:`BAND_LIMITED_UPSAMPLING` times with a Lanczos filter instead (the
    frames keep their size): every frame then samples the same band-limited scene."""
    from hardware.imx477_simulator import Imx477Simulator, MovingObject, SensorSettings
    from pipeline.burst.reference import select_reference_hasinoff2016

    photo = Image.open(image).convert("RGB")
    sw, sh = photo.size
    up = BAND_LIMITED_UPSAMPLING if band_limited else 1
    scene = np.asarray(photo.resize((sw * up, sh * up), Image.LANCZOS) if band_limited else photo)
    obj = MovingObject(
        top_left_yx=(0.35 * sh * up, 0.1 * sw * up), size_yx=(0.15 * sh * up, 0.12 * sw * up),
        velocity_yx_px_per_frame=(0.004 * sh * up, 0.05 * sw * up), colour_srgb=(0.85, 0.15, 0.1),
    )  # fmt: skip
    size = (sh * scale, sw * scale)
    cameras = [
        Imx477Simulator(
            scene, seed=seed, output_size=size, motion_px=0.0 if static else 20.0,
            motion_rotation_deg=0.0 if static else 0.2, hot_pixel_count=0, moving_object=obj,
            adds_noise=is_noisy,
        )  # fmt: skip
        for is_noisy in (noisy, False)
    ]
    settings = SensorSettings(cameras[0].exposure_time_us_for(1.0, gain), analogue_gain=gain)
    shots = [cameras[0].capture(settings) for _ in range(frames)]
    clean = [cameras[1].capture(settings) for _ in range(frames)]
    ref = select_reference_hasinoff2016(shots)
    # The object's footprint in every frame, seen from the reference frame's pose
    # (rotation of 0.2 degrees moves it by under 2 px: a 2 px margin covers it).
    pose = cameras[0].poses[ref]
    mask = np.zeros(size, dtype=bool)
    output_per_scene = scale / up
    for i in range(frames):
        top = obj.top_left_yx[0] + i * obj.velocity_yx_px_per_frame[0]
        left = obj.top_left_yx[1] + i * obj.velocity_yx_px_per_frame[1]
        y0 = top * output_per_scene + pose.dy_px
        x0 = left * output_per_scene + pose.dx_px
        y1 = y0 + obj.size_yx[0] * output_per_scene
        x1 = x0 + obj.size_yx[1] * output_per_scene
        mask[max(int(y0) - 2, 0) : max(int(y1) + 3, 0), max(int(x0) - 2, 0) : max(int(x1) + 3, 0)] = True
    return shots, normalised(clean[ref]), mask, ref, cameras[0].poses


def merge_params(merge: str):
    """BurstParams for ``merge``: "robust" or "kernel"."""
    from pipeline.burst import BurstParams
    from pipeline.burst.kernel_regression import KernelMergeParams
    from pipeline.burst.merge import MergeParams

    return BurstParams(merge=KernelMergeParams() if merge == "kernel" else MergeParams())


def simulated(image: Path, gain: float, frames: int, scale: int, seed: int,
              merges: tuple[str, ...] = ("robust",), static: bool = False,
              noisy: bool = True, band_limited: bool = False) -> dict[str, dict[str, float]]:
    """Per merge: PSNR of the reference frame and of the merge, whole frame and object
    region, and the merge's seconds."""
    from pipeline.burst import align_and_merge

    burst, truth, mask, ref, _ = simulated_burst(image, gain, frames, scale, seed, static, noisy,
                                                 band_limited)
    single = normalised(burst[ref])
    results = {}
    for merge in merges:
        start = time.perf_counter()
        merged = align_and_merge(burst, merge_params(merge))
        seconds = time.perf_counter() - start
        fused = normalised(merged)
        results[merge] = {
            "single": psnr_db(single, truth),
            "merged": psnr_db(fused, truth),
            "single_object": psnr_db(single, truth, mask),
            "merged_object": psnr_db(fused, truth, mask),
            "seconds": seconds,
        }
    return results


def scene_point(pose, x, y, shape: tuple[int, int]):
    """(u, v): the scene point, about the frame centre, that pixel (x, y) of a frame taken
    at ``pose`` shows (the simulator's convention: content rotated about the frame centre,
    then shifted)."""
    height, width = shape
    theta = np.radians(pose.rotation_deg)
    c, s = np.cos(theta), np.sin(theta)
    qx = x + 0.5 - width / 2 - pose.dx_px
    qy = y + 0.5 - height / 2 - pose.dy_px
    return c * qx + s * qy, -s * qx + c * qy


def frame_pixel(pose, u, v, shape: tuple[int, int]):
    """(x, y): where a frame taken at ``pose`` shows the scene point (u, v) (about the
    centre); the inverse of :func:`scene_point`."""
    height, width = shape
    theta = np.radians(pose.rotation_deg)
    c, s = np.cos(theta), np.sin(theta)
    x = c * u - s * v + pose.dx_px + width / 2 - 0.5
    y = s * u + c * v + pose.dy_px + height / 2 - 0.5
    return x, y


def alternate_floor(image: Path, frames: int, scale: int, seed: int) -> tuple[list[float], float]:
    """How well one alternate frame, without noise and aligned exactly (the simulator's
    poses), can stand in for the reference: each clean alternate demosaiced
    (:mod:`pipeline.stages.demosaic`), resampled bicubically at the positions the
    reference's sites show, and compared with the clean reference (PSNR, dB, away from
    the frame edges and the moving object). Also the reference alone at gain 1, noisy.

    Every merge that interpolates the alternates before weighing them against the
    reference (ours, HDR+'s) inherits this floor: an alternate predicted worse than the
    reference's own noise adds nothing there.
    """
    from scipy.ndimage import map_coordinates

    from pipeline.stages.demosaic import demosaic

    burst, truth, mask, ref, poses = simulated_burst(image, 1.0, frames, scale, seed)
    clean, *_ = simulated_burst(image, 1.0, frames, scale, seed, noisy=False)
    height, width = truth.shape
    pattern = burst[ref].metadata.cfa_pattern
    site_channel = np.tile(pattern.channels, (height // 2, width // 2))
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    u, v = scene_point(poses[ref], x, y, (height, width))
    margin = 2 * 20 * scale + 8  # the shake reaches 20 px (times the scale)
    inside = ~mask
    inside[:margin] = inside[-margin:] = False
    inside[:, :margin] = inside[:, -margin:] = False
    floors = []
    for i, frame in enumerate(clean):
        if i == ref:
            continue
        fx, fy = frame_pixel(poses[i], u, v, (height, width))
        rgb = demosaic(normalised(frame).astype(np.float32), pattern)
        predicted = np.empty_like(truth)
        for channel in range(3):
            sites = site_channel == channel
            plane = rgb[..., channel].astype(np.float64)
            predicted[sites] = map_coordinates(plane, [fy[sites], fx[sites]], order=3,
                                               mode="nearest")  # fmt: skip
        floors.append(psnr_db(predicted, truth, inside))
    return floors, psnr_db(normalised(burst[ref]), truth)


#: What a perfect average of 8 frames measures against the mean of 2 others.
REAL_BURST_IDEAL = float(np.sqrt((1 + 1 / 2) / (1 / 8 + 1 / 2)))


def real_burst(merge: str = "robust") -> float | None:
    """Noise ratio single / merged on the real static burst, as measured (the comparison
    frames' own noise included: a perfect merge measures :data:`REAL_BURST_IDEAL`)."""
    from pipeline.burst import align_and_merge
    from pipeline.burst.reference import select_reference_hasinoff2016
    from pipeline.formats.dng_reader import read_dng

    paths = sorted(REAL_BURST.glob("*.dng"))
    if len(paths) < 10:
        return None
    frames = [read_dng(p) for p in paths[:10]]
    merged = align_and_merge(frames[:8], merge_params(merge))
    single = frames[select_reference_hasinoff2016(frames[:8])]
    truth = np.mean([normalised(f) for f in frames[8:]], axis=0)
    var_single = float(np.var(normalised(single) - truth))
    var_merged = float(np.var(normalised(merged) - truth))
    return float(np.sqrt(var_single / var_merged))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=2)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--images", nargs="+", default=["kodim01", "kodim05", "kodim13", "kodim23"])
    parser.add_argument("--merge", choices=("robust", "kernel", "both"), default="both")
    parser.add_argument("--static", action="store_true", help="no shake, no rotation")
    parser.add_argument("--noiseless", action="store_true", help="frames without noise")
    parser.add_argument("--band-limited", action="store_true",
                        help="render the photo enlarged with a Lanczos filter, so no frame is "
                             "sharper for its sub-pixel phase (see simulated_burst)")  # fmt: skip
    parser.add_argument("--alternate-floor", action="store_true",
                        help="only: how well a clean, exactly aligned alternate frame can "
                             "predict the reference (see alternate_floor)")
    args = parser.parse_args()
    if args.alternate_floor:
        print(f"alternate frames at {args.scale}x, without noise, aligned exactly (simulator "
              "poses), demosaiced and resampled bicubically at the reference's sites; PSNR in "
              "dB against the clean reference, beside the reference alone at gain 1")  # fmt: skip
        for seed, name in enumerate(args.images):
            floors, single = alternate_floor(KODAK / f"{name}.png", args.frames, args.scale, seed)
            print(f"{name:<9} alternates {min(floors):.2f}..{max(floors):.2f} "
                  f"(mean {np.mean(floors):.2f}); reference alone at gain 1 {single:.2f}")
        return
    merges = ("robust", "kernel") if args.merge == "both" else (args.merge,)

    motion = "no shake" if args.static else "shake 20 px + 0.2 deg"
    noise = (", no noise" if args.noiseless else "") + (", band-limited" if args.band_limited else "")
    print(f"simulated: {args.frames} frames, Kodak photos at {args.scale}x, {motion}{noise}, "
          "a moving object; PSNR in dB against the clean reference frame (raw, white = 1)")  # fmt: skip
    print(f"{'image':<9}{'gain':>5}{'merge':>7}{'single':>8}{'merged':>8}{'gain dB':>8}"
          f"{'obj single':>11}{'obj merged':>11}{'obj dB':>7}{'s':>6}")  # fmt: skip
    summary: dict[tuple[str, float], list[tuple[float, float]]] = {}
    for seed, name in enumerate(args.images):
        for gain in GAINS:
            results = simulated(KODAK / f"{name}.png", gain, args.frames, args.scale, seed, merges,
                                args.static, not args.noiseless, args.band_limited)
            for merge, r in results.items():
                gain_db = r["merged"] - r["single"]
                obj_db = r["merged_object"] - r["single_object"]
                summary.setdefault((merge, gain), []).append((gain_db, obj_db))
                print(f"{name:<9}{gain:>5g}{merge:>7}{r['single']:>8.2f}{r['merged']:>8.2f}"
                      f"{gain_db:>+8.2f}{r['single_object']:>11.2f}{r['merged_object']:>11.2f}"
                      f"{obj_db:>+7.2f}{r['seconds']:>6.2f}")  # fmt: skip
    for (merge, gain), rows in summary.items():
        gains, objects = np.array(rows).T
        print(f"{merge:>6} gain {gain:>4g}: mean PSNR gain {gains.mean():+.2f} dB (min "
              f"{gains.min():+.2f}); object region: mean {objects.mean():+.2f} dB, worst "
              f"{objects.min():+.2f} dB")  # fmt: skip
    print("targets (issue 15, at 1x): gain 16 mean >= +6.5 dB and every scene >= +3 dB; "
          "gain 1 mean >= +2.5 dB; object region never below the reference alone")

    for merge in merges:
        ratio = real_burst(merge)
        if ratio is None:
            print(f"real burst not found at {REAL_BURST}")
            break
        print(f"real static burst (IMX296, frames 0-7 merged, compared with the mean of frames "
              f"8-9), {merge}: noise single / merged = {ratio:.2f}x measured (a perfect "
              f"8-frame average measures {REAL_BURST_IDEAL:.2f}x this way)")  # fmt: skip


if __name__ == "__main__":
    main()
