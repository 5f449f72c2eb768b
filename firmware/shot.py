"""One shot, from the press of the shutter to its files on the card.

A :class:`Shot` is created by the press (a button, or ``obscura shoot`` over the socket)
and travels with the shot's events and actions; each part of its life fills in what it
decides or learns, as a new frozen copy (:func:`dataclasses.replace`):

==================  =========================================================================
pressed             ``pressed_at_ns``, ``source``, ``ticket``, ``mode`` (None: the camera's)
decided             ``mode``, ``look`` (:func:`firmware.state_machine.transition`)
captured            ``name``, ``frames``, ``reference_index``, the develop settings, timings
                    (:mod:`firmware.capture`)
journaled           ``journal``, ``acknowledged_at_ns`` (:mod:`firmware.card_writer`)
developed           ``developed_s`` (:mod:`firmware.development`)
==================  =========================================================================

A shot resumed after a restart is read back from its journal manifest
(:meth:`Shot.from_manifest`): the settings it was taken with, not today's.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hardware.storage import ShotName
from pipeline.burst import MERGE_METHODS, MergeMethod
from pipeline.raw_frame import RawFrame

if TYPE_CHECKING:
    from firmware.journal import JournalEntry

#: The fields the journal manifest keeps: how the shot is developed, whenever that is.
MANIFEST_FIELDS = ("mode", "look", "exposure_compensation_ev", "keep", "jpeg_quality",
                   "reference_index", "pressed_at_ns", "merge")


#: The JSON type of each manifest field, and its name for errors.
_MANIFEST_TYPES: dict[str, tuple[Any, str]] = {
    "mode": (str, "a string"), "look": (str, "a string"), "keep": (list, "a list"),
    "exposure_compensation_ev": ((int, float), "a number"), "jpeg_quality": (int, "an integer"),
    "reference_index": (int, "an integer"), "pressed_at_ns": (int, "an integer"),
    "merge": (str, "a string"),
}


@dataclass(frozen=True)
class Shot:
    """A shot and everything known about it so far (see the module's table).

    Equality compares what identifies the press and the decisions taken on it, never the
    frames. Copies kept for status and timings drop the frames (:meth:`without_frames`).
    """

    pressed_at_ns: int
    mode: str | None = None
    source: str = "button"
    ticket: int | None = None
    look: str | None = None
    name: ShotName | None = None
    frames: tuple[RawFrame, ...] = field(default=(), compare=False, repr=False)
    frame_count: int = 0
    reference_index: int = 0
    exposure_compensation_ev: float = 0.0
    keep: tuple[str, ...] = ("jpeg", "dng")
    jpeg_quality: int = 92
    merge: MergeMethod = "kernel"
    shutter_lag_s: float | None = None
    captured_at_ns: int | None = None
    journal: JournalEntry | None = field(default=None, compare=False, repr=False)
    acknowledged_at_ns: int | None = None
    developed_s: float | None = None

    @property
    def key(self) -> str:
        """``100-0001``: the shot's name on the card (once captured)."""
        if self.name is None:
            raise ValueError("the shot has no name before it is captured")
        return self.name.key

    @property
    def captured_s(self) -> float | None:
        """Press -> frames in memory, seconds."""
        return _since(self.pressed_at_ns, self.captured_at_ns)

    @property
    def acknowledged_s(self) -> float | None:
        """Press -> frames durable on the card, seconds."""
        return _since(self.pressed_at_ns, self.acknowledged_at_ns)

    def with_frames(self, frames: tuple[RawFrame, ...]) -> Shot:
        """The shot with ``frames`` (and their count)."""
        return dataclasses.replace(self, frames=frames, frame_count=len(frames))

    def without_frames(self) -> Shot:
        """The record without its pixels (kept for status and timings)."""
        return dataclasses.replace(self, frames=())

    def to_manifest(self) -> dict[str, Any]:
        """The JSON-ready develop settings (:data:`MANIFEST_FIELDS`)."""
        values = {name: getattr(self, name) for name in MANIFEST_FIELDS}
        return {**values, "keep": list(self.keep)}

    @classmethod
    def from_manifest(cls, manifest: dict[str, Any], name: ShotName | None = None,
                      journal: JournalEntry | None = None) -> Shot:
        """The inverse of :meth:`to_manifest` (missing fields take their defaults); a
        field of the wrong type is a ValueError naming it."""
        values = {k: manifest[k] for k in MANIFEST_FIELDS if manifest.get(k) is not None}
        for key, value in values.items():
            json_type, described = _MANIFEST_TYPES[key]
            if not isinstance(value, json_type) or isinstance(value, bool):
                raise ValueError(f"manifest field {key}={value!r}: not {described}")
        if "keep" in values:
            if not all(isinstance(kind, str) for kind in values["keep"]):
                raise ValueError(f"manifest field keep={values['keep']!r}: not a list of names")
            values["keep"] = tuple(values["keep"])
        if values.get("merge", "resample") not in MERGE_METHODS:
            raise ValueError(f"manifest field merge={values['merge']!r}: not one of "
                             f"{', '.join(MERGE_METHODS)}")
        values.setdefault("pressed_at_ns", 0)
        count = len(journal.frame_paths) if journal is not None else 0
        return cls(**values, name=name, journal=journal, frame_count=count)


def _since(start_ns: int, end_ns: int | None) -> float | None:
    return None if end_ns is None else (end_ns - start_ns) / 1e9
