"""Development: shots finished by their mode as pipeline.burst.modes finishes them, in a
worker thread that yields the CPU to capture."""

from __future__ import annotations

import os
import sys
import threading
import time

import numpy as np
import pytest

from firmware import development
from firmware.development import DevelopmentWorker, develop_shot
from firmware.journal import Journal
from firmware.shot import Shot
from hardware.imx477_simulator import Imx477Simulator, SensorSettings
from hardware.storage import PhotoStore


@pytest.mark.parametrize("mode", ["burst", "hdr", "night"])
def test_bursts_are_finished_by_their_mode(mode: str, monkeypatch) -> None:
    finished = []
    real = development.finish_burst

    def spy(merged, mode_, params):
        finished.append(mode_)
        return real(merged, mode_, params)

    monkeypatch.setattr(development, "finish_burst", spy)
    camera = Imx477Simulator(np.full((8, 8, 3), 120, np.uint8), seed=2, output_size=(64, 96))
    settings = SensorSettings(exposure_time_us=camera.exposure_time_us_for(1.0))
    frames = [camera.capture(settings) for _ in range(3)]
    outputs = develop_shot(frames, Shot(0, mode=mode, keep=("jpeg", "merged_dng")))
    assert finished == [mode] and set(outputs) == {"jpeg", "merged_dng"}
    single = develop_shot(frames[:1], Shot(0, mode="single", keep=("jpeg",)))
    assert finished == [mode] and set(single) == {"jpeg"}


@pytest.mark.parametrize("method", ["resample", "kernel"])
def test_a_burst_is_merged_as_the_shot_was_taken_to_be(method: str) -> None:
    from pipeline.burst import BurstParams, align_and_merge
    from pipeline.formats.encoders.dng import encode_dng

    camera = Imx477Simulator(np.full((8, 8, 3), 120, np.uint8), seed=4, output_size=(64, 96))
    settings = SensorSettings(exposure_time_us=camera.exposure_time_us_for(1.0))
    frames = [camera.capture(settings) for _ in range(3)]
    shot = Shot(0, mode="burst", keep=("merged_dng",), merge=method)
    assert Shot.from_manifest(shot.to_manifest()).merge == method  # journaled with it
    written = develop_shot(frames, shot)["merged_dng"]
    for other in ("resample", "kernel"):
        expected = encode_dng(align_and_merge(frames, BurstParams.for_merge(other)))
        assert (written == expected) == (other == method)


def test_worker_rejects_a_negative_memory_bound(tmp_path) -> None:
    journal = Journal(PhotoStore(tmp_path, reserve_bytes=0))
    with pytest.raises(ValueError, match="max_shots_in_memory=-1"):
        DevelopmentWorker(journal, lambda event: None, max_shots_in_memory=-1)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice is Linux's")
def test_the_worker_yields_the_cpu_to_capture(tmp_path) -> None:
    def nice_of(thread_id: int) -> int:
        return os.getpriority(os.PRIO_PROCESS, thread_id)

    before = nice_of(threading.get_native_id())
    worker = DevelopmentWorker(Journal(PhotoStore(tmp_path, reserve_bytes=0)), lambda e: None)
    try:
        expected = min(19, before + development.WORKER_NICE_INCREMENT)
        deadline = time.monotonic() + 10
        while nice_of(worker._thread.native_id) != expected and time.monotonic() < deadline:
            time.sleep(0.01)
        assert nice_of(worker._thread.native_id) == expected
        assert nice_of(threading.get_native_id()) == before  # the caller's is unchanged
    finally:
        worker.close()
