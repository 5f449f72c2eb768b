"""Quality and speed of pipeline.demosaic against colour-demosaicing's Menon 2007 and bilinear.

Quality: each Kodak PNG is read as float in [0, 1] (8-bit / 255), mosaiced with a Bayer
pattern, demosaiced, clipped to [0, 1]; CPSNR = 10 log10(1 / MSE) with the MSE over the three
channels and all pixels but a 10-pixel border, averaged over the images (mean of per-image
CPSNR). Per-image values are printed for the first pattern, means for each pattern.

Speed: one 4056 x 3040 mosaic tiled from the Kodak images, best of ``--repeats`` runs (ours
after a warm-up that compiles the numba kernel, with and without a preallocated ``out``).

Usage: ``.venv/bin/python bench/demosaic_kodak.py [KODAK_DIR] [--patterns RGGB,BGGR,...]``
(colour-demosaicing is a bench dependency only: ``pip install colour-demosaicing``).
"""

from __future__ import annotations

import argparse
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numba
import numpy as np
import numpy.typing as npt
from PIL import Image

from pipeline.cfa import CfaPattern
from pipeline.demosaic import demosaic

REPO_ROOT = Path(__file__).resolve().parents[1]
BORDER_PX = 10
FRAME_SHAPE = (3040, 4056)

Demosaicer = Callable[[npt.NDArray[np.float64], str], npt.NDArray[np.floating]]


def load_colour_demosaicing() -> tuple[Demosaicer, Demosaicer]:
    """colour-demosaicing's Menon 2007 (DDFAPD) and bilinear, importing it quietly."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from colour_demosaicing import (
            demosaicing_CFA_Bayer_bilinear,
            demosaicing_CFA_Bayer_Menon2007,
        )
    return demosaicing_CFA_Bayer_Menon2007, demosaicing_CFA_Bayer_bilinear


def read_image(path: Path) -> npt.NDArray[np.float64]:
    """(H, W, 3) float64 in [0, 1] of an 8-bit image."""
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"), dtype=np.float64) / 255.0


def mosaic_of(rgb: npt.NDArray[np.float64], pattern: str) -> npt.NDArray[np.float64]:
    """(H, W) Bayer mosaic of an (H, W, 3) image."""
    height, width, _ = rgb.shape
    rows, cols = np.mgrid[0:height, 0:width]
    channel = CfaPattern.parse(pattern).channels[rows % 2, cols % 2]
    return np.take_along_axis(rgb, channel[..., None], axis=2)[..., 0]


def cpsnr_db(result: npt.NDArray[np.floating], truth: npt.NDArray[np.float64]) -> float:
    """CPSNR in dB of ``result`` clipped to [0, 1], without a ``BORDER_PX`` border."""
    inner = np.s_[BORDER_PX:-BORDER_PX, BORDER_PX:-BORDER_PX]
    error = np.clip(np.asarray(result, dtype=np.float64), 0.0, 1.0)[inner] - truth[inner]
    return float(10.0 * np.log10(1.0 / np.mean(error**2)))


def tiled_frame(images: list[npt.NDArray[np.float64]], pattern: str) -> npt.NDArray[np.float64]:
    """A 4056 x 3040 mosaic tiled from the images, portrait ones turned to landscape."""
    landscape = [image if image.shape[1] >= image.shape[0] else np.rot90(image) for image in images]
    tile_height = min(image.shape[0] for image in landscape) // 2 * 2
    tile_width = min(image.shape[1] for image in landscape) // 2 * 2
    frame = np.empty(FRAME_SHAPE)
    index = 0
    for y in range(0, FRAME_SHAPE[0], tile_height):
        for x in range(0, FRAME_SHAPE[1], tile_width):
            height = min(tile_height, FRAME_SHAPE[0] - y)
            width = min(tile_width, FRAME_SHAPE[1] - x)
            image = landscape[index % len(landscape)][:height, :width]
            frame[y : y + height, x : x + width] = mosaic_of(image, pattern)
            index += 1
    return frame


def best_time_s(run: Callable[[], object], repeats: int) -> float:
    """Shortest wall time of ``repeats`` calls of ``run``."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def print_row(label: str, values: list[float]) -> None:
    """One table row: the label, the values, and ours minus Menon (the first two values)."""
    print(f"{label:<14}" + "".join(f"{v:13.3f}" for v in values) + f"{values[0] - values[1]:13.3f}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "kodak_dir", nargs="?", type=Path, default=REPO_ROOT.parent / "shared/data/kodak24"
    )
    parser.add_argument(
        "--patterns", default="RGGB,BGGR,GRBG,GBRG", help="comma-separated; the first is headline"
    )
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per method (best kept)")
    args = parser.parse_args(argv)
    patterns = [CfaPattern.parse(p).value for p in args.patterns.split(",")]
    paths = sorted(args.kodak_dir.glob("*.png"))
    if not paths:
        raise SystemExit(f"no PNG images in {args.kodak_dir}")
    menon, bilinear = load_colour_demosaicing()
    methods: dict[str, Demosaicer] = {
        "ours (GBTF)": lambda cfa, p: demosaic(cfa.astype(np.float32), p),
        "Menon2007": menon,
        "bilinear": bilinear,
    }
    header = f"{'':<14}" + "".join(f"{name:>13}" for name in methods) + f"{'ours-Menon':>13}"
    images = [read_image(path) for path in paths]

    means = {}
    for pattern in patterns:
        if pattern == patterns[0]:
            print(f"CPSNR (dB), {pattern}, {BORDER_PX}-pixel border excluded\n{header}")
        scores = []
        for path, truth in zip(paths, images):
            cfa = mosaic_of(truth, pattern)
            scores.append([cpsnr_db(method(cfa, pattern), truth) for method in methods.values()])
            if pattern == patterns[0]:
                print_row(path.name, scores[-1])
        means[pattern] = np.mean(scores, axis=0).tolist()
        if pattern == patterns[0]:
            print_row("mean", means[pattern])

    print(f"\nMean CPSNR (dB) over {len(paths)} images, per pattern\n{header}")
    for pattern in patterns:
        print_row(pattern, means[pattern])

    frame = tiled_frame(images, patterns[0])
    frame32 = frame.astype(np.float32)
    out = demosaic(frame32, patterns[0])
    ours_s = best_time_s(lambda: demosaic(frame32, patterns[0], out=out), args.repeats)
    ours_alloc_s = best_time_s(lambda: demosaic(frame32, patterns[0]), args.repeats)
    menon_s = best_time_s(lambda: menon(frame, patterns[0]), args.repeats)
    height, width = FRAME_SHAPE
    threads = numba.get_num_threads()
    print(f"\nTime per {width}x{height} demosaic, best of {args.repeats} ({threads} numba threads)")
    timings = (("ours, preallocated out", ours_s), ("ours, allocating out", ours_alloc_s))
    for label, seconds in timings:
        print(f"{label:<24}{seconds:8.3f} s  ({seconds / menon_s:.4f} x Menon)")
    print(f"{'Menon2007':<24}{menon_s:8.3f} s")


if __name__ == "__main__":
    main()
