"""The command line's end of the control socket (:mod:`firmware.control_socket`'s protocol)."""

from __future__ import annotations

import argparse
import json
import socket
import time
from pathlib import Path
from typing import Any

from firmware.control_socket import (
    DEFAULT_SOCKET_PATH,
    MAX_REQUEST_BYTES,
    SOCKET_ENV,
    ControlError,
    RemoteError,
    socket_path,
)

#: A client finding the accept queue full tries again after this long (seconds).
CONNECT_RETRY_S = 0.01


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



def add_client_arguments(parser: argparse.ArgumentParser) -> None:
    """``--socket PATH`` and ``--json``, shared by the commands that talk to the daemon."""
    parser.add_argument(
        "--socket", help=f"the daemon's control socket (${SOCKET_ENV}, {DEFAULT_SOCKET_PATH})"
    )
    parser.add_argument("--json", action="store_true", help="print JSON, for scripts")


def connect(args: argparse.Namespace) -> ControlClient:
    """A client for the socket named by ``args.socket`` (see :func:`socket_path`)."""
    return ControlClient(socket_path(args.socket))
