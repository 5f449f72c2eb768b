"""A joint reconstruction of a burst with what a merge has: estimated alignment, no scene grid.

    .venv/bin/python bench/burst_joint.py [--band-limited] [--grid 2] [--gains 1 16]
        [--alignment estimated|exact] [--images kodim01 ...]

``bench/burst_bound.py`` solves for the scene on the photo's own pixel grid with the
simulator's exact poses: an oracle (its model is the simulator's). This script solves the
same weighted least-squares problem (its edge-preserving prior, its LSQR solver, its 12
windows of 64 reference pixels) with only what a merge on the camera could know:

- the unknowns are the three colour planes on a grid tied to the reference frame,
  ``--grid`` times finer than its pixels (1: the reference's own grid, all a merge that
  outputs at 1x has; 2: twice as fine, as a super-resolving merge, Wronski et al. 2019,
  would hold them), and each sample is modelled by cubic convolution of its colour's
  plane at its position (Keys, "Cubic convolution interpolation for digital image
  processing", IEEE TASSP 29(6), 1981), not by the simulator's bilinear rendering;
- each frame's position is an affine map fitted to our tile alignment
  (:func:`pipeline.burst.align.align_tiles_hasinoff2016`) by iteratively reweighted least
  squares with Huber's weights (Huber, "Robust estimation of a location parameter", Ann.
  Math. Statist. 35(1), 1964), so tiles on the moving object do not pull it
  (``--alignment exact`` takes the simulator's poses instead, to tell alignment error
  from model error);
- the lens shading is the frames' own shading map (their DNG metadata);
- as in burst_bound.py, samples that show the moving object are left out by its known
  footprint: a real merge would need robustness weights there (not measured here).

The estimate at each reference site is its colour's plane at the site. Printed beside it,
on the same windows: the kernel merge (``pipeline.burst``, ``--merge kernel``), PSNR gain
in dB over the reference frame alone, outside the moving object and the shake's border.
``--band-limited`` renders the photo enlarged with a Lanczos filter (as
bench/burst_quality.py), so the scene has no hidden grid a model could snap to.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import scipy.sparse as sparse

from burst_bound import (
    frame_to_reference,
    gradient_prior,
    observation_system,
    outside,
    reconstruct_edge_preserving,
    samples_of,
    transmission,
    windows,
)
from burst_quality import KODAK, merge_params, normalised, psnr_db, simulated_burst

#: Unknown-grid cells added around each window on every side, in reference pixels.
WINDOW_MARGIN = 4


def keys_weights(t: np.ndarray) -> np.ndarray:
    """Keys' cubic convolution kernel (a = -0.5) at distances ``t``."""
    t = np.abs(t)
    near = 1.5 * t**3 - 2.5 * t**2 + 1.0
    far = -0.5 * t**3 + 2.5 * t**2 - 4.0 * t + 2.0
    return np.where(t < 1.0, near, np.where(t < 2.0, far, 0.0))


def cubic_matrix(x: np.ndarray, y: np.ndarray, channel: np.ndarray, window) -> sparse.csr_matrix:
    """Sparse rows taking the window's three planes (3 h w unknowns) to their values at
    (x, y) (grid cells), each of its channel, by cubic convolution; ``window`` is
    (y0, x0, h, w) in grid cells."""
    wy, wx, wh, ww = window
    x, y = x - wx, y - wy
    x0, y0 = np.floor(x).astype(np.int64) - 1, np.floor(y).astype(np.int64) - 1
    index = np.arange(len(x))
    rows, cols, weights = [], [], []
    for j in range(4):
        wj = keys_weights(y - (y0 + j))
        for i in range(4):
            rows.append(index)
            cols.append(channel * wh * ww + (y0 + j) * ww + x0 + i)
            weights.append(wj * keys_weights(x - (x0 + i)))
    return sparse.csr_matrix(
        (np.concatenate(weights), (np.concatenate(rows), np.concatenate(cols))),
        shape=(len(x), 3 * wh * ww),
    )


