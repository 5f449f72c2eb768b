"""The camera's behaviour as one pure function: ``transition(state, event) -> (state, actions)``.

Button callbacks, the camera, the processing worker and the control socket only post
events; the daemon's main thread feeds them here one at a time and carries out the
actions. Nothing in this module touches a device, a file or the clock (time arrives in
:class:`Tick` events), so every behaviour is a plain test.

Phases: ``starting`` -> ``ready`` <-> ``capturing``; any failure -> ``error`` (with an
:class:`ErrorCode` the LED blinks), left by a successful :class:`Recover` check;
``shutting_down`` is final.

A shot is taken in two steps: its frames are copied out of the ring buffer
(:class:`FramesCaptured`: the camera can shoot again), then written to the card's journal
(:class:`CaptureDone`: the shot is acknowledged; only now is it counted and developed).
Up to ``write_behind`` captured shots may wait for the card while the camera shoots on,
as a camera's buffer lets it shoot faster than its card writes; with more waiting the
camera stays ``capturing`` (busy) until the card catches up. With ``write_behind`` 0 the
next shot waits for the previous one to be on the card.

Processing is not a phase: acknowledged shots are counted in ``pending`` while the worker
develops them, and the camera stays ready to shoot. Neither
is focus assist: while focus measures arrive (:class:`FocusMeasured`), and for
:data:`FOCUS_HOLD_S` after the last, a ready camera's LED blinks faster as focus nears its
peak.
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass

from firmware.capture_mode import MODE_NAMES
from firmware.focus_assist import blink_rate_hz
from firmware.shot import Shot
from firmware.events import (
    Acknowledge,
    Action,
    Announce,
    CameraStarted,
    Capture,
    CaptureDone,
    CaptureRefused,
    Develop,
    ErrorCode,
    Event,
    Failed,
    FocusMeasured,
    FramesCaptured,
    LookPressed,
    ModePressed,
    PowerHeld,
    ProcessingDone,
    Recover,
    Recovered,
    Refuse,
    ReloadConfig,
    ReloadRequested,
    SettingsChanged,
    ShotQueued,
    ShowLed,
    Shutdown,
    ShutdownRequested,
    ShutterPressed,
    Tick,
)

#: Seconds between recovery attempts in the error state.
RETRY_INTERVAL_S = 2.0
#: Overheating starts at this SoC temperature and ends below the lower one.
OVERHEAT_C = 80.0
COOLED_C = 75.0
#: Focus assist keeps the LED blinking this long after the last focus measure (seconds).
FOCUS_HOLD_S = 3.0
#: Focus blink rates are rounded to this step (Hz), so the LED is not restarted for noise.
FOCUS_RATE_STEP_HZ = 0.25


class Phase(str, enum.Enum):
    """What the camera is doing."""

    STARTING = "starting"
    READY = "ready"
    CAPTURING = "capturing"
    ERROR = "error"
    SHUTTING_DOWN = "shutting_down"


# ------------------------------------------------------------------------------ state
@dataclass(frozen=True)
class State:
    """Everything the camera's behaviour depends on."""

    phase: Phase = Phase.STARTING
    mode: str = "single"
    look: str = "standard"
    looks: tuple[str, ...] = ("standard",)
    error: ErrorCode | None = None
    error_message: str = ""
    pending: int = 0
    shots: int = 0
    captured: int = 0
    taking: bool = False
    unsaved: int = 0
    write_behind: int = 1
    latched: Shot | None = None
    retry_at_s: float | None = None
    overheated: bool = False
    focus_blink_hz: float | None = None
    focus_until_s: float | None = None

    @property
    def led_pattern(self) -> str:
        """The LED pattern this state shows."""
        if self.phase is Phase.ERROR and self.error is not None:
            return f"error_{self.error.value}"
        if self.phase is Phase.SHUTTING_DOWN:
            return "off"
        if self.phase is Phase.STARTING:
            return "starting"
        if self.phase is Phase.CAPTURING:
            return "capturing"
        if self.focus_blink_hz is not None:
            return "focus"
        return "processing" if self.pending else "ready"

    @property
    def led_blink_hz(self) -> float | None:
        """The LED's blink rate when it shows focus assist, else None."""
        return self.focus_blink_hz if self.led_pattern == "focus" else None


