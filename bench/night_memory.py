"""Benchmark: peak memory of developing a night shot, streamed from the journal or in memory.

    .venv/bin/python bench/night_memory.py [--frames 15] [--size 4056x3040]

Journals a night shot of simulated IMX477 frames to a temporary card, then develops it
(merge, exposure fusion, develop, JPEG) in two fresh processes: once with every frame read
into memory first (as the daemon did before), once as the worker does now, reading each
frame from the journal when the merge needs it (:func:`firmware.journal.read_burst`).
Prints each one's peak RSS (VmHWM) and wall-clock time, and their ratio.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from peak_memory import peak_rss_mb  # noqa: E402 - bench/ is the script's folder


def journal_night_shot(root: Path, frames: int, size: tuple[int, int]) -> None:
    """A night shot of ``frames`` frames of a Kodak scene, journaled under ``root``."""
    import numpy as np
    from PIL import Image

    from firmware.journal import Journal
    from firmware.shot import Shot
    from hardware.imx477_simulator import Imx477Simulator, SensorSettings
    from hardware.storage import PhotoStore

    scene = np.asarray(Image.open(REPO.parent / "shared/data/kodak24/kodim08.png").convert("RGB"))
    camera = Imx477Simulator(scene, seed=4, output_size=size, motion_px=4.0)
    settings = SensorSettings(camera.exposure_time_us_for(4.0, 8.0), analogue_gain=8.0)
    journal = Journal(PhotoStore(root, reserve_bytes=0))
    journal.open()
    shot = Shot(0, mode="night", keep=("jpeg",), name=journal.store.reserve_name())
    journal.write(shot.with_frames(tuple(camera.capture(settings) for _ in range(frames))))


def develop(root: Path, streamed: bool) -> None:
    """Develop the journaled shot; print seconds and peak RSS."""
    from firmware.development import develop_shot
    from firmware.journal import Journal, read_burst, read_frames
    from hardware.storage import PhotoStore

    journal = Journal(PhotoStore(root, reserve_bytes=0))
    journal.open()
    (shot,) = journal.pending()
    start = time.perf_counter()
    frames = read_burst(shot) if streamed else read_frames(shot)
    outputs = develop_shot(frames, shot)
    seconds = time.perf_counter() - start
    print(f"{seconds:.2f} {peak_rss_mb():.0f} {len(outputs['jpeg'])}")


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "child":
        develop(Path(sys.argv[2]), sys.argv[3] == "streamed")
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=15)
    parser.add_argument("--size", default="4056x3040", help="WIDTHxHEIGHT")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    with tempfile.TemporaryDirectory() as tmp:
        journal_night_shot(Path(tmp), args.frames, (height, width))
        results = {}
        for how in ("in memory", "streamed"):
            out = subprocess.run(
                [sys.executable, __file__, "child", tmp, how.split()[-1]],
                check=True, capture_output=True, text=True,
            ).stdout.split()
            results[how] = (float(out[0]), float(out[1]))
    print(f"night shot, {args.frames} frames of {width}x{height}, developed to a JPEG")
    for how, (seconds, rss) in results.items():
        print(f"{how:<10} {seconds:6.2f} s  peak RSS {rss:6.0f} MB")
    ratio = results["streamed"][1] / results["in memory"][1]
    print(f"streamed / in memory: peak RSS {ratio:.2f}x, time "
          f"{results['streamed'][0] / results['in memory'][0]:.2f}x")


if __name__ == "__main__":
    main()
