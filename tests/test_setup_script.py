"""setup.sh: the Raspberry Pi install, checked here through --dry-run."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SETUP = ROOT / "setup.sh"


def _setup(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(SETUP), *args], capture_output=True, text=True, timeout=60,
        env={**os.environ, "PYTHON": "python3"},
    )


def test_script_parses() -> None:
    assert subprocess.run(["bash", "-n", str(SETUP)]).returncode == 0


def test_dry_run_lists_every_step_of_the_pi_install() -> None:
    result = _setup("--dry-run")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    expected_in_order = [
        "dry run: the steps below are printed, not taken",
        "apt-get install -y --no-install-recommends python3-picamera2 python3-libcamera",
        "--groups video,gpio",
        "install -d -o obscura -g obscura -m 0755 /etc/obscura /var/lib/obscura",
        "-m venv --system-site-packages /opt/obscura/venv",
        "/opt/obscura/venv/bin/python -m pip install",
        "ln -sfn /opt/obscura/venv/bin/obscura /usr/local/bin/obscura",
        "obscura config default --output /etc/obscura/config.toml",
        "runuser -u obscura -- env --chdir=/ NUMBA_CACHE_DIR=/var/cache/obscura",
        "warm-cache",
        f"install -m 0644 {ROOT}/systemd/obscura.service /etc/systemd/system/obscura.service",
        "systemctl daemon-reload",
        "systemctl enable --now obscura",
    ]
    positions = [out.find(text) for text in expected_in_order]
    assert -1 not in positions, [t for t, p in zip(expected_in_order, positions) if p < 0]
    assert positions == sorted(positions)


def test_dry_run_changes_nothing() -> None:
    before = {path: path.exists() for path in map(Path, ["/opt/obscura", "/etc/obscura"])}
    assert _setup("--dry-run").returncode == 0
    assert {path: path.exists() for path in before} == before
    assert not (ROOT / "build").exists()


def test_dry_run_uninstall_keeps_photos_and_configuration() -> None:
    result = _setup("--dry-run", "--uninstall")
    assert result.returncode == 0, result.stderr
    assert "systemctl disable --now obscura" in result.stdout
    assert "rm -rf /opt/obscura /var/cache/obscura" in result.stdout
    assert "kept: photos in /var/lib/obscura, configuration in /etc/obscura" in result.stdout
    assert "apt-get" not in result.stdout


@pytest.mark.parametrize("args", [("--bogus",), ("--dev", "--dry-run")])
def test_bad_options_are_refused(args) -> None:
    result = _setup(*args)
    assert result.returncode == 2
    assert "setup.sh:" in result.stderr


def test_readme_documents_the_pi_install() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Install on a Raspberry Pi", 1)[1].split("\n## ", 1)[0]
    for text in ("./setup.sh", "obscura status", "obscura config set look=", "obscura shoot",
                 "tools/check_pi_os_install.sh", "--python-only", "64-bit",
                 "systemctl reload obscura", "--uninstall", "--dry-run"):
        assert text in section, text


def _fake_commands(directory: Path, **outputs: str | None) -> dict[str, str]:
    """An environment whose PATH runs ``name`` as a script printing ``outputs[name]`` (or
    failing as a missing command does, for None) before the real commands."""
    directory.mkdir(exist_ok=True)
    for name, output in outputs.items():
        script = directory / name
        body = f"echo {output}" if output is not None else "exit 127"
        script.write_text(f"#!/bin/sh\n{body}\n", encoding="utf-8")
        script.chmod(0o755)
    return {**os.environ, "PYTHON": "python3", "PATH": f"{directory}:{os.environ['PATH']}"}


# A 64-bit kernel under a 32-bit userland is what some Raspberry Pi OS images boot: uname
# says aarch64, and only the userland (dpkg, getconf) tells the truth.
THIRTY_TWO_BIT_SYSTEMS = {
    "64-bit kernel, 32-bit Raspberry Pi OS": dict(uname="aarch64", getconf="32", dpkg="armhf"),
    "32-bit Raspberry Pi OS (Pi 3, Zero 2 W)": dict(uname="armv7l", getconf="32", dpkg="armhf"),
    "Raspberry Pi OS for ARMv6 (Zero W)": dict(uname="armv6l", getconf="32", dpkg="armhf"),
    "no dpkg, 32-bit userland": dict(uname="aarch64", getconf="32", dpkg=None),
    "getconf wrong, dpkg armhf": dict(uname="aarch64", getconf="64", dpkg="armhf"),
}


@pytest.mark.parametrize("args", [("--dry-run",), ("--python-only", "--dry-run"), ("--dev",)])
@pytest.mark.parametrize("system", THIRTY_TWO_BIT_SYSTEMS.values(), ids=THIRTY_TWO_BIT_SYSTEMS)
def test_a_32_bit_userland_is_refused_before_any_step(tmp_path, args, system) -> None:
    # A copy of the script, in a folder with no .venv, and no Python: were the check missing,
    # --dev would fail at its first step here, not install anything.
    script = tmp_path / "setup.sh"
    script.write_text(SETUP.read_text(encoding="utf-8"), encoding="utf-8")
    env = {**_fake_commands(tmp_path / "bin", **system), "PYTHON": "false"}
    result = subprocess.run(["bash", str(script), *args], capture_output=True, text=True,
                            timeout=60, env=env)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "32-bit operating system" in result.stderr
    assert "Raspberry Pi OS\n  (64-bit)" in result.stderr and "Zero 2 W" in result.stderr
    assert "==>" not in result.stdout  # not one step taken or printed (no sudo, no venv)


def test_a_64_bit_userland_under_any_kernel_goes_ahead(tmp_path) -> None:
    env = _fake_commands(tmp_path / "bin", uname="aarch64", getconf="64", dpkg="arm64")
    result = subprocess.run(["bash", str(SETUP), "--dry-run"], capture_output=True, text=True,
                            timeout=60, env=env)
    assert result.returncode == 0, result.stderr
    assert "systemctl enable --now obscura" in result.stdout


def test_the_pi_install_takes_lgpio_and_keeps_the_systems_numpy() -> None:
    out = _setup("--dry-run").stdout
    apt_line = next(line for line in out.splitlines() if "apt-get install" in line)
    assert {"python3-lgpio", "python3-numpy", "python3-picamera2"} <= set(apt_line.split())
    pip_line = next(line for line in out.splitlines()
                    if "/opt/obscura/venv/bin/python -m pip install" in line)
    assert "--constraint /opt/obscura/build/constraints-raspberry-pi-os.txt" in pip_line
    system_numpy = subprocess.run(
        ["python3", "-c", "import numpy; print(numpy.__version__)"], capture_output=True,
        text=True).stdout.strip() or "SYSTEM_VERSION"
    assert pip_line.split()[-1] == f"numpy=={system_numpy}"


def test_pi_constraints_pin_releases_that_accept_numpy_1() -> None:
    lines = (ROOT / "constraints-raspberry-pi-os.txt").read_text(encoding="utf-8").splitlines()
    pins = dict(line.split("==") for line in lines if line and not line.startswith("#"))
    assert "numpy" not in pins  # setup.sh requires the system's own version instead
    dependencies = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    for name in pins:  # no stale pin: each is a dependency (llvmlite: numba's)
        assert name == "llvmlite" or f'"{name}>=' in dependencies, name
    # imagecodecs 2026.3.6 is the first to require numpy >= 2.
    assert tuple(map(int, pins["imagecodecs"].split("."))) < (2026, 3, 6)
    assert {"numba", "llvmlite", "imagecodecs", "tifffile", "simplejpeg"} <= set(pins)


def test_python_only_installs_the_venv_and_nothing_else() -> None:
    result = _setup("--python-only", "--dry-run")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "-m venv --system-site-packages /opt/obscura/venv" in out
    assert "--constraint /opt/obscura/build/constraints-raspberry-pi-os.txt" in out
    for other_step in ("apt-get", "useradd", "systemctl", "polkit", "config default"):
        assert other_step not in out, other_step


def test_polkit_rule_is_installed_before_the_service_and_removed_on_uninstall() -> None:
    install = _setup("--dry-run").stdout
    rule = f"install -D -m 0644 {ROOT}/systemd/50-obscura-poweroff.rules " \
           "/etc/polkit-1/rules.d/50-obscura-poweroff.rules"
    assert rule in install
    assert install.find(rule) < install.find("systemctl enable --now obscura")
    uninstall = _setup("--dry-run", "--uninstall").stdout
    assert "rm -f /etc/polkit-1/rules.d/50-obscura-poweroff.rules" in uninstall


def test_ci_runs_the_pi_os_install_check() -> None:
    check = ROOT / "tools" / "check_pi_os_install.sh"
    assert subprocess.run(["bash", "-n", str(check)]).returncode == 0
    assert os.access(check, os.X_OK)
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "set -euo pipefail" in ci  # a failed check fails CI
    assert 'tools/check_pi_os_install.sh "$PWD/../shared/data"' in ci
