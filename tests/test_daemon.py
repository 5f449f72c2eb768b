"""The daemon end to end on the simulator: modes, buttons, storms, full card, lost camera,
failed development, and kill -9 at any moment without losing an acknowledged shot."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from gpiozero.pins.mock import MockFactory
from PIL import Image

import pipeline
from firmware import development
from firmware.config import default_config
from firmware.daemon import Daemon
from firmware.journal import Journal, JournalEntry, read_frame, shading_manifest
from firmware.shot import Shot
from hardware.imx477_simulator import Imx477Simulator, SensorSettings
from hardware.simulated_camera import SimulatedCamera, SimulatedFaults
from hardware.storage import CardMissingError, PhotoStore, ShotName
from pipeline.formats.dng_reader import read_dng
from pipeline.formats.encoders.dng import encode_dng

ROOT = Path(__file__).resolve().parents[1]


def make_daemon(root: Path, *, free_space=None, faults=None, size=(128, 192), keep=None,
                temperature=None) -> Daemon:
    config = (
        default_config()
        .with_value("output.storage_path", str(root))
        .with_value("camera.source", "simulator")
        .with_value("capture.burst_frames", 3)
        .with_value("capture.ring_frames", 4)
    )
    if keep is not None:
        config = config.with_value("output.keep", keep)
    camera = SimulatedCamera(output_size=size, frame_interval_s=0.02, faults=faults,
                             frame_timeout_s=0.5)
    return Daemon(
        config, camera=camera, store=PhotoStore(root, free_space=free_space, reserve_bytes=0),
        pin_factory=MockFactory(), temperature_c=temperature or (lambda: None),
        tick_interval_s=0.05, power_hold_s=0.2, looks=("standard", "neutral"),
    )


def tap(pin, hold_s: float = 0.0) -> None:
    pin.drive_low()
    if hold_s:
        time.sleep(hold_s)
    pin.drive_high()


def assert_card_is_consistent(root: Path, acknowledged: set[str] = frozenset(),
                              kinds=(".JPG", ".DNG")) -> None:
    """Every file in DCIM is complete; every acknowledged shot has all its files."""
    dcim = root / "DCIM"
    for path in dcim.rglob("*"):
        if path.is_dir():
            continue
        assert not path.name.startswith("."), f"temporary file left in DCIM: {path}"
        if path.suffix == ".JPG":
            with Image.open(path) as image:
                image.load()
        elif path.suffix == ".DNG":
            assert read_dng(path).cfa.size > 0
    for key in acknowledged:
        folder, number = key.split("-")
        for suffix in kinds:
            path = dcim / f"{folder}OBSCU" / f"OBS_{number}{suffix}"
            assert path.is_file(), f"acknowledged shot {key} lost its {suffix}"


def test_each_mode_leaves_its_files(tmp_path: Path) -> None:
    keep = ["jpeg", "dng", "merged_dng"]
    with make_daemon(tmp_path, keep=keep) as daemon:
        assert daemon.wait_ready(20)
        results = [daemon.request_shot(mode) for mode in ("single", "burst", "hdr", "night")]
        assert all(r["taken"] for r in results), results
        assert daemon.wait_until(lambda s: s["pending"] == 0, 120), daemon.status()
        status = daemon.status()
    assert status["shots"] == 4 and status["state"] == "ready" and status["error"] is None
    keys = {r["shot"] for r in results}
    assert_card_is_consistent(tmp_path, keys)
    merged = sorted(p.name for p in (tmp_path / "DCIM/100OBSCU").glob("OBSM*.DNG"))
    if hasattr(pipeline, "align_and_merge"):
        assert merged == ["OBSM0002.DNG", "OBSM0003.DNG", "OBSM0004.DNG"]
    else:  # single-frame fallback until the burst merge lands
        assert merged == []
    assert list((tmp_path / ".obscura/journal").iterdir()) == []


def test_output_keep_is_honoured(tmp_path: Path) -> None:
    with make_daemon(tmp_path, keep=["dng"]) as daemon:
        assert daemon.wait_ready(20)
        assert daemon.request_shot()["taken"]
        assert daemon.wait_until(lambda s: s["pending"] == 0, 60)
    assert sorted(p.name for p in (tmp_path / "DCIM/100OBSCU").iterdir()) == ["OBS_0001.DNG"]


def test_buttons_change_mode_and_look_and_shoot(tmp_path: Path) -> None:
    with make_daemon(tmp_path) as daemon:
        assert daemon.wait_ready(20)
        buttons = daemon.controls.buttons
        tap(buttons["mode"].pin)
        assert daemon.wait_until(lambda s: s["mode"] == "burst", 5)
        tap(buttons["look"].pin)
        assert daemon.wait_until(lambda s: s["look"] == "neutral", 5)
        tap(buttons["shutter"].pin)
        assert daemon.wait_until(lambda s: s["shots"] == 1 and s["state"] == "ready", 20)
        (shot,) = daemon.shots()
        assert shot.mode == "burst" and shot.frame_count == 3 and shot.look == "neutral"
        assert shot.frames == ()  # the record keeps no pixels
        assert daemon.wait_until(lambda s: s["pending"] == 0, 60)
        assert daemon.status()["led"] == "ready"
        assert daemon.controls.pattern == "ready"


def test_power_button_hold_shuts_down_cleanly(tmp_path: Path) -> None:
    powered_off = []
    daemon = make_daemon(tmp_path)
    daemon._poweroff = lambda: powered_off.append(True)
    daemon.start()
    try:
        assert daemon.wait_ready(20)
        tap(daemon.controls.buttons["power"].pin, hold_s=0.4)
        daemon._thread.join(20)
        assert not daemon._thread.is_alive() and powered_off == [True]
    finally:
        daemon.stop()


def test_button_storm_keeps_the_daemon_alive_and_bounded(tmp_path: Path) -> None:
    with make_daemon(tmp_path) as daemon:
        assert daemon.wait_ready(20)
        shutter = daemon.controls.buttons["shutter"].pin
        mode = daemon.controls.buttons["mode"].pin
        start = time.monotonic()
        presses = 0
        while time.monotonic() - start < 0.6:  # hundreds of presses a second
            tap(shutter)
            tap(mode)
            presses += 1
            assert daemon.status()["queue_length"] <= 64
        assert presses > 100
        assert daemon.wait_until(
            lambda s: s["state"] == "ready" and s["unsaved"] == 0 and s["pending"] == 0, 120
        )
        status = daemon.status()
        acknowledged = {s.key for s in daemon.shots() if s.acknowledged_s is not None}
    assert 1 <= status["shots"] == len(acknowledged) == status["captured"]
    assert_card_is_consistent(tmp_path, acknowledged)


def test_the_camera_shoots_on_while_the_card_writes(tmp_path: Path, monkeypatch) -> None:
    # A card that takes as long as we like: shot 1 waits for it while shot 2 is taken
    # (capture.write_behind_shots = 1); shot 3 must wait for the card; nothing is
    # acknowledged before it is written, and a clean stop writes what was captured.
    card = threading.Event()
    write = Journal.write

    def slow_card(journal, shot):
        card.wait(30)
        return write(journal, shot)

    monkeypatch.setattr(Journal, "write", slow_card)
    daemon = make_daemon(tmp_path).start()
    try:
        assert daemon.wait_ready(20)
        pin = daemon.controls.buttons["shutter"].pin

        def shutter() -> None:
            time.sleep(0.05)  # past the debounce
            tap(pin)

        shutter()
        assert daemon.wait_until(lambda s: s["captured"] == 1 and s["state"] == "ready", 10)
        shutter()
        assert daemon.wait_until(lambda s: s["captured"] == 2, 10), daemon.status()
        status = daemon.status()
        assert (status["shots"], status["unsaved"], status["state"]) == (0, 2, "capturing")
        assert list((tmp_path / ".obscura/journal").iterdir()) == []
        shutter()  # latched until the card catches up
        card.set()
        assert daemon.wait_until(lambda s: s["shots"] == 3 and s["state"] == "ready", 30)
        card.clear()
        shutter()
        assert daemon.wait_until(lambda s: s["captured"] == 4 and s["unsaved"] == 1, 10)
        threading.Timer(0.3, card.set).start()
    finally:
        daemon.stop()
    names = sorted(p.name for p in (tmp_path / ".obscura/journal").iterdir())
    developed = {p.stem for p in (tmp_path / "DCIM/100OBSCU").glob("OBS_*.JPG")}
    assert "100-0004" in names or "OBS_0004" in developed  # on the card after the stop
    assert {"OBS_0001", "OBS_0002", "OBS_0003"} <= developed | {
        "OBS_" + n.split("-")[1] for n in names
    }


def test_a_shot_the_card_could_not_take_is_written_once_it_is_back(tmp_path: Path,
                                                                   monkeypatch) -> None:
    # The card disappears while a captured shot waits for it: the camera shows the error,
    # keeps the shot in memory, and writes it (under a new number) when the card is back.
    write = Journal.write
    failures = []

    def card_pulled_once(journal, shot):
        if not failures:
            failures.append(shot.key)
            raise CardMissingError(f"{journal.store.root}: card missing or not writable")
        return write(journal, shot)

    monkeypatch.setattr(Journal, "write", card_pulled_once)
    with make_daemon(tmp_path) as daemon:
        assert daemon.wait_ready(20)
        result = daemon.request_shot()
        assert result["taken"], result  # acknowledged once written, after the recovery
        assert failures == ["100-0001"] and result["shot"] == "100-0002"
        assert daemon.wait_until(lambda s: s["pending"] == 0 and s["state"] == "ready", 60)
        status = daemon.status()
    assert (status["shots"], status["captured"], status["unsaved"]) == (1, 1, 0)
    assert_card_is_consistent(tmp_path, {"100-0002"})


def test_full_card_refuses_shots_and_recovers(tmp_path: Path) -> None:
    free = {"bytes": 10**12}
    with make_daemon(tmp_path, free_space=lambda path: free["bytes"]) as daemon:
        assert daemon.wait_ready(20)
        first = daemon.request_shot()
        assert first["taken"]
        assert daemon.wait_until(lambda s: s["pending"] == 0, 60)
        before = {p: p.read_bytes() for p in (tmp_path / "DCIM").rglob("*.*")}
        free["bytes"] = 1000
        refused = daemon.request_shot()
        assert not refused["taken"] and "card_full" in refused["reason"]
        status = daemon.status()
        assert status["state"] == "error" and status["error"] == "card_full"
        assert daemon.controls.pattern == "error_card_full"
        assert {p: p.read_bytes() for p in (tmp_path / "DCIM").rglob("*.*")} == before
        free["bytes"] = 10**12
        assert daemon.wait_until(lambda s: s["state"] == "ready", 10)
        assert daemon.request_shot()["taken"]
        assert daemon.wait_until(lambda s: s["pending"] == 0, 60)
    assert_card_is_consistent(tmp_path, {"100-0001", "100-0002"})


def test_missing_camera_is_an_error_then_retried(tmp_path: Path) -> None:
    faults = SimulatedFaults(missing=True)
    with make_daemon(tmp_path, faults=faults) as daemon:
        assert daemon.wait_until(lambda s: s["error"] == "no_camera", 10)
        assert daemon.controls.pattern == "error_no_camera"
        assert not daemon.request_shot()["taken"]
        faults.missing = False
        assert daemon.wait_until(lambda s: s["state"] == "ready", 15)
        faults.stalled = True  # the camera stops delivering frames mid-session
        time.sleep(0.6)
        refused = daemon.request_shot()
        assert not refused["taken"] and "no_camera" in refused["reason"]
        faults.stalled = False
        assert daemon.wait_until(lambda s: s["state"] == "ready", 15)
        assert daemon.request_shot()["taken"]


def test_failed_development_keeps_the_raw_and_carries_on(tmp_path: Path, monkeypatch) -> None:
    def broken(frames, settings):
        raise RuntimeError("simulated ISP bug")

    monkeypatch.setattr(development, "develop_shot", broken)
    with make_daemon(tmp_path) as daemon:
        assert daemon.wait_ready(20)
        assert daemon.request_shot("burst")["taken"]
        assert daemon.wait_until(lambda s: s["error"] == "processing_failed", 20)
        assert daemon.wait_until(lambda s: s["state"] == "ready", 10)
        monkeypatch.undo()
        assert daemon.request_shot()["taken"]
        assert daemon.wait_until(lambda s: s["pending"] == 0, 60)
    failed = tmp_path / ".obscura/failed/100-0001"
    assert len(list(failed.glob("frame_*.raw"))) == 3
    # The kept DNG is the burst's reference frame, encoded by the worker.
    manifest = json.loads((failed / "manifest.json").read_text())
    failed_shot = Shot.from_manifest(manifest, ShotName(100, 1), JournalEntry(failed, manifest))
    reference = read_frame(failed_shot, failed_shot.reference_index)
    kept = read_dng(tmp_path / "DCIM/100OBSCU/OBS_0001.DNG")
    np.testing.assert_array_equal(kept.cfa, reference.cfa)
    assert kept.metadata.exposure_time_s == reference.metadata.exposure_time_s
    assert_card_is_consistent(tmp_path, {"100-0002"})


def test_dng_journals_of_earlier_firmware_are_developed_after_an_upgrade(tmp_path: Path) -> None:
    camera = Imx477Simulator(np.full((8, 8, 3), 120, np.uint8), seed=2, output_size=(64, 96))
    frames = [camera.capture(SensorSettings(exposure_time_us=1000)) for _ in range(3)]
    store = PhotoStore(tmp_path).open()
    names = [f"frame_{i:02d}.dng" for i in range(len(frames))]
    manifest = {**Shot(0, mode="burst").to_manifest(), **shading_manifest(frames[0]),
                "frames": names}
    folder = store.journal_dir / store.reserve_name().key
    folder.mkdir()
    for name, frame in zip(names, frames, strict=True):
        (folder / name).write_bytes(encode_dng(frame))
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with make_daemon(tmp_path) as daemon:
        assert daemon.wait_ready(20)
        assert daemon.wait_until(lambda s: s["pending"] == 0 and s["processing_queue"] == 0, 60)
    assert_card_is_consistent(tmp_path, {"100-0001"})
    assert list((tmp_path / ".obscura/journal").iterdir()) == []


def test_shots_queued_behind_a_busy_worker_wait_on_the_card(tmp_path: Path,
                                                           monkeypatch) -> None:
    """Shots taken while the worker is stuck wait as journal entries (no frames in memory)
    and are developed from the card exactly as from memory: the same mosaics, metadata and
    shading table."""
    captured: list[tuple] = []  # each shot's frames as the capture journaled them
    developed: list[tuple] = []  # (frames, settings, outputs) as the worker developed them
    release = threading.Event()
    real_journal, real_develop = Journal.write, development.develop_shot

    def recording_journal(journal, shot):
        captured.append(shot.frames)
        return real_journal(journal, shot)

    def stuck_develop(frames, settings):
        assert release.wait(60), "the test never released the worker"
        outputs = real_develop(frames, settings)
        # Read the frames now: a streamed burst's journal is gone once the shot is done.
        developed.append((tuple(frames), settings, outputs))
        return outputs

    monkeypatch.setattr(Journal, "write", recording_journal)
    monkeypatch.setattr(development, "develop_shot", stuck_develop)
    modes = ("single", "burst", "hdr", "single")
    with make_daemon(tmp_path) as daemon:
        assert daemon.wait_ready(20)
        results = [daemon.request_shot(mode) for mode in modes]
        assert all(r["taken"] for r in results), results
        assert daemon.status()["processing_queue"] == len(modes)
        waiting = daemon._development.waiting()
        assert [shot.key for shot in waiting] == [r["shot"] for r in results[1:]]
        assert all(shot.frames == () for shot in waiting)
        release.set()
        assert daemon.wait_until(lambda s: s["pending"] == 0, 120), daemon.status()
    assert_card_is_consistent(tmp_path, {r["shot"] for r in results})
    assert list((tmp_path / ".obscura/journal").iterdir()) == []
    assert len(captured) == len(developed) == len(modes)
    # The idle worker took the first shot from memory.
    assert all(a is b for a, b in zip(developed[0][0], captured[0], strict=True))
    for shot, (frames, settings, outputs) in zip(captured[1:], developed[1:]):
        assert len(frames) == len(shot) > 0
        for read, taken in zip(frames, shot):
            assert read is not taken
            np.testing.assert_array_equal(read.cfa, taken.cfa)
            assert read.metadata == taken.metadata and read.metadata.analogue_gain is not None
            np.testing.assert_array_equal(read.metadata.lens_shading.gains,
                                          taken.metadata.lens_shading.gains)
        assert outputs == real_develop(shot, settings)


def test_overheating_stops_shooting(tmp_path: Path) -> None:
    temperature = {"c": 50.0}
    with make_daemon(tmp_path, temperature=lambda: temperature["c"]) as daemon:
        assert daemon.wait_ready(20)
        temperature["c"] = 85.0
        assert daemon.wait_until(lambda s: s["error"] == "overheating", 5)
        assert not daemon.request_shot()["taken"]
        temperature["c"] = 60.0
        assert daemon.wait_until(lambda s: s["state"] == "ready", 5)


# --------------------------------------------------------------------- kill -9
def child_main(root: str, size: str) -> None:
    """Run a daemon that shoots bursts back to back, printing each acknowledgement."""
    height, width = (int(v) for v in size.split("x"))
    daemon = make_daemon(Path(root), size=(height, width))
    daemon.start()
    daemon.wait_ready(60)
    print("READY", flush=True)
    modes = ("burst", "single", "hdr", "night")
    for i in range(10_000):
        result = daemon.request_shot(modes[i % 4])
        if result.get("taken"):
            print("ACK", result["shot"], flush=True)


def run_child_and_kill(root: Path, kill_after_acks: int, extra_delay_s: float) -> set[str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.test_daemon", "child", str(root), "240x320"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    acknowledged: set[str] = set()
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "READY"
        while len(acknowledged) < kill_after_acks:
            line = process.stdout.readline()
            words = line.split()
            assert len(words) == 2 and words[0] == "ACK", repr(line)
            acknowledged.add(words[1])
        time.sleep(extra_delay_s)
        os.kill(process.pid, signal.SIGKILL)
        rest, _ = process.communicate(timeout=10)
        # A line the kill cut short names no shot: only whole ones count.
        acknowledged |= {words[1] for words in map(str.split, rest.splitlines())
                         if len(words) == 2 and words[0] == "ACK"}
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
    return acknowledged


@pytest.mark.parametrize("kill_after_acks", [1, 4])
def test_kill_9_loses_no_acknowledged_shot(tmp_path: Path, kill_after_acks: int) -> None:
    rng = random.Random(kill_after_acks)
    acknowledged = run_child_and_kill(tmp_path, kill_after_acks, rng.uniform(0.0, 0.3))
    assert len(acknowledged) >= kill_after_acks
    assert_card_is_consistent(tmp_path)  # what is there is whole, even before recovery
    with make_daemon(tmp_path) as daemon:  # restart: the journal is developed
        assert daemon.wait_ready(30)
        assert daemon.wait_until(lambda s: s["pending"] == 0 and s["processing_queue"] == 0, 120)
        again = daemon.request_shot()
        assert again["taken"]
        assert int(again["shot"].split("-")[1]) > max(int(k.split("-")[1]) for k in acknowledged)
        assert daemon.wait_until(lambda s: s["pending"] == 0, 60)
    assert_card_is_consistent(tmp_path, acknowledged | {again["shot"]})
    assert list((tmp_path / ".obscura/journal").iterdir()) == []
    assert list((tmp_path / ".obscura/tmp").iterdir()) == []


if __name__ == "__main__" and len(sys.argv) == 4 and sys.argv[1] == "child":
    child_main(sys.argv[2], sys.argv[3])


def test_sighup_reloads_the_files_in_the_main_loop(tmp_path: Path) -> None:
    """SIGHUP only posts ReloadRequested; the daemon's main loop reads the files (a bad
    file keeps the last good configuration) and applies what changed."""
    from firmware.config_store import ConfigStore, reload_on_sighup
    from firmware.events import ReloadRequested

    path = tmp_path / "config.toml"
    path.write_text('[capture]\nmode = "burst"\n')
    daemons: list[Daemon] = []
    store = ConfigStore([path], apply=lambda config: [d.apply_config(config) for d in daemons])
    reloaded_on: list[str] = []

    def reload() -> bool:
        reloaded_on.append(threading.current_thread().name)
        return store.reload()

    daemon = make_daemon(tmp_path / "card")
    daemon._reload_config = reload
    daemons.append(daemon)
    (tmp_path / "card").mkdir()
    with daemon, reload_on_sighup(lambda: daemon.post(ReloadRequested())):
        assert daemon.wait_ready(20)
        os.kill(os.getpid(), signal.SIGHUP)
        assert daemon.wait_until(lambda s: s["mode"] == "burst", 10)
        path.write_text("[capture\nmode = ")  # broken: the camera keeps burst
        os.kill(os.getpid(), signal.SIGHUP)
        assert daemon.wait_until(lambda s: len(reloaded_on) == 2, 10)
        assert store.error is not None and daemon.status()["mode"] == "burst"
        path.write_text('[capture]\nmode = "night"\n')
        os.kill(os.getpid(), signal.SIGHUP)
        assert daemon.wait_until(lambda s: s["mode"] == "night", 10)
    assert reloaded_on == ["daemon"] * 3  # the loop's own thread, never the signal's
