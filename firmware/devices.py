"""The devices the configuration names: the camera source and the button/LED pins."""

from __future__ import annotations

from typing import Any

from firmware.config import Config
from hardware.camera import CameraSource
from hardware.controls import ControlPins


def control_pins(config: Config) -> ControlPins:
    """The ``pins.*`` keys as :class:`ControlPins` (no LED when ``led.enabled`` is false)."""
    pins = config.pins
    return ControlPins(shutter=pins.shutter, mode=pins.mode, look=pins.look, power=pins.power,
                       led=pins.led if config.led.enabled else None)


def camera_from_config(
    config: Config, *, simulator_size: tuple[int, int] = (760, 1014), **options: Any
) -> CameraSource:
    """The camera source ``camera.source`` names (not started); ``display.preview`` applies
    to picamera2, the only source with a display; ``camera.resolution`` to picamera2 and
    the simulator (``simulator_size`` is the full mode's)."""
    source = config.camera.source
    ring = config.capture.ring_frames
    if source == "picamera2":
        from hardware.picamera2_camera import Picamera2Camera

        return Picamera2Camera(ring_frames=ring, resolution=config.camera.resolution,
                               preview=config.display.preview, **options)
    if source == "replay":
        from hardware.replay_camera import ReplayCamera

        return ReplayCamera(config.camera.replay_dir, ring_frames=ring, **options)
    from hardware.simulated_camera import SimulatedCamera

    return SimulatedCamera(output_size=mode_size(config, simulator_size), ring_frames=ring,
                           **options)


def mode_size(config: Config, full_size: tuple[int, int]) -> tuple[int, int]:
    """(H, W) of the frames ``camera.resolution`` gives a sensor whose full mode is
    ``full_size``: the binned mode is half the size each way (kept even)."""
    if config.camera.resolution == "binned":
        return (full_size[0] // 4 * 2, full_size[1] // 4 * 2)
    return full_size
