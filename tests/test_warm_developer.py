"""The warm developer: `obscura develop` answered by a process that stays loaded."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from firmware import warm_developer

REPO = Path(__file__).resolve().parents[1]


def _server_environment(idle_s: float) -> dict[str, str]:
    """This process's environment with the warm developer on, in a folder of its own (a
    short path: a Unix socket's is limited to 107 bytes), and fresh processes on numba as
    the server is (the kernels compiled ahead of time differ in the last bits)."""
    folder = tempfile.mkdtemp(prefix="obscura-test-", dir="/tmp")
    return {
        **os.environ,
        "XDG_RUNTIME_DIR": folder,
        "OBSCURA_WARM_DEVELOPER": "1",
        "OBSCURA_WARM_DEVELOPER_IDLE_S": str(idle_s),
        "OBSCURA_COMPILED_KERNELS": "0",
    }


def _wait(condition, timeout_s: float = 90.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _socket() -> Path:
    return warm_developer.socket_folder() / "develop.sock"


@pytest.fixture
def server_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """No server yet; this test's environment (and this process's) set for one."""
    env = _server_environment(idle_s=120)
    for key in ("XDG_RUNTIME_DIR", "OBSCURA_WARM_DEVELOPER", "OBSCURA_WARM_DEVELOPER_IDLE_S",
                "OBSCURA_COMPILED_KERNELS"):
        monkeypatch.setenv(key, env[key])
    yield env
    warm_developer.request({"stop": True}, timeout_s=60)
    shutil.rmtree(env["XDG_RUNTIME_DIR"], ignore_errors=True)


@pytest.fixture
def running(server_env: dict[str, str]) -> dict[str, str]:
    """A warm developer, started as the command line starts it, and ready."""
    warm_developer.start_server()
    _wait(_socket().exists)
    return server_env


def _obscura(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "firmware.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)  # fmt: skip


def test_the_first_develop_starts_it_and_the_next_is_served_with_the_same_picture(
    server_env: dict[str, str], raw_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    small = raw_data / "pi_minimal_640x480" / "test.dng"
    cold = _obscura(["develop", str(small), "-o", "cold.jpg"], tmp_path, server_env)
    assert cold.returncode == 0, cold.stderr
    _wait(_socket().exists)  # started by the first run, once it was done
    # A run from the command line is answered by the server (a relative output path is
    # the client's: the server works in the client's folder)...
    warm = _obscura(["develop", str(small), "-o", "warm.jpg"], tmp_path, server_env)
    assert warm.returncode == 0, warm.stderr
    # ... and this one, sent the same way from here, is answered by another process.
    monkeypatch.chdir(tmp_path)
    answer = warm_developer.request({
        "argv": ["develop", str(small), "-o", "asked.jpg"], "cwd": str(tmp_path),
        "umask": 0o022, "python": sys.executable, "stamp": warm_developer.code_stamp(),
        "environment": warm_developer.relevant_environment(),
    })  # fmt: skip
    assert answer is not None and answer["status"] == 0 and answer["pid"] != os.getpid()
    # Under memory pressure the kernel ends it before anything else (the camera's daemon).
    assert Path(f"/proc/{answer['pid']}/oom_score_adj").read_text().strip() == "1000"
    pictures = [np.asarray(Image.open(tmp_path / n)) for n in ("cold.jpg", "warm.jpg", "asked.jpg")]
    np.testing.assert_array_equal(pictures[0], pictures[1])
    np.testing.assert_array_equal(pictures[0], pictures[2])


def test_errors_and_help_come_back_as_from_a_fresh_process(
    running: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    monkeypatch.chdir(tmp_path)
    assert warm_developer.run_remotely(["develop", "missing.dng", "-o", "out.jpg"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("obscura: error: ") and "missing.dng" in err
    assert not (tmp_path / "out.jpg").exists()
    assert warm_developer.run_remotely(["develop", "--help"]) == 0
    assert "--white-balance" in capsys.readouterr().out
    assert warm_developer.run_remotely(["develop"]) == 2  # argparse's usage error
    assert "required" in capsys.readouterr().err


def test_output_and_the_progress_line_reach_a_terminal_as_they_are_written(
    running: dict[str, str], raw_data: Path, tmp_path: Path
) -> None:
    small = raw_data / "pi_minimal_640x480" / "test.dng"
    received: list[tuple[str, str, float]] = []
    message = {"argv": ["develop", str(small), "-o", "out.jpg"], "cwd": str(tmp_path),
               "umask": 0o022, "python": sys.executable, "stamp": warm_developer.code_stamp(),
               "environment": warm_developer.relevant_environment(),
               "terminals": {"stdout": False, "stderr": True}}  # fmt: skip
    answer = warm_developer.request(
        message, on_output=lambda stream, text: received.append((stream, text, time.monotonic()))
    )
    answered = time.monotonic()
    assert answer["status"] == 0 and (tmp_path / "out.jpg").exists()
    progress = "".join(text for stream, text, _ in received if stream == "stderr")
    assert "developing test.dng: demosaic" in progress  # one line per stage, as a terminal's
    assert all(at <= answered for _, _, at in received)
    # Off a terminal, no progress line: scripts and pipes see only what a fresh process
    # prints there (this file has no colour matrix, which it warns about).
    received.clear()
    message["terminals"] = {"stdout": False, "stderr": False}
    assert warm_developer.request(message, on_output=lambda *a: received.append(a))["status"] == 0
    assert [text for _, text in received] == [
        "WARNING pipeline.colour.matrix: no ColorMatrix in the metadata: treating camera RGB "
        "as sRGB\n"
    ]


def test_a_client_with_another_environment_python_or_command_is_refused(
    running: dict[str, str],
) -> None:
    base = {"cwd": "/", "umask": 0o022, "python": sys.executable,
            "stamp": warm_developer.code_stamp(),
            "environment": warm_developer.relevant_environment()}  # fmt: skip
    other = {**base, "argv": ["develop", "--help"], "environment": {"HOME": "/elsewhere"}}
    assert "refused" in warm_developer.request(other)
    other_python = {**base, "argv": ["develop", "--help"], "python": "/usr/bin/python3.99"}
    assert "refused" in warm_developer.request(other_python)
    assert "refused" in warm_developer.request({**base, "argv": ["status"]})
    # The server is still there for a client like it.
    assert warm_developer.request({**base, "argv": ["develop", "--help"]})["status"] == 0


def test_a_busy_server_sends_the_client_on_alone_and_a_silent_client_is_let_go(
    running: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    base = {"argv": ["develop", "--help"], "cwd": "/", "umask": 0o022,
            "python": sys.executable, "stamp": warm_developer.code_stamp(),
            "environment": warm_developer.relevant_environment()}  # fmt: skip
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as silent:
        silent.connect(str(_socket()))
        assert silent.recv(64).startswith(b'{"ready"')  # the server now waits for it
        # Busy with the silent client: this one hears no "ready" and goes on alone.
        monkeypatch.setattr(warm_developer, "READY_TIMEOUT_S", 0.3)
        start = time.monotonic()
        assert warm_developer.request(base) is None
        assert time.monotonic() - start < 1.5
        # The server lets the silent client go after its own 2 s, and serves again.
        monkeypatch.setattr(warm_developer, "READY_TIMEOUT_S", 10.0)
        assert warm_developer.request(base)["status"] == 0


def test_changed_code_stops_the_server(running: dict[str, str]) -> None:
    answer = warm_developer.request({"argv": ["develop", "--help"], "cwd": "/", "umask": 0o022,
                                     "stamp": "an older version", "environment": {}})  # fmt: skip
    assert "refused" in answer
    _wait(lambda: not _socket().exists())
    assert warm_developer.run_remotely(["develop", "--help"]) is None  # the client runs it


def test_it_leaves_when_idle(monkeypatch: pytest.MonkeyPatch) -> None:
    env = _server_environment(idle_s=0.5)
    monkeypatch.setenv("XDG_RUNTIME_DIR", env["XDG_RUNTIME_DIR"])
    server = subprocess.Popen([sys.executable, "-m", "firmware.warm_developer"], cwd=REPO, env=env)
    try:
        assert server.wait(timeout=120) == 0
        assert not _socket().exists()
    finally:
        server.kill()
        shutil.rmtree(env["XDG_RUNTIME_DIR"], ignore_errors=True)


def test_a_folder_others_can_enter_is_not_used(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    (tmp_path / "obscura").mkdir(mode=0o777)
    (tmp_path / "obscura").chmod(0o777)
    assert warm_developer.request({"stop": True}) is None
    warm_developer.serve(idle_s=0.1)
    assert not _socket().exists() and not (tmp_path / "obscura" / "develop.lock").exists()


def test_a_merge_is_served_too(
    running: dict[str, str], raw_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipeline.formats.dng_reader import read_dng

    burst = sorted((raw_data / "pi_imx296_mex2025" / "burst_static_64set_first10").glob("*.dng"))
    monkeypatch.chdir(tmp_path)
    assert warm_developer.run_remotely(["merge", *map(str, burst[:3]), "-o", "merged.dng"]) == 0
    assert read_dng(tmp_path / "merged.dng").cfa.shape == (1088, 1456)


def test_only_develop_and_merge_from_the_command_line_go_to_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OBSCURA_WARM_DEVELOPER", "1")
    assert warm_developer.serves(["develop", "a.dng", "-o", "a.jpg"])
    assert warm_developer.serves(["merge", "a.dng", "b.dng", "-o", "m.dng"])
    assert not warm_developer.serves(["batch", "a.dng", "-o", "out"])
    assert not warm_developer.serves(["-v", "develop", "a.dng", "-o", "a.jpg"])
    assert not warm_developer.serves([])
    monkeypatch.setenv("OBSCURA_WARM_DEVELOPER", "0")
    assert not warm_developer.serves(["develop", "a.dng", "-o", "a.jpg"])
