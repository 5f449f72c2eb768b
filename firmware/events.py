"""The state machine's vocabulary: the events posted to the daemon, the actions it answers
with, and the error codes the LED shows (:mod:`firmware.state_machine` decides).

Events come from the buttons, the control socket, signals, and the daemon's workers
(capture, card writer, development); a shot travels in them as a
:class:`~firmware.shot.Shot`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING, Union

from firmware.shot import Shot
from hardware.storage import (
    CardFullError,
    CardMissingError,
    CardReadOnlyError,
    OutOfResourcesError,
    StorageError,
)

if TYPE_CHECKING:  # the buttons' module imports gpiozero: the state machine needs none of it
    from hardware.controls import ButtonEvent


class ErrorCode(str, enum.Enum):
    """Why the camera cannot shoot; each has its own LED blink code."""

    NO_CAMERA = "no_camera"
    CAPTURE_FAILED = "capture_failed"
    CARD_FULL = "card_full"
    CARD_MISSING = "card_missing"
    OVERHEATING = "overheating"
    PROCESSING_FAILED = "processing_failed"
    CARD_READ_ONLY = "card_read_only"
    CARD_FAILED = "card_failed"
    OUT_OF_RESOURCES = "out_of_resources"


#: The error each kind of :class:`~hardware.storage.StorageError` shows.
_STORAGE_ERROR_CODES: tuple[tuple[type[StorageError], ErrorCode], ...] = (
    (CardFullError, ErrorCode.CARD_FULL),
    (CardMissingError, ErrorCode.CARD_MISSING),
    (CardReadOnlyError, ErrorCode.CARD_READ_ONLY),
    (OutOfResourcesError, ErrorCode.OUT_OF_RESOURCES),
)


def storage_error_code(exc: StorageError) -> ErrorCode:
    """The :class:`ErrorCode` a storage error shows: card full, missing, read-only, or the
    system out of resources; any other (EIO...) is a failing card."""
    for kind, code in _STORAGE_ERROR_CODES:
        if isinstance(exc, kind):
            return code
    return ErrorCode.CARD_FAILED


# ----------------------------------------------------------------------------- events
@dataclass(frozen=True)
class ShutterPressed:
    """A press of the shutter (``shot.source`` "button") or a ``shoot`` from the socket:
    a new :class:`~firmware.shot.Shot` (``mode`` None: the camera's mode)."""

    request: Shot


@dataclass(frozen=True)
class ModePressed:
    pass


@dataclass(frozen=True)
class LookPressed:
    pass


@dataclass(frozen=True)
class PowerHeld:
    pass


@dataclass(frozen=True)
class ShutdownRequested:
    """SIGTERM/SIGINT, or the camera asking for a new process: stop the daemon (without
    powering off), then exit with ``exit_status``."""

    exit_status: int = 0


@dataclass(frozen=True)
class ReloadRequested:
    """SIGHUP (``systemctl reload obscura``): read the configuration files again."""


@dataclass(frozen=True)
class CameraStarted:
    pass


@dataclass(frozen=True)
class Failed:
    """Something failed: the camera, the card, a capture or a development.

    ``request``: the shot that was refused because of it; ``shot``: the acknowledged
    shot whose development stopped (it is no longer pending; its raw stays on the card);
    ``unsaved``: the refused shot had been captured and was lost writing it to the card.
    """

    error: ErrorCode
    message: str = ""
    request: Shot | None = None
    shot: str | None = None
    unsaved: bool = False


@dataclass(frozen=True)
class CaptureRefused:
    """A shot was not taken for a reason of its own (a burst larger than the space left
    when a single shot still fits): refused, and the camera shoots on, no error."""

    request: Shot
    reason: str


@dataclass(frozen=True)
class Recovered:
    """A :class:`Recover` check found the problem gone."""


@dataclass(frozen=True)
class FramesCaptured:
    """A shot's frames are in memory, on their way to the card: the camera may shoot on."""

    shot: Shot


@dataclass(frozen=True)
class CaptureDone:
    """A shot's frames are journaled on the card: it is acknowledged."""

    shot: Shot


@dataclass(frozen=True)
class ShotQueued:
    """A journaled shot (e.g. left over from before a crash) waits to be developed."""

    shot: Shot


@dataclass(frozen=True)
class ProcessingDone:
    shot: str


@dataclass(frozen=True)
class Tick:
    """Time passes; ``now_s`` is ``time.monotonic()``, ``temperature_c`` the SoC's (or None)."""

    now_s: float
    temperature_c: float | None = None


@dataclass(frozen=True)
class FocusMeasured:
    """Focus assist measured a frame: ``fraction`` of the peak so far (0..1), at ``now_s``
    (``time.monotonic()``)."""

    fraction: float
    now_s: float


@dataclass(frozen=True)
class SettingsChanged:
    """The configuration changed the mode, look or write-behind depth (None: unchanged)."""

    mode: str | None = None
    look: str | None = None
    looks: tuple[str, ...] | None = None
    write_behind: int | None = None


Event = Union[
    ShutterPressed, ModePressed, LookPressed, PowerHeld, ShutdownRequested, CameraStarted,
    Failed, CaptureRefused, Recovered, FramesCaptured, CaptureDone, ShotQueued, ProcessingDone,
    Tick, SettingsChanged, FocusMeasured, ReloadRequested,
]  # fmt: skip


# ---------------------------------------------------------------------------- actions
@dataclass(frozen=True)
class Capture:
    """Take a shot (its mode and look decided): check space, capture (posts
    FramesCaptured), journal, acknowledge (posts CaptureDone); or post Failed."""

    shot: Shot


@dataclass(frozen=True)
class Develop:
    """Hand a journaled shot to the development worker."""

    shot: Shot


@dataclass(frozen=True)
class Recover:
    """Check whether ``error`` is gone (reopen the camera, look at the card...)."""

    error: ErrorCode


@dataclass(frozen=True)
class Refuse:
    """Tell whoever asked for a shot that it was not taken, and why."""

    request: Shot
    reason: str


@dataclass(frozen=True)
class Acknowledge:
    """Tell whoever asked for a shot that it is safely on the card."""

    shot: Shot


@dataclass(frozen=True)
class ShowLed:
    """Show an LED pattern (names in :data:`hardware.controls.LED_PATTERNS`), or with
    ``blink_hz``, blink at that rate (the "focus" pattern)."""

    pattern: str
    blink_hz: float | None = None


@dataclass(frozen=True)
class Announce:
    """Something the user changed (mode, look): logged, and shown by a short LED flash."""

    what: str
    value: str


@dataclass(frozen=True)
class Shutdown:
    poweroff: bool
    exit_status: int = 0


@dataclass(frozen=True)
class ReloadConfig:
    """Read the configuration files again and apply what changed."""


Action = Union[
    Capture, Develop, Recover, Refuse, Acknowledge, ShowLed, Announce, Shutdown, ReloadConfig
]


def event_for_button(event: ButtonEvent) -> Event | None:
    """The event a button's press (or the power button's hold) posts; None for the rest."""
    if event.button == "shutter" and event.kind == "pressed":
        return ShutterPressed(Shot(event.at_ns))
    if event.button == "mode" and event.kind == "pressed":
        return ModePressed()
    if event.button == "look" and event.kind == "pressed":
        return LookPressed()
    if event.button == "power" and event.kind == "held":
        return PowerHeld()
    return None
