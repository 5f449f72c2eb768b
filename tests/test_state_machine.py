"""The pure state machine: button sequences to states and actions."""

from __future__ import annotations

import dataclasses

import pytest

from firmware.capture_mode import MODE_NAMES
from firmware.events import (
    Acknowledge,
    Capture,
    CameraStarted,
    CaptureDone,
    Develop,
    ErrorCode,
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
    Shot,
    ShowLed,
    Shutdown,
    ShutdownRequested,
    ShutterPressed,
    Tick,
    event_for_button,
)
from firmware.shot import Shot
from firmware.state_machine import FOCUS_HOLD_S, Phase, State, initial_state, transition
from hardware.storage import ShotName


def run(state: State, *events: object) -> tuple[State, list[object]]:
    actions: list[object] = []
    for event in events:
        state, new = transition(state, event)  # type: ignore[arg-type]
        actions += new
    return state, actions


def press(at: int = 0, **kwargs: object) -> ShutterPressed:
    return ShutterPressed(Shot(at, **kwargs))  # type: ignore[arg-type]


def decided(request: Shot, mode: str = "single", look: str = "standard") -> Shot:
    """The shot the state machine asks to capture for ``request``."""
    return dataclasses.replace(request, mode=mode, look=look)


def named(shot: Shot, key: str) -> Shot:
    """``shot`` once captured as ``key``."""
    return dataclasses.replace(shot, name=ShotName.parse_key(key))


def ready() -> State:
    state, _ = run(initial_state(looks=("standard", "neutral")), CameraStarted())
    return state


def test_start_then_shoot_then_acknowledge() -> None:
    state, actions = run(initial_state(), CameraStarted())
    assert state.phase is Phase.READY and ShowLed("ready") in actions
    request = Shot(5)
    state, actions = run(state, ShutterPressed(request))
    assert state.phase is Phase.CAPTURING
    assert actions == [Capture(decided(request)), ShowLed("capturing")]
    state, actions = run(state, FramesCaptured(named(request, "100-0001")))
    assert state.phase is Phase.READY and (state.captured, state.unsaved, state.shots) == (1, 1, 0)
    assert not any(isinstance(a, (Acknowledge, Develop)) for a in actions)
    state, actions = run(state, CaptureDone(named(request, "100-0001")))
    assert state.phase is Phase.READY and state.pending == 1 and state.shots == 1
    assert state.unsaved == 0
    assert actions[:2] == [Acknowledge(named(request, "100-0001")), Develop(named(request, "100-0001"))]
    assert ShowLed("processing") in actions
    state, actions = run(state, ProcessingDone("100-0001"))
    assert state.pending == 0 and actions == [ShowLed("ready")]


def test_mode_and_look_buttons_cycle() -> None:
    state, actions = run(ready(), *[ModePressed()] * 3)
    assert state.mode == MODE_NAMES[3]
    state, _ = run(state, ModePressed())
    assert state.mode == MODE_NAMES[0]
    state, _ = run(state, LookPressed())
    assert state.look == "neutral"
    state, _ = run(state, LookPressed())
    assert state.look == "standard"
    state, actions = run(state, ModePressed(), press())
    assert isinstance(actions[-2], Capture) and actions[-2].shot.mode == "burst"


def test_socket_request_may_choose_the_mode() -> None:
    _, actions = run(ready(), press(mode="night", source="socket", ticket=3))
    assert actions[0].shot.mode == "night"  # type: ignore[attr-defined]


def test_one_press_during_a_capture_is_latched_more_are_refused() -> None:
    state, _ = run(ready(), press(1))
    state, actions = run(state, press(2), press(3), press(4))
    assert state.latched == Shot(2)
    assert [type(a) for a in actions] == [Refuse, Refuse]
    state, actions = run(state, FramesCaptured(named(Shot(1), "100-0001")))
    assert state.phase is Phase.CAPTURING and state.latched is None
    assert Capture(decided(Shot(2))) in actions


