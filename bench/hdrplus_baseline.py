"""Benchmark: our merge against HDR+'s Fourier-domain merge, on the same bursts.

    .venv/bin/python bench/hdrplus_baseline.py [--scale 2] [--frames 8] [--images kodim01 ...]

The baseline re-implements the merge of Hasinoff et al. ("Burst photography for high dynamic
range and low-light imaging on mobile cameras", ACM TOG 35(6), 2016, sec. 5) as the IPOL
analysis describes it (Monod, Delon, Veit, IPOL 11, 2021): per Bayer plane, 16 x 16 tiles
overlapping by half under a raised-cosine window, each alternate tile moved by its alignment
rounded to whole pixels (HDR+ never resamples), and merged frequency by frequency with the
pairwise Wiener shrinkage ``A = |D|^2 / (|D|^2 + c sigma^2)`` towards the reference,
``sigma^2`` from the noise model at the tile's level. Both merges use our alignment
(:func:`pipeline.burst.align.align_tiles_hasinoff2016`), so the comparison is of the merges
alone; ours is the default (:func:`pipeline.align_and_merge`: the kernel regression of
Wronski et al. 2019). ``c`` is HDR+'s tuning constant: every value of ``--c`` is run and the
best is reported for the baseline, which favours it. The bursts are
``bench/burst_quality.py``'s (simulated HQ camera frames of Kodak photos, 20 px handheld
shake and a moving object); PSNR is in the raw domain against the clean reference frame,
over the frame and inside the moving object's footprint (where ghosts would show).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import numpy.typing as npt

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from burst_quality import GAINS, KODAK, normalised, psnr_db, simulated_burst  # noqa: E402

from pipeline.burst import align_and_merge  # noqa: E402
from pipeline.burst.align import (  # noqa: E402
    AlignParams,
    align_tiles_hasinoff2016,
    bayer_grey,
    grey_pyramid,
)
from pipeline.burst.reference import select_reference_hasinoff2016  # noqa: E402
from pipeline.noise_model import noise_model_of  # noqa: E402
from pipeline.raw_frame import RawFrame  # noqa: E402

TILE = 16


def _window() -> npt.NDArray[np.float64]:
    """Raised cosine: shifted by half a tile, the windows sum to 1."""
    w = 0.5 - 0.5 * np.cos(2 * np.pi * (np.arange(TILE) + 0.5) / TILE)
    return np.outer(w, w)


def hdrplus_merge(frames: list[RawFrame], c: float) -> npt.NDArray[np.float64]:
    """The merged mosaic (black 0, white 1), HDR+'s Fourier-domain tile merge."""
    ref_index = select_reference_hasinoff2016(frames)
    reference = frames[ref_index]
    params = AlignParams()
    pyramid = grey_pyramid(bayer_grey(reference), params)
    noise = noise_model_of(reference)
    mosaics = [normalised(f) for f in frames]
    h, w = mosaics[0].shape
    ph, pw = h // 2, w // 2
    pad = TILE
    window = _window()
    window_energy = float(np.sum(window**2))
    out = np.zeros((h, w))
    ty = np.arange(-TILE // 2, ph, TILE // 2)
    tx = np.arange(-TILE // 2, pw, TILE // 2)
    # Whole-pixel displacement of every merge tile, from the alignment tile under its centre.
    shifts = []
    for i, frame in enumerate(frames):
        if i == ref_index:
            shifts.append(None)
            continue
        flow = align_tiles_hasinoff2016(pyramid, bayer_grey(frame), params)
        rows = np.clip((ty + TILE // 2) // flow.stride_px, 0, flow.flow.shape[0] - 1)
        cols = np.clip((tx + TILE // 2) // flow.stride_px, 0, flow.flow.shape[1] - 1)
        shifts.append(np.rint(flow.flow[rows][:, cols]).astype(int))
    for plane in range(4):
        dy, dx = divmod(plane, 2)
        padded = [np.pad(m[dy::2, dx::2], pad, mode="reflect") for m in mosaics]
        merged = np.zeros((ph + 2 * pad, pw + 2 * pad))
        for a, y0 in enumerate(ty):
            for b, x0 in enumerate(tx):
                ys, xs = y0 + pad, x0 + pad
                ref_tile = padded[ref_index][ys : ys + TILE, xs : xs + TILE]
                ref_f = np.fft.fft2(ref_tile * window)
                sigma2 = noise.variance(float(ref_tile.mean())) * window_energy
                total = ref_f.copy()
                for i, shift in enumerate(shifts):
                    if shift is None:
                        continue
                    sy = int(np.clip(ys + shift[a, b, 0], 0, padded[i].shape[0] - TILE))
                    sx = int(np.clip(xs + shift[a, b, 1], 0, padded[i].shape[1] - TILE))
                    alt_f = np.fft.fft2(padded[i][sy : sy + TILE, sx : sx + TILE] * window)
                    d2 = np.abs(ref_f - alt_f) ** 2
                    shrink = d2 / (d2 + c * sigma2)
                    total += alt_f + shrink * (ref_f - alt_f)
                merged[ys : ys + TILE, xs : xs + TILE] += np.real(np.fft.ifft2(total)) / len(frames)
        out[dy::2, dx::2] = merged[pad : pad + ph, pad : pad + pw]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=2)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--images", nargs="+", default=["kodim01", "kodim05", "kodim13", "kodim23"])
    parser.add_argument("--c", type=float, nargs="+", default=[2.0, 8.0, 32.0])
    args = parser.parse_args()
    print(f"{args.frames} frames, Kodak photos at {args.scale}x, 20 px shake, a moving object; "
          "PSNR gain in dB over the reference frame alone (frame / object footprint)")
    results: dict[str, list[tuple[float, float]]] = {}
    for seed, name in enumerate(args.images):
        for gain in GAINS:
            noisy, truth, mask, ref, _ = simulated_burst(KODAK / f"{name}.png", gain,
                                                         args.frames, args.scale, seed)
            single = normalised(noisy[ref])
            base = (psnr_db(single, truth), psnr_db(single, truth, mask))
            merges = {"ours": normalised(align_and_merge(noisy))}
            merges |= {f"c={c:g}": hdrplus_merge(noisy, c) for c in args.c}
            for method, merged in merges.items():
                results.setdefault(f"{gain:g}|{method}", []).append(
                    (psnr_db(merged, truth) - base[0], psnr_db(merged, truth, mask) - base[1])
                )
    for gain in GAINS:
        rows = {k.split("|", 1)[1]: np.array(v) for k, v in results.items()
                if k.startswith(f"{gain:g}|")}
        ours = rows.pop("ours")
        best = max(rows, key=lambda k: rows[k][:, 0].mean())
        print(f"gain {gain:>4g}: ours {ours[:, 0].mean():+.2f} dB (object {ours[:, 1].min():+.2f} "
              f"worst); HDR+ Fourier merge, best {best}: {rows[best][:, 0].mean():+.2f} dB "
              f"(object {rows[best][:, 1].min():+.2f} worst); all c: "
              + ", ".join(f"{k} {v[:, 0].mean():+.2f}" for k, v in rows.items()))


if __name__ == "__main__":
    main()
