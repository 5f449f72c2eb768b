"""Tell systemd how the service is doing: ``sd_notify`` without libsystemd.

A ``Type=notify`` unit gets ``NOTIFY_SOCKET`` in its environment: a datagram socket to which
the service sends ``READY=1``, ``STATUS=...``, ``WATCHDOG=1``, ``RELOADING=1`` and
``STOPPING=1`` (sd_notify(3)). Outside systemd the variable is unset and every call does
nothing. A failed send is logged and never raised: the camera must not stop because its
supervisor is unreachable (the behaviour of gunicorn's ``systemd.py``).
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Mapping

logger = logging.getLogger(__name__)


def _socket_address(value: str | None) -> str | None:
    """``NOTIFY_SOCKET`` as an ``AF_UNIX`` address: ``@name`` is the abstract namespace."""
    if not value or value[0] not in "@/" or len(value) < 2:
        return None
    return "\0" + value[1:] if value[0] == "@" else value


def watchdog_interval_s(environ: Mapping[str, str] | None = None) -> float | None:
    """How often to send ``WATCHDOG=1``: half of ``WATCHDOG_USEC``, or None when off.

    Parameters
    ----------
    environ
        The environment to read (``os.environ`` by default). ``WATCHDOG_PID``, when set,
        must name this process, as sd_watchdog_enabled(3) requires.
    """
    environ = os.environ if environ is None else environ
    pid = environ.get("WATCHDOG_PID")
    if pid and pid != str(os.getpid()):
        return None
    try:
        usec = int(environ.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    return usec / 2e6 if usec > 0 else None


class SystemdNotifier:
    """Send state changes to systemd's notification socket.

    Parameters
    ----------
    address
        The socket (``/path`` or ``@abstract``); ``NOTIFY_SOCKET`` when None. With neither,
        the notifier is disabled and every method is a no-op.

    Examples
    --------
    >>> with SystemdNotifier() as notifier:
    ...     notifier.ready("idle")
    ...     notifier.watchdog()
    ...     notifier.stopping()
    """

    def __init__(self, address: str | None = None) -> None:
        self._address = _socket_address(
            os.environ.get("NOTIFY_SOCKET") if address is None else address
        )
        self._socket: socket.socket | None = None

    @property
    def is_enabled(self) -> bool:
        """True when running under systemd with a notification socket."""
        return self._address is not None

    def notify(self, **fields: str) -> bool:
        """Send ``KEY=value`` lines (``notify(READY="1", STATUS="idle")``); True if sent."""
        if self._address is None:
            return False
        message = "\n".join(f"{name}={value}" for name, value in fields.items())
        try:
            if self._socket is None:
                kind = socket.SOCK_DGRAM | socket.SOCK_CLOEXEC
                self._socket = socket.socket(socket.AF_UNIX, kind)
            self._socket.sendto(message.encode("utf-8"), self._address)
        except OSError as exc:
            logger.debug("sd_notify %r failed: %s", message, exc)
            return False
        return True

    def ready(self, status: str | None = None) -> bool:
        """``READY=1``: the camera is up (start-up, or the end of a reload)."""
        return self.notify(READY="1", **({"STATUS": status} if status else {}))

    def status(self, text: str) -> bool:
        """``STATUS=``: the state in words, shown by ``systemctl status obscura``."""
        return self.notify(STATUS=text.replace("\n", " "))

    def watchdog(self) -> bool:
        """``WATCHDOG=1``: the main loop is alive (at least every :func:`watchdog_interval_s`)."""
        return self.notify(WATCHDOG="1")

    def reloading(self) -> bool:
        """``RELOADING=1``: re-reading the configuration; follow with :meth:`ready`."""
        return self.notify(RELOADING="1", MONOTONIC_USEC=str(time.monotonic_ns() // 1000))

    def stopping(self) -> bool:
        """``STOPPING=1``: shutting down."""
        return self.notify(STOPPING="1")

    def close(self) -> None:
        """Close the socket; safe to call twice."""
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    def __enter__(self) -> SystemdNotifier:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
