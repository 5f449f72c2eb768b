"""Configuration: one schema gives every key its type, default, validator and help.

Files are TOML (``/etc/obscura/config.toml``, then optional overlays such as one on the
boot partition): later files override earlier ones key by key. Errors name the file, the
key (``section.name``) and the value; unknown keys are errors (the schema of Radicale's
``config.py``). The commented default file is generated from the schema
(:func:`render_config`), and ``obscura config set`` rewrites a file the same way.
"""

from __future__ import annotations

import difflib
import json
import os
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hardware.storage import write_atomic
from pipeline.errors import ObscuraError

DEFAULT_CONFIG_PATH = Path("/etc/obscura/config.toml")
BOOT_OVERLAY_PATH = Path("/boot/firmware/obscura.toml")
DEFAULT_CONFIG_PATHS = (DEFAULT_CONFIG_PATH, BOOT_OVERLAY_PATH)

_TYPE_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "true or false",
               list: "a list"}
_TRUE_WORDS = ("true", "yes", "on", "1")
_FALSE_WORDS = ("false", "no", "off", "0")


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

    ``choices``, when given, returns the allowed values at validation time (the looks
    installed now, not those at import).
    """

    name: str
    type: type
    default: Any
    help: str
    check: Callable[[Any], bool] = lambda value: True
    expected: str = ""
    choices: Callable[[], tuple[str, ...]] | None = None

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


def _one_of(*choices: str) -> Callable[[], tuple[str, ...]]:
    return lambda: choices


def _looks() -> tuple[str, ...]:
    from pipeline.looks.look import builtin_looks

    return tuple(builtin_looks())


def _between(lo: float, hi: float) -> tuple[Callable[[Any], bool], str]:
    return (lambda value: lo <= value <= hi), f"{lo}..{hi}"


def _gpio_pin() -> tuple[Callable[[Any], bool], str]:
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


def _data_folder(may_be_empty: bool = False) -> tuple[Callable[[Any], bool], str]:
    expected = "an absolute path of a data folder, not a system folder such as /etc or /var"
    if may_be_empty:
        return (lambda value: value == "" or is_data_folder(value)), expected + " or empty"
    return is_data_folder, expected


def _key(name: str, type_: type, default: Any, help_: str, rule=None, choices=None) -> Key:
    check, expected = rule if rule else ((lambda value: True), "")
    return Key(name, type_, default, help_, check, expected, choices)


OUTPUT_KINDS = ("jpeg", "dng", "merged_dng")
CAPTURE_MODES = ("single", "burst", "hdr", "night")

SCHEMA: tuple[Key, ...] = (
    _key("camera.source", str, "picamera2", "where frames come from",
         choices=_one_of("picamera2", "simulator", "replay")),
    _key("camera.resolution", str, "full",
         "sensor mode: full (4056x3040, 12 MP) or binned (2028x1520, 3 MP, 2x2 binned: a "
         "quarter of the memory and of the work, the whole field of view)",
         choices=_one_of("full", "binned")),
    _key("camera.replay_dir", str, "", "folder of DNGs served as bursts by the replay source",
         _data_folder(may_be_empty=True)),
    _key("capture.mode", str, "single", "mode at start-up", choices=_one_of(*CAPTURE_MODES)),
    _key("capture.burst_frames", int, 6, "frames in a burst", _between(2, 15)),
    _key("capture.night_max_frames", int, 15,
         "most frames of a night shot; capturing 12 MP holds about 19 MB a frame until "
         "it is on the card", _between(2, 15)),
    _key("capture.exposure_compensation_ev", float, 0.0, "exposure compensation",
         _between(-4.0, 4.0)),
    _key("capture.ring_frames", int, 8, "frames kept for zero shutter lag", _between(1, 30)),
    _key("capture.write_behind_shots", int, 1,
         "captured shots that may wait in memory for the card while the camera shoots on "
         "(0: each shot is on the card before the next; 12 MP: 2.5-38 MB a frame)",
         _between(0, 4)),
    _key("output.look", str, "standard", "look of the JPEGs (see `obscura looks`)",
         choices=_looks),
    _key("output.jpeg_quality", int, 92, "JPEG quality", _between(1, 100)),
    _key("output.keep", list, ["jpeg", "dng"], "files each shot leaves",
         ((lambda value: bool(value) and all(v in OUTPUT_KINDS for v in value)),
          "a non-empty list of " + ", ".join(OUTPUT_KINDS))),
    _key("output.storage_path", str, "/var/lib/obscura", "card mount point; photos go in DCIM/",
         _data_folder()),
    _key("pins.shutter", int, 17, "shutter button (BCM)", _gpio_pin()),
    _key("pins.mode", int, 27, "mode button (BCM)", _gpio_pin()),
    _key("pins.look", int, 22, "look button (BCM)", _gpio_pin()),
    _key("pins.power", int, 3, "power button (BCM; GPIO3 also wakes a halted Pi)", _gpio_pin()),
    _key("pins.led", int, 4, "status LED (BCM)", _gpio_pin()),
    _key("led.enabled", bool, True, "drive the status LED"),
    _key("led.active_high", bool, True, "LED lights when the pin is high"),
    _key("lens.name", str, "", "lens in use, for EXIF/DNG and its shading table (obscura lens set)"),
    _key("lens.focal_length_mm", float, 0.0, "focal length (0 = unknown)", _between(0.0, 2000.0)),
    _key("lens.f_number", float, 0.0, "aperture in use (0 = unknown)", _between(0.0, 64.0)),
    _key("lens.library_dir", str, "/var/lib/obscura/lenses",
         "lens profiles and flat-field calibrations (obscura lens, obscura calibrate)",
         _data_folder()),
    _key("display.preview", str, "auto",
         "live preview with focus peaking on an HDMI/DSI display (auto: when one is connected)",
         choices=_one_of("auto", "on", "off")),
)  # fmt: skip

KEYS: dict[str, Key] = {key.name: key for key in SCHEMA}

#: Short names that would be ambiguous (``pins.look``, ``pins.mode``) mean these keys.
ALIASES = {"look": "output.look", "mode": "capture.mode"}


def _likely_key(name: str) -> str | None:
    """The key someone who wrote ``name`` most likely meant: the alias or the key of that
    short name (``look`` -> ``output.look``), else the nearest full or short name."""
    if name in ALIASES:
        return ALIASES[name]
    by_short_name = {}
    for key in SCHEMA:
        by_short_name.setdefault(key.short_name, key.name)
    if name in by_short_name:
        return by_short_name[name]
    close = difflib.get_close_matches(name, KEYS, n=1)
    if close:
        return close[0]
    close = difflib.get_close_matches(name.rpartition(".")[2], by_short_name, n=1)
    return ALIASES.get(close[0], by_short_name[close[0]]) if close else None


def _unknown_key(name: str, source: str, value: Any = None) -> ConfigError:
    what = f"{name} = {shown(value)}" if value is not None else repr(name)
    likely = _likely_key(name)
    hint = ""
    if likely is not None and "." in name:
        hint = f" (did you mean {likely}?)"
    elif likely is not None:  # a key outside any table: name the table it belongs in
        section, _, short_name = likely.partition(".")
        hint = f" (did you mean {likely}: {short_name} under [{section}]?)"
    return ConfigError(f"{source}: unknown key {what}{hint}")


def resolve_key(name: str, source: str = "command line") -> Key:
    """The key called ``name``: ``output.look``, an alias (``look``) or a unique short name.

    Raises
    ------
    ConfigError
        ``name`` is unknown, or a short name shared by several sections (``mode``).
    """
    if name in KEYS or name in ALIASES:
        return KEYS[ALIASES.get(name, name)]
    matches = [key for key in SCHEMA if key.short_name == name]
    if len(matches) == 1:
        return matches[0]
    if matches:
        names = ", ".join(key.name for key in matches)
        raise ConfigError(f"{source}: {name!r} is ambiguous: say which of {names}")
    raise _unknown_key(name, source)


#: The keys naming GPIO pins; no two may share a pin (the LED's only while it is enabled).
PIN_KEYS = ("pins.shutter", "pins.mode", "pins.look", "pins.power", "pins.led")
DEFAULT_SOURCE = "default"


@dataclass(frozen=True)
class Config:
    """A complete, validated configuration: every key of :data:`SCHEMA` has a value.

    ``sources`` says where each value came from (a file, ``command line``, a board default);
    keys it does not name are at the schema's default. Two configurations with the same
    values are equal wherever the values came from.
    """

    values: Mapping[str, Any]
    sources: Mapping[str, str] = field(default_factory=dict, compare=False)

    def __getitem__(self, name: str) -> Any:
        if name not in KEYS:
            raise ConfigError(f"unknown key {name!r}")
        return self.values[name]

    def source(self, name: str) -> str:
        """Where the value of ``name`` came from."""
        return self.sources.get(name, DEFAULT_SOURCE)

    def with_values(self, values: Mapping[str, Any], source: str) -> Config:
        """A copy with ``values`` (``{full name: value}``) set from ``source``, each key and
        the whole result validated (:func:`check_config`)."""
        return check_config(self.overridden_by(validate_values(values, source), source))

    def overridden_by(self, values: Mapping[str, Any], source: str) -> Config:
        """A copy with ``values`` set from ``source`` as they are: for values already
        validated key by key (a file read), checked as a whole later (:func:`load_config`)."""
        return Config({**self.values, **values}, {**self.sources, **dict.fromkeys(values, source)})

    def with_value(self, name: str, value: Any, source: str = "command line") -> Config:
        """A copy with ``name`` set to ``value`` (validated)."""
        return self.with_values({name: value}, source)

    def as_dict(self) -> dict[str, Any]:
        """Every key and its value, in schema order (JSON-serialisable)."""
        return {key.name: self.values[key.name] for key in SCHEMA}


def validate_values(values: Mapping[str, Any], source: str) -> dict[str, Any]:
    """``{full name: value}`` with each value validated by its key; errors name ``source``."""
    for name, value in values.items():
        if name not in KEYS:
            raise _unknown_key(name, source, value)
    return {name: KEYS[name].validate(value, source) for name, value in values.items()}


def check_config(config: Config) -> Config:
    """``config`` if its keys agree with each other, else a ConfigError naming the file,
    key and value at fault: no two buttons (nor a button and the enabled LED) on one pin."""
    claimed: dict[int, str] = {}
    for name in PIN_KEYS:
        if name == "pins.led" and not config["led.enabled"]:
            continue
        pin = config[name]
        other = claimed.setdefault(pin, name)
        if other != name:
            # Blame the key a file set rather than one left at its default.
            is_default = config.source(name) == DEFAULT_SOURCE
            culprit, first = (other, name) if is_default else (name, other)
            raise ConfigError(
                f"{config.source(culprit)}: {culprit} = {pin}: GPIO {pin} is already "
                f"{first} (from {config.source(first)}); each button and the LED need a pin "
                "of their own"
            )
    return config


MB = 1024 * 1024
#: Defaults chosen by the board's memory (MemTotal, which the kernel reports below the
#: board's size: about 430 MB on a Zero 2 W, 900 MB on a 1 GB Pi 4): the first row whose
#: limit is above MemTotal applies. Larger boards, or one whose memory is unknown, get the
#: schema's defaults. See the README ("The camera") for the figures behind them.
MEMORY_DEFAULTS: tuple[tuple[int, str, Mapping[str, Any]], ...] = (
    (768 * MB, "512 MB", {
        "camera.resolution": "binned",
        "capture.ring_frames": 2, "capture.burst_frames": 3, "capture.night_max_frames": 4,
        "capture.write_behind_shots": 0, "output.keep": ["dng"],
    }),
    (1536 * MB, "1 GB", {
        "capture.ring_frames": 3, "capture.burst_frames": 3, "capture.night_max_frames": 4,
        "capture.write_behind_shots": 0,
    }),
)  # fmt: skip


def memory_defaults(mem_total_bytes: int | None) -> tuple[str | None, dict[str, Any]]:
    """The board class (``"512 MB"``) and the defaults that differ from the schema's for a
    board whose MemTotal is ``mem_total_bytes``; ``(None, {})`` for large or unknown boards."""
    if mem_total_bytes is not None:
        for limit, board, values in MEMORY_DEFAULTS:
            if mem_total_bytes < limit:
                return board, {name: list(v) if isinstance(v, list) else v
                               for name, v in values.items()}
    return None, {}


def board_memory_bytes(meminfo: Path = Path("/proc/meminfo")) -> int | None:
    """The board's ``MemTotal`` (bytes), or None where the kernel reports none."""
    try:
        with meminfo.open(encoding="ascii") as lines:
            for line in lines:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def default_config(mem_total_bytes: int | None = None) -> Config:
    """Every key at its default; with ``mem_total_bytes``, the memory-dependent ones chosen
    for that board (:data:`MEMORY_DEFAULTS`)."""
    config = Config({key.name: key.default for key in SCHEMA})
    board, values = memory_defaults(mem_total_bytes)
    if board is None:
        return config
    source = f"default for a {board} board (MemTotal {mem_total_bytes // MB} MB)"
    return Config({**config.values, **values}, dict.fromkeys(values, source))


