"""Control over SSH: a UNIX socket in ``/run/obscura`` speaking JSON lines.

``ssh camera obscura status`` runs the client below, which connects to the daemon's socket.
There is no network listener: who may control the camera is decided by the socket's
permissions (mode 0660, group ``obscura``). Each request is one JSON object on one line,
``{"command": "status"}``; each reply is one line, ``{"ok": true, "result": ...}`` or
``{"ok": false, "error": "..."}``. A connection may carry several requests.

The server is a thread accepting connections, one short-lived thread per connection; the
requests call the daemon's thread-safe API (``status()``, ``request_shot(mode)``,
``focus(region)``, ``calibrate_flat(lens)``) and the :class:`~firmware.config_store.ConfigStore`
(``config.set``, and ``lens.set``, which checks the lens in the library first).
"""

from __future__ import annotations

import argparse
import grp
import json
import logging
import os
import socket
import socketserver
import stat
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

from firmware.config import KEYS, Config, ConfigError
from firmware.config_store import ConfigStore
from pipeline.errors import ObscuraError

logger = logging.getLogger(__name__)

DEFAULT_SOCKET_PATH = Path("/run/obscura/control.sock")
SOCKET_ENV = "OBSCURA_SOCKET"
SOCKET_GROUP = "obscura"
SOCKET_MODE = 0o660
THERMAL_ZONE_PATH = Path("/sys/class/thermal/thermal_zone0/temp")
MAX_REQUEST_BYTES = 64 * 1024

Handler = Callable[[Mapping[str, Any]], dict[str, Any]]


class ControlError(ObscuraError, ConnectionError):
    """The daemon cannot be reached, or replied with something that is not the protocol."""


class RemoteError(ObscuraError, RuntimeError):
    """The daemon refused a request; the message is its reason (file, key and value...)."""


class CameraDaemon(Protocol):
    """What the control socket needs from the daemon: its thread-safe API."""

    def status(self) -> dict[str, Any]: ...

    def request_shot(self, mode: str | None) -> dict[str, Any]: ...

    def apply_config(self, config: Config) -> None: ...

    def focus(self, region: tuple[float, ...] | None, reset: bool) -> dict[str, Any]: ...

    def calibrate_flat(self, lens: str, frames: int) -> dict[str, Any]: ...


def read_temperature_c(path: Path = THERMAL_ZONE_PATH) -> float | None:
    """The SoC temperature in degrees Celsius, or None where the kernel does not report it."""
    try:
        return int(path.read_text(encoding="ascii").strip()) / 1000.0
    except (OSError, ValueError):
        return None


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
        thermal_path: Path = THERMAL_ZONE_PATH,
    ) -> None:
        self.daemon = daemon
        self.config_store = config_store
        self.thermal_path = thermal_path
        self._commands: dict[str, Callable[[Mapping[str, Any]], Any]] = {
            "status": self._status,
            "shoot": self._shoot,
            "config.get": lambda request: self.config_store.get(request.get("key")),
            "config.sources": lambda request: self.config_store.sources(request.get("key")),
            "config.set": lambda request: self.config_store.set(_assignments(request)),
            "lens.set": self._lens_set,
            "calibrate.flat": self._calibrate_flat,
            "focus": self._focus,
        }

    def __call__(self, request: Mapping[str, Any]) -> dict[str, Any]:
        """The reply to ``request``; errors become ``{"ok": false, "error": ...}``, never raise."""
        command = request.get("command")
        if command not in self._commands:
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
            status["temperature_c"] = read_temperature_c(self.thermal_path)
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
        library = LensLibrary(Path(self.config_store.config["lens.library_dir"]))
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


def _assignments(request: Mapping[str, Any]) -> dict[str, Any]:
    """``{name: value}``: text is parsed by the key's type, other JSON values are validated
    as they are (null is refused, never stored as the text "None")."""
    assignments = request.get("assignments")
    if not isinstance(assignments, dict) or not assignments:
        raise ConfigError("config.set needs assignments: {name: value, ...}")
    return dict(assignments)


class _ConnectionHandler(socketserver.StreamRequestHandler):
    """One client connection: JSON lines in, JSON lines out."""

    server: _UnixServer

    def setup(self) -> None:
        self.timeout = self.server.idle_timeout_s
        super().setup()

    def handle(self) -> None:
        try:
            while line := self.rfile.readline(MAX_REQUEST_BYTES + 1):
                if len(line) > MAX_REQUEST_BYTES:
                    self._reply({"ok": False, "error": "request too long"})
                    return
                self._reply(self._answer(line))
        except (TimeoutError, ConnectionError) as exc:
            logger.debug("control connection closed: %s", exc)

    def _answer(self, line: bytes) -> dict[str, Any]:
        try:
            request = json.loads(line)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            return {"ok": False, "error": f"not a JSON line: {exc}"}
        if not isinstance(request, dict):
            return {"ok": False, "error": "a request is a JSON object"}
        return self.server.handler(request)

    def _reply(self, reply: dict[str, Any]) -> None:
        self.wfile.write(json.dumps(reply, default=str).encode("utf-8") + b"\n")
        self.wfile.flush()


class _UnixServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, path: Path, handler: Handler, idle_timeout_s: float) -> None:
        super().__init__(str(path), _ConnectionHandler, bind_and_activate=False)
        self.handler = handler
        self.idle_timeout_s = idle_timeout_s

    def handle_error(self, request: object, client_address: object) -> None:
        logger.exception("control connection failed")


