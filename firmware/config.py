"""Configuration: a value for every key of the schema, where each came from, and the files.

The keys are declared once, in :mod:`firmware.config_schema`; a :class:`Config` reads them
typed (``config.capture.mode``). Files are TOML (``/etc/obscura/config.toml``, then optional
overlays such as one on the boot partition): later files override earlier ones key by key.
Errors name the file, the key (``section.name``) and the value; unknown keys are errors (the
schema of Radicale's ``config.py``). The commented default file is generated from the schema
(:func:`render_config`), and ``obscura config set`` rewrites a file the same way.
"""

from __future__ import annotations

import difflib
import json
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from firmware.config_schema import (
    KEYS,
    SCHEMA,
    ConfigError,
    Key,
    PinSettings,
    Settings,
    sections_of,
    shown,
)
from hardware.storage import write_atomic

DEFAULT_CONFIG_PATH = Path("/etc/obscura/config.toml")
BOOT_OVERLAY_PATH = Path("/boot/firmware/obscura.toml")
DEFAULT_CONFIG_PATHS = (DEFAULT_CONFIG_PATH, BOOT_OVERLAY_PATH)


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
PIN_KEYS = tuple(f"pins.{item.name}" for item in fields(PinSettings))
DEFAULT_SOURCE = "default"


@dataclass(frozen=True, init=False)
class Config(Settings):
    """A complete, validated configuration: every key of :data:`SCHEMA` has a value.

    Read a key typed, through its frozen section (``config.capture.mode``,
    ``config.output.keep``: a tuple); ``config["capture.mode"]`` is for names chosen at run
    time (``obscura config get KEY``). ``sources`` says where each value came from (a file,
    ``command line``, a board default); keys it does not name are at the schema's default.
    Two configurations with the same values are equal wherever the values came from.
    """

    values: Mapping[str, Any]
    sources: Mapping[str, str] = field(compare=False)

    def __init__(self, values: Mapping[str, Any], sources: Mapping[str, str] | None = None):
        object.__setattr__(self, "values", values)
        object.__setattr__(self, "sources", {} if sources is None else sources)
        for section, settings in sections_of(values).items():
            object.__setattr__(self, section, settings)

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
        if name == "pins.led" and not config.led.enabled:
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
        "capture.write_behind_shots": 0, "capture.merge": "resample", "output.keep": ["dng"],
    }),
    (1536 * MB, "1 GB", {
        "capture.ring_frames": 3, "capture.burst_frames": 3, "capture.night_max_frames": 4,
        "capture.write_behind_shots": 0, "capture.merge": "resample",
    }),
    # Within the 1.5 GB a 2 GB Pi leaves the service (bench/camera.py --boards 2048
    # --memory-limit-mb 1500): 15 night frames, or the kernel merge, were OOM-killed there.
    (3072 * MB, "2 GB", {"capture.merge": "resample", "capture.night_max_frames": 10}),
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
