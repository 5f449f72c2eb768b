"""Buttons and LED through gpiozero's MockFactory (passed explicitly, never global)."""

from __future__ import annotations

import threading
import time

import pytest
from gpiozero.pins.mock import MockFactory

from hardware.controls import (
    BOUNCE_TIME_S,
    LED_PATTERNS,
    ButtonEvent,
    ControlPins,
    Controls,
    ControlsError,
)
from tests.mock_gpio import BouncingMockPin, busy_pin_factory


@pytest.fixture
def controls():
    events: list[ButtonEvent] = []
    lock = threading.Lock()

    def on_event(event: ButtonEvent) -> None:
        with lock:
            events.append(event)

    factory = MockFactory()
    with Controls(ControlPins(), pin_factory=factory, on_event=on_event, power_hold_s=0.2,
                  debounce_s=0.03) as ctl:
        yield ctl, factory, events


def tap(pin, hold_s: float = 0.0) -> None:
    pin.drive_low()
    if hold_s:
        time.sleep(hold_s)
    pin.drive_high()


def test_each_button_posts_a_press(controls) -> None:
    ctl, factory, events = controls
    for name, pin in (("shutter", 17), ("mode", 27), ("look", 22)):
        tap(factory.pin(pin))
        time.sleep(0.04)
    assert [(e.button, e.kind) for e in events] == [
        ("shutter", "pressed"), ("mode", "pressed"), ("look", "pressed")
    ]
    assert all(e.at_ns <= time.monotonic_ns() for e in events)


def test_presses_are_debounced(controls) -> None:
    _, factory, events = controls
    pin = factory.pin(17)
    for _ in range(20):  # contact bounce: 20 edges within a few ms
        tap(pin)
    assert len(events) == 1
    time.sleep(0.05)
    tap(pin)
    assert len(events) == 2


def test_holding_power_posts_held(controls) -> None:
    _, factory, events = controls
    tap(factory.pin(3), hold_s=0.4)
    assert ("power", "held") in [(e.button, e.kind) for e in events]


def test_led_patterns(controls) -> None:
    ctl, factory, _ = controls
    led = factory.pin(4)
    ctl.show("ready")
    assert led.state is True
    ctl.show("capturing")
    assert led.state is False
    ctl.show("error_card_full")
    seen = set()
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline and len(seen) < 2:
        seen.add(led.state)
        time.sleep(0.02)
    assert seen == {True, False}, "an error code blinks"
    assert ctl.pattern == "error_card_full"


def test_led_blinks_at_a_given_rate_until_a_pattern_shows(controls) -> None:
    ctl, factory, _ = controls
    led = factory.pin(4)
    ctl.blink(4.0)
    assert ctl.blink_hz == 4.0 and ctl.pattern == "blink 4 Hz"
    seen = set()
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline and len(seen) < 2:
        seen.add(led.state)
        time.sleep(0.01)
    assert seen == {True, False}
    ctl.show("ready")
    assert ctl.blink_hz is None and led.state is True
    time.sleep(0.3)  # a blink thread left running would have turned it off by now
    assert led.state is True
    with pytest.raises(ValueError, match="rate_hz=0"):
        ctl.blink(0.0)


def test_error_codes_are_distinct() -> None:
    codes = [LED_PATTERNS[f"error_{n}"] for n in ("no_camera", "card_full", "card_missing",
                                                  "overheating")]
    assert len(set(codes)) == 4


def test_led_off_after_close_and_close_is_idempotent() -> None:
    factory = MockFactory()
    ctl = Controls(ControlPins(), pin_factory=factory, on_event=lambda e: None)
    ctl.show("ready")
    ctl.close()
    ctl.close()
    ctl.show("ready")  # no effect, no error
    assert factory.pin(4).state is False


def test_pin_factory_is_required() -> None:
    with pytest.raises(ControlsError):
        Controls(ControlPins(), pin_factory=None, on_event=lambda e: None)


def test_a_pin_in_use_leaves_out_its_device_only() -> None:
    events: list[ButtonEvent] = []
    # I2C holds GPIO 3 (the power button's) and 1-wire GPIO 4 (the LED's) on many Pis.
    with Controls(ControlPins(), pin_factory=busy_pin_factory(3, 4),
                  on_event=events.append) as ctl:
        assert sorted(ctl.buttons) == ["look", "mode", "shutter"]
        assert ctl.led is None
        assert len(ctl.failures) == 2
        assert "power button on GPIO 3: GPIO busy" in ctl.failures
        assert "status LED on GPIO 4: GPIO busy" in ctl.failures
        ctl.show("ready")  # no LED: no effect, no error
        ctl.blink(2.0)
        tap(ctl.buttons["shutter"].pin)
    assert [(e.button, e.kind) for e in events] == [("shutter", "pressed")]


def test_two_devices_on_one_pin_leave_out_the_second() -> None:
    with Controls(ControlPins(mode=17), pin_factory=MockFactory(),
                  on_event=lambda e: None) as ctl:
        assert "mode" not in ctl.buttons and "shutter" in ctl.buttons
        assert [f.split(":")[0] for f in ctl.failures] == ["mode button on GPIO 17"]


def test_buttons_ask_gpiozero_for_its_bounce_filter(controls) -> None:
    ctl, factory, _ = controls
    assert factory.pin(17).bounce == BOUNCE_TIME_S  # lgpio's debounce on a Pi


@pytest.fixture
def bouncing_controls():
    events: list[ButtonEvent] = []
    factory = MockFactory(pin_class=BouncingMockPin)
    with Controls(ControlPins(), pin_factory=factory, on_event=events.append,
                  debounce_s=0.03) as ctl:
        yield ctl, factory, events


def test_release_bounce_long_after_the_press_is_not_a_press(bouncing_controls) -> None:
    _, factory, events = bouncing_controls
    pin = factory.pin(17)
    for hold_s in (0.05, 0.2):  # the release chatters 50-200 ms after the press
        pin.drive_low()
        time.sleep(hold_s)
        pin.drive_high()
        time.sleep(0.06)
    assert [(e.button, e.kind) for e in events] == [("shutter", "pressed")] * 2


def test_a_bouncing_press_is_taken_at_its_first_edge() -> None:
    factory = MockFactory(pin_class=BouncingMockPin)
    pin = factory.pin(27)
    edges_seen: list[int] = []
    with Controls(ControlPins(), pin_factory=factory,
                  on_event=lambda e: edges_seen.append(len(pin.states) - before)):
        before = len(pin.states)
        pin.drive_low()
        assert len(pin.states) - before == 2 * BouncingMockPin.chatter + 1
    assert edges_seen == [1]  # posted at the first edge, not once the chatter settled


def test_button_storm_does_not_crash(controls) -> None:
    _, factory, events = controls
    pin = factory.pin(17)
    start = time.monotonic()
    while time.monotonic() - start < 0.3:  # hundreds of presses a second
        tap(pin)
    assert 1 <= len(events) <= 0.3 / 0.03 + 2
