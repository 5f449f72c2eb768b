"""The control protocol: JSON lines over a UNIX socket in ``/run/obscura``.

``ssh camera obscura status`` runs the client (:mod:`firmware.control_client`), which
connects to the daemon's socket, served by :mod:`firmware.control_server`. There is no
network listener: who may control the camera is decided by the socket's permissions (mode
0660, group ``obscura``). Each request is one JSON object on one line,
``{"command": "status"}``; each reply is one line, ``{"ok": true, "result": ...}`` or
``{"ok": false, "error": "..."}``. A connection may carry several requests. A request is at
most :data:`MAX_REQUEST_BYTES` long and :data:`MAX_JSON_DEPTH` deep.

:class:`ControlHandler` answers the requests by calling the daemon's thread-safe API
(``status()``, ``request_shot(mode)``, ``focus(region)``, ``calibrate_flat(lens)``) and the
:class:`~firmware.config_store.ConfigStore` (``config.set``, and ``lens.set``, which checks
the lens in the library first).
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

from firmware.config import KEYS, Config, ConfigError
from firmware.config_store import ConfigStore
from hardware.thermal import THERMAL_ZONE, soc_temperature_c
from pipeline.errors import ObscuraError

logger = logging.getLogger(__name__)

DEFAULT_SOCKET_PATH = Path("/run/obscura/control.sock")
SOCKET_ENV = "OBSCURA_SOCKET"
MAX_REQUEST_BYTES = 64 * 1024
#: Deepest nesting of arrays and objects a request may have (requests use 2).
MAX_JSON_DEPTH = 32
#: A JSON string (to its closing quote, or the end: linear time whatever the input), or a bracket.
_JSON_STRING_OR_BRACKET = re.compile(r'"(?:[^"\\]|\\.)*"?|[\[\]{}]')

Handler = Callable[[Mapping[str, Any]], dict[str, Any]]


class ControlError(ObscuraError, ConnectionError):
    """The daemon cannot be reached, or replied with something that is not the protocol."""


class RemoteError(ObscuraError, RuntimeError):
    """The daemon refused a request; the message is its reason (file, key and value...)."""


class RequestError(ObscuraError, ValueError):
    """A request line the server cannot read (not JSON, too deep, not an object...)."""


class CameraDaemon(Protocol):
    """What the control socket needs from the daemon: its thread-safe API."""

    def status(self) -> dict[str, Any]: ...

    def request_shot(self, mode: str | None) -> dict[str, Any]: ...

    def apply_config(self, config: Config) -> None: ...

    def focus(self, region: tuple[float, ...] | None, reset: bool) -> dict[str, Any]: ...

    def calibrate_flat(self, lens: str, frames: int) -> dict[str, Any]: ...


class ControlHandler:
    """Turns one request into one reply by calling the daemon and the configuration store.

    Parameters
    ----------
    daemon
        The camera daemon (``status``, ``request_shot``, ``apply_config``).
    config_store
        The configuration in force; ``config set`` goes through it.
    thermal_path
        Where to read the temperature when the daemon's status does not give one.
    """

    def __init__(
        self,
        daemon: CameraDaemon,
        config_store: ConfigStore,
        thermal_path: Path = THERMAL_ZONE,
    ) -> None:
        self.daemon = daemon
        self.config_store = config_store
        self.thermal_path = thermal_path
        self._commands: dict[str, Callable[[Mapping[str, Any]], Any]] = {
            "status": self._status,
            "shoot": self._shoot,
            "config.get": lambda request: self.config_store.get(_key(request, "config.get")),
            "config.sources": lambda request: self.config_store.sources(
                _key(request, "config.sources")),
            "config.set": lambda request: self.config_store.set(_assignments(request)),
            "lens.set": self._lens_set,
            "calibrate.flat": self._calibrate_flat,
            "focus": self._focus,
        }

    def __call__(self, request: Mapping[str, Any]) -> dict[str, Any]:
        """The reply to ``request``; errors become ``{"ok": false, "error": ...}``, never raise."""
        command = request.get("command")
        if not isinstance(command, str) or command not in self._commands:
            known = ", ".join(self._commands)
            return {"ok": False, "error": f"command = {command!r}: expected one of {known}"}
        try:
            return {"ok": True, "result": self._commands[command](request)}
        except (ObscuraError, ValueError, OSError) as exc:
            return {"ok": False, "error": str(exc)}
        except Exception as exc:  # a bug in one request must not take the socket down
            logger.exception("control request %r failed", command)
            return {"ok": False, "error": f"internal error: {type(exc).__name__}: {exc}"}

    def _status(self, request: Mapping[str, Any]) -> dict[str, Any]:
        status = dict(self.daemon.status())
        if status.get("temperature_c") is None:
            status["temperature_c"] = soc_temperature_c(self.thermal_path)
        status["config_error"] = self.config_store.error
        return status

    def _shoot(self, request: Mapping[str, Any]) -> dict[str, Any]:
        mode = request.get("mode")
        if mode is not None:
            KEYS["capture.mode"].validate(mode, "shoot")
        return dict(self.daemon.request_shot(mode))


    def _lens_set(self, request: Mapping[str, Any]) -> dict[str, Any]:
        """Put a lens of the daemon's library in use: ``{"name": ..., "f_number": ...}``."""
        from firmware.lens_profiles import LensLibrary, lens_settings

        name = request.get("name")
        f_number = request.get("f_number")
        if not isinstance(name, str) or not name:
            raise ConfigError(f"lens.set: name = {name!r}: expected a lens name")
        if f_number is not None and (isinstance(f_number, bool)
                                     or not isinstance(f_number, int | float)):
            raise ConfigError(f"lens.set: f_number = {f_number!r}: expected a number")
        library = LensLibrary(Path(self.config_store.config.lens.library_dir))
        return self.config_store.set(lens_settings(library, name, f_number), source="lens set")

    def _calibrate_flat(self, request: Mapping[str, Any]) -> dict[str, Any]:
        lens, frames = request.get("lens"), request.get("frames", 4)
        if not isinstance(lens, str) or not lens:
            raise ConfigError(f"calibrate.flat: lens = {lens!r}: expected a lens name")
        if isinstance(frames, bool) or not isinstance(frames, int):
            raise ConfigError(f"calibrate.flat: frames = {frames!r}: expected an integer")
        return dict(self.daemon.calibrate_flat(lens, frames))

    def _focus(self, request: Mapping[str, Any]) -> dict[str, Any]:
        region = request.get("region")
        if region is not None and not (
            isinstance(region, list) and len(region) == 4
            and all(isinstance(v, int | float) and not isinstance(v, bool) for v in region)
        ):
            raise ConfigError(f"focus: region = {region!r}: expected [top, left, height, width]")
        return dict(self.daemon.focus(None if region is None else tuple(region),
                                      bool(request.get("reset", False))))


