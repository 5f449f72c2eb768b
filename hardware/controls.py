"""Buttons and the status LED, through gpiozero: the only module that imports gpiozero.

Every device takes the pin factory as a parameter (gpiozero's ``MockFactory`` in tests and
the demo, a real one on the Pi); nothing here chooses a backend behind your back. Button
callbacks run in gpiozero's threads and do one thing: hand a small :class:`ButtonEvent` to
``on_event`` (the daemon enqueues it).

Presses are debounced twice. gpiozero's ``bounce_time`` (:data:`BOUNCE_TIME_S`) reaches
lgpio's ``gpio_set_debounce_micros`` on the Pi, which reports a level only once it has been
stable that long; and, on every backend (gpiozero's mock pins ignore ``bounce_time``), a
press counts only when the button was stable for :data:`DEBOUNCE_S` before it: any edge,
press or release, restarts that wait, so the chatter of a release (which comes long after
the press) is never taken for a new press.

A pin the system already holds (I2C on GPIO 2/3, 1-wire on GPIO 4: lgpio says "GPIO busy")
or a missing GPIO backend never stops the camera: the devices that could be set up work,
and :attr:`Controls.failures` says what could not.

LED patterns are sequences of on/off steps played by gpiozero's ``source`` machinery; error
codes are groups of blinks (2: no camera or capture failed, 3: card full, 4: card missing, 5: overheating,
6: processing failed, 7: card read-only or failing, 8: out of system resources such as file
descriptors) followed by a pause, repeated. :meth:`Controls.blink` blinks at any
rate instead (focus assist: faster as focus nears its peak).
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from gpiozero import LED, Button, Device

from pipeline.errors import ObscuraError

logger = logging.getLogger(__name__)

ButtonName = Literal["shutter", "mode", "look", "power"]

#: Duration of one step of an LED pattern, seconds.
LED_STEP_S = 0.1
#: Debounce: a press counts only when its button was stable this long before it.
DEBOUNCE_S = 0.03
#: gpiozero's ``bounce_time`` (lgpio's debounce filter on the Pi): short, as it delays presses.
BOUNCE_TIME_S = 0.01
#: Holding the power button this long shuts the camera down.
POWER_HOLD_S = 3.0


def _blinks(count: int) -> tuple[int, ...]:
    return (1, 0, 0) * count + (0,) * 8


#: On/off steps of :data:`LED_STEP_S`, repeated; a 1-tuple is steady.
LED_PATTERNS: dict[str, tuple[int, ...]] = {
    "off": (0,),
    "starting": (1, 0),
    "ready": (1,),
    "capturing": (0,),
    "processing": (1, 1, 1, 1, 1, 1, 1, 0, 0, 0),
    "flash": (0, 1),
    "error_no_camera": _blinks(2),
    "error_capture_failed": _blinks(2),
    "error_card_full": _blinks(3),
    "error_card_missing": _blinks(4),
    "error_overheating": _blinks(5),
    "error_processing_failed": _blinks(6),
    "error_card_read_only": _blinks(7),
    "error_card_failed": _blinks(7),
    "error_out_of_resources": _blinks(8),
}


class ControlsError(ObscuraError, RuntimeError):
    """The GPIO pins could not be set up (pin in use, no GPIO backend...)."""


@dataclass(frozen=True)
class ButtonEvent:
    """A button did something: ``kind`` "pressed" or "held", at ``at_ns`` (monotonic ns)."""

    button: ButtonName
    kind: Literal["pressed", "held"]
    at_ns: int


@dataclass(frozen=True)
class ControlPins:
    """BCM numbers of the buttons and the LED (``pins.*`` in the configuration)."""

    shutter: int = 17
    mode: int = 27
    look: int = 22
    power: int = 3
    led: int | None = 4


def mock_pin_factory() -> Any:
    """gpiozero's ``MockFactory``: simulated pins for tests and ``obscura demo``."""
    from gpiozero.pins.mock import MockFactory

    return MockFactory()


def hardware_pin_factory() -> Any:
    """A real pin factory (lgpio, then RPi.GPIO), or :class:`ControlsError` if none works."""
    errors = []
    for module_name, class_name in (("gpiozero.pins.lgpio", "LGPIOFactory"),
                                    ("gpiozero.pins.rpigpio", "RPiGPIOFactory")):
        try:
            module = __import__(module_name, fromlist=[class_name])
            return getattr(module, class_name)()
        except Exception as exc:  # noqa: BLE001 - try the next backend
            errors.append(f"{class_name}: {exc}")
    raise ControlsError("no GPIO backend works here (" + "; ".join(errors) + ")")