def _flatten(table: Mapping[str, Any]) -> Iterable[tuple[str, Any]]:
    """``(section.name, value)`` of a TOML document's tables; anything deeper is a value
    (which then has the wrong type, or names an unknown key)."""
    for name, value in table.items():
        if isinstance(value, dict) and name not in KEYS:
            for inner, inner_value in value.items():
                yield f"{name}.{inner}", inner_value
        else:
            yield name, value


def parse_config_text(text: str, source: str) -> dict[str, Any]:
    """The keys a TOML text sets, validated, by full name; errors name ``source``."""
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    except RecursionError:
        raise ConfigError(f"{source}: values nested too deep") from None
    except ValueError as exc:  # Python's limit on the digits of an integer
        raise ConfigError(f"{source}: {exc}") from None
    values = {}
    for name, value in _flatten(table):
        if name not in KEYS:
            raise _unknown_key(name, source, value)
        values[name] = KEYS[name].validate(value, source)
    return values


def read_config_file(path: Path) -> dict[str, Any]:
    """The keys ``path`` sets (validated); empty when the file does not exist."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:  # ValueError: undecodable text, a NUL in the path
        raise ConfigError(f"{shown(str(path))}: cannot read: {exc}") from None
    return parse_config_text(text, str(path))


def load_config(paths: Iterable[Path], base: Config | None = None) -> Config:
    """Defaults (or ``base``) overridden by each existing file of ``paths`` in turn.

    This is the one validation of a configuration: ``config check``, ``config set``, the
    daemon's start and its reload all come through here. Raises ConfigError naming the
    file, key and value at fault.
    """
    config = base or default_config()
    for path in paths:
        config = config.overridden_by(read_config_file(path), str(path))
    return check_config(config)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # a JSON string is a TOML basic string
    return repr(value)


def render_config(values: Mapping[str, Any] | None = None) -> str:
    """A commented TOML file: every key with its help; keys in ``values`` set, others commented.

    ``render_config()`` is the default file setup.sh installs; reading the result back gives
    ``values`` again.
    """
    values = values or {}
    lines = [
        "# Obscura configuration. `obscura config set KEY=VALUE` rewrites this file and applies",
        "# it to the running camera; after editing it by hand: `sudo systemctl reload obscura`.",
        "# `obscura config check` validates it. Commented keys are at their default.",
        f"# An overlay on the boot partition ({BOOT_OVERLAY_PATH}) overrides this file.",
    ]
    section = None
    for key in SCHEMA:
        if key.section != section:
            section = key.section
            lines += ["", f"[{section}]"]
        allowed = ", ".join(key.choices()) if key.choices else key.expected
        lines.append(f"# {key.help}" + (f" ({allowed})" if allowed else ""))
        by_board = [f"{board}: {_toml_value(board_values[key.name])}"
                    for _, board, board_values in MEMORY_DEFAULTS if key.name in board_values]
        if by_board:
            lines.append(f"# default by the board's memory: {', '.join(by_board)}, "
                         f"larger: {_toml_value(key.default)}")
        if key.name in values:
            lines.append(f"{key.short_name} = {_toml_value(values[key.name])}")
        else:
            lines.append(f"# {key.short_name} = {_toml_value(key.default)}")
    return "\n".join(lines) + "\n"


def write_config_file(path: Path, values: Mapping[str, Any]) -> Path:
    """Write ``values`` to ``path`` as :func:`render_config` does, atomically.

    The file keeps its permissions (0644 when new) so that members of the ``obscura``
    group can still read it; comments of one's own are not kept.
    """
    validate_values(values, str(path))
    try:
        mode = path.stat().st_mode & 0o777
    except FileNotFoundError:
        mode = 0o644
    return write_atomic(path, render_config(values).encode("utf-8"), mode=mode)
