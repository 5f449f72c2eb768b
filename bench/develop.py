"""Benchmark: develop one full 4056x3040 IMX477 frame, against LibRaw in the same run.

    .venv/bin/python bench/develop.py [--repeat 3] [--scene PATH]

Prints per-stage times of our develop, the whole develop (DNG read + ISP + JPEG encode),
rawpy/LibRaw's AHD ``postprocess()`` of the same DNG, their ratio, and the peak RSS of
each, measured in a fresh child process so the figures do not include each other.
Figures are best-of-N wall-clock on a shared machine: compare ratios, not absolutes.
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


def make_dng(scene_path: Path, destination: Path) -> None:
    """Simulate one HQ-camera frame of ``scene_path`` and write it as a DNG."""
    from hardware.imx477_simulator import Imx477Simulator, SensorSettings
    from pipeline.formats.encoders.dng import encode_dng

    scene = np.asarray(Image.open(scene_path).convert("RGB"))
    camera = Imx477Simulator(scene, seed=1, output_size=FULL_SIZE)
    settings = SensorSettings(exposure_time_us=camera.exposure_time_us_for(1.3))
    destination.write_bytes(encode_dng(camera.capture(settings)))


def develop_ours(dng: Path, timer=None) -> bytes:
    """The whole `obscura develop`: read, develop, quantise, encode JPEG."""
    from pipeline.colour.output_transform import quantize
    from pipeline.develop import DevelopParams, develop
    from pipeline.formats.dng_reader import read_dng
    from pipeline.formats.encoders.jpeg import encode_jpeg

    frame = read_dng(dng)
    image = quantize(develop(frame, DevelopParams(), timer=timer), np.uint8)
    return encode_jpeg(image, frame.metadata)


def develop_libraw(dng: Path) -> np.ndarray:
    """LibRaw's AHD demosaic and colour, camera white balance, 8-bit output."""
    import rawpy

    with rawpy.imread(str(dng)) as raw:
        return raw.postprocess(
            demosaic_algorithm=rawpy.DemosaicAlgorithm.AHD, use_camera_wb=True, output_bps=8
        )


def best_of(repeat: int, fn, *args) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn(*args)
        times.append(time.perf_counter() - start)
    return min(times)


def child_peak_rss_mb(which: str, dng: Path) -> float:
    """Peak RSS (MB) of a fresh interpreter that develops ``dng`` once with ``which``."""
    out = subprocess.run(
        [sys.executable, __file__, "--child", which, str(dng)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--scene", type=Path, default=DEFAULT_SCENE)
    parser.add_argument("--child", nargs=2, metavar=("WHICH", "DNG"), help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        which, dng = args.child
        (develop_ours if which == "ours" else develop_libraw)(Path(dng))
        # VmHWM, not ru_maxrss: Linux carries ru_maxrss over fork+exec from the parent.
        from peak_memory import peak_rss_mb  # bench/ is the script's folder

        print(peak_rss_mb())
        return

    from pipeline.stage_timer import StageTimer

    with tempfile.TemporaryDirectory() as tmp:
        dng = Path(tmp) / "frame.dng"
        make_dng(args.scene, dng)
        develop_ours(dng)  # warm-up: page cache, numba's on-disk cache
        timers = []
        whole = []
        for _ in range(args.repeat):
            timer = StageTimer()
            start = time.perf_counter()
            develop_ours(dng, timer)
            whole.append(time.perf_counter() - start)
            timers.append(timer)
        best = timers[int(np.argmin(whole))]
        libraw = best_of(args.repeat, develop_libraw, dng)
        rss_ours = child_peak_rss_mb("ours", dng)
        rss_libraw = child_peak_rss_mb("libraw", dng)

    print(f"frame: {FULL_SIZE[1]}x{FULL_SIZE[0]} simulated IMX477, scene {args.scene.name}")
    print(f"{'stage':<28}{'ms':>8}")
    for name, seconds in best.seconds.items():
        print(f"{name:<28}{seconds * 1000:>8.0f}")
    ours = min(whole)
    print(f"{'whole develop (DNG->JPEG)':<28}{ours * 1000:>8.0f}")
    print(f"{'LibRaw AHD postprocess()':<28}{libraw * 1000:>8.0f}")
    print(f"ratio ours / LibRaw: {ours / libraw:.2f}x   (target <= 1.0, stretch 0.5)")
    print(f"peak RSS: ours {rss_ours:.0f} MB, LibRaw {rss_libraw:.0f} MB   (target <= 400 MB)")


if __name__ == "__main__":
    main()
