"""``obscura demo --out DIR``: the real daemon on the IMX477 simulator, buttons pressed for you.

The daemon runs exactly as ``obscura run`` would, with the simulated camera and gpiozero's
mock pins; the demo presses the mode button to reach each mode and the shutter twice in
each, then prints how fast everything was.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path
from typing import Any

from pipeline.errors import ObscuraError

logger = logging.getLogger(__name__)


def process_age_s() -> float | None:
    """Seconds since this process started (Linux), or None."""
    import os

    try:
        with open("/proc/self/stat", encoding="ascii") as stat:
            start_ticks = int(stat.read().rsplit(")", 1)[1].split()[19])
        return time.clock_gettime(time.CLOCK_BOOTTIME) - start_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, AttributeError):
        return None


def press(pin: Any, hold_s: float = 0.05) -> None:
    """Push a mock button (active low) and let go."""
    pin.drive_low()
    time.sleep(hold_s)
    pin.drive_high()


def select_mode(daemon: Any, mode: str) -> None:
    """Press the daemon's mode button until ``mode`` is the mode in force."""
    mode_button = daemon.controls.buttons["mode"].pin
    while daemon.status()["mode"] != mode:
        press(mode_button)
        daemon.wait_until(lambda s: True, 0.05)


def simulator_daemon(
    out: Path, size: tuple[int, int], burst_frames: int, mode: str = "single"
) -> Any:
    """The real daemon on the IMX477 simulator with mock pins, storing under ``out``."""
    from firmware.config import default_config
    from firmware.daemon import Daemon
    from firmware.devices import camera_from_config
    from hardware.controls import mock_pin_factory
    from hardware.storage import PhotoStore

    out.mkdir(parents=True, exist_ok=True)
    config = (
        default_config()
        .with_value("camera.source", "simulator")
        .with_value("output.storage_path", str(out))
        .with_value("capture.burst_frames", burst_frames)
        .with_value("capture.mode", mode)
    )
    return Daemon(
        config, camera=camera_from_config(config, simulator_size=size),
        store=PhotoStore(out), pin_factory=mock_pin_factory(), temperature_c=lambda: None,
    )


def run_demo(out: Path, size: tuple[int, int], shots_per_mode: int, burst_frames: int,
             report: Any = print) -> dict[str, Any]:
    """Run the demo; returns the figures (also used by ``bench/camera.py``)."""
    from firmware.capture_mode import MODE_NAMES
    from hardware.controls import DEBOUNCE_S

    age_at_start = process_age_s()
    started = time.monotonic()
    daemon = simulator_daemon(out, size, burst_frames)
    figures: dict[str, Any] = {"modes": {}}
    with daemon:
        if not daemon.wait_ready(60):
            status = daemon.status()
            raise ObscuraError("the daemon did not become ready: "
                               f"{status.get('error_message') or status['state']}")
        ready_s = daemon.ready_at_s - started if daemon.ready_at_s else float("nan")
        figures["ready_s"] = ready_s
        figures["process_ready_s"] = None if age_at_start is None else age_at_start + ready_s
        assert daemon.controls is not None
        shutter = daemon.controls.buttons["shutter"].pin
        for mode in MODE_NAMES:
            select_mode(daemon, mode)
            intervals = []
            for _ in range(shots_per_mode):
                before = daemon.status()["captured"]
                time.sleep(DEBOUNCE_S)  # a press sooner after the last one is a bounce
                pressed = time.monotonic()
                press(shutter, 0.02)
                if not daemon.wait_until(
                    lambda s: s["captured"] > before and s["state"] == "ready", 30
                ):
                    status = daemon.status()
                    raise ObscuraError(f"{mode}: the shot was not taken: "
                                       f"{status.get('error_message') or status['state']}")
                intervals.append(time.monotonic() - pressed)
            figures["modes"][mode] = {"shot_to_shot_s": intervals}
        daemon.wait_until(lambda s: s["unsaved"] == 0 and s["pending"] == 0, 300)
        for shot in daemon.shots():
            stats = figures["modes"][shot.mode]
            stats.setdefault("shots", []).append(shot)
    figures["files"] = sorted(p.name for p in (out / "DCIM").rglob("*") if p.is_file())
    return figures


def print_table(figures: dict[str, Any], size: tuple[int, int], report: Any = print) -> None:
    """The demo's figures as a table."""
    def mean(values: list[float | None]) -> str:
        values = [v for v in values if v is not None]
        return f"{1000 * sum(values) / len(values):7.0f}" if values else "      -"

    process = figures.get("process_ready_s")
    report(f"simulated IMX477 frames {size[1]}x{size[0]}, 10 fps")
    report(f"start to ready: {figures['ready_s']:.2f} s (daemon), "
           + (f"{process:.2f} s (process)" if process is not None else ""))
    report(f"{'mode':<8}{'frames':>7}{'lag ms':>9}{'ack ms':>9}{'shot-to-shot ms':>17}"
           f"{'processing ms':>15}")
    for mode, stats in figures["modes"].items():
        shots = stats.get("shots", [])
        frames = shots[0].frame_count if shots else 0
        report(
            f"{mode:<8}{frames:>7}{mean([s.shutter_lag_s for s in shots]):>9}"
            f"{mean([s.acknowledged_s for s in shots]):>9}"
            f"{mean(stats['shot_to_shot_s']):>17}{mean([s.developed_s for s in shots]):>15}"
        )
    report(f"{len(figures['files'])} files: " + " ".join(figures["files"]))


def run(args: argparse.Namespace) -> int:
    """Run the demo and print the table."""
    from hardware.storage import PhotoStore

    out = Path(args.out).absolute()  # the config takes absolute paths only
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ObscuraError(f"--out {out}: cannot create the folder: {exc.strerror or exc}") from None
    PhotoStore(out).open()  # an unusable folder is one line now, not a daemon that never starts
    height, width = args.size
    figures = run_demo(out, (height, width), args.shots, args.burst_frames)
    print_table(figures, (height, width))
    return 0


def frame_size(text: str) -> tuple[int, int]:
    """``"1014x760"`` -> ``(760, 1014)``: (height, width), both even and at least 16."""
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        width = height = 0
    if width < 16 or height < 16 or width % 2 or height % 2:
        raise argparse.ArgumentTypeError(f"{text}: expected even WIDTHxHEIGHT, e.g. 1014x760")
    return height, width


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``demo`` subcommand."""
    parser = subparsers.add_parser(
        "demo", help="run the camera daemon on the simulator and press its buttons"
    )
    parser.add_argument("--out", required=True, help="card folder: photos go in OUT/DCIM/")
    parser.add_argument("--size", type=frame_size, default="1014x760", help="frame WIDTHxHEIGHT")
    parser.add_argument("--shots", type=int, default=2, help="shots per mode")
    parser.add_argument("--burst-frames", type=int, default=4, help="frames per burst")
    parser.set_defaults(run=run)
