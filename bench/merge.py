"""Benchmark: align and merge a burst of 8 full 4056x3040 IMX477 frames, then develop it.

    .venv/bin/python bench/merge.py [--frames 8] [--repeat 2] [--scene PATH]

Simulates a handheld burst (shake of up to 24 px, analogue gain 4), writes it as DNGs and
prints, best of N in this process: the reference choice, alignment and merge times
(``pipeline.align_and_merge``, and with the kernel-regression merge of
:mod:`pipeline.burst.kernel_regression` interleaved with it) with its CPU time over wall time (about 2 when the numba
kernels keep both cores busy, about 1 when they run serially or share a core), the whole
``obscura develop`` of the burst (DNG reads + merge + develop + JPEG), and a single-frame
``obscura develop`` as the ratio's base; then the peak RSS (VmHWM) of fresh child
processes running each of those two commands, and ``align_and_merge`` alone with each
merge.
Figures are wall-clock on a shared machine: compare the ratios, not the absolutes.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SCENE = REPO.parent / "shared" / "data" / "kodak24" / "kodim23.png"
FULL_SIZE = (3040, 4056)
GAIN = 4.0


def make_burst(scene_path: Path, directory: Path, count: int) -> list[Path]:
    """Simulate a handheld burst of ``scene_path`` and write it as DNGs."""
    from hardware.imx477_simulator import Imx477Simulator, SensorSettings
    from pipeline.formats.encoders.dng import encode_dng

    scene = np.asarray(Image.open(scene_path).convert("RGB"))
    camera = Imx477Simulator(scene, seed=1, output_size=FULL_SIZE, motion_px=24.0)
    settings = SensorSettings(camera.exposure_time_us_for(1.3, GAIN), analogue_gain=GAIN)
    paths = []
    for i in range(count):
        path = directory / f"frame_{i:02d}.dng"
        path.write_bytes(encode_dng(camera.capture(settings)))
        paths.append(path)
    return paths


def child_peak_rss_mb(argv: list[str]) -> float:
    """Peak RSS (MB) of a fresh interpreter running ``obscura`` with ``argv``."""
    out = subprocess.run(
        [sys.executable, __file__, "--child", *argv], capture_output=True, text=True
    )
    if out.returncode != 0:
        raise SystemExit(f"child {argv[:2]} failed: {out.stderr.strip()}")
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--scene", type=Path, default=DEFAULT_SCENE)
    parser.add_argument("--child", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        if args.child[0] == "--merge-only":  # align_and_merge alone, for its peak memory
            from pipeline.burst import BurstParams, align_and_merge
            from pipeline.burst.kernel_regression import KernelMergeParams
            from pipeline.formats.dng_reader import read_dng

            merge = KernelMergeParams() if args.child[1] == "kernel" else None
            frames = [read_dng(Path(p)) for p in args.child[2:]]
            align_and_merge(frames, BurstParams(merge=merge) if merge else None)
        else:
            from firmware.cli import main as obscura

            if obscura(args.child) != 0:
                raise SystemExit(1)
        # VmHWM, not ru_maxrss: Linux carries ru_maxrss over fork+exec from the parent.
        from peak_memory import peak_rss_mb  # bench/ is the script's folder

        print(peak_rss_mb())
        return

    from firmware.develop_file import develop_burst_files, develop_file
    from pipeline.burst import BurstParams, align_and_merge
    from pipeline.burst.kernel_regression import KernelMergeParams
    from pipeline.develop import DevelopParams
    from pipeline.stage_timer import StageTimer
    from pipeline.formats.dng_reader import read_dng

    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        paths = make_burst(args.scene, directory, args.frames)
        frames = [read_dng(p) for p in paths]
        out = directory / "out.jpg"
        params = DevelopParams()
        # Warm-up: page cache and numba's on-disk cache, on crops (same types, cheap).
        from pipeline.raw_frame import RawFrame

        align_and_merge([RawFrame(f.cfa[:512, :768].copy(), f.metadata) for f in frames[:3]])
        develop_file(paths[0], out, params)

        kernel = BurstParams(merge=KernelMergeParams())
        align_and_merge([RawFrame(f.cfa[:512, :768].copy(), f.metadata) for f in frames[:3]], kernel)
        merge_runs = []
        kernel_runs = []
        for _ in range(args.repeat):  # interleaved: both see the same load
            timer = StageTimer()
            start, start_cpu = time.perf_counter(), time.process_time()
            align_and_merge(frames, timer=timer)
            wall = time.perf_counter() - start
            merge_runs.append((wall, (time.process_time() - start_cpu) / wall, timer.seconds))
            start = time.perf_counter()
            align_and_merge(frames, kernel)
            kernel_runs.append(time.perf_counter() - start)
        del frames
        merge_total, cpu_per_wall, stages = min(merge_runs, key=lambda run: run[0])
        kernel_total = min(kernel_runs)

        def best(fn, *fn_args) -> float:
            times = []
            for _ in range(args.repeat):
                start = time.perf_counter()
                fn(*fn_args)
                times.append(time.perf_counter() - start)
            return min(times)

        burst_develop = best(develop_burst_files, paths, out, params)
        single_develop = best(develop_file, paths[0], out, params)
        rss_burst = child_peak_rss_mb(["develop", *map(str, paths), "-o", str(out)])
        rss_single = child_peak_rss_mb(["develop", str(paths[0]), "-o", str(out)])
        rss_merge = child_peak_rss_mb(["--merge-only", "robust", *map(str, paths)])
        rss_kernel = child_peak_rss_mb(["--merge-only", "kernel", *map(str, paths)])

    print(f"burst: {args.frames} x {FULL_SIZE[1]}x{FULL_SIZE[0]} simulated IMX477, gain {GAIN:g}, "
          f"scene {args.scene.name}")  # fmt: skip
    print(f"{'stage':<36}{'ms':>8}")
    for name, seconds in stages.items():
        print(f"{name:<36}{seconds * 1000:>8.0f}")
    print(f"{'align_and_merge (all stages)':<36}{merge_total * 1000:>8.0f}   (target <= 3000)")
    print(f"{'  CPU time / wall time':<36}{cpu_per_wall:>8.2f}")
    print(f"{'align + kernel-regression merge':<36}{kernel_total * 1000:>8.0f}   "
          f"({kernel_total / merge_total:.2f}x the resampling merge, same run)")
    print(f"peak RSS, align_and_merge of the 8 DNGs: resampling merge {rss_merge:.0f} MB, "
          f"kernel regression {rss_kernel:.0f} MB (target <= 1024)")
    print(f"{'obscura develop, burst (DNG->JPEG)':<36}{burst_develop * 1000:>8.0f}")
    print(f"{'obscura develop, one frame':<36}{single_develop * 1000:>8.0f}")
    print(f"ratio burst / single-frame develop: {burst_develop / single_develop:.2f}x")
    print(f"peak RSS: burst develop {rss_burst:.0f} MB (target <= 1024), "
          f"single frame {rss_single:.0f} MB")  # fmt: skip


if __name__ == "__main__":
    main()
