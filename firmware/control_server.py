"""The daemon's end of the control socket (:mod:`firmware.control_socket`'s protocol).

The server is bounded whatever its clients do: one thread reads every connection (a
selector), a fixed pool of worker threads answers the requests, at most
``max_connections`` are open (beyond, the longest idle one is closed, or the new client is
told "busy"), a request must arrive whole within ``request_timeout_s`` of its first byte
and be at most :data:`~firmware.control_socket.MAX_REQUEST_BYTES` long and
:data:`~firmware.control_socket.MAX_JSON_DEPTH` deep, and every request gets exactly one
reply, an error if it is malformed. A request being handled has no deadline of the
socket's (``shoot`` waits for its acknowledgement).
"""

from __future__ import annotations

import concurrent.futures
import grp
import logging
import os
import queue
import selectors
import socket
import stat
import threading
import time
from pathlib import Path
from typing import Any

from firmware.control_socket import (
    MAX_REQUEST_BYTES,
    ControlError,
    Handler,
    RequestError,
    encode_reply,
    parse_request,
)

logger = logging.getLogger(__name__)

SOCKET_GROUP = "obscura"
SOCKET_MODE = 0o660
#: Connections open at once (file descriptors the card writer may not lose), and clients
#: the kernel queues before accept.
MAX_CONNECTIONS = 256
LISTEN_BACKLOG = 128
#: Threads answering requests.
REQUEST_WORKERS = 8
READ_CHUNK_BYTES = 16 * 1024


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
            connection.sock.sendall(encode_reply(reply))
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
        sock.send(encode_reply(reply))
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
        The socket to create (:data:`~firmware.control_socket.DEFAULT_SOCKET_PATH` in the
        service); a stale one is replaced.
    handler
        Turns a request into a reply: a :class:`~firmware.control_socket.ControlHandler`.
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