def initial_state(mode: str = "single", look: str = "standard",
                  looks: tuple[str, ...] = ("standard",), write_behind: int = 1) -> State:
    """The state at start-up; the daemon then posts :class:`CameraStarted` or a failure."""
    return State(mode=mode if mode in MODE_NAMES else MODE_NAMES[0], look=look,
                 looks=looks if look in looks else (look, *looks),
                 write_behind=max(0, write_behind))


def _next(items: tuple[str, ...], current: str) -> str:
    return items[(items.index(current) + 1) % len(items)] if current in items else items[0]


def _with_led(old: State, new: State, actions: list[Action]) -> tuple[State, list[Action]]:
    if (new.led_pattern, new.led_blink_hz) != (old.led_pattern, old.led_blink_hz):
        actions.append(ShowLed(new.led_pattern, new.led_blink_hz))
    return new, actions


def _enter_error(state: State, error: ErrorCode, message: str) -> State:
    return dataclasses.replace(
        state, phase=Phase.ERROR, error=error, error_message=message, latched=None,
        retry_at_s=None, taking=False,
    )


def _capture(state: State, request: Shot) -> tuple[State, Capture]:
    mode = request.mode if request.mode in MODE_NAMES else state.mode
    shot = dataclasses.replace(request, mode=mode, look=state.look)
    return dataclasses.replace(state, phase=Phase.CAPTURING, latched=None, taking=True), Capture(
        shot
    )


def _shoot_on(state: State, actions: list[Action]) -> tuple[State, list[Action]]:
    """A capturing camera whose frames are taken: ready again, or on to the latched press,
    once no more than ``write_behind`` shots wait for the card."""
    if state.phase is not Phase.CAPTURING or state.taking or state.unsaved > state.write_behind:
        return state, actions
    if state.latched is not None:
        new, capture = _capture(state, state.latched)
        return new, [*actions, capture]
    return dataclasses.replace(state, phase=Phase.READY), actions


def transition(state: State, event: Event) -> tuple[State, list[Action]]:
    """The state after ``event`` and what to do about it."""
    new, actions = _transition(state, event)
    return _with_led(state, new, actions)


