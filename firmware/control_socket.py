"""Control over SSH: a UNIX socket in ``/run/obscura`` speaking JSON lines.

``ssh camera obscura status`` runs the client below, which connects to the daemon's socket.
There is no network listener: who may control the camera is decided by the socket's
permissions (mode 0660, group ``obscura``). Each request is one JSON object on one line,
``{"command": "status"}``; each reply is one line, ``{"ok": true, "result": ...}`` or
``{"ok": false, "error": "..."}``. A connection may carry several requests.

The server is bounded whatever its clients do: one thread reads every connection (a
selector), a fixed pool of worker threads answers the requests, at most
``max_connections`` are open (beyond, the longest idle one is closed, or the new client is
told "busy"), a request must arrive whole within ``request_timeout_s`` of its first byte
and be at most :data:`MAX_REQUEST_BYTES` long and :data:`MAX_JSON_DEPTH` deep, and every
request gets exactly one reply, an error if it is malformed. A request being handled has
no deadline of the socket's (``shoot`` waits for its acknowledgement). The requests call
the daemon's thread-safe API (``status()``, ``request_shot(mode)``,
``focus(region)``, ``calibrate_flat(lens)``) and the :class:`~firmware.config_store.ConfigStore`
(``config.set``, and ``lens.set``, which checks the lens in the library first).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import grp
import json
import logging
import os
import queue
import re
import selectors
import socket
import stat
import threading
import time
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
SOCKET_GROUP = "obscura"
SOCKET_MODE = 0o660
MAX_REQUEST_BYTES = 64 * 1024
#: Deepest nesting of arrays and objects a request may have (requests use 2).
MAX_JSON_DEPTH = 32
#: Connections open at once (file descriptors the card writer may not lose), and clients
#: the kernel queues before accept.
MAX_CONNECTIONS = 256
LISTEN_BACKLOG = 128
#: Threads answering requests.
REQUEST_WORKERS = 8
READ_CHUNK_BYTES = 16 * 1024
#: A client finding the accept queue full tries again after this long (seconds).
CONNECT_RETRY_S = 0.01
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


def _encode_reply(reply: dict[str, Any]) -> bytes:
    try:
        return json.dumps(reply, default=str).encode("utf-8") + b"\n"
    except (TypeError, ValueError) as exc:
        logger.error("control reply not encodable: %s", exc)
        return json.dumps({"ok": False, "error": f"internal error: reply: {exc}"}).encode() + b"\n"


class _Connection:
    """One client: what it sent so far, and since when the server waits for it."""

    def __init__(self, sock: socket.socket, now_s: float) -> None:
        self.sock = sock
        self.buffer = bytearray()
        self.waiting_since_s = now_s  # for the next request
        self.request_started_s: float | None = None  # its first byte
        self.is_at_eof = False


class _SelectorServer:
    """Connections read by one selector thread; requests answered by a fixed pool.

    A connection is in the selector while the server waits for its next request, and
    with a worker while its request is handled (a ``shoot`` may wait for its
    acknowledgement): read deadlines apply only to the first.
    """

    def __init__(self, listener: socket.socket, handler: Handler, *, idle_timeout_s: float,
                 request_timeout_s: float, max_connections: int, workers: int) -> None:
        self._listener = listener
        self._handler = handler
        self.idle_timeout_s = idle_timeout_s
        self.request_timeout_s = request_timeout_s
        self.max_connections = max_connections
        self._selector = selectors.DefaultSelector()
        self._wake_reader, self._wake_writer = socket.socketpair()
        for sock in (self._listener, self._wake_reader, self._wake_writer):
            sock.setblocking(False)
        self._selector.register(self._listener, selectors.EVENT_READ)
        self._selector.register(self._wake_reader, selectors.EVENT_READ)
        self._is_accepting = True
        self._accept_resumes_s = 0.0
        self._connections: set[_Connection] = set()
        self._returned: queue.SimpleQueue[tuple[_Connection, bool]] = queue.SimpleQueue()
        self._pool = concurrent.futures.ThreadPoolExecutor(workers, "control-request")
        self._tick_s = min(0.5, idle_timeout_s / 4, request_timeout_s / 4)
        self._is_closing = False

    # ---------------------------------------------------------------- the selector thread
    def serve(self) -> None:
        try:
            while not self._is_closing:
                for key, _ in self._selector.select(self._tick_s):
                    if key.fileobj is self._listener:
                        self._accept()
                    elif key.fileobj is self._wake_reader:
                        self._drain_wakeups()
                    else:
                        self._read(key.data)
                self._take_back()
                self._expire(time.monotonic())
        finally:
            self._pool.shutdown(wait=False, cancel_futures=True)
            for connection in list(self._connections):
                self._close(connection)
            self._selector.close()
            self._wake_reader.close()
            self._wake_writer.close()

    def stop(self) -> None:
        """Make :meth:`serve` return (a request in hand finishes, its reply goes nowhere)."""
        self._is_closing = True
        self._wake()

    def _wake(self) -> None:
        try:
            self._wake_writer.send(b"\0")
        except OSError:  # full (a wake-up is pending anyway) or closed
            pass

    def _drain_wakeups(self) -> None:
        try:
            while self._wake_reader.recv(4096):
                pass
        except OSError:
            pass

    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self._listener.accept()
            except BlockingIOError:
                return
            except OSError as exc:  # EMFILE...: stop accepting for a moment, not a busy loop
                logger.warning("control socket: cannot accept a connection: %s", exc)
                self._pause_accepting()
                return
            sock.setblocking(False)
            if len(self._connections) >= self.max_connections and not self._evict_oldest_waiting():
                _send_now(sock, {"ok": False, "error": f"busy: {self.max_connections} "
                                 "connections are being served; try again"})
                sock.close()
                continue
            connection = _Connection(sock, time.monotonic())
            self._connections.add(connection)
            self._selector.register(sock, selectors.EVENT_READ, connection)

    def _pause_accepting(self) -> None:
        if self._is_accepting:
            self._selector.unregister(self._listener)
            self._is_accepting = False
        self._accept_resumes_s = time.monotonic() + self._tick_s

    def _evict_oldest_waiting(self) -> bool:
        """Make room by closing the connection that has waited longest without a request."""
        waiting = [c for c in self._connections if c.request_started_s is None
                   and self._is_registered(c)]
        waiting = waiting or [c for c in self._connections if self._is_registered(c)]
        if not waiting:
            return False
        oldest = min(waiting, key=lambda c: c.waiting_since_s)
        logger.debug("control socket: %d connections: closing the longest idle",
                     len(self._connections))
        self._close(oldest)
        return True

    def _is_registered(self, connection: _Connection) -> bool:
        try:
            self._selector.get_key(connection.sock)
        except (KeyError, ValueError):
            return False
        return True

    def _read(self, connection: _Connection) -> None:
        try:
            data = connection.sock.recv(READ_CHUNK_BYTES)
        except BlockingIOError:
            return
        except OSError:
            self._close(connection)
            return
        if not data:
            connection.is_at_eof = True
            if connection.buffer.strip():  # a last request without its newline
                self._dispatch(connection, bytes(connection.buffer))
                connection.buffer.clear()
            else:
                self._close(connection)
            return
        if not connection.buffer:
            connection.request_started_s = time.monotonic()
        connection.buffer += data
        self._dispatch_complete(connection)

    def _dispatch_complete(self, connection: _Connection) -> None:
        newline = connection.buffer.find(b"\n")
        if newline < 0:
            if len(connection.buffer) > MAX_REQUEST_BYTES:
                self._refuse(connection, f"request longer than {MAX_REQUEST_BYTES} bytes")
            return
        line = bytes(connection.buffer[:newline])
        del connection.buffer[:newline + 1]
        if len(line) > MAX_REQUEST_BYTES:
            self._refuse(connection, f"request longer than {MAX_REQUEST_BYTES} bytes")
            return
        self._dispatch(connection, line)

    def _dispatch(self, connection: _Connection, line: bytes) -> None:
        self._selector.unregister(connection.sock)
        self._pool.submit(self._respond, connection, line)

    def _refuse(self, connection: _Connection, error: str) -> None:
        """One error reply, then the connection is closed (what follows is not readable)."""
        _send_now(connection.sock, {"ok": False, "error": error})
        self._close(connection)

    def _take_back(self) -> None:
        """Connections whose reply went out wait for their next request (or close)."""
        now = time.monotonic()
        while True:
            try:
                connection, keep_open = self._returned.get_nowait()
            except queue.Empty:
                return
            if not keep_open or connection.is_at_eof or self._is_closing:
                self._close(connection)
                continue
            connection.waiting_since_s = now
            connection.request_started_s = now if connection.buffer else None
            self._selector.register(connection.sock, selectors.EVENT_READ, connection)
            self._dispatch_complete(connection)  # a request sent right behind the last

    def _expire(self, now_s: float) -> None:
        if not self._is_accepting and now_s >= self._accept_resumes_s:
            self._selector.register(self._listener, selectors.EVENT_READ)
            self._is_accepting = True
        for connection in list(self._connections):
            if not self._is_registered(connection):
                continue  # being answered: no deadline
            started = connection.request_started_s
            if started is not None and now_s - started > self.request_timeout_s:
                logger.info("control socket: a request took over %g s to arrive: closed",
                            self.request_timeout_s)
                self._refuse(connection, f"request not received within "
                                         f"{self.request_timeout_s:g} s: closed")
            elif started is None and now_s - connection.waiting_since_s > self.idle_timeout_s:
                self._close(connection)

    def _close(self, connection: _Connection) -> None:
        if self._is_registered(connection):
            self._selector.unregister(connection.sock)
        self._connections.discard(connection)
        connection.sock.close()

    # -------------------------------------------------------------------- the workers
    def _respond(self, connection: _Connection, line: bytes) -> None:
        """A worker: answer one request, exactly once, then hand the connection back."""
        keep_open = False
        try:
            try:
                reply = self._handler(parse_request(line))
            except RequestError as exc:
                reply = {"ok": False, "error": str(exc)}
            connection.sock.settimeout(self.request_timeout_s)  # a client must read its reply
            connection.sock.sendall(_encode_reply(reply))
            connection.sock.setblocking(False)
            keep_open = True
        except OSError as exc:
            logger.debug("control connection closed: %s", exc)
        except Exception:  # noqa: BLE001 - the socket must outlive any bug
            logger.exception("control request failed")
        finally:
            self._returned.put((connection, keep_open))
            self._wake()


def _send_now(sock: socket.socket, reply: dict[str, Any]) -> None:
    """Best effort, never waiting: a short error line to a client about to be closed."""
    try:
        sock.send(_encode_reply(reply))
    except OSError:
        pass


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
    """The daemon's end of the control socket, served by background threads.

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
        A connection that sends no request for this long is closed.
    request_timeout_s
        A request must arrive whole this long after its first byte (a client dripping it
        is closed with an error), and its reply be read as long.
    max_connections, workers, backlog
        Connections open at once, threads answering requests, clients the kernel queues.

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
        request_timeout_s: float = 10.0,
        max_connections: int = MAX_CONNECTIONS,
        workers: int = REQUEST_WORKERS,
        backlog: int = LISTEN_BACKLOG,
    ) -> None:
        for name, value in (("idle_timeout_s", idle_timeout_s),
                            ("request_timeout_s", request_timeout_s),
                            ("max_connections", max_connections), ("workers", workers),
                            ("backlog", backlog)):
            if not value > 0:
                raise ValueError(f"ControlServer: {name}={value}: expected > 0")
        self.path = Path(path)
        _remove_stale_socket(self.path)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            listener.bind(str(self.path))
            self._inode = self.path.stat().st_ino
            os.chmod(self.path, mode)
            _give_to_group(self.path, group)
            listener.listen(backlog)
        except OSError as exc:
            listener.close()
            raise ControlError(f"{self.path}: cannot listen: {exc.strerror or exc}") from None
        self._listener = listener
        self._server = _SelectorServer(
            listener, handler, idle_timeout_s=idle_timeout_s,
            request_timeout_s=request_timeout_s, max_connections=max_connections,
            workers=workers,
        )
        self._closed = False
        self._thread = threading.Thread(target=self._server.serve, name="control-socket",
                                        daemon=True)
        self._thread.start()
        logger.info("control socket listening at %s", self.path)

    def close(self) -> None:
        """Stop accepting, close the connections and the socket, remove its file; safe to
        call twice."""
        if self._closed:
            return
        self._closed = True
        self._server.stop()
        self._thread.join()
        self._listener.close()
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
        deadline = time.monotonic() + self.timeout_s
        while True:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(self.timeout_s)
            try:
                sock.connect(str(self.path))
                break
            except BlockingIOError:  # the daemon's accept queue is full for now: wait a turn
                sock.close()
                if time.monotonic() >= deadline:
                    raise ControlError(f"{self.path}: the daemon is busy: no connection within "
                                       f"{self.timeout_s:g} s") from None
                time.sleep(CONNECT_RETRY_S)
            except (FileNotFoundError, ConnectionRefusedError):
                sock.close()
                raise ControlError(
                    f"{self.path}: the camera daemon is not running "
                    "(sudo systemctl start obscura; see `obscura logs`)"
                ) from None
            except PermissionError:
                sock.close()
                raise ControlError(
                    f"{self.path}: permission denied: only the obscura group controls the "
                    "camera (sudo usermod -aG obscura $USER, then log in again)"
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
