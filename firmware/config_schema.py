"""The configuration's schema: each TOML table a frozen dataclass, each key one of its fields.

A key is declared once, as a field of its section (:class:`CaptureSettings`, ...): the
annotation gives its type (a ``Literal`` its choices), :func:`setting` its default, help
text and rule. :data:`SCHEMA`, the :class:`Key` list that validates files and
``obscura config set`` and writes the commented default file, is derived from those fields;
:class:`firmware.config.Config` offers the same sections typed (``config.capture.mode``),
so that a type checker, not the camera, finds a misspelt key.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import Field, dataclass, field, fields
from typing import Any, Literal, TypeVar, get_args, get_origin, get_type_hints

from firmware.capture_mode import CaptureModeName
from pipeline.burst import MergeMethod
from pipeline.errors import ObscuraError

_TYPE_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "true or false",
               list: "a list"}
_TRUE_WORDS = ("true", "yes", "on", "1")
_FALSE_WORDS = ("false", "no", "off", "0")

#: A key's check of a value already of its type, and what it expects, for error messages.
Rule = tuple[Callable[[Any], bool], str]
Choices = Callable[[], tuple[str, ...]]
T = TypeVar("T")


class ConfigError(ObscuraError, ValueError):
    """A configuration file or value is invalid; the message names file, key and value."""


def shown(value: Any, limit: int = 60) -> str:
    """``repr(value)`` for an error message: shortened, and never raising (a table nested
    thousands deep, an integer of thousands of digits)."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 200:
        return f"<an integer of about {int(value.bit_length() * 0.30103) + 1} digits>"
    try:
        text = repr(value)
    except (RecursionError, ValueError):
        return f"<a {type(value).__name__} nested too deep to show>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass(frozen=True)
class Key:
    """One configuration key: ``section.name``, its type, default, check and help text.

    ``type`` is the kind of value a TOML file holds (``list`` for a key whose setting is a
    tuple). ``choices``, when given, returns the allowed values at validation time (the
    looks installed now, not those at import).
    """

    name: str
    type: type
    default: Any
    help: str
    check: Callable[[Any], bool] = lambda value: True
    expected: str = ""
    choices: Choices | None = None

    @property
    def section(self) -> str:
        """The TOML table the key lives in (``output`` for ``output.look``)."""
        return self.name.partition(".")[0]

    @property
    def short_name(self) -> str:
        """The name inside its table (``look`` for ``output.look``)."""
        return self.name.partition(".")[2]

    def validate(self, value: Any, source: str) -> Any:
        """``value`` converted to the key's type, or a ConfigError naming source/key/value."""
        if self.type is float and isinstance(value, int) and not isinstance(value, bool):
            try:
                value = float(value)
            except OverflowError:
                pass  # refused below as out of range
        if self.type is list and isinstance(value, tuple):
            value = list(value)
        if not isinstance(value, self.type) or (self.type is int and isinstance(value, bool)):
            raise self.error(value, source, f"expected {_TYPE_NAMES[self.type]}")
        if any("\0" in item for item in (value if self.type is list else [value])
               if isinstance(item, str)):
            raise self.error(value, source, "contains a NUL character")
        if self.choices is not None:
            allowed = self.choices()
            if value not in allowed:
                raise self.error(value, source, f"expected one of {', '.join(allowed)}")
        if not self.check(value):
            raise self.error(value, source, f"expected {self.expected}")
        return value

    def error(self, value: Any, source: str, problem: str) -> ConfigError:
        """``source: section.name = value: problem``."""
        return ConfigError(f"{source}: {self.name} = {shown(value)}: {problem}")

    def parse(self, text: str, source: str) -> Any:
        """A value typed on a command line (``monochrome``, ``90``, ``jpeg,dng``), validated."""
        text = text.strip()
        value: Any = text
        try:
            if self.type is bool:
                if text.lower() not in _TRUE_WORDS + _FALSE_WORDS:
                    raise ValueError
                value = text.lower() in _TRUE_WORDS
            elif self.type is int:
                value = int(text)
            elif self.type is float:
                value = float(text)
            elif self.type is list:
                value = (
                    tomllib.loads(f"v = {text}")["v"]
                    if text.startswith("[")
                    else [item.strip() for item in text.split(",") if item.strip()]
                )
            elif text[:1] in ("'", '"'):
                value = tomllib.loads(f"v = {text}")["v"]
        except (ValueError, RecursionError, tomllib.TOMLDecodeError):
            raise self.error(text, source, f"expected {_TYPE_NAMES[self.type]}") from None
        return self.validate(value, source)


