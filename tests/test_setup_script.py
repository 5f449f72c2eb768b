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
                 "systemctl reload obscura", "--uninstall", "--dry-run"):
        assert text in section, text
