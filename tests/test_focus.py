"""Focus measure and focus assist on the simulator with a defocus blur the test varies."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageFilter

from firmware.focus_assist import FocusMeter, blink_rate_hz
from hardware.imx477_simulator import Imx477Simulator, SensorSettings
from pipeline.errors import InvalidParameterError
from pipeline.focus.measure import focus_measure
from tests.conftest import SHARED_DATA

BLURS_PX = [3.0, 1.5, 0.0, 1.0, 2.0, 4.0]  # a focus ring swept through best focus


def _scene() -> Image.Image:
    path = SHARED_DATA / "kodak24" / "kodim08.png"
    if path.exists():
        return Image.open(path).convert("RGB")
    rng = np.random.default_rng(8)
    return Image.fromarray(rng.integers(0, 256, size=(256, 384, 3), dtype=np.uint8))


def _measures(gain: float) -> list[float]:
    scene = _scene()
    values = []
    for blur in BLURS_PX:
        blurred = scene.filter(ImageFilter.GaussianBlur(blur)) if blur else scene
        camera = Imx477Simulator(np.asarray(blurred), seed=5, output_size=(256, 384))
        settings = SensorSettings(
            exposure_time_us=camera.exposure_time_us_for(1.2, gain), analogue_gain=gain
        )
        values.append(focus_measure(camera.capture(settings)))
    return values


@pytest.mark.parametrize("gain", [1.0, 8.0])
def test_focus_measure_peaks_at_the_sharpest_setting(gain: float) -> None:
    values = _measures(gain)
    assert int(np.argmax(values)) == BLURS_PX.index(0.0)
    # Monotonic on each side of best focus.
    assert values[0] < values[1] < values[2] > values[3] > values[4] > values[5]


def test_led_rate_follows_the_focus_measure() -> None:
    meter = FocusMeter()
    rates = [blink_rate_hz(meter.update(v)) for v in _measures(1.0)]
    best = BLURS_PX.index(0.0)
    assert rates[best] == pytest.approx(8.0)
    assert rates[best + 1] > rates[best + 2] > rates[best + 3]
    assert "100.0%" in FocusMeter(peak=2.0, current=2.0).bar()


def test_focus_measure_ignores_exposure() -> None:
    scene = np.asarray(_scene())
    camera = Imx477Simulator(scene, seed=6, output_size=(256, 384), vignetting_strength=0)
    bright = camera.capture(SensorSettings(exposure_time_us=camera.exposure_time_us_for(1.2)))
    dim = camera.capture(SensorSettings(exposure_time_us=camera.exposure_time_us_for(2.4)))
    assert focus_measure(dim) == pytest.approx(focus_measure(bright), rel=0.15)


def test_bad_region_is_rejected() -> None:
    camera = Imx477Simulator(np.zeros((8, 8, 3), np.uint8), seed=0, output_size=(64, 64))
    frame = camera.capture(SensorSettings(exposure_time_us=1000))
    with pytest.raises(InvalidParameterError, match="region"):
        focus_measure(frame, (0.9, 0.0, 0.5, 0.5))
    with pytest.raises(InvalidParameterError, match="value=-1"):
        FocusMeter().update(-1)