def setting(default: T, help_text: str, rule: Rule | None = None,
            choices: Choices | None = None) -> T:
    """A section's field: its default, and the help text and rule of its key.

    Typed as the default so that ``mode: str = setting("single", ...)`` type-checks.
    """
    return field(default=default, metadata={"help": help_text, "rule": rule, "choices": choices})


def _one_of(choices: tuple[str, ...]) -> Choices:
    return lambda: choices


def _looks() -> tuple[str, ...]:
    from pipeline.looks.look import look_names

    return look_names()


def _between(lo: float, hi: float) -> Rule:
    return (lambda value: lo <= value <= hi), f"{lo}..{hi}"


def _gpio_pin() -> Rule:
    return (lambda value: 0 <= value <= 27), "a BCM GPIO number 0..27"


#: Folders of the operating system, never a place for photos or lens data (nor anything in them).
SYSTEM_TREES = ("/bin", "/boot", "/dev", "/etc", "/lib", "/lib32", "/lib64", "/proc", "/sbin",
                "/sys", "/usr")
#: Folders that hold other programs' data: refused themselves, their subfolders allowed.
SYSTEM_FOLDERS = ("/", "/home", "/media", "/mnt", "/opt", "/root", "/run", "/srv", "/tmp",
                  "/var", "/var/lib")


def is_data_folder(path: str) -> bool:
    """True for an absolute path that is neither a system folder nor inside one."""
    if not path.startswith("/"):
        return False
    normal = os.path.normpath(path).replace("//", "/")
    return normal not in SYSTEM_FOLDERS and not any(
        normal == tree or normal.startswith(tree + "/") for tree in SYSTEM_TREES
    )


def _data_folder(may_be_empty: bool = False) -> Rule:
    expected = "an absolute path of a data folder, not a system folder such as /etc or /var"
    if may_be_empty:
        return (lambda value: value == "" or is_data_folder(value)), expected + " or empty"
    return is_data_folder, expected


OutputKind = Literal["jpeg", "dng", "merged_dng"]
OUTPUT_KINDS: tuple[str, ...] = get_args(OutputKind)


@dataclass(frozen=True)
class CameraSettings:
    """``[camera]``: where frames come from."""

    source: Literal["picamera2", "simulator", "replay"] = setting(
        "picamera2", "where frames come from")
    resolution: Literal["full", "binned"] = setting(
        "full", "sensor mode: full (4056x3040, 12 MP) or binned (2028x1520, 3 MP, 2x2 binned: "
        "a quarter of the memory and of the work, the whole field of view)")
    replay_dir: str = setting("", "folder of DNGs served as bursts by the replay source",
                              _data_folder(may_be_empty=True))


@dataclass(frozen=True)
class CaptureSettings:
    """``[capture]``: the mode, bursts and the frames held in memory."""

    mode: CaptureModeName = setting("single", "mode at start-up")
    burst_frames: int = setting(6, "frames in a burst", _between(2, 15))
    merge: MergeMethod = setting(
        "kernel", "how a burst is merged: kernel, every raw sample at its true position "
        "(Wronski et al. 2019); or resample each frame, then merge (about 0.7x the time and "
        "memory, less gain on detail sharp to the pixel; the default on boards under 3 GB)")
    night_max_frames: int = setting(
        15, "most frames of a night shot; capturing 12 MP holds about 19 MB a frame until it "
        "is on the card", _between(2, 15))
    exposure_compensation_ev: float = setting(0.0, "exposure compensation", _between(-4.0, 4.0))
    ring_frames: int = setting(8, "frames kept for zero shutter lag", _between(1, 30))
    write_behind_shots: int = setting(
        1, "captured shots that may wait in memory for the card while the camera shoots on "
        "(0: each shot is on the card before the next; 12 MP: 2.5-38 MB a frame)",
        _between(0, 4))


