"""The pure state machine: button sequences to states and actions."""

from __future__ import annotations

import dataclasses

import pytest

from firmware.state_machine import (
    FOCUS_HOLD_S,
    MODES,
    Acknowledge,
    Capture,
    CameraStarted,
    CaptureDone,
    Develop,
    ErrorCode,
    Failed,
    FocusMeasured,
    LookPressed,
    ModePressed,
    Phase,
    PowerHeld,
    ProcessingDone,
    Recover,
    Recovered,
    Refuse,
    SettingsChanged,
    ShotQueued,
    ShotRequest,
    ShowLed,
    Shutdown,
    ShutdownRequested,
    ShutterPressed,
    State,
    Tick,
    initial_state,
    transition,
)


def run(state: State, *events: object) -> tuple[State, list[object]]:
    actions: list[object] = []
    for event in events:
        state, new = transition(state, event)  # type: ignore[arg-type]
        actions += new
    return state, actions


def press(at: int = 0, **kwargs: object) -> ShutterPressed:
    return ShutterPressed(ShotRequest(at, **kwargs))  # type: ignore[arg-type]


def ready() -> State:
    state, _ = run(initial_state(looks=("standard", "neutral")), CameraStarted())
    return state


def test_start_then_shoot_then_acknowledge() -> None:
    state, actions = run(initial_state(), CameraStarted())
    assert state.phase is Phase.READY and ShowLed("ready") in actions
    request = ShotRequest(5)
    state, actions = run(state, ShutterPressed(request))
    assert state.phase is Phase.CAPTURING
    assert actions == [Capture(request, "single", "standard"), ShowLed("capturing")]
    state, actions = run(state, CaptureDone(request, "100-0001", "single"))
    assert state.phase is Phase.READY and state.pending == 1 and state.shots == 1
    assert actions[:2] == [Acknowledge(request, "100-0001"), Develop("100-0001")]
    assert ShowLed("processing") in actions
    state, actions = run(state, ProcessingDone("100-0001"))
    assert state.pending == 0 and actions == [ShowLed("ready")]


def test_mode_and_look_buttons_cycle() -> None:
    state, actions = run(ready(), *[ModePressed()] * 3)
    assert state.mode == MODES[3]
    state, _ = run(state, ModePressed())
    assert state.mode == MODES[0]
    state, _ = run(state, LookPressed())
    assert state.look == "neutral"
    state, _ = run(state, LookPressed())
    assert state.look == "standard"
    state, actions = run(state, ModePressed(), press())
    assert isinstance(actions[-2], Capture) and actions[-2].mode == "burst"


def test_socket_request_may_choose_the_mode() -> None:
    _, actions = run(ready(), press(mode="night", source="socket", ticket=3))
    assert actions[0].mode == "night"  # type: ignore[attr-defined]


def test_one_press_during_a_capture_is_latched_more_are_refused() -> None:
    state, _ = run(ready(), press(1))
    state, actions = run(state, press(2), press(3), press(4))
    assert state.latched == ShotRequest(2)
    assert [type(a) for a in actions] == [Refuse, Refuse]
    state, actions = run(state, CaptureDone(ShotRequest(1), "100-0001", "single"))
    assert state.phase is Phase.CAPTURING and state.latched is None
    assert Capture(ShotRequest(2), "single", "standard") in actions


def test_card_full_refuses_and_recovers_on_tick() -> None:
    request = ShotRequest(1, ticket=9)
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
    state, _ = run(ready(), ShotQueued("100-0001"), ShotQueued("100-0002"))
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
    assert any(isinstance(a, Refuse) and a.request == ShotRequest(2) for a in actions)
    state, actions = run(state, press(3), ModePressed(), CameraStarted())
    assert state.phase is Phase.SHUTTING_DOWN and [type(a) for a in actions] == [Refuse]
    _, actions = run(ready(), ShutdownRequested())
    assert Shutdown(poweroff=False) in actions


def test_capture_done_after_an_error_still_acknowledges() -> None:
    request = ShotRequest(1)
    state, _ = run(ready(), ShutterPressed(request), Tick(0.0, 90.0))
    state, actions = run(state, CaptureDone(request, "100-0001", "single"))
    assert Acknowledge(request, "100-0001") in actions and state.pending == 1


def test_settings_changed_and_button_storm_stay_bounded() -> None:
    state, _ = run(ready(), SettingsChanged(mode="hdr", look="neutral"))
    assert (state.mode, state.look) == ("hdr", "neutral")
    state, actions = run(state, *[press(i) for i in range(1000)])
    assert state.phase is Phase.CAPTURING and state.latched == ShotRequest(1)
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
