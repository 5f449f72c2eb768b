"""What the frames of a simulated burst hold: joint least squares with the exact poses.

    .venv/bin/python bench/burst_bound.py [--scale 1] [--gains 1 16] [--images kodim01 ...]

Issue 15 asks for +6.5 dB at gain 16 and +2.5 dB at gain 1 over the reference frame at 1x
scene scale, where a Kodak photo is sharp to the pixel. This script measures what the
frames themselves allow, with everything a real merge must estimate given for free:

Each frame's samples are modelled as the scene photo's three camera-colour planes (the
unknowns, on the photo's own pixel grid), interpolated bilinearly at the scene point the
sample shows (the simulator's own poses: alignment without error) and shaded by the lens
(the frame's exact shading map). The simulator renders every frame that way, so the model
is exact: it knows more than any merge can (a real scene has no hidden grid). The noise
model gives each sample its variance (at its 5 x 5 same-site mean), and samples that show
the moving object are left out. The system is solved on 12 windows of the reference
spread over the frame (64 px; the scene around each with a margin of 8 px), by LSQR
(Paige & Saunders 1982), and the estimate is the planes interpolated at the reference's
own sample points. Without a prior, the weighted least-squares solution is the best
linear unbiased estimate (Gauss-Markov): what the frames themselves hold about a scene
whose three colours may each change from pixel to pixel. At 1x a frame measures one
colour per pixel, so 8 frames give about 8/3 measurements per unknown, not 8; an 8-frame
average's +9 dB holds only where nothing moves (``--static`` checks that the solver then
reaches it) or where the scene is smoother than the pixel grid. A quadratic prior on the
gradients of luma and of the colour differences R-G, B-G (the inter-channel correlation
demosaicing uses) is swept, the best weight kept per scene and gain (chosen against the
truth: an oracle), and an edge-preserving (Huber) prior on the same gradients is run
with one fixed pair of weights.

A merge that smooths where the reference is flat (both of ours do) passes the unbiased
figure on smooth scenes: that part of its gain is a spatial prior, not information from
the other frames.

Printed beside it, on the same bursts and outside the moving object and a border the
shake can leave uncovered: the reference frame alone, the resampling merge and the kernel
regression merge (PSNR gain in dB over the reference alone, as bench/burst_quality.py).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sparse
from scipy.sparse.linalg import lsqr

from burst_quality import (
    KODAK,
    frame_pixel,
    merge_params,
    normalised,
    psnr_db,
    scene_point,
    simulated_burst,
)

#: (luma, colour difference) gradient weights swept, in units of the median noise sigma.
PRIOR_WEIGHTS = ((0.0, 0.0), (0.0, 0.03), (0.01, 0.1), (0.03, 0.3), (0.1, 1.0), (0.3, 3.0))
#: (luma, colour difference) weights of the edge-preserving prior: chosen from 0.03-3 each
#: on kodim01 and kodim13 at gain 16 (with the unknowns then on the reference's grid),
#: then fixed; the only constant chosen on results.
EDGE_PRESERVING_WEIGHTS = (0.3, 0.3)


def frame_to_scene(pose, shape: tuple[int, int], scene_shape: tuple[int, int]):
    """(u, v): the point of the scene image every pixel centre of a frame taken at
    ``pose`` shows, in scene pixels (as hardware/imx477_simulator.py renders it)."""
    height, width = shape
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    u, v = scene_point(pose, x, y, shape)
    scene_height, scene_width = scene_shape
    return ((u + width / 2) * (scene_width / width) - 0.5,
            (v + height / 2) * (scene_height / height) - 0.5)  # fmt: skip


def frame_to_reference(pose, reference_pose, shape: tuple[int, int]):
    """(x, y) on the reference frame's pixel grid of every pixel centre of a frame taken
    at ``pose``."""
    height, width = shape
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    return frame_pixel(reference_pose, *scene_point(pose, x, y, shape), shape)


def bilinear_matrix(u, v, channels, window):
    """Sparse rows taking the window's three planes (x, 3 h w) to the values at scene
    points (u, v), each of its channel, bilinearly; ``window`` is (y0, x0, h, w)."""
    wy, wx, wh, ww = window
    u, v = u - wx, v - wy
    x0, y0 = np.floor(u).astype(np.int64), np.floor(v).astype(np.int64)
    ax, ay = u - x0, v - y0
    base = channels * wh * ww
    index = np.arange(len(u))
    rows, cols, weights = [], [], []
    for dy, dx, w in ((0, 0, (1 - ax) * (1 - ay)), (0, 1, ax * (1 - ay)),
                      (1, 0, (1 - ax) * ay), (1, 1, ax * ay)):  # fmt: skip
        rows.append(index)
        cols.append(base + (y0 + dy) * ww + x0 + dx)
        weights.append(w)
    return sparse.csr_matrix(
        (np.concatenate(weights), (np.concatenate(rows), np.concatenate(cols))),
        shape=(len(u), 3 * wh * ww),
    )


def transmission(frame) -> np.ndarray:
    """(H, W) share of the light the lens passed to each pixel (1 without a shading map)."""
    from pipeline.stages import lens_shading

    ones = np.ones(frame.shape, dtype=np.float32)
    if frame.metadata.lens_shading is None:
        return ones.astype(np.float64)
    return 1.0 / lens_shading.apply(ones, frame.metadata.lens_shading).astype(np.float64)


def local_level(mosaic: np.ndarray) -> np.ndarray:
    """Each sample's 5 x 5 same-site mean: the level its noise variance is taken at (the
    sample's own value would weight samples that happened to come out dark more)."""
    from scipy.ndimage import uniform_filter

    level = np.empty_like(mosaic)
    for dy in (0, 1):
        for dx in (0, 1):
            level[dy::2, dx::2] = uniform_filter(mosaic[dy::2, dx::2], 5, mode="nearest")
    return level


