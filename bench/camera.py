"""Benchmark: the camera daemon on the IMX477 simulator, with its buttons pressed.

    .venv/bin/python bench/camera.py [--size 1014x760] [--shots 20] [--burst-frames 4]

Prints, in this fresh process: time from process start (and from daemon start) to ready,
shutter lag, acknowledgement time, shot-to-shot time and processing time in each mode
(``obscura demo``'s table), then ``--shots`` shots pressed as fast as the shutter accepts
them while earlier ones are still being developed (all checked on the card, with the spread
of their shutter lags and acknowledgement times), and the peak memory (VmHWM). Shutter lag
is |press - middle of the exposure of the frame kept as the shot|; the simulated sensor
streams at 10 fps, so one frame is 100 ms, once it has rendered the few frames it serves
in turn (at 12 MP these take 0.3-1 s each on a 2-core machine, and the first shots after
start-up wait for them).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from peak_memory import peak_rss_mb  # noqa: E402 - bench/ is the script's folder


def rapid_shots(out: Path, size: tuple[int, int], shots: int, burst_frames: int) -> None:
    """Press the shutter ``shots`` times, each as soon as the camera is ready again."""
    from firmware.commands.demo import press, simulator_daemon
    from hardware.controls import DEBOUNCE_S
    from pipeline.dng_reader import read_dng

    for mode in ("single", "burst"):
        daemon = simulator_daemon(out, size, burst_frames, mode)
        with daemon:
            daemon.wait_ready(60)
            shutter = daemon.controls.buttons["shutter"].pin
            start = time.monotonic()
            max_pending = 0
            for i in range(shots):
                before = daemon.status()["captured"]
                time.sleep(DEBOUNCE_S)  # a press sooner after the last one is a bounce
                press(shutter, 0.01)
                daemon.wait_until(lambda s: s["captured"] > before and s["state"] == "ready", 60)
                max_pending = max(max_pending, daemon.status()["pending"])
            shooting_s = time.monotonic() - start
            daemon.wait_until(lambda s: s["unsaved"] == 0 and s["pending"] == 0, 600)
            total_s = time.monotonic() - start
            shots_taken = daemon.status()["shots"]
            records = daemon.shot_records()
        jpgs = sorted((out / "DCIM").rglob("OBS_*.JPG"))
        for path in sorted((out / "DCIM").rglob("OBS_*.DNG")):
            read_dng(path)
        print(f"{shots} {mode} shots as fast as the button allows: {shooting_s:.2f} s "
              f"({shooting_s / shots * 1000:.0f} ms per shot), all developed after "
              f"{total_s:.2f} s; taken {shots_taken}, up to {max_pending} waiting to be "
              f"developed; {len(jpgs)} JPEGs on the card so far")
        print(f"  shutter lag ms: {spread([r.shutter_lag_s for r in records])}; "
              f"acknowledged after ms: {spread([r.acknowledged_s for r in records])}")


def spread(values_s: list[float | None]) -> str:
    """min / median / max of ``values_s``, in ms."""
    values = sorted(1000 * v for v in values_s if v is not None)
    if not values:
        return "-"
    middle = values[len(values) // 2]
    return f"{values[0]:.0f} / {middle:.0f} / {values[-1]:.0f} (min / median / max)"


def main() -> None:
    from firmware.commands.demo import _size, print_table, run_demo

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=_size, default=(760, 1014), help="WIDTHxHEIGHT")
    parser.add_argument("--shots", type=int, default=20)
    parser.add_argument("--burst-frames", type=int, default=4)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        figures = run_demo(Path(tmp) / "modes", args.size, 2, args.burst_frames)
        print_table(figures, args.size)
        rapid_shots(Path(tmp) / "rapid", args.size, args.shots, args.burst_frames)
    print(f"peak memory (VmHWM): {peak_rss_mb():.0f} MB")


if __name__ == "__main__":
    main()
