"""The camera daemon: one thread owns the state machine; everything else posts events.

Threads and what they may do:

- **main loop** (:meth:`Daemon.run`): takes events off one bounded queue, feeds them to
  :func:`firmware.state_machine.transition`, carries out the actions. It never waits on
  a device or the ISP.
- **gpiozero callbacks**, **the control socket**, **signal handlers**: post events, nothing
  else (a full queue drops the event and counts it).
- **workers**, each given a ``post`` callable, never the daemon: capture
  (:class:`firmware.capture.CaptureWorker`), the card writer
  (:class:`firmware.card_writer.CardWriter`: a shot is acknowledged once on the card),
  development (:class:`firmware.development.DevelopmentWorker`), the camera's stream
  (:mod:`hardware.camera`), focus peaking (:class:`firmware.camera_assist.FocusPeaking`).

Per-event failures land in the error state (LED blink code) and are retried on ticks;
the daemon itself keeps running.
"""

from __future__ import annotations

import dataclasses
import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from firmware.camera_assist import FLAT_FRAMES, FocusAssist, FocusPeaking, calibrate_flat
from firmware.capture import RESTART_AFTER_S, CaptureWorker
from firmware.card_writer import CardWriter
from firmware.config import Config
from firmware.development import DevelopmentWorker
from firmware.devices import control_pins
from firmware.events import (
    Acknowledge,
    Action,
    Announce,
    Capture,
    CaptureDone,
    Develop,
    Event,
    Failed,
    FramesCaptured,
    ProcessingDone,
    Recover,
    Refuse,
    ReloadConfig,
    SettingsChanged,
    ShotQueued,
    ShowLed,
    Shutdown,
    ShutdownRequested,
    Tick,
    event_for_button,
    storage_error_code,
)
from firmware.journal import Journal
from firmware.remote_shutter import RemoteShutter
from firmware.shot import Shot
from firmware.state_machine import Phase, State, initial_state, transition
from hardware.camera import CameraError, CameraSource
from hardware.controls import ButtonEvent, Controls
from hardware.storage import PhotoStore, StorageError
from hardware.thermal import soc_temperature_c
from pipeline.focus.measure import Region
from pipeline.looks.look import look_names

logger = logging.getLogger(__name__)

#: Events waiting at most; beyond it, button presses and socket requests are dropped.
EVENT_QUEUE_SIZE = 64
#: Seconds between ticks (retries, temperature).
TICK_INTERVAL_S = 0.5
#: Keys that take effect only when the daemon starts.
RESTART_KEYS = ("pins.shutter", "pins.mode", "pins.look", "pins.power", "pins.led",
                "camera.source", "output.storage_path", "display.preview")


