"""Benchmark: align and merge a burst of 8 full 4056x3040 IMX477 frames, then develop it.

    .venv/bin/python bench/merge.py [--frames 8] [--repeat 2] [--scene PATH] [--kernel-baseline REV]

Simulates a handheld burst (shake of up to 24 px, analogue gain 4), writes it as DNGs and
prints, best and median of N in this process: ``pipeline.align_and_merge`` with the
resampling merge of :mod:`pipeline.burst.merge` and with the kernel-regression merge of
:mod:`pipeline.burst.kernel_regression`, interleaved (and, with ``--kernel-baseline``, the
kernel-regression merge as of a git revision, to time a change against), with each one's
stages (reference choice, alignment, merge) and CPU time over wall time (about 2 when the
numba kernels keep both cores busy, about 1 when they run serially or share a core), the whole
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
import statistics
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

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


def kernel_merge_at(revision: str, directory: Path) -> ModuleType:
    """pipeline/burst/kernel_regression.py as of git ``revision``, imported from a copy in
    ``directory``."""
    import importlib.util

    source = subprocess.run(
        ["git", "-C", str(REPO), "show", f"{revision}:pipeline/burst/kernel_regression.py"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    path = directory / f"kernel_regression_{revision.replace('~', '_').replace('^', '_')}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@contextmanager
def merging_with(module: ModuleType) -> Iterator[object]:
    """BurstParams whose merge is ``module``'s kernel-regression merge, while
    ``align_and_merge`` takes that module's classes for its own."""
    import pipeline.burst.burst as burst

    saved = burst.KernelMergeParams, burst.KernelRegressionMerge
    burst.KernelMergeParams, burst.KernelRegressionMerge = module.KernelMergeParams, module.KernelRegressionMerge
    try:
        yield burst.BurstParams(merge=module.KernelMergeParams())
    finally:
        burst.KernelMergeParams, burst.KernelRegressionMerge = saved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--scene", type=Path, default=DEFAULT_SCENE)
    parser.add_argument("--kernel-baseline", metavar="REV",
                        help="also time the kernel-regression merge as of this git revision")
    parser.add_argument("--child", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        if args.child[0] == "--merge-only":  # align_and_merge alone, for its peak memory
            from pipeline.burst import BurstParams, align_and_merge
            from pipeline.burst.kernel_regression import KernelMergeParams
            from pipeline.burst.merge import MergeParams
            from pipeline.formats.dng_reader import read_dng

            merge = KernelMergeParams() if args.child[1] == "kernel" else MergeParams()
            frames = [read_dng(Path(p)) for p in args.child[2:]]
            align_and_merge(frames, BurstParams(merge=merge))
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
    from pipeline.burst.merge import MergeParams
    from pipeline.develop import DevelopParams
    from pipeline.formats.dng_reader import read_dng
    from pipeline.raw_frame import RawFrame
    from pipeline.stage_timer import StageTimer

    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        paths = make_burst(args.scene, directory, args.frames)
        frames = [read_dng(p) for p in paths]
        out = directory / "out.jpg"
        params = DevelopParams()
        merges = {"resampling merge": BurstParams(merge=MergeParams()),
                  "kernel-regression merge": BurstParams(merge=KernelMergeParams())}
        if args.kernel_baseline:
            baseline = kernel_merge_at(args.kernel_baseline, directory)
            merges[f"kernel regression at {args.kernel_baseline}"] = baseline

        def run(merge, timer=None) -> None:
            if isinstance(merge, ModuleType):
                with merging_with(merge) as burst_params:
                    align_and_merge(frames_now, burst_params, timer)
            else:
                align_and_merge(frames_now, merge, timer)

        # Warm-up: page cache and numba's on-disk cache, on crops (same types, cheap).
        frames_now = [RawFrame(f.cfa[:512, :768].copy(), f.metadata) for f in frames[:3]]
        for merge in merges.values():
            run(merge)
        develop_file(paths[0], out, params)
        frames_now = frames
        runs: dict[str, list[tuple[float, float, dict[str, float]]]] = {name: [] for name in merges}
        for _ in range(args.repeat):  # interleaved: all see the same load
            for name, merge in merges.items():
                timer = StageTimer()
                start, start_cpu = time.perf_counter(), time.process_time()
                run(merge, timer)
                wall = time.perf_counter() - start
                runs[name].append((wall, (time.process_time() - start_cpu) / wall, timer.seconds))
        del frames, frames_now

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
          f"scene {args.scene.name}; align_and_merge, {args.repeat} interleaved runs")  # fmt: skip
    print(f"{'':<36}{'best ms':>9}{'median':>8}{'CPU/wall':>9}  stages of the best run (ms)")
    walls = {name: [wall for wall, _, _ in rows] for name, rows in runs.items()}
    for name, rows in runs.items():
        wall, cpu_per_wall, stages = min(rows, key=lambda row: row[0])
        detail = ", ".join(f"{stage} {seconds * 1000:.0f}" for stage, seconds in stages.items())
        print(f"{name:<36}{wall * 1000:>9.0f}{statistics.median(walls[name]) * 1000:>8.0f}"
              f"{cpu_per_wall:>9.2f}  {detail}")  # fmt: skip
    print("target: <= 3000 ms")
    names = list(runs)
    for name in names[1:]:
        for base in names[: names.index(name)]:
            pairs = [a / b for a, b in zip(walls[name], walls[base])]
            print(f"{name} / {base}: best {min(walls[name]) / min(walls[base]):.2f}x, "
                  f"median of pairs {statistics.median(pairs):.2f}x")  # fmt: skip
    print(f"peak RSS, align_and_merge of the 8 DNGs: resampling merge {rss_merge:.0f} MB, "
          f"kernel regression {rss_kernel:.0f} MB (target <= 1024)")
    print(f"{'obscura develop, burst (DNG->JPEG)':<36}{burst_develop * 1000:>8.0f}")
    print(f"{'obscura develop, one frame':<36}{single_develop * 1000:>8.0f}")
    print(f"ratio burst / single-frame develop: {burst_develop / single_develop:.2f}x")
    print(f"peak RSS: burst develop {rss_burst:.0f} MB (target <= 1024), "
          f"single frame {rss_single:.0f} MB")  # fmt: skip


if __name__ == "__main__":
    main()
