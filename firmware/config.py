"""Configuration: one schema gives every key its type, default, validator and help.

Files are TOML (``/etc/obscura/config.toml``, then optional overlays such as one on the
boot partition): later files override earlier ones key by key. Errors name the file, the
key and the value; unknown keys are errors (the schema of Radicale's ``config.py``).
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.errors import ObscuraError

DEFAULT_CONFIG_PATH = Path("/etc/obscura/config.toml")
BOOT_OVERLAY_PATH = Path("/boot/firmware/obscura.toml")


class ConfigError(ObscuraError, ValueError):
    """A configuration file or value is invalid; the message names file, key and value."""


@dataclass(frozen=True)
class Key:
    """One configuration key: ``section.name``, its type, default, check and help text."""

    name: str
    type: type
    default: Any
    help: str
    check: Callable[[Any], bool] = lambda value: True
    expected: str = ""

    def validate(self, value: Any, source: str) -> Any:
        """``value`` converted to the key's type, or a ConfigError naming source/key/value."""
        if self.type is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if self.type is list and isinstance(value, tuple):
            value = list(value)
        if not isinstance(value, self.type) or (self.type is int and isinstance(value, bool)):
            raise ConfigError(
                f"{source}: {self.name} = {value!r}: expected a {self.type.__name__}"
            )
        if not self.check(value):
            raise ConfigError(f"{source}: {self.name} = {value!r}: expected {self.expected}")
        return value


def _one_of(*choices: str) -> tuple[Callable[[Any], bool], str]:
    return (lambda value: value in choices), "one of " + ", ".join(choices)


def _between(lo: float, hi: float) -> tuple[Callable[[Any], bool], str]:
    return (lambda value: lo <= value <= hi), f"{lo}..{hi}"


def _gpio_pin() -> tuple[Callable[[Any], bool], str]:
    return (lambda value: 0 <= value <= 27), "a BCM GPIO number 0..27"


def _key(name: str, type_: type, default: Any, help_: str, rule=None) -> Key:
    check, expected = rule if rule else ((lambda value: True), "")
    return Key(name, type_, default, help_, check, expected)


OUTPUT_KINDS = ("jpeg", "dng", "merged_dng")

SCHEMA: tuple[Key, ...] = (
    _key("camera.source", str, "picamera2", "where frames come from",
         _one_of("picamera2", "simulator", "replay")),
    _key("camera.replay_dir", str, "", "folder of DNGs served as bursts by the replay source"),
    _key("capture.mode", str, "single", "mode at start-up",
         _one_of("single", "burst", "hdr", "night")),
    _key("capture.burst_frames", int, 6, "frames in a burst", _between(2, 15)),
    _key("capture.exposure_compensation_ev", float, 0.0, "exposure compensation",
         _between(-4.0, 4.0)),
    _key("capture.ring_frames", int, 8, "frames kept for zero shutter lag", _between(1, 30)),
    _key("output.look", str, "standard", "look of the JPEGs (see `obscura looks`)"),
    _key("output.jpeg_quality", int, 92, "JPEG quality", _between(1, 100)),
    _key("output.keep", list, ["jpeg", "dng"], "files each shot leaves",
         ((lambda value: bool(value) and all(v in OUTPUT_KINDS for v in value)),
          "a non-empty list of " + ", ".join(OUTPUT_KINDS))),
    _key("output.storage_path", str, "/var/lib/obscura", "card mount point; photos go in DCIM/"),
    _key("pins.shutter", int, 17, "shutter button (BCM)", _gpio_pin()),
    _key("pins.mode", int, 27, "mode button (BCM)", _gpio_pin()),
    _key("pins.look", int, 22, "look button (BCM)", _gpio_pin()),
    _key("pins.power", int, 3, "power button (BCM; GPIO3 also wakes a halted Pi)", _gpio_pin()),
    _key("pins.led", int, 4, "status LED (BCM)", _gpio_pin()),
    _key("led.enabled", bool, True, "drive the status LED"),
    _key("led.active_high", bool, True, "LED lights when the pin is high"),
    _key("lens.name", str, "", "lens model for EXIF/DNG"),
    _key("lens.focal_length_mm", float, 0.0, "focal length (0 = unknown)", _between(0.0, 2000.0)),
    _key("lens.f_number", float, 0.0, "aperture in use (0 = unknown)", _between(0.0, 64.0)),
)  # fmt: skip

KEYS: dict[str, Key] = {key.name: key for key in SCHEMA}


@dataclass(frozen=True)
class Config:
    """A complete, validated configuration: every key of :data:`SCHEMA` has a value."""

    values: Mapping[str, Any]

    def __getitem__(self, name: str) -> Any:
        if name not in KEYS:
            raise ConfigError(f"unknown key {name!r}")
        return self.values[name]

    def with_value(self, name: str, value: Any, source: str = "command line") -> Config:
        """A copy with ``name`` set to ``value`` (validated)."""
        if name not in KEYS:
            raise ConfigError(f"{source}: unknown key {name!r}")
        return Config({**self.values, name: KEYS[name].validate(value, source)})


def default_config() -> Config:
    """Every key at its default."""
    return Config({key.name: key.default for key in SCHEMA})


def _flatten(table: Mapping[str, Any], source: str, prefix: str = "") -> Iterable[tuple[str, Any]]:
    for name, value in table.items():
        full = f"{prefix}{name}"
        if isinstance(value, dict):
            yield from _flatten(value, source, full + ".")
        else:
            yield full, value


def load_config(paths: Iterable[Path], base: Config | None = None) -> Config:
    """Defaults (or ``base``) overridden by each existing file of ``paths`` in turn."""
    config = base or default_config()
    for path in paths:
        if not path.exists():
            continue
        try:
            table = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"{path}: {exc}") from None
        for name, value in _flatten(table, str(path)):
            config = config.with_value(name, value, source=str(path))
    return config
