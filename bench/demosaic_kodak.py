"""Quality and speed of pipeline.demosaic against the GBTF it replaced, Menon 2007 and bilinear.

Quality: each image (Kodak PNGs read as 8-bit / 255; the saturated-colour set of
``bench/saturated_colour_set.py``, tuning and held-out parts) is mosaiced with a Bayer
pattern, demosaiced, clipped to [0, 1]; CPSNR = 10 log10(1 / MSE) with the MSE over the three
channels and all pixels but a 10-pixel border, averaged over the images (mean of per-image
CPSNR). Per-image values are printed for the first pattern, means for each pattern.

Speed: one 4056 x 3040 mosaic tiled from the Kodak images; ours, the GBTF baseline
(``pipeline/demosaic.py`` at commit ``GBTF_COMMIT``, loaded from git) and, with
``--previous COMMIT``, our demosaic at that commit alternate, after a warm-up that compiles
them, ``--repeats`` times with a preallocated ``out``: on a shared machine the ratios in the
same run are the figures to trust. ``--speed-only`` skips the quality tables.

Usage: ``.venv/bin/python bench/demosaic_kodak.py [KODAK_DIR] [--patterns RGGB,BGGR,...]
[--previous COMMIT] [--speed-only]``
(bench dependencies only: ``pip install colour-demosaicing scikit-image``; needs git).
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numba
import numpy as np
import numpy.typing as npt
from PIL import Image

from bench.saturated_colour_set import saturated_colour_set
from pipeline.cfa import CfaPattern
from pipeline.stages.demosaic import demosaic

REPO_ROOT = Path(__file__).resolve().parents[1]
GBTF_COMMIT = "8dc33bd"
"""The last commit whose pipeline.demosaic was GBTF (Pekkucuksen and Altunbasak 2010)."""
DEMOSAIC_PATH = "pipeline/stages/demosaic.py"
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


def load_demosaic_at(commit: str, path_in_repo: str, directory: Path, name: str) -> Demosaicer:
    """The ``demosaic`` of ``path_in_repo`` at ``commit``, written into ``directory`` as
    module ``name`` and imported."""
    source = subprocess.run(
        ["git", "-C", str(REPO_ROOT), "show", f"{commit}:{path_in_repo}"],
        check=True, capture_output=True, text=True,
    ).stdout
    path = directory / f"{name}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.demosaic


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
    """One table row: the label, the values, and ours minus GBTF (the first two values)."""
    print(f"{label:<22}" + "".join(f"{v:11.2f}" for v in values) + f"{values[0] - values[1]:11.2f}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "kodak_dir", nargs="?", type=Path, default=REPO_ROOT.parent / "shared/data/kodak24"
    )
    parser.add_argument(
        "--patterns", default="RGGB,BGGR,GRBG,GBRG", help="comma-separated; the first is headline"
    )
    parser.add_argument("--repeats", type=int, default=5, help="alternating timed runs per method")
    parser.add_argument("--previous", metavar="COMMIT", help=f"also time {DEMOSAIC_PATH} at COMMIT")
    parser.add_argument("--speed-only", action="store_true", help="skip the quality tables")
    args = parser.parse_args(argv)
    patterns = [CfaPattern.parse(p).value for p in args.patterns.split(",")]
    paths = sorted(args.kodak_dir.glob("*.png"))
    if not paths:
        raise SystemExit(f"no PNG images in {args.kodak_dir}")
    menon, bilinear = load_colour_demosaicing()
    with tempfile.TemporaryDirectory() as directory:
        gbtf = load_demosaic_at(GBTF_COMMIT, "pipeline/demosaic.py", Path(directory), "gbtf2010")
        baselines = {"GBTF": gbtf}
        if args.previous:
            baselines[args.previous] = load_demosaic_at(
                args.previous, DEMOSAIC_PATH, Path(directory), "previous"
            )
        methods: dict[str, Demosaicer] = {
            "ours": lambda cfa, p: demosaic(cfa.astype(np.float32), p),
            "GBTF": lambda cfa, p: gbtf(cfa.astype(np.float32), p),
            "Menon2007": menon,
            "bilinear": bilinear,
        }
        kodak = [(path.name, read_image(path)) for path in paths]
        if not args.speed_only:
            image_sets = {
                "Kodak 24": kodak,
                "saturated, tuning": saturated_colour_set("tuning"),
                "saturated, held-out": saturated_colour_set("held_out"),
            }
            for set_name, images in image_sets.items():
                print_quality(set_name, images, methods, patterns)
        print_speed([image for _, image in kodak], patterns[0], baselines, args.repeats)


def print_quality(
    set_name: str,
    images: list[tuple[str, npt.NDArray[np.float64]]],
    methods: dict[str, Demosaicer],
    patterns: list[str],
) -> None:
    """Per-image CPSNR for the first pattern and the mean for each pattern."""
    header = f"{'':<22}" + "".join(f"{name:>11}" for name in methods) + f"{'ours-GBTF':>11}"
    means = {}
    for pattern in patterns:
        if pattern == patterns[0]:
            print(f"\n{set_name}: CPSNR (dB), {pattern}, {BORDER_PX}-pixel border excluded")
            print(header)
        scores = []
        for name, truth in images:
            cfa = mosaic_of(truth, pattern)
            scores.append([cpsnr_db(method(cfa, pattern), truth) for method in methods.values()])
            if pattern == patterns[0]:
                print_row(name, scores[-1])
        means[pattern] = np.mean(scores, axis=0).tolist()
        if pattern == patterns[0]:
            print_row("mean", means[pattern])
    print(f"{set_name}: mean CPSNR (dB) over {len(images)} images, per pattern\n{header}")
    for pattern in patterns:
        print_row(pattern, means[pattern])


def print_speed(
    images: list[npt.NDArray[np.float64]],
    pattern: str,
    baselines: dict[str, Demosaicer],
    repeats: int,
) -> None:
    """Time of ours and of each baseline on a 12 MP mosaic, alternating, and their ratios."""
    frame32 = tiled_frame(images, pattern).astype(np.float32)
    methods = {"ours": demosaic, **baselines}
    outs = {name: method(frame32, pattern) for name, method in methods.items()}
    times = {name: [] for name in methods}
    for _ in range(repeats):
        for name, method in methods.items():
            out = outs[name]
            times[name].append(best_time_s(lambda: method(frame32, pattern, out=out), 1))
    height, width = FRAME_SHAPE
    threads = numba.get_num_threads()
    print(f"\nTime per {width}x{height} demosaic, {repeats} alternating runs ({threads} threads)")
    for run in range(repeats):
        print("   ".join(f"{name} {times[name][run]:7.3f} s" for name in methods))
    ours = np.array(times["ours"])
    for name in baselines:
        base = np.array(times[name])
        print(f"ours against {name}: bests {ours.min():.3f} s and {base.min():.3f} s, "
              f"ratio of bests {ours.min() / base.min():.2f}, median ratio "
              f"{np.median(ours / base):.2f}")


if __name__ == "__main__":
    main()