@dataclass(frozen=True)
class FrameSamples:
    """One frame's samples that do not show the moving object (inside its footprint seen
    from the reference): the point each shows (u, v: scene pixels here, the reference's
    grid in bench/burst_joint.py), its colour channel, its value (raw, white = 1), its
    noise sigma and the lens's transmission."""

    u: np.ndarray
    v: np.ndarray
    channel: np.ndarray
    value: np.ndarray
    sigma: np.ndarray
    shade: np.ndarray


def samples_of(frame, x: np.ndarray, y: np.ndarray, keep: np.ndarray) -> FrameSamples:
    """A frame's samples where ``keep``, each at (x, y) (any coordinates the caller's model
    uses), with its channel, value, noise sigma (at its 5 x 5 same-site mean) and shading."""
    height, width = frame.shape
    site_channel = np.tile(frame.metadata.cfa_pattern.channels, (height // 2, width // 2))
    slope, offset = frame.metadata.noise_profile[0]
    mosaic = normalised(frame)
    sigma = np.sqrt(np.maximum(slope * np.maximum(local_level(mosaic), 0.0) + offset, 1e-10))
    return FrameSamples(x[keep], y[keep], site_channel[keep], mosaic[keep], sigma[keep],
                        transmission(frame)[keep])  # fmt: skip


def outside(mask: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Whether each reference-grid point (x, y) lies outside ``mask`` (nearest pixel)."""
    height, width = mask.shape
    return ~mask[np.clip(np.rint(y), 0, height - 1).astype(int),
                 np.clip(np.rint(x), 0, width - 1).astype(int)]  # fmt: skip


def frame_samples(burst, ref: int, poses, object_mask: np.ndarray,
                  scene_shape: tuple[int, int]) -> list[FrameSamples]:
    """Every frame's :class:`FrameSamples`, once for all the windows."""
    shape = burst[ref].shape
    samples = []
    for i, frame in enumerate(burst):
        still = outside(object_mask, *frame_to_reference(poses[i], poses[ref], shape))
        samples.append(samples_of(frame, *frame_to_scene(poses[i], shape, scene_shape), still))
    return samples


def observation_system(samples: list[FrameSamples], window, model=None, reach=(0, 1)):
    """The weighted system A x = b for the scene image's ``window`` (y0, x0, h, w): one row
    per sample whose point falls inside it, x the window's three camera-colour planes
    (3 h w unknowns), each row divided by its noise sigma; and the median sigma.
    ``model(u, v, channel, window)`` gives the rows (default :func:`bilinear_matrix`: the
    simulator's scene is the photo interpolated bilinearly, so this model is exact);
    ``reach`` (before, after) is how many cells its taps reach beyond a point's cell."""
    model = model or bilinear_matrix
    wy, wx, wh, ww = window
    before, after = reach
    blocks, values, sigmas = [], [], []
    for f in samples:
        inside = ((f.u >= wx + before) & (f.u < wx + ww - after)
                  & (f.v >= wy + before) & (f.v < wy + wh - after))  # fmt: skip
        rows = model(f.u[inside], f.v[inside], f.channel[inside], window)
        blocks.append(sparse.diags(f.shade[inside]) @ rows)
        values.append(f.value[inside])
        sigmas.append(f.sigma[inside])
    sigma = np.concatenate(sigmas)
    a = sparse.vstack(blocks)
    return sparse.diags(1.0 / sigma) @ a, np.concatenate(values) / sigma, float(np.median(sigma))


def gradient_prior(shape: tuple[int, int]):
    """Horizontal and vertical differences of luma (R + 2G + B) / 4 and of R - G, B - G."""
    height, width = shape

    def difference(n: int):
        return sparse.diags([-np.ones(n - 1), np.ones(n - 1)], [0, 1], shape=(n - 1, n))

    dx = sparse.kron(sparse.eye(height), difference(width))
    dy = sparse.kron(difference(height), sparse.eye(width))
    eye, zero = sparse.eye(height * width), sparse.csr_matrix((height * width, height * width))
    luma = sparse.hstack([0.25 * eye, 0.5 * eye, 0.25 * eye])
    chroma = (sparse.hstack([eye, -eye, zero]), sparse.hstack([zero, -eye, eye]))
    luma_rows = sparse.vstack([dx @ luma, dy @ luma])
    chroma_rows = sparse.vstack([d @ c for d in (dx, dy) for c in chroma])
    return luma_rows, chroma_rows


def reconstruct(a, b, sigma: float, prior, weights) -> np.ndarray:
    """Least-squares x (LSQR, Paige & Saunders 1982) with the prior's rows scaled by
    ``weights`` (luma, colour difference: numbers, or one per row) / ``sigma``."""
    blocks, rhs = [a], [b]
    for rows, weight in zip(prior, weights):
        if np.any(np.asarray(weight) > 0):
            blocks.append(sparse.diags(np.broadcast_to(weight / sigma, rows.shape[0])) @ rows)
            rhs.append(np.zeros(rows.shape[0]))
    system = sparse.vstack(blocks).tocsr()
    return lsqr(system, np.concatenate(rhs), atol=1e-7, btol=1e-7, iter_lim=2000)[0]


def reconstruct_edge_preserving(a, b, sigma: float, prior,
                                weights: tuple[float, float] = EDGE_PRESERVING_WEIGHTS,
                                iterations: int = 4) -> np.ndarray:
    """Least squares with a Huber prior on the same gradients (quadratic within the noise,
    growing as the gradient's magnitude beyond it: total variation at edges), by
    iteratively reweighted least squares from the quadratic solution; the prior of
    Farsiu, Elad, Milanfar's multi-frame demosaicing ("Multiframe demosaicing and
    super-resolution of color images", IEEE TIP 15(1), 2006), with plain rather than
    bilateral differences."""
    x = reconstruct(a, b, sigma, prior, PRIOR_WEIGHTS[2])
    for _ in range(iterations):
        reweighted = tuple(
            weight / np.sqrt(np.maximum(np.abs(rows @ x) / sigma, 1.0))
            for rows, weight in zip(prior, weights)
        )
        x = reconstruct(a, b, sigma, prior, reweighted)
    return x


def windows(shape: tuple[int, int], margin: int, size: int):
    """(y0, x0) of windows of ``size`` pixels of the reference, 3 down by 4 across, spread
    evenly over the frame inside ``margin``."""
    height, width = shape
    ys = np.linspace(margin, height - margin - size, 3).astype(int) // 2 * 2
    xs = np.linspace(margin, width - margin - size, 4).astype(int) // 2 * 2
    return [(y, x) for y in ys for x in xs]


def measure(name: str, gain: float, scale: int, seed: int, static: bool = False,
            size: int = 64) -> dict:
    """PSNR gains over the reference alone on 12 windows of ``size`` reference pixels: the
    two merges, the least-squares reconstruction for every quadratic prior weight, and
    with the edge-preserving prior ("edge")."""
    from PIL import Image

    from pipeline.burst import align_and_merge

    image = KODAK / f"{name}.png"
    burst, truth, mask, ref, poses = simulated_burst(image, gain, 8, scale, seed, static)
    height, width = truth.shape
    scene_shape = Image.open(image).size[::-1]
    site_channel = np.tile(burst[ref].metadata.cfa_pattern.channels, (height // 2, width // 2))
    shade = transmission(burst[ref])
    u, v = frame_to_scene(poses[ref], (height, width), scene_shape)
    samples = frame_samples(burst, ref, poses, mask, scene_shape)
    estimates = {w: np.zeros_like(truth) for w in (*PRIOR_WEIGHTS, "edge")}
    measured = np.zeros_like(mask)
    for y0, x0 in windows(truth.shape, 2 * 20 * scale + 8, size):
        inner = (slice(y0, y0 + size), slice(x0, x0 + size))
        measured[inner] = True
        # The scene window the reference window shows, with a margin of 8 scene pixels.
        top, left = int(np.floor(v[inner].min())) - 8, int(np.floor(u[inner].min())) - 8
        bottom, right = int(np.ceil(v[inner].max())) + 9, int(np.ceil(u[inner].max())) + 9
        window = (top, left, bottom - top, right - left)
        a, b, sigma = observation_system(samples, window)
        prior = gradient_prior(window[2:])
        shown = bilinear_matrix(u[inner].ravel(), v[inner].ravel(), site_channel[inner].ravel(),
                                window)  # fmt: skip
        for weights in (*PRIOR_WEIGHTS, "edge"):
            if weights == "edge":
                solution = reconstruct_edge_preserving(a, b, sigma, prior)
            else:
                solution = reconstruct(a, b, sigma, prior, weights)
            estimates[weights][inner] = (shown @ solution).reshape(size, size) * shade[inner]
    inside = measured & ~mask
    single = psnr_db(normalised(burst[ref]), truth, inside)
    result = {w: psnr_db(e, truth, inside) - single for w, e in estimates.items()}
    for merge in ("robust", "kernel"):
        merged = normalised(align_and_merge(burst, merge_params(merge)))
        result[merge] = psnr_db(merged, truth, inside) - single
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=1)
    parser.add_argument("--gains", type=float, nargs="+", default=[1.0, 16.0])
    parser.add_argument("--images", nargs="+", default=["kodim01", "kodim05", "kodim13", "kodim23"])
    parser.add_argument("--static", action="store_true",
                        help="no shake: the check that least squares is then the 8-frame "
                             "average, +9 dB")  # fmt: skip
    args = parser.parse_args()
    motion = "no shake" if args.static else "shake 20 px + 0.2 deg"
    print(f"8 frames, Kodak photos at {args.scale}x, {motion}; PSNR gain in dB "
          "over the reference frame alone, outside the moving object and the border")  # fmt: skip
    print(f"{'image':<9}{'gain':>5}{'resample':>9}{'kernel':>8}{'exact LS':>9}"
          f"{'+prior':>8}{'+edges':>8}  best quadratic prior   s")  # fmt: skip
    summary: dict[float, list[tuple[float, ...]]] = {}
    for seed, name in enumerate(args.images):
        for gain in args.gains:
            start = time.perf_counter()
            r = measure(name, gain, args.scale, seed, args.static)
            best = max(PRIOR_WEIGHTS, key=lambda w: r[w])
            row = (r["robust"], r["kernel"], r[PRIOR_WEIGHTS[0]], r[best], r["edge"])
            summary.setdefault(gain, []).append(row)
            print(f"{name:<9}{gain:>5g}{row[0]:>+9.2f}{row[1]:>+8.2f}{row[2]:>+9.2f}"
                  f"{row[3]:>+8.2f}{row[4]:>+8.2f}  {best!s:<20}"
                  f"{time.perf_counter() - start:>4.0f}")  # fmt: skip
    for gain, rows in summary.items():
        mean = np.mean(rows, axis=0)
        print(f"gain {gain:g}, mean: resample {mean[0]:+.2f}, kernel {mean[1]:+.2f}, "
              f"exact-pose least squares {mean[2]:+.2f}, with the best quadratic prior "
              f"{mean[3]:+.2f}, with the edge-preserving prior {mean[4]:+.2f}")


if __name__ == "__main__":
    main()
