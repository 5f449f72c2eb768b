"""Benchmark: the camera daemon on the IMX477 simulator, with its buttons pressed.

    .venv/bin/python bench/camera.py [--size 1014x760] [--shots 20] [--burst-frames 4]
    .venv/bin/python bench/camera.py --size 4056x3040 --boards 512,1024,2048,default

Prints, in this fresh process: time from process start (and from daemon start) to ready,
shutter lag, acknowledgement time, shot-to-shot time and processing time in each mode
(``obscura demo``'s table), then ``--shots`` shots pressed as fast as the shutter accepts
them while earlier ones are still being developed (all checked on the card, with the spread
of their shutter lags and acknowledgement times), and the peak memory (VmHWM). Shutter lag
is |press - middle of the exposure of the frame kept as the shot|; the simulated sensor
streams at 10 fps, so one frame is 100 ms, once it has rendered the few frames it serves
in turn (at 12 MP these take 0.3-1 s each on a 2-core machine, and the first shots after
start-up wait for them).

``--boards`` measures the memory defaults instead: for each board memory (MB, or
``default`` for the schema's defaults) a fresh process runs the daemon with the defaults
``obscura run`` chooses for that board's MemTotal, shoots ``--shots-per-mode`` shots in
each mode as fast as the camera accepts them, waits until all are developed and prints its
peak memory (VmHWM): once ready and streaming for a few seconds (the interpreter, numba,
the ring, and the simulator's rendering, which a real camera does not need), and at the
end; their difference is what shooting and developing add. It also prints the anonymous
memory (RssAnon, sampled: what the OOM killer weighs; VmHWM includes about 130 MB of
mapped LLVM and library code the kernel can drop).

    .venv/bin/python bench/camera.py --size 4056x3040 --boards 512 --camera packed \
        --memory-limit-mb 250

``--camera packed`` serves copies of one packed frame, as a Pi 4's camera does, instead of
the simulator (whose rendering at 12 MP takes hundreds of MB no camera needs);
``--memory-limit-mb`` runs each board in a memory cgroup of that size (as root): 250 MB is
about what a Zero 2 W (MemTotal about 430 MB) leaves the service once Raspberry Pi OS Lite
and the camera's DMA buffers have theirs, and a board that runs out is OOM-killed there.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from peak_memory import PeakAnonymousMemory, peak_rss_mb  # noqa: E402 - bench/ is the script's folder


def rapid_shots(out: Path, size: tuple[int, int], shots: int, burst_frames: int) -> None:
    """Press the shutter ``shots`` times, each as soon as the camera is ready again."""
    from firmware.commands.demo import press, simulator_daemon
    from hardware.controls import DEBOUNCE_S
    from pipeline.formats.dng_reader import read_dng

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
            taken = daemon.shots()
        jpgs = sorted((out / "DCIM").rglob("OBS_*.JPG"))
        for path in sorted((out / "DCIM").rglob("OBS_*.DNG")):
            read_dng(path)
        print(f"{shots} {mode} shots as fast as the button allows: {shooting_s:.2f} s "
              f"({shooting_s / shots * 1000:.0f} ms per shot), all developed after "
              f"{total_s:.2f} s; taken {shots_taken}, up to {max_pending} waiting to be "
              f"developed; {len(jpgs)} JPEGs on the card so far")
        print(f"  shutter lag ms: {spread([s.shutter_lag_s for s in taken])}; "
              f"acknowledged after ms: {spread([s.acknowledged_s for s in taken])}")


#: MemTotal a board of each size reports (the kernel keeps some; the GPU and CMA more).
BOARD_MEM_TOTAL_MB = {512: 427, 1024: 906, 2048: 1845, 4096: 3794, 8192: 7810}


def packed_frame_camera(size: tuple[int, int], ring_frames: int) -> object:
    """A camera source whose frames cost what a Pi 4's do, and nothing else.

    Each frame is a fresh copy of one 12-bit CSI-2 packed buffer (18.6 MB at 12 MP: what
    picamera2's ``make_array("raw")`` returns), unpacked only when a shot takes it, as the
    picamera2 backend does. The buffer is made once from a small simulated frame whose
    2x2 tiles are repeated up to ``size``, so no simulator lives in the process and its
    peak memory (VmHWM) is the daemon's own.
    """
    import dataclasses

    import numpy as np

    from hardware.camera import CameraSource, FrameRecord
    from hardware.imx477_simulator import Imx477Simulator, SensorSettings
    from hardware.simulated_camera import default_scene
    from pipeline.formats.picamera2_raw import pack_raw, unpack_raw
    from pipeline.raw_frame import RawFrame

    height, width = size
    small = Imx477Simulator(default_scene(), seed=1, output_size=(-(-height // 8) * 2,
                                                                  -(-width // 8) * 2))
    frame = small.capture(SensorSettings(exposure_time_us=small.exposure_time_us_for(1.0)))
    tiles = frame.cfa.reshape(frame.cfa.shape[0] // 2, 2, frame.cfa.shape[1] // 2, 2)
    mosaic = np.ascontiguousarray(np.repeat(np.repeat(tiles, 4, axis=0), 4, axis=2).reshape(
        tiles.shape[0] * 8, tiles.shape[2] * 8)[:height, :width])
    packed = pack_raw(mosaic, "SBGGR12_CSI2P")
    metadata = dataclasses.replace(frame.metadata, lens_shading=None)
    del small, frame, tiles, mosaic

    class Packed(CameraSource):
        name = "packed"

        def __init__(self) -> None:
            super().__init__(ring_frames=ring_frames)
            self._manual = None
            self._next_at = 0.0

        def _open_device(self) -> None:
            self._next_at = time.monotonic()

        def _close_device(self) -> None:
            pass

        def _read_frame(self, timeout_s: float) -> FrameRecord:
            self._next_at = max(self._next_at + 0.1, time.monotonic())
            time.sleep(max(0.0, self._next_at - time.monotonic()))
            exposure_us, gain = self._manual or (10000.0, 1.0)
            end_ns = time.monotonic_ns()
            return FrameRecord(packed.copy(), {"ExposureTime": exposure_us,
                                               "AnalogueGain": gain, "SensorTimestamp": end_ns,
                                               "ColourGains": (2.0, 1.6)},
                               end_ns - int(exposure_us * 1000), end_ns)

        def _decode(self, record: FrameRecord) -> RawFrame:
            mosaic = unpack_raw(record.payload, "SBGGR12_CSI2P", width, height)
            return RawFrame(mosaic, dataclasses.replace(
                metadata, exposure_time_s=record.metadata["ExposureTime"] / 1e6,
                analogue_gain=record.metadata["AnalogueGain"]))

        def _shape_of(self, record: FrameRecord) -> tuple[int, int]:
            return (height, width)

        def _set_exposure(self, settings, metering) -> None:  # noqa: ANN001
            self._manual = None if settings is None else (settings.exposure_time_us,
                                                           settings.analogue_gain)

    return Packed()


def board_run(out: Path, size: tuple[int, int], board_mb: int | None,
              shots_per_mode: int, camera_kind: str = "simulator") -> dict:
    """Run the daemon with ``board_mb``'s memory defaults (None: the schema's), shoot
    every mode, wait for everything to be developed; the figures as a dict."""
    from firmware.commands.demo import press, select_mode
    from firmware.config import MB, default_config
    from firmware.capture_mode import MODE_NAMES
    from firmware.daemon import Daemon
    from firmware.devices import camera_from_config, mode_size
    from hardware.controls import DEBOUNCE_S, mock_pin_factory
    from hardware.storage import PhotoStore

    mem_total = None if board_mb is None else BOARD_MEM_TOTAL_MB[board_mb] * MB
    defaults = default_config(mem_total)
    config = (defaults.with_value("camera.source", "simulator")
              .with_value("output.storage_path", str(out)))
    out.mkdir(parents=True, exist_ok=True)
    camera = (packed_frame_camera(mode_size(config, size), config.capture.ring_frames)
              if camera_kind == "packed" else camera_from_config(config, simulator_size=size))
    daemon = Daemon(config, camera=camera,
                    store=PhotoStore(out), pin_factory=mock_pin_factory(),
                    temperature_c=lambda: None)
    start = time.monotonic()
    with PeakAnonymousMemory() as anonymous, daemon:
        if not daemon.wait_ready(120):
            raise RuntimeError(f"not ready: {daemon.status()}")
        time.sleep(5.0)  # the ring fills
        idle_mb = peak_rss_mb()
        idle_anon_mb = anonymous.now_mb()
        shutter = daemon.controls.buttons["shutter"].pin
        for mode in MODE_NAMES:
            select_mode(daemon, mode)
            for _ in range(shots_per_mode):
                before = daemon.status()["captured"]
                for _attempt in range(3):  # a press while the camera restarts is refused
                    time.sleep(DEBOUNCE_S)
                    press(shutter, 0.05)
                    if daemon.wait_until(
                        lambda s: s["captured"] > before and s["state"] == "ready", 60
                    ):
                        break
                else:
                    raise RuntimeError(f"{mode}: the shot was not taken: {daemon.status()}")
        daemon.wait_until(lambda s: s["unsaved"] == 0 and s["pending"] == 0, 900)
        shots = daemon.status()["shots"]
    files = sorted(p.suffix for p in (out / "DCIM").rglob("OBS_*"))
    capture = config.capture
    board_defaults = {"ring": capture.ring_frames, "burst": capture.burst_frames,
                      "night": capture.night_max_frames, "behind": capture.write_behind_shots,
                      "keep": config.output.keep}
    return {"board": "default" if board_mb is None else f"{board_mb} MB",
            "defaults": board_defaults, "shots": shots,
            "jpegs": files.count(".JPG"), "dngs": files.count(".DNG"),
            "seconds": time.monotonic() - start, "idle_mb": idle_mb, "peak_mb": peak_rss_mb(),
            "idle_anon_mb": idle_anon_mb, "peak_anon_mb": anonymous.peak_mb}


def memory_cgroup(limit_mb: int) -> Path | None:
    """A new memory cgroup limited to ``limit_mb`` (v2, else v1), or None where this
    process may not make one. Its memory counts the page cache too, which the kernel
    reclaims before it OOM-kills, as it does on the board."""
    name = f"obscura-bench-{os.getpid()}"
    for root, limit_file in ((Path("/sys/fs/cgroup"), "memory.max"),
                             (Path("/sys/fs/cgroup/memory"), "memory.limit_in_bytes")):
        if not (root / "cgroup.procs").exists():  # not a cgroup file system (a tmpfs)
            continue
        group = root / name
        try:
            group.mkdir()
            (group / limit_file).write_text(str(limit_mb * 1024 * 1024))
            return group
        except OSError:
            with contextlib.suppress(OSError):
                group.rmdir()
    return None


def compare_boards(size: tuple[int, int], boards: list[str], shots_per_mode: int,
                   camera_kind: str, limit_mb: int | None) -> None:
    """One fresh process per board (VmHWM is per process), then a table; with
    ``limit_mb``, each in a memory cgroup of that size (what the board leaves the service),
    where running out of memory is an OOM kill, as on the board."""
    rows = []
    group = memory_cgroup(limit_mb) if limit_mb else None
    if limit_mb and group is None:
        print(f"no memory cgroup can be made here: running without the {limit_mb} MB limit")
    for board in boards:
        command = [sys.executable, __file__, "--size", f"{size[1]}x{size[0]}",
                   "--board-run", board, "--shots-per-mode", str(shots_per_mode),
                   "--camera", camera_kind]
        join = None if group is None else (
            lambda: (group / "cgroup.procs").write_text(str(os.getpid())))
        result = subprocess.run(command, capture_output=True, text=True, check=False,
                                preexec_fn=join)
        if result.returncode in (-9, 137):
            print(f"{board}: OOM-killed within {limit_mb} MB")
            continue
        if result.returncode != 0:
            print(f"{board}: failed:\n{result.stderr[-2000:]}")
            continue
        rows.append(json.loads(result.stdout.strip().splitlines()[-1]))
    print(f"{camera_kind} frames {size[1]}x{size[0]}; {shots_per_mode} shot(s) in each "
          "mode as fast as the camera takes them, all developed"
          + (f"; each board run within a {limit_mb} MB memory cgroup" if group else ""))
    if group is not None:
        with contextlib.suppress(OSError):
            group.rmdir()
    print(f"{'board':<9}{'ring':>5}{'burst':>6}{'night':>6}{'behind':>7}  {'keep':<14}"
          f"{'shots':>6}{'JPEG':>5}{'DNG':>5}{'s':>6}{'idle MB':>9}{'VmHWM MB':>10}{'added':>7}"
          f"{'anon idle':>10}{'anon peak':>10}")
    for row in rows:
        d = row["defaults"]
        print(f"{row['board']:<9}{d['ring']:>5}{d['burst']:>6}{d['night']:>6}{d['behind']:>7}  "
              f"{','.join(d['keep']):<14}{row['shots']:>6}{row['jpegs']:>5}"
              f"{row['dngs']:>5}{row['seconds']:>6.0f}{row['idle_mb']:>9.0f}"
              f"{row['peak_mb']:>10.0f}{row['peak_mb'] - row['idle_mb']:>7.0f}"
              f"{row['idle_anon_mb']:>10.0f}{row['peak_anon_mb']:>10.0f}")


def spread(values_s: list[float | None]) -> str:
    """min / median / max of ``values_s``, in ms."""
    values = sorted(1000 * v for v in values_s if v is not None)
    if not values:
        return "-"
    middle = values[len(values) // 2]
    return f"{values[0]:.0f} / {middle:.0f} / {values[-1]:.0f} (min / median / max)"


def main() -> None:
    from firmware.commands.demo import frame_size, print_table, run_demo

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=frame_size, default=(760, 1014), help="WIDTHxHEIGHT")
    parser.add_argument("--shots", type=int, default=20)
    parser.add_argument("--burst-frames", type=int, default=4)
    parser.add_argument("--boards", help="compare memory defaults, e.g. 512,1024,2048,default")
    parser.add_argument("--shots-per-mode", type=int, default=2)
    parser.add_argument("--camera", choices=("simulator", "packed"), default="simulator",
                        help="with --boards: the simulator, or packed copies of one frame "
                             "(the memory of a real camera's frames, no simulator)")
    parser.add_argument("--memory-limit-mb", type=int, default=None,
                        help="with --boards: run each board in a memory cgroup of this size")
    parser.add_argument("--board-run", help=argparse.SUPPRESS)  # one board, in a child process
    args = parser.parse_args()
    if args.boards:
        compare_boards(args.size, args.boards.split(","), args.shots_per_mode, args.camera,
                       args.memory_limit_mb)
        return
    if args.board_run:
        board_mb = None if args.board_run == "default" else int(args.board_run)
        with tempfile.TemporaryDirectory() as tmp:
            print(json.dumps(board_run(Path(tmp), args.size, board_mb, args.shots_per_mode,
                                       args.camera)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        figures = run_demo(Path(tmp) / "modes", args.size, 2, args.burst_frames)
        print_table(figures, args.size)
        rapid_shots(Path(tmp) / "rapid", args.size, args.shots, args.burst_frames)
    print(f"peak memory (VmHWM): {peak_rss_mb():.0f} MB")


if __name__ == "__main__":
    main()