def _key(request: Mapping[str, Any], command: str) -> str | None:
    """The optional ``key`` of a request: a key name, or None for all of them."""
    key = request.get("key")
    if key is not None and not isinstance(key, str):
        raise ConfigError(f"{command}: key = {key!r}: expected a key name")
    return key


def _assignments(request: Mapping[str, Any]) -> dict[str, Any]:
    """``{name: value}``: text is parsed by the key's type, other JSON values are validated
    as they are (null is refused, never stored as the text "None")."""
    assignments = request.get("assignments")
    if not isinstance(assignments, dict) or not assignments:
        raise ConfigError("config.set needs assignments: {name: value, ...}")
    return dict(assignments)


def _is_nested_deeper(text: str, max_depth: int) -> bool:
    """Whether the arrays and objects of JSON ``text`` nest deeper than ``max_depth``
    (brackets inside strings do not count): found in linear time without parsing, so no
    input can exhaust the parser's stack."""
    depth = 0
    for token in _JSON_STRING_OR_BRACKET.finditer(text):
        bracket = token.group()
        if bracket in "[{":
            depth += 1
            if depth > max_depth:
                return True
        elif bracket in "]}":
            depth -= 1
    return False


def parse_request(line: bytes) -> dict[str, Any]:
    """One request line as a JSON object, or :class:`RequestError` saying what is wrong
    (not UTF-8, not JSON, nested deeper than :data:`MAX_JSON_DEPTH`, an integer too long
    to convert, not an object)."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RequestError(f"not a JSON line: {exc}") from None
    if _is_nested_deeper(text, MAX_JSON_DEPTH):
        raise RequestError(f"request nested deeper than {MAX_JSON_DEPTH} levels")
    try:
        request = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RequestError(f"not a JSON line: {exc}") from None
    except (ValueError, RecursionError) as exc:  # e.g. an integer beyond int_max_str_digits
        raise RequestError(f"unreadable request: {exc}") from None
    if not isinstance(request, dict):
        raise RequestError("a request is a JSON object")
    return request


def encode_reply(reply: dict[str, Any]) -> bytes:
    """``reply`` as one JSON line; one that cannot be encoded becomes an internal error."""
    try:
        return json.dumps(reply, default=str).encode("utf-8") + b"\n"
    except (TypeError, ValueError) as exc:
        logger.error("control reply not encodable: %s", exc)
        return json.dumps({"ok": False, "error": f"internal error: reply: {exc}"}).encode() + b"\n"


def socket_path(explicit: str | None = None) -> Path:
    """``--socket``, else ``$OBSCURA_SOCKET``, else ``/run/obscura/control.sock``."""
    return Path(explicit or os.environ.get(SOCKET_ENV) or DEFAULT_SOCKET_PATH)

