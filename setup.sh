#!/usr/bin/env bash
# Set up Obscura: ./setup.sh
#
# On a development machine (anything that is not a Raspberry Pi): a virtual environment in
# .venv with the dependencies and the development tools, and a warmed numba cache so the
# first `obscura develop` does not spend half a minute compiling. Safe to run again.
#
# On Raspberry Pi OS the same steps run, with a venv that sees the system's picamera2 and
# libcamera (--system-site-packages). Installing the systemd service, its user and its
# configuration is the appliance install (issue 7); it will hook in at install_appliance.
set -euo pipefail
cd "$(dirname "$0")"

PYTHON=${PYTHON:-python3}

is_raspberry_pi() {
    grep -qs "Raspberry Pi" /proc/device-tree/model
}

step() { printf '==> %s\n' "$*"; }

venv_flags=()
extras="dev"
if is_raspberry_pi; then
    step "Raspberry Pi detected: the venv will see the system's picamera2 and libcamera"
    venv_flags+=(--system-site-packages)
fi

if [ ! -x .venv/bin/python ]; then
    step "creating .venv"
    "$PYTHON" -m venv "${venv_flags[@]}" .venv
fi

step "installing Obscura and its dependencies into .venv"
.venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[${extras}]"

step "compiling the numba kernels (cached on disk)"
.venv/bin/obscura warm-cache

install_appliance() {
    # Raspberry Pi OS appliance install (systemd unit, service user, config): issue 7.
    :
}
if is_raspberry_pi; then
    install_appliance
fi

step "done: try  .venv/bin/obscura develop ../shared/data/raw/pi_arducam_pivariety_1920x1200/image1.dng -o photo.jpg"