class Daemon:
    """The camera: sensor, buttons, LED, storage and development, driven by events.

    Parameters
    ----------
    config : Config
    camera : CameraSource
        Not yet started; the daemon starts, restarts and closes it.
    store : PhotoStore
        The card (not yet opened).
    pin_factory : gpiozero pin factory, optional
        Buttons and LED are set up when given (``MockFactory()`` for the simulator). A pin
        that cannot be had leaves out its button or LED, never the camera (status's
        ``controls_errors``).
    controls_error : str, optional
        Why there are no buttons at all (no GPIO backend works), for status.
    blocked_devices, restart_after_s
        See :class:`firmware.capture.CaptureWorker`.
    temperature_c : callable, optional
        SoC temperature in Celsius, or None (default: the kernel's thermal zone 0).
    poweroff : callable, optional
        Called after a clean shutdown asked for by the power button.
    reload_config : callable, optional
        Reads the configuration files again and applies them (through
        :meth:`apply_config`); called by the main loop on :class:`ReloadRequested`
        (SIGHUP).
    tick_interval_s : float
    power_hold_s : float
        How long the power button must be held.
    looks : tuple of str, optional
        The looks the look button cycles through (default: the built-in ones).

    The API for other threads (control socket, signal handlers, tests) is :meth:`post`,
    :meth:`status`, :meth:`request_shot`, :meth:`apply_config`, :meth:`focus` and
    :meth:`calibrate_flat`.
    """

    def __init__(
        self,
        config: Config,
        *,
        camera: CameraSource,
        store: PhotoStore,
        pin_factory: Any = None,
        controls_error: str | None = None,
        blocked_devices: Callable[[], list[str]] | None = None,
        restart_after_s: float = RESTART_AFTER_S,
        temperature_c: Callable[[], float | None] | None = soc_temperature_c,
        poweroff: Callable[[], None] | None = None,
        reload_config: Callable[[], Any] | None = None,
        tick_interval_s: float = TICK_INTERVAL_S,
        power_hold_s: float = 3.0,
        looks: tuple[str, ...] | None = None,
    ) -> None:
        self._config = config
        self._camera = camera
        self._store = store
        self._journal = Journal(store)
        self._pin_factory = pin_factory
        self._controls_errors: tuple[str, ...] = (controls_error,) if controls_error else ()
        self._blocked_devices = blocked_devices
        self._restart_after_s = restart_after_s
        #: The process's exit status once :meth:`run` returns (0, or ``EXIT_RESTART``).
        self.exit_status = 0
        self._temperature_c = temperature_c or (lambda: None)
        self._poweroff = poweroff
        self._reload_config = reload_config
        self._tick_interval_s = tick_interval_s
        self._power_hold_s = power_hold_s
        self._looks = looks
        self._events: queue.Queue[Event] = queue.Queue(maxsize=EVENT_QUEUE_SIZE)
        self._state_lock = threading.Lock()
        self._state: State = State()
        self._dropped_events = 0
        self._remote = RemoteShutter(self.post)
        self._shots: dict[int, Shot] = {}
        self._writer: CardWriter | None = None
        self._capture: CaptureWorker | None = None
        self._development: DevelopmentWorker | None = None
        self._peaking: FocusPeaking | None = None
        self._focus = FocusAssist(camera, self.post)
        self.controls: Controls | None = None
        self._is_stopping = False
        self._poweroff_requested = False
        self._thread: threading.Thread | None = None
        self._loop_thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stopped = threading.Event()
        self._on_ready: Callable[[], None] | None = None
        self._on_tick: Callable[[], None] | None = None
        self.ready_at_s: float | None = None

    # ---------------------------------------------------------------- thread-safe API
    def post(self, event: Event) -> bool:
        """Queue an event without waiting; False (and counted) if the queue is full."""
        try:
            self._events.put_nowait(event)
            return True
        except queue.Full:
            with self._state_lock:
                self._dropped_events += 1
            return False

    def _post_internal(self, event: Event) -> None:
        """Queue an event that must not be lost (results of captures and development);
        from the main loop itself, handle it at once (it must never wait on its queue)."""
        if threading.current_thread() is self._loop_thread:
            self._handle(event)
        else:
            self._events.put(event)

    def status(self) -> dict[str, Any]:
        """The camera's state as plain data (for ``obscura status``)."""
        with self._state_lock:
            state = self._state
            dropped = self._dropped_events
        try:
            free = self._store.free_bytes()
        except StorageError:
            free = None
        development = self._development
        return {
            "state": state.phase.value,
            "mode": state.mode,
            "look": state.look,
            "error": None if state.error is None else state.error.value,
            "error_message": state.error_message,
            "shots": state.shots,
            "captured": state.captured,
            "unsaved": state.unsaved,
            "pending": state.pending,
            "queue_length": self._events.qsize(),
            "processing_queue": 0 if development is None else development.queue_length,
            "dropped_events": dropped,
            "free_bytes": free,
            "camera": self._camera.name,
            "ring_frames": self._camera.ring_frames,
            "led": state.led_pattern,
            "focus_blink_hz": state.led_blink_hz,
            "lens": self._config.lens.name or None,
            "preview": self._camera.preview_active,
            "storage_path": str(self._store.root),
            "controls_errors": list(self._controls_errors),
        }

    def request_shot(self, mode: str | None = None, timeout_s: float = 30.0) -> dict[str, Any]:
        """Take a shot as if the shutter were pressed; wait until it is on the card.

        Returns ``{"taken": True, "shot": "100-0001", "files": [...], "mode": ...}`` once
        acknowledged, or ``{"taken": False, "reason": ...}``.
        """
        return self._remote.shoot(mode, timeout_s)

    def apply_config(self, config: Config) -> None:
        """Use a new configuration: output settings at once, mode/look if they changed.

        Pins, camera source and storage path take effect at the next start.
        """
        with self._state_lock:
            old, self._config = self._config, config
        for key in RESTART_KEYS:
            if old[key] != config[key]:
                logger.warning("%s changed: takes effect when the daemon restarts", key)
        mode = config.capture.mode if config.capture.mode != old.capture.mode else None
        look = config.output.look if config.output.look != old.output.look else None
        depth = config.capture.write_behind_shots
        write_behind = depth if depth != old.capture.write_behind_shots else None
        if mode or look or write_behind is not None:
            self._post_internal(SettingsChanged(mode=mode, look=look, write_behind=write_behind))

    def focus(self, region: Region | None = None, reset: bool = False) -> dict[str, Any]:
        """Focus assist: :meth:`firmware.camera_assist.FocusAssist.measure`."""
        return self._focus.measure(region, reset)

    def calibrate_flat(self, lens: str, frames: int = FLAT_FRAMES,
                       timeout_s: float = 30.0) -> dict[str, Any]:
        """Shoot ``frames`` frames of an evenly lit white surface and store lens ``lens``'s
        flat-field shading table in the lens library (``lens.library_dir``); the capture
        worker takes them, so they never interleave with a shot's frames."""
        capture = self._capture
        if capture is None or self._is_stopping:
            raise CameraError("the camera is not running")
        return calibrate_flat(self._config.lens.library_dir, lens, frames,
                              lambda count: capture.frames(count, timeout_s))

    def shots(self) -> list[Shot]:
        """The shots taken so far, as last known (without their frames), oldest first."""
        with self._state_lock:
            shots = list(self._shots.values())
        development = self._development
        durations = {} if development is None else dict(development.durations_s)
        return [dataclasses.replace(s, developed_s=durations[s.key])
                if s.name is not None and s.key in durations else s for s in shots]

    def wait_ready(self, timeout_s: float) -> bool:
        """Wait until the camera first reached the ready state."""
        return self._ready.wait(timeout_s)

    def wait_until(self, predicate: Callable[[dict[str, Any]], bool], timeout_s: float) -> bool:
        """Poll :meth:`status` until ``predicate(status)`` (tests, demo)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if predicate(self.status()):
                return True
            if self._stopped.is_set():
                return predicate(self.status())
            time.sleep(0.02)
        return False

    @property
    def state(self) -> State:
        """The state machine's current state."""
        with self._state_lock:
            return self._state

    @property
    def overlays_shown(self) -> int:
        """Focus-peaking overlays shown on the preview so far."""
        return 0 if self._peaking is None else self._peaking.overlays_shown

    # --------------------------------------------------------------------- lifecycle
    def start(self) -> Daemon:
        """Run the daemon in a background thread (the demo and tests); see :meth:`run`."""
        self._thread = threading.Thread(target=self.run, name="daemon", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 60.0) -> None:
        """Ask for a clean shutdown and wait for it (idempotent)."""
        if not self._stopped.is_set():
            self._events.put(ShutdownRequested())
        if self._thread is not None:
            self._thread.join(timeout_s)

    def __enter__(self) -> Daemon:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def run(
        self,
        on_ready: Callable[[], None] | None = None,
        on_tick: Callable[[], None] | None = None,
    ) -> bool:
        """Open everything, process events until shutdown, close everything.

        ``on_ready`` is called once the daemon is up (systemd's READY=1): the camera ready,
        or an error it keeps retrying (no camera, no card) shown, so the service counts as
        started and its control socket answers;
        ``on_tick`` on every tick of the main loop (systemd's watchdog: proof the loop is
        alive). Returns True if the power button asked for the Pi to be powered off.
        """
        self._on_ready = on_ready
        self._on_tick = on_tick
        self._loop_thread = threading.current_thread()
        try:
            self._open()
            self._loop()
        finally:
            self._close()
        return self._poweroff_requested

    def _open(self) -> None:
        config = self._config
        self._state = initial_state(config.capture.mode, config.output.look,
                                    self._looks or look_names(),
                                    config.capture.write_behind_shots)
        self._writer = CardWriter(self._journal, self._post_internal)
        self._capture = CaptureWorker(
            self._camera, self._journal, self._writer, config=lambda: self._config,
            post=self._post_internal, pending_shots=self._pending_shots,
            resume_journal=self._resume_journal, blocked_devices=self._blocked_devices,
            restart_after_s=self._restart_after_s,
        )
        self._peaking = FocusPeaking(self._camera)
        if self._pin_factory is not None:
            self.controls = Controls(
                control_pins(config), pin_factory=self._pin_factory, on_event=self._on_button,
                led_active_high=config.led.active_high, power_hold_s=self._power_hold_s,
            )
            self.controls.show(self._state.led_pattern)
            self._controls_errors = self.controls.failures
        try:
            self._journal.open()
        except StorageError as exc:
            logger.error("%s", exc)
            self._events.put(Failed(storage_error_code(exc), str(exc)))
        self._development = DevelopmentWorker(self._journal, self._post_internal)
        self._capture.start_camera()
        self._resume_journal()

    def _close(self) -> None:
        if self._peaking is not None:
            self._peaking.close()
        if self._capture is not None:
            self._capture.close()
        if self._writer is not None:
            self._writer.close()  # every captured shot reaches the card (or is logged lost)
        if self._development is not None:
            self._development.close()
        if self.controls is not None:
            self.controls.close()
        self._camera.close()
        self._remote.refuse_all("shutting down")
        self._stopped.set()
        if self._poweroff_requested and self._poweroff is not None:
            logger.info("powering off")
            self._poweroff()

    # --------------------------------------------------------------------- main loop
    def _loop(self) -> None:
        peaking = self._peaking
        assert peaking is not None
        next_tick = time.monotonic()
        while not self._is_stopping:
            wake = min(next_tick, peaking.next_update_s) if peaking.is_active else next_tick
            try:
                event: Event | None = self._events.get(timeout=max(0.0, wake - time.monotonic()))
            except queue.Empty:
                event = None
            if event is not None:
                self._handle(event)
            now = time.monotonic()
            if now >= next_tick and not self._is_stopping:
                self._handle(Tick(now, self._temperature_c()))
                next_tick = now + self._tick_interval_s
                if self._on_tick is not None:
                    self._on_tick()
            if now >= peaking.next_update_s and not self._is_stopping:
                peaking.update(now)

    def _handle(self, event: Event) -> None:
        with self._state_lock:
            old = self._state
            self._state, actions = transition(old, event)
            new = self._state
            if isinstance(event, (FramesCaptured, CaptureDone)):
                self._shots[event.shot.pressed_at_ns] = event.shot.without_frames()
        if new.phase is not old.phase:
            logger.info("state %s -> %s%s", old.phase.value, new.phase.value,
                        f" ({new.error.value}: {new.error_message})" if new.error else "")
        if new.phase is Phase.READY and not self._ready.is_set():
            self.ready_at_s = time.monotonic()
            self._ready.set()
        if new.phase in (Phase.READY, Phase.ERROR) and self._on_ready is not None:
            on_ready, self._on_ready = self._on_ready, None
            on_ready()
        for action in actions:
            self._do(action)

    def _do(self, action: Action) -> None:  # noqa: C901 - a dispatch table
        capture = self._capture
        assert capture is not None
        if isinstance(action, ShowLed):
            if self.controls is not None and action.blink_hz is not None:
                self.controls.blink(action.blink_hz)
            elif self.controls is not None:
                self.controls.show(action.pattern)
        elif isinstance(action, Capture):
            capture.capture(action.shot)
        elif isinstance(action, Develop):
            self._develop(action.shot)
        elif isinstance(action, Recover):
            capture.recover(action.error)
        elif isinstance(action, Acknowledge):
            shot = action.shot
            self._remote.answer(shot, taken=True, shot=shot.key, mode=shot.mode,
                                files=[str(self._store.output_path(shot.name, kind))  # type: ignore[arg-type]
                                       for kind in shot.keep])
        elif isinstance(action, Refuse):
            logger.info("shot refused: %s", action.reason)
            self._remote.answer(action.request, taken=False, reason=action.reason)
        elif isinstance(action, Announce):
            logger.info("%s: %s", action.what, action.value)
        elif isinstance(action, ReloadConfig):
            if self._reload_config is not None:
                self._reload_config()
        elif isinstance(action, Shutdown):
            logger.info("shutting down%s", " and powering off" if action.poweroff else "")
            self._is_stopping = True
            self._poweroff_requested = action.poweroff
            self.exit_status = action.exit_status

    def _on_button(self, event: ButtonEvent) -> None:
        """gpiozero callback: enqueue the button's state-machine event, if it has one."""
        posted = event_for_button(event)
        if posted is not None:
            self.post(posted)

    # ------------------------------------------------------------------ development
    def _pending_shots(self) -> int:
        """Shots captured or journaled and not yet developed."""
        state = self.state
        return state.pending + state.unsaved

    def _resume_journal(self) -> None:
        """Post every journaled shot development does not have (after a crash or a full
        card)."""
        try:
            shots = self._journal.pending()
        except OSError as exc:
            logger.error("cannot read the journal: %s", exc)
            return
        development, writer = self._development, self._writer
        for shot in shots:
            key = shot.key
            if (development is not None and development.is_queued(key)) or \
                    (writer is not None and writer.is_handing_over(key)):
                continue
            logger.info("%s: resuming development", key)
            self._post_internal(ShotQueued(shot))

    def _develop(self, shot: Shot) -> None:
        development = self._development
        if self._writer is not None:
            self._writer.handed_over(shot.key)
        if development is None or not development.submit(shot):
            self._post_internal(ProcessingDone(shot.key))
