"""The camera daemon: one thread owns the state machine; everything else posts events.

Threads and what they may do:

- **main loop** (:meth:`Daemon.run`): takes events off one bounded queue, feeds them to
  :func:`firmware.state_machine.transition`, carries out the actions. It never waits on
  a device or the ISP.
- **gpiozero callbacks**, **the control socket**, **signal handlers**: post events, nothing
  else (a full queue drops the event and counts it).
- **capture** (one worker behind a Future): free-space check, frames from the camera's
  ring buffer, then :class:`FramesCaptured` (the camera may shoot again) and the frames
  handed to the card writer. Also reopens a failed camera, and gives the writer back the
  shots a missing or full card could not take once it is back.
- **card writer** (one worker behind a Future): journals each captured shot to the card,
  in the order taken, then posts :class:`CaptureDone`: a shot is acknowledged only once
  its raw frames are durable on the card. On shutdown it finishes every shot it was given.
- **camera streaming thread** (:mod:`hardware.camera`): copies frames into the ring.
- **processing** (:class:`firmware.processing.ProcessingWorker`): develops shots; those
  waiting for it are journal entries, their frames read back from the card in turn.
- **control socket threads**: besides posting, measure focus on the newest streamed frame
  (:meth:`Daemon.focus`) and ask the capture worker for flat-field frames
  (:meth:`Daemon.calibrate_flat`).
- **preview** (one worker behind a Future, busy only while the camera shows a preview on a
  display): every :data:`PEAKING_INTERVAL_S` the main loop hands it a focus-peaking update
  (newest streamed frame -> grey preview -> overlay -> :meth:`CameraSource.show_overlay`)
  unless the last is still running, so a slow Pi shows fewer updates and nothing waits
  for it. Peaking is on whenever the preview is, not only during focus assist: with a
  screen, focusing needs no ``obscura focus`` over SSH.

Per-event failures land in the error state (LED blink code) and are retried on ticks;
the daemon itself keeps running.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import datetime as dt
import itertools
import logging
import queue
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from firmware.config import Config
from firmware.focus_assist import FocusMeter
from firmware.lens_profiles import LensError, LensLibrary, LensProfile, with_lens
from firmware.processing import ProcessingWorker, ShotSettings, journal_frames, plan_shot
from firmware.state_machine import (
    FOCUS_HOLD_S,
    Acknowledge,
    Action,
    Announce,
    CameraStarted,
    Capture,
    CaptureDone,
    CaptureRefused,
    FramesCaptured,
    Develop,
    ErrorCode,
    Event,
    Failed,
    FocusMeasured,
    LookPressed,
    ModePressed,
    Phase,
    PowerHeld,
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
    storage_error_code,
    transition,
)
from firmware.state_machine import ProcessingDone as ProcessingDoneEvent
from hardware.camera import CameraError, CameraSource, take_shot
from hardware.controls import ButtonEvent, ControlPins, Controls
from hardware.device_access import EXIT_RESTART
from hardware.thermal import soc_temperature_c

#: Least run time before exiting for a restart (systemd/obscura.service's start limit).
RESTART_AFTER_S = 60.0
from hardware.storage import (
    CardFullError,
    JournalEntry,
    PhotoStore,
    ShotName,
    StorageError,
)
from pipeline.burst import CaptureLimits
from pipeline.burst.motion import image_motion_px_per_s
from pipeline.errors import InvalidParameterError
from pipeline.focus.measure import CENTRE, Region, focus_measure
from pipeline.focus.peaking import focus_peaking_overlay, grey_preview_from_raw
from pipeline.formats.journal_frames import packed_nbytes
from pipeline.raw_frame import LensShadingMap, RawFrame
from pipeline.stages.flat_field import lens_shading_from_flat

logger = logging.getLogger(__name__)

#: Events waiting at most; beyond it, button presses and socket requests are dropped.
EVENT_QUEUE_SIZE = 64
#: Seconds between ticks (retries, temperature).
TICK_INTERVAL_S = 0.5
#: Frames of the evenly lit surface a flat-field calibration averages, by default and at most.
FLAT_FRAMES = 4
MAX_FLAT_FRAMES = 16
#: Seconds between focus-peaking updates of a preview.
PEAKING_INTERVAL_S = 0.25
#: Largest (height, width) focus peaking works at; picamera2 scales the overlay to the preview.
PEAKING_SIZE = (540, 720)
#: Card space a file takes beyond its pixels, at most (DNG/JPEG headers, EXIF, a thumbnail).
FILE_OVERHEAD_BYTES = 256 * 1024


def control_pins(config: Config) -> ControlPins:
    """The ``pins.*`` keys as :class:`ControlPins` (no LED when ``led.enabled`` is false)."""
    return ControlPins(
        shutter=config["pins.shutter"], mode=config["pins.mode"], look=config["pins.look"],
        power=config["pins.power"], led=config["pins.led"] if config["led.enabled"] else None,
    )


def capture_limits(config: Config) -> CaptureLimits:
    """The burst planner's limits: the IMX477's, with the configured frame counts."""
    night_max = config["capture.night_max_frames"]
    return CaptureLimits(
        burst_frames=config["capture.burst_frames"],
        night_max_frames=night_max,
        night_min_frames=min(CaptureLimits.night_min_frames, night_max),
    )


@dataclasses.dataclass(frozen=True)
class LensInUse:
    """The lens ``lens.*`` names, resolved in the lens library (``profile`` None when the
    name is empty or unknown: the ``lens.*`` values then go to EXIF as they are)."""

    profile: LensProfile | None = None
    f_number: float | None = None
    shading: LensShadingMap | None = None


def lens_in_use(config: Config) -> LensInUse:
    """Look up ``lens.name`` in ``lens.library_dir``; problems are logged, never raised."""
    name = config["lens.name"]
    f_number = config["lens.f_number"] or None
    if not name:
        return LensInUse(f_number=f_number)
    library = LensLibrary(Path(config["lens.library_dir"]))
    try:
        profile = library.get(name)
    except LensError as exc:
        logger.warning("lens.name: %s (no lens profile or shading table applied)", exc)
        return LensInUse(f_number=f_number)
    try:
        shading = library.shading(name)
    except LensError as exc:  # the lens is still known: its name and focal length go on
        logger.warning("lens.name: %s (no shading table applied)", exc)
        shading = None
    if f_number is not None and f_number < profile.max_f_number - 1e-6:
        logger.warning("lens.f_number = %g is wider than %s's f/%g: not recorded",
                       f_number, name, profile.max_f_number)
        f_number = None
    return LensInUse(profile, f_number, shading)


def builtin_look_names() -> tuple[str, ...]:
    """The looks the look button cycles through."""
    from pipeline.looks.look import builtin_looks

    return tuple(builtin_looks())


@dataclasses.dataclass
class ShotRecord:
    """Timings of one shot, for ``obscura demo`` and the bench."""

    shot: str
    mode: str
    frames: int
    pressed_at_ns: int
    shutter_lag_s: float | None
    captured_s: float
    acknowledged_s: float | None = None
    processing_s: float | None = None


@dataclasses.dataclass(frozen=True, eq=False)
class CapturedShot:
    """A shot in memory on its way to the card: what the card writer needs."""

    request: ShotRequest
    name: ShotName
    frames: tuple[RawFrame, ...]
    manifest: dict[str, Any]
    journal_bytes: int


class Daemon:
    """The camera: sensor, buttons, LED, storage and processing, driven by events.

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
    blocked_devices : callable, optional
        When the camera cannot be opened, the camera device nodes this process is kept
        from (:func:`hardware.device_access.blocked_camera_devices`); if there are any, the
        daemon stops with :attr:`exit_status` ``EXIT_RESTART`` so that systemd starts a
        process that may open them, once it has run ``restart_after_s`` (the unit's start
        limit allows one such restart a minute for ever, not a loop).
    temperature_c : callable, optional
        SoC temperature in Celsius, or None (default: the kernel's thermal zone 0).
    poweroff : callable, optional
        Called after a clean shutdown asked for by the power button.
    tick_interval_s : float
    power_hold_s : float
        How long the power button must be held.

    The API for other threads (control socket, tests) is :meth:`post`, :meth:`status`,
    :meth:`request_shot` and :meth:`apply_config`.
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
        tick_interval_s: float = TICK_INTERVAL_S,
        power_hold_s: float = 3.0,
        looks: tuple[str, ...] | None = None,
    ) -> None:
        self._config = config
        self._camera = camera
        self._store = store
        self._pin_factory = pin_factory
        self._controls_errors: tuple[str, ...] = (controls_error,) if controls_error else ()
        self._blocked_devices = blocked_devices
        self._restart_after_s = restart_after_s
        #: The process's exit status once :meth:`run` returns (0, or ``EXIT_RESTART``).
        self.exit_status = 0
        self._temperature_c = temperature_c or (lambda: None)
        self._poweroff = poweroff
        self._tick_interval_s = tick_interval_s
        self._power_hold_s = power_hold_s
        self._looks = looks
        self._events: queue.Queue[Event] = queue.Queue(maxsize=EVENT_QUEUE_SIZE)
        self._state_lock = threading.Lock()
        self._state: State = State()
        self._dropped_events = 0
        self._tickets = itertools.count(1)
        self._waiters: dict[int, tuple[threading.Event, dict[str, Any]]] = {}
        self._entries: dict[str, tuple[JournalEntry, tuple[RawFrame, ...] | None]] = {}
        self._records: dict[str, ShotRecord] = {}
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._writer: concurrent.futures.ThreadPoolExecutor | None = None
        self._unsaved_bytes = 0
        self._stranded: list[CapturedShot] = []
        self._worker: ProcessingWorker | None = None
        self.controls: Controls | None = None
        self._is_stopping = False
        self._poweroff_requested = False
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stopped = threading.Event()
        self.started_at_s = time.monotonic()
        self._on_ready: Callable[[], None] | None = None
        self._on_tick: Callable[[], None] | None = None
        self.ready_at_s: float | None = None
        self._focus_lock = threading.Lock()
        self._focus_meter = FocusMeter()
        self._focus_region: Region = CENTRE
        self._focus_last_s = float("-inf")
        self._preview_executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._peaking: concurrent.futures.Future[None] | None = None
        self._next_peaking_s = 0.0
        self._peaking_failures = 0
        self.overlays_shown = 0

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
        """Queue an event that must not be lost (results of captures and processing)."""
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
        worker = self._worker
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
            "processing_queue": 0 if worker is None else worker.queue_length,
            "dropped_events": dropped,
            "free_bytes": free,
            "camera": self._camera.name,
            "ring_frames": self._camera.ring_frames,
            "led": state.led_pattern,
            "focus_blink_hz": state.led_blink_hz,
            "lens": self._config["lens.name"] or None,
            "preview": self._camera.preview_active,
            "storage_path": str(self._store.root),
            "controls_errors": list(self._controls_errors),
        }

    def request_shot(self, mode: str | None = None, timeout_s: float = 30.0) -> dict[str, Any]:
        """Take a shot as if the shutter were pressed; wait until it is on the card.

        Returns ``{"taken": True, "shot": "100-0001", "files": [...], "mode": ...}`` once
        acknowledged, or ``{"taken": False, "reason": ...}``.
        """
        ticket = next(self._tickets)
        done = threading.Event()
        result: dict[str, Any] = {}
        with self._state_lock:
            self._waiters[ticket] = (done, result)
        request = ShotRequest(time.monotonic_ns(), mode, "socket", ticket)
        if not self.post(ShutterPressed(request)):
            with self._state_lock:
                self._waiters.pop(ticket, None)
            return {"taken": False, "reason": "busy: too many requests"}
        if not done.wait(timeout_s):
            with self._state_lock:
                self._waiters.pop(ticket, None)
            return {"taken": False, "reason": f"no answer within {timeout_s} s"}
        return dict(result)

    def apply_config(self, config: Config) -> None:
        """Use a new configuration: output settings at once, mode/look if they changed.

        Pins, camera source and storage path take effect at the next start.
        """
        with self._state_lock:
            old, self._config = self._config, config
        for key in ("pins.shutter", "pins.mode", "pins.look", "pins.power", "pins.led",
                    "camera.source", "output.storage_path", "display.preview"):
            if old[key] != config[key]:
                logger.warning("%s changed: takes effect when the daemon restarts", key)
        mode = config["capture.mode"] if config["capture.mode"] != old["capture.mode"] else None
        look = config["output.look"] if config["output.look"] != old["output.look"] else None
        depth = config["capture.write_behind_shots"]
        write_behind = depth if depth != old["capture.write_behind_shots"] else None
        if mode or look or write_behind is not None:
            self._post_internal(SettingsChanged(mode=mode, look=look, write_behind=write_behind))

    def focus(self, region: Region | None = None, reset: bool = False) -> dict[str, Any]:
        """Focus assist: the focus measure of the newest streamed frame and its peak.

        ``region`` is (top, left, height, width) in fractions of the frame (default: the
        central ninth). The peak restarts with ``reset``, a new region, or after
        :data:`~firmware.state_machine.FOCUS_HOLD_S` without requests. Each measure is
        posted to the state machine, which makes the LED blink faster near the peak.
        """
        region = CENTRE if region is None else tuple(float(v) for v in region)  # type: ignore[assignment]
        if len(region) != 4:
            raise InvalidParameterError(f"region={list(region)}: expected top, left, height, width")
        measure = focus_measure(self._camera.latest_frame(), region)
        now = time.monotonic()
        with self._focus_lock:
            if reset or region != self._focus_region or now - self._focus_last_s > FOCUS_HOLD_S:
                self._focus_meter, self._focus_region = FocusMeter(), region
            fraction = self._focus_meter.update(measure)
            peak = self._focus_meter.peak
            self._focus_last_s = now
        self.post(FocusMeasured(fraction, now))
        return {"measure": measure, "peak": peak, "fraction": fraction, "region": list(region)}

    def calibrate_flat(self, lens: str, frames: int = FLAT_FRAMES,
                       timeout_s: float = 30.0) -> dict[str, Any]:
        """Shoot ``frames`` frames of an evenly lit white surface and store lens ``lens``'s
        flat-field shading table in the lens library (``lens.library_dir``)."""
        library = LensLibrary(Path(self._config["lens.library_dir"]))
        library.get(lens)
        if not 1 <= frames <= MAX_FLAT_FRAMES:
            raise InvalidParameterError(f"frames={frames}: expected 1..{MAX_FLAT_FRAMES}")
        executor = self._executor
        if executor is None or self._is_stopping:
            raise CameraError("the camera is not running")
        # The capture worker takes them, so they never interleave with a shot's frames.
        shot = executor.submit(self._camera.next_frames, frames).result(timeout_s)
        shading = lens_shading_from_flat([f.frame for f in shot.frames])
        path = library.save_shading(lens, shading)
        logger.info("%s: flat-field shading table saved to %s", lens, path)
        return {"lens": lens, "path": str(path), "frames": frames,
                "corner_gain": float(shading.gains[:, 0, 0].mean())}

    def shot_records(self) -> list[ShotRecord]:
        """Timings of the shots taken so far."""
        with self._state_lock:
            records = [dataclasses.replace(r) for r in self._records.values()]
        worker = self._worker
        for record in records:
            if worker is not None and record.processing_s is None:
                record.processing_s = worker.durations_s.get(record.shot)
        return records

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

    # --------------------------------------------------------------------- lifecycle
    def start(self) -> Daemon:
        """Run the daemon in a background thread (the demo and tests); see :meth:`run`."""
        self._thread = threading.Thread(target=self.run, name="daemon", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 60.0) -> None:
        """Ask for a clean shutdown and wait for it (idempotent)."""
        if not self._stopped.is_set():
            self._post_internal(ShutdownRequested())
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
        try:
            self._open()
            self._loop()
        finally:
            self._close()
        return self._poweroff_requested

    def _open(self) -> None:
        config = self._config
        looks = self._looks or builtin_look_names()
        self._state = initial_state(config["capture.mode"], config["output.look"], looks,
                                    config["capture.write_behind_shots"])
        self._executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="capture")
        self._writer = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="card-writer")
        self._preview_executor = concurrent.futures.ThreadPoolExecutor(
            1, thread_name_prefix="preview")
        if self._pin_factory is not None:
            self.controls = Controls(
                control_pins(config), pin_factory=self._pin_factory, on_event=self._on_button,
                led_active_high=config["led.active_high"], power_hold_s=self._power_hold_s,
            )
            self.controls.show(self._state.led_pattern)
            self._controls_errors = self.controls.failures
        try:
            self._store.open()
        except StorageError as exc:
            logger.error("%s", exc)
            self._post_internal(Failed(storage_error_code(exc), str(exc)))
        self._worker = ProcessingWorker(self._store, self._post_internal)
        self._executor.submit(self._start_camera)
        self._queue_journal()

    def _close(self) -> None:
        if self._preview_executor is not None:
            self._preview_executor.shutdown(wait=True, cancel_futures=True)
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
        if self._writer is not None:
            self._writer.shutdown(wait=True)  # every captured shot reaches the card...
        for shot in self._stranded:  # ...unless it has none
            logger.error("%s: lost: the card never came back before the daemon stopped",
                         shot.name.key)
        if self._worker is not None:
            self._worker.close()
        if self.controls is not None:
            self.controls.close()
        self._camera.close()
        with self._state_lock:
            waiters = list(self._waiters.values())
            self._waiters.clear()
        for done, result in waiters:
            result.update(taken=False, reason="shutting down")
            done.set()
        self._stopped.set()
        if self._poweroff_requested and self._poweroff is not None:
            logger.info("powering off")
            self._poweroff()

    # --------------------------------------------------------------------- main loop
    def _loop(self) -> None:
        next_tick = time.monotonic()
        while not self._is_stopping:
            wake = next_tick
            if self._camera.preview_active:
                wake = min(wake, self._next_peaking_s)
            timeout = max(0.0, wake - time.monotonic())
            try:
                event: Event | None = self._events.get(timeout=timeout)
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
            if now >= self._next_peaking_s and not self._is_stopping:
                self._update_peaking(now)

    def _handle(self, event: Event) -> None:
        with self._state_lock:
            old = self._state
            self._state, actions = transition(old, event)
            new = self._state
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
        executor = self._executor
        assert executor is not None
        if isinstance(action, ShowLed):
            if self.controls is not None and action.blink_hz is not None:
                self.controls.blink(action.blink_hz)
            elif self.controls is not None:
                self.controls.show(action.pattern)
        elif isinstance(action, Capture):
            executor.submit(self._capture, action)
        elif isinstance(action, Develop):
            self._develop(action.shot)
        elif isinstance(action, Recover):
            executor.submit(self._recover, action.error)
        elif isinstance(action, Acknowledge):
            self._answer(action.request, taken=True, shot=action.shot)
        elif isinstance(action, Refuse):
            logger.info("shot refused: %s", action.reason)
            self._answer(action.request, taken=False, reason=action.reason)
        elif isinstance(action, Announce):
            logger.info("%s: %s", action.what, action.value)
        elif isinstance(action, Shutdown):
            logger.info("shutting down%s", " and powering off" if action.poweroff else "")
            self._is_stopping = True
            self._poweroff_requested = action.poweroff

    def _answer(self, request: ShotRequest, *, taken: bool, **fields: Any) -> None:
        if request.ticket is None:
            return
        with self._state_lock:
            waiter = self._waiters.pop(request.ticket, None)
        if waiter is None:
            return
        done, result = waiter
        result.update(taken=taken, **fields)
        if taken:
            record = self._records.get(fields["shot"])
            entry = self._entries.get(fields["shot"])
            if record is not None:
                result["mode"] = record.mode
            if entry is not None:
                result["files"] = [
                    str(self._store.output_path(entry[0].name, kind))
                    for kind in entry[0].manifest.get("keep", ())
                ]
        done.set()

    def _on_button(self, event: ButtonEvent) -> None:
        """gpiozero callback: turn the press into a state-machine event and enqueue it."""
        if event.button == "shutter" and event.kind == "pressed":
            self.post(ShutterPressed(ShotRequest(event.at_ns)))
        elif event.button == "mode" and event.kind == "pressed":
            self.post(ModePressed())
        elif event.button == "look" and event.kind == "pressed":
            self.post(LookPressed())
        elif event.button == "power" and event.kind == "held":
            self.post(PowerHeld())

    # ------------------------------------------------------------------ preview
    def _update_peaking(self, now: float) -> None:
        """Main loop: hand the preview worker a focus-peaking update, never waiting."""
        self._next_peaking_s = now + PEAKING_INTERVAL_S
        executor = self._preview_executor
        if executor is None or not self._camera.preview_active:
            return
        if self._peaking is not None and not self._peaking.done():
            return  # the last update is still running: skip this one
        self._peaking = executor.submit(self._show_peaking)

    def _show_peaking(self) -> None:
        """Preview worker: focus peaking of the newest streamed frame over the preview."""
        try:
            frame = self._camera.latest_frame(timeout_s=PEAKING_INTERVAL_S)
            overlay = focus_peaking_overlay(grey_preview_from_raw(frame, PEAKING_SIZE))
            self._camera.show_overlay(overlay)
        except Exception as exc:  # noqa: BLE001 - the preview must never stop the daemon
            # Warn about the first failure of a run of them; the rest at debug level.
            self._peaking_failures += 1
            level = logging.WARNING if self._peaking_failures == 1 else logging.DEBUG
            logger.log(level, "focus peaking: %s", exc, exc_info=not isinstance(exc, CameraError))
            return
        self._peaking_failures = 0
        self.overlays_shown += 1

    # ------------------------------------------------------------- capture thread work
    def _start_camera(self) -> None:
        try:
            self._camera.start()
            self._camera.metering()  # the first frame arrived
        except CameraError as exc:
            logger.error("camera: %s", exc)
            self._post_internal(Failed(ErrorCode.NO_CAMERA, str(exc)))
            self._restart_if_devices_blocked()
            return
        self._post_internal(CameraStarted())

    def _restart_if_devices_blocked(self) -> None:
        """Stop for a new process when the camera's devices exist but are closed to this
        one (they appeared after the service started)."""
        blocked = [] if self._blocked_devices is None else self._blocked_devices()
        if blocked and time.monotonic() - self.started_at_s < self._restart_after_s:
            logger.warning("camera devices closed to this process (%s): restarting once it "
                           "has run %.0f s", ", ".join(blocked), self._restart_after_s)
        elif blocked:
            logger.error("camera devices appeared after the service started and are closed "
                         "to it (%s): exiting with status %d for systemd to restart it",
                         ", ".join(blocked), EXIT_RESTART)
            self.exit_status = EXIT_RESTART
            self._post_internal(ShutdownRequested())

    def _shot_bytes(self, frames: int, pending: int) -> int:
        """Card space a shot of ``frames`` frames needs, with the outputs still to come.

        Upper bounds: a journaled frame takes at most 2 bytes a pixel (12-bit frames 1.5),
        as does each output (a DNG is the 16-bit mosaic; a JPEG is far smaller).
        """
        height, width = self._camera.frame_shape
        per_frame = packed_nbytes("uint16_le", max(height, 1), max(width, 1)) + FILE_OVERHEAD_BYTES
        outputs = per_frame * len(self._config["output.keep"])
        return per_frame * frames + outputs * (1 + pending)

    def _capture(self, action: Capture) -> None:
        request = action.request
        config = self._config
        try:
            newest = self._camera.latest_frame() if action.mode == "hdr" else None
            motion = image_motion_px_per_s(*self._camera.ring_ends()) if action.mode == "night" \
                else None
            plan = plan_shot(action.mode, self._camera.metering(), capture_limits(config), newest,
                             motion)
            needed = self._shot_bytes(plan.frames, self.state.pending + self.state.unsaved)
            with self._state_lock:
                unsaved_bytes = self._unsaved_bytes
            try:
                self._store.check_space(needed + unsaved_bytes)
            except CardFullError as exc:
                if plan.frames == 1:
                    raise
                # This shot does not fit; if a single one still does, only this is refused.
                single = self._shot_bytes(1, self.state.pending + self.state.unsaved)
                self._store.check_space(single + unsaved_bytes)
                self._post_internal(CaptureRefused(request, f"{exc}: a single shot still fits"))
                return
            shot = take_shot(self._camera, plan, request.pressed_at_ns)
            name = self._store.reserve_name()
            lens = lens_in_use(config)
            frames = tuple(self._stamp(f.frame, config, lens) for f in shot.frames)
            settings = ShotSettings(
                mode=action.mode,
                look=action.look,
                exposure_compensation_ev=config["capture.exposure_compensation_ev"],
                keep=tuple(config["output.keep"]),
                jpeg_quality=config["output.jpeg_quality"],
                reference_index=shot.reference_index,
            )
            manifest = {**settings.to_manifest(), "pressed_at_ns": request.pressed_at_ns}
        except Exception as exc:  # noqa: BLE001 - a capture bug must not stop the daemon
            self._post_internal(self._failure(exc, request))
            return
        journal_bytes = self._shot_bytes(len(frames), 0)
        with self._state_lock:
            self._unsaved_bytes += journal_bytes
            self._records[name.key] = ShotRecord(
                shot=name.key, mode=action.mode, frames=len(frames),
                pressed_at_ns=request.pressed_at_ns, shutter_lag_s=shot.shutter_lag_s,
                captured_s=(time.monotonic_ns() - request.pressed_at_ns) / 1e9,
            )
        self._post_internal(FramesCaptured(request, name.key))
        assert self._writer is not None
        self._writer.submit(self._save, CapturedShot(request, name, frames, manifest,
                                                     journal_bytes))

    def _save(self, shot: CapturedShot) -> None:
        """The card writer: journal a captured shot, then acknowledge it.

        If the card is missing or full, the shot stays in memory (``_stranded``) and is
        written under a new number once the card is back (:meth:`_recover`): a shot the
        camera took is only lost if the daemon stops first.
        """
        name = shot.name
        try:
            entry = journal_frames(self._store, name, shot.frames, shot.manifest)
        except StorageError as exc:
            logger.error("%s: not written (%s): kept in memory until the card is back",
                         name.key, exc)
            with self._state_lock:
                self._stranded.append(shot)
            failure = self._failure(exc, shot.request)
            self._post_internal(dataclasses.replace(failure, request=None))
            return
        except Exception as exc:  # noqa: BLE001 - a card bug must not stop the daemon
            logger.error("%s: lost writing it to the card: %s", name.key, exc)
            with self._state_lock:
                self._unsaved_bytes -= shot.journal_bytes
            self._post_internal(self._failure(exc, shot.request, unsaved=True))
            return
        acknowledged = time.monotonic_ns()
        request = shot.request
        with self._state_lock:
            self._unsaved_bytes -= shot.journal_bytes
            self._entries[name.key] = (entry, shot.frames)
            record = self._records[name.key]
            self._records[name.key] = dataclasses.replace(
                record, acknowledged_s=(acknowledged - request.pressed_at_ns) / 1e9
            )
        logger.info("%s: %s, %d frame(s) on the card", name.key, record.mode, len(shot.frames))
        self._post_internal(CaptureDone(request, name.key, record.mode))

    def _write_stranded(self) -> None:
        """Hand the shots the card could not take back to the writer, under new numbers
        (the card now in the camera may be another one)."""
        with self._state_lock:
            stranded, self._stranded = self._stranded, []
        for shot in stranded:
            name = self._store.reserve_name()
            with self._state_lock:
                record = self._records.pop(shot.name.key)
                self._records[name.key] = dataclasses.replace(record, shot=name.key)
            logger.info("%s: writing it as %s", shot.name.key, name.key)
            assert self._writer is not None
            self._writer.submit(self._save, dataclasses.replace(shot, name=name))

    @staticmethod
    def _failure(exc: Exception, request: ShotRequest, unsaved: bool = False) -> Failed:
        """The event for a capture or journal write that raised ``exc``."""
        if isinstance(exc, StorageError):
            error = storage_error_code(exc)
        elif isinstance(exc, CameraError):
            error = ErrorCode.NO_CAMERA
        else:
            logger.error("capture failed", exc_info=exc)
            error = ErrorCode.CAPTURE_FAILED
        return Failed(error, str(exc), request=request, unsaved=unsaved)

    def _stamp(self, frame: RawFrame, config: Config, lens: LensInUse) -> RawFrame:
        """The capture's date and the lens in use (EXIF/DNG fields and its flat-field
        shading table, which the develop's lens shading stage applies) in the metadata."""
        metadata = dataclasses.replace(
            frame.metadata, datetime_original=dt.datetime.now().replace(microsecond=0)
        )
        if lens.profile is not None:
            metadata = with_lens(metadata, lens.profile, lens.f_number, lens.shading)
        else:
            metadata = dataclasses.replace(
                metadata,
                lens_model=config["lens.name"] or metadata.lens_model,
                focal_length_mm=config["lens.focal_length_mm"] or metadata.focal_length_mm,
                f_number=lens.f_number or metadata.f_number,
            )
        return RawFrame(frame.cfa, metadata)

    def _recover(self, error: ErrorCode) -> None:
        try:
            if error in (ErrorCode.NO_CAMERA, ErrorCode.CAPTURE_FAILED):
                self._camera.restart()
                self._camera.metering()
            elif error in (ErrorCode.CARD_FULL, ErrorCode.CARD_MISSING, ErrorCode.CARD_READ_ONLY,
                           ErrorCode.CARD_FAILED, ErrorCode.OUT_OF_RESOURCES):
                self._store.open()  # the card back (never the folder it was mounted on)
                self._store.check_space(self._shot_bytes(1, self.state.pending))
                self._write_stranded()
                self._queue_journal()
        except (CameraError, StorageError) as exc:
            logger.info("still failing: %s", exc)
            if isinstance(exc, CameraError):
                self._restart_if_devices_blocked()
            return
        except Exception:  # noqa: BLE001
            logger.exception("recovery from %s failed", error.value)
            return
        self._post_internal(Recovered())

    # ------------------------------------------------------------------- processing
    def _queue_journal(self) -> None:
        """Post every journaled shot the worker does not have (after a crash or a full card)."""
        try:
            entries = self._store.pending()
        except OSError as exc:
            logger.error("cannot read the journal: %s", exc)
            return
        worker = self._worker
        for entry in entries:
            key = entry.name.key
            with self._state_lock:
                if key in self._entries or (worker is not None and worker.is_queued(key)):
                    continue
                self._entries[key] = (entry, None)
            logger.info("%s: resuming development", key)
            self._post_internal(ShotQueued(key))

    def _develop(self, shot: str) -> None:
        with self._state_lock:
            entry, frames = self._entries.pop(shot, (None, None))
        worker = self._worker
        if entry is None or worker is None:
            logger.error("%s: nothing to develop", shot)
            self._post_internal(ProcessingDoneEvent(shot))
            return
        # The worker keeps the frames only if it starts on them at once; else it reads
        # them back from the journal.
        worker.submit(entry, frames)