def _remove_stale_socket(path: Path) -> None:
    """Remove a socket left by a crashed daemon; refuse if one is still listening."""
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise ControlError(f"{path}: exists and is not a socket; not replacing it")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(str(path))
        except OSError:
            path.unlink(missing_ok=True)
            return
    raise ControlError(f"{path}: another daemon is listening there")


class ControlServer:
    """The daemon's end of the control socket, served by a background thread.

    Parameters
    ----------
    path
        The socket to create (:data:`DEFAULT_SOCKET_PATH` in the service); a stale one is
        replaced.
    handler
        Turns a request into a reply: a :class:`ControlHandler`.
    group
        Group given the socket when it exists (``obscura``): its members may control the camera.
    mode
        Permissions of the socket; 0660 lets only the owner and the group connect.
    idle_timeout_s
        A connection silent for this long is closed, so no client can hold a thread forever.

    Examples
    --------
    >>> with ControlServer(path, ControlHandler(daemon, store)) as server:
    ...     daemon.run()
    """

    def __init__(
        self,
        path: Path,
        handler: Handler,
        *,
        group: str | None = SOCKET_GROUP,
        mode: int = SOCKET_MODE,
        idle_timeout_s: float = 60.0,
    ) -> None:
        self.path = Path(path)
        _remove_stale_socket(self.path)
        self._server = _UnixServer(self.path, handler, idle_timeout_s)
        try:
            self._server.server_bind()
            self._inode = self.path.stat().st_ino
            os.chmod(self.path, mode)
            _give_to_group(self.path, group)
            self._server.server_activate()
        except OSError as exc:
            self._server.server_close()
            raise ControlError(f"{self.path}: cannot listen: {exc.strerror or exc}") from None
        self._closed = False
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="control-socket", daemon=True
        )
        self._thread.start()
        logger.info("control socket listening at %s", self.path)

    def close(self) -> None:
        """Stop accepting, close the socket and remove its file; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
        try:
            if self.path.stat().st_ino == self._inode:
                self.path.unlink()
        except FileNotFoundError:
            pass

    def __enter__(self) -> ControlServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _give_to_group(path: Path, group: str | None) -> None:
    if group is None:
        return
    try:
        gid = grp.getgrnam(group).gr_gid
    except KeyError:
        logger.debug("no group %r: %s keeps the daemon's group", group, path)
        return
    if path.stat().st_gid == gid:
        return  # the daemon's own group already: no chown (the unit filters that call)
    try:
        os.chown(path, -1, gid)
    except PermissionError:
        logger.warning("%s: cannot give it to group %r: only the daemon's group may connect",
                       path, group)


class ControlClient:
    """The command line's end: sends requests to the daemon and returns their results.

    Parameters
    ----------
    path
        The daemon's socket.
    timeout_s
        How long to wait for a reply.
    """

    def __init__(self, path: Path = DEFAULT_SOCKET_PATH, timeout_s: float = 60.0) -> None:
        self.path = Path(path)
        self.timeout_s = timeout_s
        self._socket: socket.socket | None = None
        self._file = None

    def _connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout_s)
        try:
            sock.connect(str(self.path))
        except (FileNotFoundError, ConnectionRefusedError):
            sock.close()
            raise ControlError(
                f"{self.path}: the camera daemon is not running "
                "(sudo systemctl start obscura; see `obscura logs`)"
            ) from None
        except PermissionError:
            sock.close()
            raise ControlError(
                f"{self.path}: permission denied: only the obscura group controls the camera "
                "(sudo usermod -aG obscura $USER, then log in again)"
            ) from None
        except OSError as exc:
            sock.close()
            raise ControlError(f"{self.path}: cannot connect: {exc.strerror or exc}") from None
        self._socket, self._file = sock, sock.makefile("rwb")

    def request(self, command: str, **params: Any) -> Any:
        """Send ``{"command": command, **params}``; the reply's result.

        Raises
        ------
        ControlError
            The daemon is unreachable or the reply is not a protocol line.
        RemoteError
            The daemon refused the request; the message says why.
        """
        if self._file is None:
            self._connect()
        line = json.dumps({"command": command, **params}).encode("utf-8") + b"\n"
        try:
            self._file.write(line)
            self._file.flush()
            reply_line = self._file.readline(MAX_REQUEST_BYTES * 16)
        except OSError as exc:
            self.close()
            raise ControlError(f"{self.path}: {command}: {exc.strerror or exc}") from None
        try:
            reply = json.loads(reply_line)
            ok = reply["ok"]
        except (ValueError, TypeError, KeyError):
            self.close()
            raise ControlError(f"{self.path}: {command}: no valid reply from the daemon") from None
        if not ok:
            raise RemoteError(reply.get("error", "refused"))
        return reply.get("result")

    def close(self) -> None:
        """Close the connection; safe to call twice."""
        if self._file is not None:
            self._file.close()
            self._file = None
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    def __enter__(self) -> ControlClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def socket_path(explicit: str | None = None) -> Path:
    """``--socket``, else ``$OBSCURA_SOCKET``, else ``/run/obscura/control.sock``."""
    return Path(explicit or os.environ.get(SOCKET_ENV) or DEFAULT_SOCKET_PATH)


def add_client_arguments(parser: argparse.ArgumentParser) -> None:
    """``--socket PATH`` and ``--json``, shared by the commands that talk to the daemon."""
    parser.add_argument(
        "--socket", help=f"the daemon's control socket (${SOCKET_ENV}, {DEFAULT_SOCKET_PATH})"
    )
    parser.add_argument("--json", action="store_true", help="print JSON, for scripts")


def connect(args: argparse.Namespace) -> ControlClient:
    """A client for the socket named by ``args.socket`` (see :func:`socket_path`)."""
    return ControlClient(socket_path(args.socket))