def test_write_behind_lets_the_camera_shoot_while_the_card_writes() -> None:
    # Depth 1: shot 1 waits for the card while shot 2 is taken; shot 3 waits for shot 1.
    first, second, third = Shot(1), Shot(2), Shot(3)
    state, _ = run(ready(), ShutterPressed(first), FramesCaptured(named(first, "100-0001")))
    state, actions = run(state, ShutterPressed(second))
    assert Capture(decided(second)) in actions
    state, _ = run(state, FramesCaptured(named(second, "100-0002")), ShutterPressed(third))
    assert state.phase is Phase.CAPTURING and state.unsaved == 2 and state.latched == third
    state, actions = run(state, CaptureDone(named(first, "100-0001")))
    assert Acknowledge(named(first, "100-0001")) in actions
    assert Capture(decided(third)) in actions and state.unsaved == 1
    state, actions = run(state, CaptureDone(named(second, "100-0002")))
    assert state.phase is Phase.CAPTURING  # shot 3 is still being taken
    state, _ = run(state, FramesCaptured(named(third, "100-0003")), CaptureDone(named(third, "100-0003")))
    assert state.phase is Phase.READY and state.shots == 3 and state.unsaved == 0


def test_without_write_behind_each_shot_is_on_the_card_before_the_next() -> None:
    request = Shot(1)
    state, _ = run(initial_state(write_behind=0), CameraStarted(), ShutterPressed(request),
                   FramesCaptured(named(request, "100-0001")), press(2))
    assert state.phase is Phase.CAPTURING and state.latched == Shot(2)
    state, actions = run(state, CaptureDone(named(request, "100-0001")))
    assert Capture(decided(Shot(2))) in actions
    state, _ = run(state, SettingsChanged(write_behind=2))
    assert state.write_behind == 2


def test_a_shot_lost_writing_to_the_card_is_refused_not_acknowledged() -> None:
    request = Shot(1, ticket=4)
    state, _ = run(ready(), ShutterPressed(request), FramesCaptured(named(request, "100-0001")))
    state, actions = run(state, Failed(ErrorCode.CARD_MISSING, "gone", request=request,
                                       unsaved=True))
    assert state.phase is Phase.ERROR and state.unsaved == 0 and state.shots == 0
    assert any(isinstance(a, Refuse) and a.request == request for a in actions)
    assert not any(isinstance(a, Acknowledge) for a in actions)


def test_card_full_refuses_and_recovers_on_tick() -> None:
    request = Shot(1, ticket=9)
    state, actions = run(ready(), ShutterPressed(request),
                         Failed(ErrorCode.CARD_FULL, "0 MB free", request=request))
    assert state.phase is Phase.ERROR and state.error is ErrorCode.CARD_FULL
    assert ShowLed("error_card_full") in actions
    assert any(isinstance(a, Refuse) and a.request == request for a in actions)
    state, actions = run(state, press(2))
    assert isinstance(actions[0], Refuse)
    state, actions = run(state, Tick(100.0), Tick(100.5))
    assert actions == []
    state, actions = run(state, Tick(102.1))
    assert actions == [Recover(ErrorCode.CARD_FULL)]
    state, actions = run(state, Recovered())
    assert state.phase is Phase.READY and ShowLed("ready") in actions


@pytest.mark.parametrize("error", list(ErrorCode))
def test_each_error_has_its_own_led_pattern(error: ErrorCode) -> None:
    state, actions = run(ready(), Failed(error, "x"))
    assert state.phase is Phase.ERROR
    assert ShowLed(f"error_{error.value}") in actions


def test_overheating_stops_shooting_until_cool() -> None:
    state, _ = run(ready(), Tick(0.0, 85.0))
    assert state.error is ErrorCode.OVERHEATING
    state, actions = run(state, press(), Tick(10.0, 79.0), Tick(20.0, 78.0))
    assert state.phase is Phase.ERROR and isinstance(actions[0], Refuse)
    assert not any(isinstance(a, Recover) for a in actions)
    state, _ = run(state, Tick(30.0, 70.0))
    assert state.phase is Phase.READY