def camera_from_config(
    config: Config, *, simulator_size: tuple[int, int] = (760, 1014), **options: Any
) -> CameraSource:
    """The camera source ``camera.source`` names (not started); ``display.preview`` applies
    to picamera2, the only source with a display; ``camera.resolution`` to picamera2 and
    the simulator (``simulator_size`` is the full mode's)."""
    source = config["camera.source"]
    ring = config["capture.ring_frames"]
    if source == "picamera2":
        from hardware.picamera2_camera import Picamera2Camera

        return Picamera2Camera(ring_frames=ring, resolution=config["camera.resolution"],
                               preview=config["display.preview"], **options)
    if source == "replay":
        from hardware.replay_camera import ReplayCamera

        return ReplayCamera(config["camera.replay_dir"], ring_frames=ring, **options)
    from hardware.simulated_camera import SimulatedCamera

    return SimulatedCamera(output_size=mode_size(config, simulator_size), ring_frames=ring,
                           **options)


def mode_size(config: Config, full_size: tuple[int, int]) -> tuple[int, int]:
    """(H, W) of the frames ``camera.resolution`` gives a sensor whose full mode is
    ``full_size``: the binned mode is half the size each way (kept even)."""
    if config["camera.resolution"] == "binned":
        return (full_size[0] // 4 * 2, full_size[1] // 4 * 2)
    return full_size