def affine_from_tiles(flow, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) on the reference's pixel grid of every pixel of an alternate frame, from an
    affine map ``alternate = M reference + c`` fitted to its tile alignment (raw pixels)
    by Huber-weighted iteratively reweighted least squares."""
    tile_flow = flow.flow.astype(np.float64)
    ny, nx, _ = tile_flow.shape
    centre = 0.5 * (flow.tile_px - 1)
    grey_y, grey_x = np.meshgrid(np.arange(ny) * flow.stride_px + centre,
                                 np.arange(nx) * flow.stride_px + centre, indexing="ij")
    py, px = 2.0 * grey_y.ravel() + 0.5, 2.0 * grey_x.ravel() + 0.5  # grey -> raw centres
    qy, qx = py + 2.0 * tile_flow[..., 0].ravel(), px + 2.0 * tile_flow[..., 1].ravel()
    design = np.stack([np.ones(py.size), py, px], axis=1)
    weight = np.ones(py.size)
    for _ in range(10):
        cy = np.linalg.lstsq(design * weight[:, None], qy * weight, rcond=None)[0]
        cx = np.linalg.lstsq(design * weight[:, None], qx * weight, rcond=None)[0]
        residual = np.hypot(design @ cy - qy, design @ cx - qx)
        scale = max(1.4826 * float(np.median(residual)), 1e-3)  # robust sigma (MAD)
        weight = np.sqrt(1.0 / np.maximum(1.0, residual / (1.345 * scale)))
    inverse = np.linalg.inv(np.array([[cy[1], cy[2]], [cx[1], cx[2]]]))
    height, width = shape
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    ref_y, ref_x = inverse @ np.stack([y.ravel() - cy[0], x.ravel() - cx[0]])
    return ref_x.reshape(shape), ref_y.reshape(shape)


def measure(name: str, gain: float, seed: int, band_limited: bool, grid: int,
            exact: bool, size: int = 64) -> dict[str, float]:
    """PSNR gains over the reference alone on 12 windows of ``size`` reference pixels: the
    joint reconstruction ("joint") and the kernel merge ("kernel"), and the alignment's
    median error in pixels against the simulator's poses ("alignment error")."""
    from pipeline.burst import align_and_merge
    from pipeline.burst.align import (AlignParams, align_tiles_hasinoff2016, bayer_grey,
                                      grey_pyramid)  # fmt: skip

    burst, truth, mask, ref, poses = simulated_burst(KODAK / f"{name}.png", gain, 8, 1, seed,
                                                     band_limited=band_limited)  # fmt: skip
    height, width = truth.shape
    channels = np.tile(burst[ref].metadata.cfa_pattern.channels, (height // 2, width // 2))
    params = AlignParams()
    pyramid = grey_pyramid(bayer_grey(burst[ref]), params)
    samples, errors = [], []
    for i, frame in enumerate(burst):
        if i == ref:
            y, x = np.mgrid[0:height, 0:width].astype(np.float64)
        else:
            true_x, true_y = frame_to_reference(poses[i], poses[ref], (height, width))
            if exact:
                x, y = true_x, true_y
            else:
                flow = align_tiles_hasinoff2016(pyramid, bayer_grey(frame), params)
                x, y = affine_from_tiles(flow, (height, width))
                errors.append(float(np.median(np.hypot(x - true_x, y - true_y))))
        # Positions in cells of the unknowns' grid.
        samples.append(samples_of(frame, grid * x, grid * y, outside(mask, x, y)))
    shade = transmission(burst[ref])
    estimate = np.zeros_like(truth)
    measured = np.zeros_like(mask)
    m = WINDOW_MARGIN
    for y0, x0 in windows(truth.shape, 48, size):
        window = (grid * (y0 - m), grid * (x0 - m), grid * (size + 2 * m), grid * (size + 2 * m))
        a, b, sigma = observation_system(samples, window, cubic_matrix, reach=(1, 2))
        solution = reconstruct_edge_preserving(a, b, sigma, gradient_prior(window[2:]))
        planes = solution.reshape(3, window[2], window[3])
        cells = slice(grid * m, grid * (m + size), grid)
        inner = (slice(y0, y0 + size), slice(x0, x0 + size))
        measured[inner] = True
        site = np.take_along_axis(planes[:, cells, cells], channels[inner][None], 0)[0]
        estimate[inner] = site * shade[inner]
    inside = measured & ~mask
    single = psnr_db(normalised(burst[ref]), truth, inside)
    kernel = normalised(align_and_merge(burst, merge_params("kernel")))
    return {
        "joint": psnr_db(estimate, truth, inside) - single,
        "kernel": psnr_db(kernel, truth, inside) - single,
        "alignment error": float(np.median(errors)) if errors else 0.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grid", type=int, default=2,
                        help="unknowns per reference pixel, per axis")
    parser.add_argument("--gains", type=float, nargs="+", default=[1.0, 16.0])
    parser.add_argument("--images", nargs="+", default=["kodim01", "kodim05", "kodim13", "kodim19"])
    parser.add_argument("--alignment", choices=("estimated", "exact"), default="estimated")
    parser.add_argument("--band-limited", action="store_true")
    args = parser.parse_args()
    scene = "band-limited" if args.band_limited else "bilinear"
    print(f"8 frames at 1x, {scene} scene, unknowns on a {args.grid}x grid, "
          f"{args.alignment} alignment; PSNR gain in dB over the reference frame alone")
    print(f"{'image':<9}{'gain':>5}{'joint':>8}{'kernel':>8}{'align px':>10}{'s':>6}")
    for seed, name in enumerate(args.images):
        for gain in args.gains:
            start = time.perf_counter()
            r = measure(name, gain, seed, args.band_limited, args.grid,
                        args.alignment == "exact")  # fmt: skip
            print(f"{name:<9}{gain:>5.0f}{r['joint']:>+8.2f}{r['kernel']:>+8.2f}"
                  f"{r['alignment error']:>10.3f}{time.perf_counter() - start:>6.0f}", flush=True)


if __name__ == "__main__":
    main()
