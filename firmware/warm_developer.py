"""The warm developer: ``obscura develop`` and ``merge`` without the start-up, but the first.

Most of a small develop's time as a process is start-up: numpy, numba and loading its
compiled kernels take about 0.7 s of the 0.85 s a 640x480 DNG takes, on every run (more on
a Pi). So the first ``obscura develop`` (or ``merge``) runs as it always has, in its own
process, and starts beside it a server that keeps the developer loaded; the next ones, from
the same user, send it their command line over a Unix socket and print what it answers,
which skips the start-up (the client imports nothing heavy). It is the pattern of compiler
daemons (dmypy, Gradle's daemon, Nailgun).

It is careful about being the same as a fresh process:

- the server runs each command in the client's working directory, with its umask; its
  stdout and stderr (error messages, and the progress line when the client's stderr is a
  terminal) reach the client as they are written, then its exit status;
- it refuses a client whose code differs from its own (any ``.py``, ``.json``, ``.cube`` or
  ``.toml`` file of the project changed since it started: it then exits) or whose
  environment differs in what the develop reads (``OBSCURA_*``, ``NUMBA_*``, ``HOME``,
  ``XDG_CONFIG_HOME``...); a refused request, or one whose server goes away before it
  answers, runs in the client's own process instead;
- one command at a time: a client that finds it busy (it does not say it is ready within
  :data:`READY_TIMEOUT_S`) runs its command itself, so a slow or hung server never holds a
  command line up; it leaves after :data:`IDLE_S` seconds without a command;
- its socket is in ``$XDG_RUNTIME_DIR/obscura`` (or ``/tmp/obscura-UID``), a folder only
  its user may enter, and it serves only that user (the socket's peer credentials).

``OBSCURA_WARM_DEVELOPER=0`` turns it off (every run is a fresh process; the tests do).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import gc
import hashlib
import io
import json
import logging
import os
import socket
import stat
import struct
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

#: Seconds without a command after which the server exits.
IDLE_S = 600.0
#: The commands it serves (the first argument of ``obscura``): those that load numba and
#: the kernels for one job, and leave nothing running behind them.
COMMANDS = ("develop", "merge")
#: Set to "0" to run every ``obscura develop`` and ``merge`` in its own process.
ENABLE_VARIABLE = "OBSCURA_WARM_DEVELOPER"
#: Environment the develop reads: a client whose values differ runs in its own process.
ENVIRONMENT_PREFIXES = ("OBSCURA_", "NUMBA_")
ENVIRONMENT_NAMES = (
    "HOME", "XDG_CONFIG_HOME", "XDG_RUNTIME_DIR", "PYTHONPATH", "OPENBLAS_NUM_THREADS", "TZ",
)  # fmt: skip
#: Project files whose change makes a running server stale: code, tables, looks, LUTs.
CODE_SUFFIXES = frozenset({".py", ".json", ".toml", ".cube"})
CODE_PACKAGES = ("firmware", "pipeline", "hardware")
ROOT = Path(__file__).resolve().parents[1]
#: The server's first line to each client, and how long either waits for the other's
#: next line: a client that hears nothing (the server is busy with another command, or
#: hung) runs its command itself, and a server that hears no request serves the next.
READY = {"ready": True}
READY_TIMEOUT_S = 2.0
#: Longest request or response line accepted, in bytes.
MAX_MESSAGE = 64 * 1024 * 1024

logger = logging.getLogger(__name__)


def serves(argv: list[str]) -> bool:
    """Whether the command line ``obscura ARGV`` goes to the warm developer: an ``obscura
    develop`` or ``merge``, with the warm developer not turned off
    (``OBSCURA_WARM_DEVELOPER`` is not "0")."""
    enabled = os.environ.get(ENABLE_VARIABLE, "1") != "0"
    return enabled and len(argv) > 0 and argv[0] in COMMANDS


def socket_folder() -> Path:
    """``$XDG_RUNTIME_DIR/obscura`` (systemd's per-user runtime folder), else
    ``/tmp/obscura-UID``."""
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime:
        return Path(runtime) / "obscura"
    return Path(tempfile.gettempdir()) / f"obscura-{os.getuid()}"


def _private_folder() -> Path | None:
    """The socket folder, created if needed; None unless it is ours and closed to others."""
    folder = socket_folder()
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = folder.lstat()
    except OSError:
        return None
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        logger.warning("%s is not a folder only this user can enter: no warm developer", folder)
        return None
    return folder


def code_stamp() -> str:
    """A digest of every project source and data file's path, size and modification time:
    it changes when the code does."""
    digest = hashlib.sha256()
    for package in CODE_PACKAGES:
        for folder, subfolders, files in os.walk(ROOT / package):
            subfolders[:] = sorted(d for d in subfolders if d != "__pycache__")
            for name in sorted(files):
                if os.path.splitext(name)[1] in CODE_SUFFIXES:
                    info = os.stat(os.path.join(folder, name))
                    digest.update(f"{folder}/{name}:{info.st_size}:{info.st_mtime_ns};".encode())
    return digest.hexdigest()


def relevant_environment() -> dict[str, str]:
    """The variables of this process's environment that the develop reads."""
    return {
        key: value
        for key, value in os.environ.items()
        if key.startswith(ENVIRONMENT_PREFIXES) or key in ENVIRONMENT_NAMES
    }


def _send(connection: socket.socket, message: dict) -> None:
    connection.sendall(json.dumps(message).encode() + b"\n")


class _Messages:
    """The JSON lines a peer sends over ``connection``, one at a time."""

    def __init__(self, connection: socket.socket) -> None:
        self._connection = connection
        self._buffer = b""

    def next(self) -> dict | None:
        """The next message, or None if the peer closed the connection first or sent
        garbage."""
        while b"\n" not in self._buffer:
            chunk = self._connection.recv(1 << 16)
            if not chunk or len(self._buffer) > MAX_MESSAGE:
                return None
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        try:
            message = json.loads(line)
        except ValueError:
            return None
        return message if isinstance(message, dict) else None


# --- client -------------------------------------------------------------------------------


def request(
    message: dict, timeout_s: float | None = None,
    on_output: Callable[[str, str], None] | None = None,
) -> dict | None:  # fmt: skip
    """Send ``message`` to the running server and return its answer (waiting up to
    ``timeout_s``, default for ever); None when there is no server, when it is busy with
    another command (it has not said it is ready within :data:`READY_TIMEOUT_S`), or when it
    went away before answering. The command's output comes as it is written, before the
    answer: ``on_output(stream, text)``, ``stream`` "stdout" or "stderr"."""
    folder = _private_folder()
    if folder is None:
        return None
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
        connection.settimeout(READY_TIMEOUT_S)
        try:
            connection.connect(str(folder / "develop.sock"))
            messages = _Messages(connection)
            if messages.next() != READY:
                return None
            connection.settimeout(timeout_s)
            _send(connection, message)
            while True:
                answer = messages.next()
                if answer is None or "output" not in answer:
                    return answer
                if on_output is not None:
                    on_output(str(answer["output"]), str(answer.get("text", "")))
        except OSError:  # TimeoutError included: busy (or hung), so the client works alone
            return None


def run_remotely(argv: list[str]) -> int | None:
    """Run ``obscura ARGV`` in the warm developer, its output printed as it comes; its exit
    status, or None when it could not (no server, or it refused: run it here instead)."""
    streams = {"stdout": sys.stdout, "stderr": sys.stderr}

    def show(stream: str, text: str) -> None:
        if stream in streams:
            streams[stream].write(text)
            streams[stream].flush()

    try:
        answer = request({
            "argv": argv,
            "cwd": os.getcwd(),
            "umask": _current_umask(),
            "python": sys.executable,
            "stamp": code_stamp(),
            "environment": relevant_environment(),
            "terminals": {name: _is_terminal(stream) for name, stream in streams.items()},
        }, on_output=show)  # fmt: skip
    except KeyboardInterrupt:  # the server finishes the file it is writing, whole
        return 130
    if answer is None or "status" not in answer:
        return None
    return int(answer["status"])


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def start_server() -> None:
    """Start a server in the background, detached from this process and its terminal."""
    try:
        subprocess.Popen(
            [sys.executable, "-m", "firmware.warm_developer"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            cwd=ROOT, start_new_session=True, close_fds=True,
        )  # fmt: skip
    except OSError as exc:
        logger.info("cannot start the warm developer: %s", exc)


def _current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# --- server -------------------------------------------------------------------------------


def _peer_uid(connection: socket.socket) -> int:
    """The connecting process's user id (SO_PEERCRED: pid, uid, gid)."""
    size = struct.calcsize("3i")
    credentials = connection.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, size)
    return struct.unpack("3i", credentials)[1]


class _ClientStream(io.TextIOBase):
    """The command's stdout or stderr: each write goes to the client at once (so its
    progress line moves as on a terminal of its own), and it is a terminal when the
    client's is."""

    def __init__(self, connection: socket.socket, name: str, is_terminal: bool) -> None:
        super().__init__()
        self._connection = connection
        self._name = name
        self._is_terminal = is_terminal

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return self._is_terminal

    def write(self, text: str) -> int:
        if text:
            with contextlib.suppress(OSError):  # the client left: the command goes on
                _send(self._connection, {"output": self._name, "text": text})
        return len(text)


def _run_command(argv: list[str], connection: socket.socket, terminals: dict) -> int:
    """``obscura ARGV`` here, its stdout and stderr sent to the client; its exit status."""
    from firmware import cli

    out = _ClientStream(connection, "stdout", bool(terminals.get("stdout")))
    err = _ClientStream(connection, "stderr", bool(terminals.get("stderr")))
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        root.handlers = []  # the command configures logging to its own stderr
        try:
            status = cli.main(argv)
        except SystemExit as exc:  # argparse: --help, or a usage error
            status = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            if isinstance(exc.code, str):
                print(exc.code, file=sys.stderr)
        except Exception as exc:  # noqa: BLE001 - a bug answers as a fresh process would
            status = 1
            print(f"obscura: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        finally:
            root.handlers, root.level = handlers, level
    return status


def _answer(
    message: dict, stamp: str, environment: dict[str, str], connection: socket.socket
) -> tuple[dict, bool]:
    """The answer to one request (its command's output sent on ``connection`` as it is
    written), and whether the server should stop after it."""
    if message.get("stop"):
        return {"stopped": True}, True
    if message.get("stamp") != stamp:
        return {"refused": "the code changed since this server started"}, True
    if message.get("python") != sys.executable:
        return {"refused": f"another Python than {sys.executable}"}, False
    if message.get("environment") != environment:
        return {"refused": "a different environment"}, False
    argv = message.get("argv")
    if not isinstance(argv, list) or not argv or argv[0] not in COMMANDS:
        return {"refused": f"only `obscura {' / '.join(COMMANDS)}` are served"}, False
    try:
        os.chdir(message["cwd"])
        os.umask(int(message["umask"]))
    except (KeyError, TypeError, ValueError, OSError) as exc:
        return {"refused": f"cannot work where the client does: {exc}"}, False
    terminals = message.get("terminals")
    status = _run_command([str(a) for a in argv], connection,
                          terminals if isinstance(terminals, dict) else {})  # fmt: skip
    os.chdir("/")
    return {"status": status, "pid": os.getpid()}, False


def serve(idle_s: float = IDLE_S) -> None:
    """Listen on the socket until idle for ``idle_s`` or told to stop; returns at once if
    another server holds the folder's lock."""
    folder = _private_folder()
    if folder is None:
        return
    with open(folder / "develop.lock", "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return  # another server is running
        path = folder / "develop.sock"
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        stamp, environment = code_stamp(), relevant_environment()
        from firmware.freed_memory import reuse_freed_memory

        _volunteer_for_the_oom_killer()
        reuse_freed_memory()  # within a command: one stage's arrays serve the next
        from firmware.warmup import warm_numba_cache

        warm_numba_cache()  # every kernel loaded before the first request
        gc.freeze()  # the collector never scans them again: only what a command creates
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
            server.bind(str(path))
            server.listen(8)
            server.settimeout(idle_s)
            try:
                _serve_requests(server, stamp, environment)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()


def _volunteer_for_the_oom_killer() -> None:
    """Be the first process the kernel ends when memory runs out (oom_score_adj 1000, which
    an unprivileged process may set for itself): on a 1 GB Pi the camera's daemon must
    never be the one to go for a developer that is only a convenience."""
    with contextlib.suppress(OSError):
        Path("/proc/self/oom_score_adj").write_text("1000")


def _serve_requests(server: socket.socket, stamp: str, environment: dict[str, str]) -> None:
    from firmware.freed_memory import release_freed_memory

    while True:
        try:
            connection, _ = server.accept()
        except TimeoutError:
            return
        except OSError as exc:
            if exc.errno == errno.EINTR:
                continue
            raise
        with connection:
            if _peer_uid(connection) != os.getuid():
                continue
            connection.settimeout(READY_TIMEOUT_S)
            try:
                _send(connection, READY)  # a client that waited longer has gone on alone
                message = _Messages(connection).next()  # one that sends nothing is let go
            except OSError:
                continue
            if message is None:
                continue
            connection.settimeout(None)
            answer, stop = _answer(message, stamp, environment, connection)
            with contextlib.suppress(OSError):  # the client left (Ctrl-C): the file is written
                _send(connection, answer)
        if stop:
            return
        # Once the client has its answer: what the command freed goes back to the system.
        gc.collect()
        release_freed_memory()


if __name__ == "__main__":
    serve(float(os.environ.get("OBSCURA_WARM_DEVELOPER_IDLE_S", IDLE_S)))