def _transition(state: State, event: Event) -> tuple[State, list[Action]]:  # noqa: C901
    phase = state.phase
    if phase is Phase.SHUTTING_DOWN:
        if isinstance(event, ShutterPressed):
            return state, [Refuse(event.request, "shutting down")]
        if isinstance(event, ProcessingDone):
            return dataclasses.replace(state, pending=max(0, state.pending - 1)), []
        return state, []

    if isinstance(event, (PowerHeld, ShutdownRequested)):
        actions: list[Action] = []
        if state.latched is not None:
            actions.append(Refuse(state.latched, "shutting down"))
        new = dataclasses.replace(state, phase=Phase.SHUTTING_DOWN, latched=None)
        exit_status = event.exit_status if isinstance(event, ShutdownRequested) else 0
        return new, [*actions, Shutdown(isinstance(event, PowerHeld), exit_status)]

    if isinstance(event, CameraStarted):
        if phase is Phase.STARTING:
            return dataclasses.replace(state, phase=Phase.READY), []
        return state, []

    if isinstance(event, ShutterPressed):
        request = event.request
        if phase is Phase.READY:
            new, capture = _capture(state, request)
            return new, [capture]
        if phase is Phase.CAPTURING:
            if state.latched is None:  # one press may wait; a storm of them may not
                return dataclasses.replace(state, latched=request), []
            return state, [Refuse(request, "busy: a shot is being taken")]
        if phase is Phase.ERROR:
            assert state.error is not None
            return state, [Refuse(request, f"error: {state.error.value}")]
        return state, [Refuse(request, "starting")]

    if isinstance(event, FramesCaptured):
        captured = dataclasses.replace(
            state, captured=state.captured + 1, unsaved=state.unsaved + 1, taking=False
        )
        return _shoot_on(captured, [])

    if isinstance(event, CaptureDone):
        counted = dataclasses.replace(
            state, shots=state.shots + 1, pending=state.pending + 1,
            unsaved=max(0, state.unsaved - 1),
        )  # fmt: skip
        return _shoot_on(counted, [Acknowledge(event.shot), Develop(event.shot)])

    if isinstance(event, ShotQueued):
        return dataclasses.replace(state, pending=state.pending + 1), [Develop(event.shot)]

    if isinstance(event, ProcessingDone):
        return dataclasses.replace(state, pending=max(0, state.pending - 1)), []

    if isinstance(event, Failed):
        actions = []
        if event.request is not None:
            actions.append(Refuse(event.request, f"error: {event.error.value}: {event.message}"))
        if state.latched is not None:
            actions.append(Refuse(state.latched, f"error: {event.error.value}"))
        if event.shot is not None:
            state = dataclasses.replace(state, pending=max(0, state.pending - 1))
        if event.unsaved:
            state = dataclasses.replace(state, unsaved=max(0, state.unsaved - 1))
        elif event.request is not None:
            state = dataclasses.replace(state, taking=False)
        if phase is Phase.ERROR and state.error is ErrorCode.OVERHEATING:
            return state, actions  # overheating outranks what it causes
        return _enter_error(state, event.error, event.message), actions

    if isinstance(event, CaptureRefused):
        return _shoot_on(dataclasses.replace(state, taking=False),
                         [Refuse(event.request, event.reason)])

    if isinstance(event, Recovered):
        if phase is Phase.ERROR and not state.overheated:
            return dataclasses.replace(
                state, phase=Phase.READY, error=None, error_message="", retry_at_s=None
            ), []
        return state, []

    if isinstance(event, ModePressed):
        mode = _next(MODE_NAMES, state.mode)
        return dataclasses.replace(state, mode=mode), [Announce("mode", mode)]

    if isinstance(event, LookPressed):
        look = _next(state.looks, state.look)
        return dataclasses.replace(state, look=look), [Announce("look", look)]

    if isinstance(event, SettingsChanged):
        looks = event.looks or state.looks
        look = event.look or state.look
        mode = event.mode if event.mode in MODE_NAMES else state.mode
        write_behind = state.write_behind if event.write_behind is None else event.write_behind
        return dataclasses.replace(
            state, mode=mode, look=look, looks=looks if look in looks else (look, *looks),
            write_behind=max(0, write_behind),
        ), []

    if isinstance(event, ReloadRequested):
        return state, [ReloadConfig()]

    if isinstance(event, FocusMeasured):
        rate = round(blink_rate_hz(event.fraction) / FOCUS_RATE_STEP_HZ) * FOCUS_RATE_STEP_HZ
        return dataclasses.replace(
            state, focus_blink_hz=rate, focus_until_s=event.now_s + FOCUS_HOLD_S
        ), []

    if isinstance(event, Tick):
        if state.focus_until_s is not None and event.now_s >= state.focus_until_s:
            state = dataclasses.replace(state, focus_blink_hz=None, focus_until_s=None)
        return _tick(state, event)

    return state, []


def _tick(state: State, tick: Tick) -> tuple[State, list[Action]]:
    temperature = tick.temperature_c
    if temperature is not None:
        if temperature >= OVERHEAT_C and not state.overheated:
            hot = dataclasses.replace(state, overheated=True)
            if state.phase is Phase.CAPTURING:
                return hot, []  # let the shot finish; the next tick stops the camera
            return _enter_error(hot, ErrorCode.OVERHEATING, f"{temperature:.0f} C"), []
        if state.overheated and temperature < COOLED_C:
            cooled = dataclasses.replace(state, overheated=False)
            if state.phase is Phase.ERROR and state.error is ErrorCode.OVERHEATING:
                return dataclasses.replace(cooled, phase=Phase.READY, error=None,
                                           error_message=""), []
            return cooled, []
        if state.overheated and state.phase is Phase.READY:
            return _enter_error(state, ErrorCode.OVERHEATING, f"{temperature:.0f} C"), []
    if state.phase is not Phase.ERROR or state.error is ErrorCode.OVERHEATING:
        return state, []
    assert state.error is not None
    if state.retry_at_s is None:
        return dataclasses.replace(state, retry_at_s=tick.now_s + RETRY_INTERVAL_S), []
    if tick.now_s >= state.retry_at_s:
        return dataclasses.replace(state, retry_at_s=tick.now_s + RETRY_INTERVAL_S), [
            Recover(state.error)
        ]
    return state, []