class Controls:
    """The camera's buttons and status LED.

    Parameters
    ----------
    pins : ControlPins
    pin_factory : gpiozero pin factory
        Required: ``MockFactory()`` in tests, :func:`hardware_pin_factory` on the Pi.
    on_event : callable
        Receives each :class:`ButtonEvent`; called from gpiozero's threads, so it must only
        enqueue.
    led_active_high : bool
    debounce_s, power_hold_s : float

    A button or the LED whose pin cannot be had is left out and named in :attr:`failures`;
    the others work.
    """

    def __init__(
        self,
        pins: ControlPins,
        *,
        pin_factory: Any,
        on_event: Callable[[ButtonEvent], None],
        led_active_high: bool = True,
        debounce_s: float = DEBOUNCE_S,
        power_hold_s: float = POWER_HOLD_S,
    ) -> None:
        if pin_factory is None:
            raise ControlsError("Controls needs an explicit pin_factory")
        self._on_event = on_event
        self._debounce_ns = int(debounce_s * 1e9)
        self._last_edge_ns: dict[str, int] = {}
        self._lock = threading.Lock()
        self._closed = False
        self._pattern = ""
        self._blink_hz: float | None = None
        self._devices: list[Device] = []
        self._failures: list[str] = []
        self.buttons: dict[str, Button] = {}
        self.led: LED | None = None
        for name in ("shutter", "mode", "look", "power"):
            pin = getattr(pins, name)
            button = self._claim(f"{name} button", pin, lambda pin=pin: Button(
                pin, pull_up=True, bounce_time=BOUNCE_TIME_S, hold_time=power_hold_s,
                pin_factory=pin_factory))
            if button is None:
                continue
            self.buttons[name] = button
            button.when_pressed = self._edge_callback(name, is_press=True)
            button.when_released = self._edge_callback(name, is_press=False)
            if name == "power":
                button.when_held = self._held_callback(name)
        if pins.led is not None:
            self.led = self._claim("status LED", pins.led, lambda: LED(
                pins.led, active_high=led_active_high, initial_value=False,
                pin_factory=pin_factory))
            if self.led is not None:
                self.led.source_delay = LED_STEP_S

    def _claim(self, what: str, pin: int, make: Callable[[], Device]) -> Any:
        """``make()``'s device, or None with the reason kept in :attr:`failures` (lgpio
        raises its own ``lgpio.error``, not a gpiozero error, for a pin in use)."""
        try:
            device = make()
        except Exception as exc:  # noqa: BLE001 - one pin must not take the others down
            reason = f"{what} on GPIO {pin}: {exc or type(exc).__name__}"
            logger.error("%s: left out", reason)
            self._failures.append(reason)
            return None
        self._devices.append(device)
        return device

    @property
    def failures(self) -> tuple[str, ...]:
        """The buttons and LED that could not be set up, each with its pin and reason."""
        return tuple(self._failures)

    def _edge_callback(self, name: str, *, is_press: bool) -> Callable[[], None]:
        def edge() -> None:
            now = time.monotonic_ns()
            with self._lock:
                last = self._last_edge_ns.get(name)
                self._last_edge_ns[name] = now
            if is_press and (last is None or now - last >= self._debounce_ns):
                self._on_event(ButtonEvent(name, "pressed", now))  # type: ignore[arg-type]

        return edge

    def _held_callback(self, name: str) -> Callable[[], None]:
        def held() -> None:
            self._on_event(ButtonEvent(name, "held", time.monotonic_ns()))  # type: ignore[arg-type]

        return held

    @property
    def pattern(self) -> str:
        """The LED pattern showing now."""
        return self._pattern

    @property
    def blink_hz(self) -> float | None:
        """The rate :meth:`blink` set, while it shows; None while a pattern shows."""
        return self._blink_hz

    def show(self, pattern: str) -> None:
        """Play one of :data:`LED_PATTERNS` (unknown names show the generic error)."""
        if self._closed or self.led is None or pattern == self._pattern:
            self._pattern, self._blink_hz = pattern, None
            return
        steps = LED_PATTERNS.get(pattern, LED_PATTERNS["error_processing_failed"])
        self._pattern, self._blink_hz = pattern, None
        self.led.source = None
        if len(steps) == 1:
            self.led.value = steps[0]  # also stops a blink
        else:
            self.led.off()  # stops a blink
            self.led.source = itertools.cycle(steps)

    def blink(self, rate_hz: float) -> None:
        """Blink at ``rate_hz`` (equal on and off times) until the next :meth:`show`."""
        if not rate_hz > 0:
            raise ValueError(f"rate_hz={rate_hz}: expected > 0")
        pattern = f"blink {rate_hz:g} Hz"
        if self._closed or self.led is None or pattern == self._pattern:
            self._pattern, self._blink_hz = pattern, rate_hz
            return
        self._pattern, self._blink_hz = pattern, rate_hz
        self.led.source = None
        half_period_s = 0.5 / rate_hz
        self.led.blink(on_time=half_period_s, off_time=half_period_s, background=True)

    def close(self) -> None:
        """Turn the LED off and release the pins; safe to call more than once."""
        if self._closed:
            return
        self._closed = True
        if self.led is not None:
            try:
                self.led.source = None
                self.led.off()
            except Exception:  # noqa: BLE001 - closing must not raise
                logger.debug("turning the LED off failed", exc_info=True)
        for device in reversed(self._devices):
            try:
                device.close()
            except Exception:  # noqa: BLE001 - closing must not raise
                logger.debug("closing %r failed", device, exc_info=True)
        self._devices.clear()

    def __enter__(self) -> Controls:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