@dataclass(frozen=True)
class OutputSettings:
    """``[output]``: the files each shot leaves, and where."""

    look: str = setting("standard", "look of the JPEGs (see `obscura looks`)", choices=_looks)
    jpeg_quality: int = setting(92, "JPEG quality", _between(1, 100))
    keep: tuple[OutputKind, ...] = setting(
        ("jpeg", "dng"), "files each shot leaves",
        ((lambda value: bool(value) and all(v in OUTPUT_KINDS for v in value)),
         "a non-empty list of " + ", ".join(OUTPUT_KINDS)))
    storage_path: str = setting("/var/lib/obscura", "card mount point; photos go in DCIM/",
                                _data_folder())


@dataclass(frozen=True)
class PinSettings:
    """``[pins]``: BCM GPIO numbers of the buttons and the LED, one each."""

    shutter: int = setting(17, "shutter button (BCM)", _gpio_pin())
    mode: int = setting(27, "mode button (BCM)", _gpio_pin())
    look: int = setting(22, "look button (BCM)", _gpio_pin())
    power: int = setting(3, "power button (BCM; GPIO3 also wakes a halted Pi)", _gpio_pin())
    led: int = setting(4, "status LED (BCM)", _gpio_pin())


@dataclass(frozen=True)
class LedSettings:
    """``[led]``: the status LED."""

    enabled: bool = setting(True, "drive the status LED")
    active_high: bool = setting(True, "LED lights when the pin is high")


@dataclass(frozen=True)
class LensSettings:
    """``[lens]``: the lens in use and where lens data lives."""

    name: str = setting("", "lens in use, for EXIF/DNG and its shading table (obscura lens set)")
    focal_length_mm: float = setting(0.0, "focal length (0 = unknown)", _between(0.0, 2000.0))
    f_number: float = setting(0.0, "aperture in use (0 = unknown)", _between(0.0, 64.0))
    library_dir: str = setting(
        "/var/lib/obscura/lenses",
        "lens profiles and flat-field calibrations (obscura lens, obscura calibrate)",
        _data_folder())


@dataclass(frozen=True)
class DisplaySettings:
    """``[display]``: the live preview."""

    preview: Literal["auto", "on", "off"] = setting(
        "auto", "live preview with focus peaking on an HDMI/DSI display (auto: when one is "
        "connected)")


@dataclass(frozen=True)
class Settings:
    """Every section, typed: the schema's tables, in the order the default file lists them."""

    camera: CameraSettings
    capture: CaptureSettings
    output: OutputSettings
    pins: PinSettings
    led: LedSettings
    lens: LensSettings
    display: DisplaySettings


#: ``{table name: its section class}``, in file order.
SECTIONS: dict[str, type] = dict(get_type_hints(Settings))


def _key(section: str, item: Field[Any], annotation: Any) -> Key:
    """The :class:`Key` that field ``item`` of ``section`` declares."""
    kind, choices = annotation, item.metadata["choices"]
    if get_origin(annotation) is Literal:
        kind, choices = str, _one_of(get_args(annotation))
    elif get_origin(annotation) is tuple:
        kind = list
    if kind not in _TYPE_NAMES:
        raise TypeError(f"{section}.{item.name}: unsupported setting type {annotation!r}")
    default: Any = item.default
    if kind is list:
        default = list(default)
    check, expected = item.metadata["rule"] or ((lambda value: True), "")
    return Key(f"{section}.{item.name}", kind, default, item.metadata["help"], check, expected,
               choices)


SCHEMA: tuple[Key, ...] = tuple(
    _key(section, item, get_type_hints(cls)[item.name])
    for section, cls in SECTIONS.items() for item in fields(cls)
)
KEYS: dict[str, Key] = {key.name: key for key in SCHEMA}


def sections_of(values: Mapping[str, Any]) -> dict[str, Any]:
    """``{table name: its frozen section}`` for ``values`` (``{full name: value}`` of every
    key, already validated); lists become tuples."""
    def frozen(value: Any) -> Any:
        return tuple(value) if isinstance(value, list) else value

    return {
        section: cls(**{item.name: frozen(values[f"{section}.{item.name}"])
                        for item in fields(cls)})
        for section, cls in SECTIONS.items()
    }