def test_failed_development_counts_the_shot_and_recovers() -> None:
    state, _ = run(ready(), ShotQueued(named(Shot(0), "100-0001")), ShotQueued(named(Shot(0), "100-0002")))
    assert state.pending == 2
    state, _ = run(state, Failed(ErrorCode.PROCESSING_FAILED, "bad", shot="100-0001"))
    assert state.pending == 1 and state.phase is Phase.ERROR
    state, _ = run(state, Tick(0.0), Tick(5.0), Recovered())
    assert state.phase is Phase.READY


def test_power_hold_shuts_down_and_refuses_latched_and_later_shots() -> None:
    state, _ = run(ready(), press(1), press(2))
    state, actions = run(state, PowerHeld())
    assert state.phase is Phase.SHUTTING_DOWN
    assert Shutdown(poweroff=True) in actions
    assert any(isinstance(a, Refuse) and a.request == Shot(2) for a in actions)
    state, actions = run(state, press(3), ModePressed(), CameraStarted())
    assert state.phase is Phase.SHUTTING_DOWN and [type(a) for a in actions] == [Refuse]
    _, actions = run(ready(), ShutdownRequested())
    assert Shutdown(poweroff=False) in actions


def test_capture_done_after_an_error_still_acknowledges() -> None:
    request = Shot(1)
    state, _ = run(ready(), ShutterPressed(request), Tick(0.0, 90.0))
    state, actions = run(state, CaptureDone(named(request, "100-0001")))
    assert Acknowledge(named(request, "100-0001")) in actions and state.pending == 1


def test_settings_changed_and_button_storm_stay_bounded() -> None:
    state, _ = run(ready(), SettingsChanged(mode="hdr", look="neutral"))
    assert (state.mode, state.look) == ("hdr", "neutral")
    state, actions = run(state, *[press(i) for i in range(1000)])
    assert state.phase is Phase.CAPTURING and state.latched == Shot(1)
    assert sum(isinstance(a, Capture) for a in actions) == 1
    assert dataclasses.replace(state) == state


def test_focus_assist_blinks_faster_near_the_peak_then_stops() -> None:
    ready = State(phase=Phase.READY)
    state, actions = run(ready, FocusMeasured(0.0, now_s=10.0))
    assert actions == [ShowLed("focus", 0.5)] and state.led_blink_hz == 0.5
    state, actions = run(state, FocusMeasured(1.0, now_s=10.3))
    assert actions == [ShowLed("focus", 8.0)]
    state, actions = run(state, FocusMeasured(0.999, now_s=10.6))
    assert actions == []  # rates are rounded: noise does not restart the LED
    state, actions = run(state, Tick(10.6 + FOCUS_HOLD_S - 0.1))
    assert actions == [] and state.led_pattern == "focus"
    state, actions = run(state, Tick(10.6 + FOCUS_HOLD_S))
    assert actions == [ShowLed("ready")] and state.focus_blink_hz is None


def test_errors_and_captures_outrank_focus_assist() -> None:
    state, _ = run(State(phase=Phase.READY), FocusMeasured(1.0, now_s=0.0))
    busy, actions = run(state, press())
    assert busy.led_pattern == "capturing" and ShowLed("capturing") in actions
    failed, actions = run(state, Failed(ErrorCode.CARD_FULL, "full"))
    assert failed.led_pattern == "error_card_full" and failed.led_blink_hz is None


def test_reload_and_shutdown_requests_become_actions() -> None:
    state, actions = run(ready(), ReloadRequested())
    assert actions == [ReloadConfig()] and state == ready()
    state, actions = run(ready(), ShutdownRequested(exit_status=75))
    assert state.phase is Phase.SHUTTING_DOWN and Shutdown(False, 75) in actions


@pytest.mark.parametrize(("button", "kind", "expected"), [
    ("shutter", "pressed", ShutterPressed(Shot(7))),
    ("mode", "pressed", ModePressed()),
    ("look", "pressed", LookPressed()),
    ("power", "held", PowerHeld()),
    ("power", "pressed", None),
    ("shutter", "held", None),
])
def test_each_button_posts_its_event(button: str, kind: str, expected: object) -> None:
    from hardware.controls import ButtonEvent

    assert event_for_button(ButtonEvent(button, kind, 7)) == expected
