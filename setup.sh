#!/usr/bin/env bash
# Set up Obscura: ./setup.sh [--dev | --appliance | --python-only] [--dry-run] [--uninstall]
#
# On a development machine (anything that is not a Raspberry Pi): a virtual environment in
# .venv with the dependencies and the development tools, a warmed numba cache so the
# first `obscura develop` does not spend half a minute compiling, and a develop's and a
# merge's kernels compiled ahead of time so they start without numba. Safe to run again.
#
# On Raspberry Pi OS (Bookworm or later, 64-bit) the appliance install: the system's
# picamera2, libcamera, numpy and lgpio, a venv in /opt/obscura that sees them (held to
# numpy 1.x by constraints-raspberry-pi-os.txt), the `obscura` user (groups video and
# gpio), /etc/obscura/config.toml, the numba cache warmed as that user, the polkit rule
# that lets the power button power off, and the systemd service, enabled and started.
# It asks for sudo. Safe to run again: after `git pull` it upgrades and restarts the
# service, and never touches an existing configuration. A 32-bit system is refused.
#
#   --dev          the development set-up, even on a Pi (its venv sees the system packages)
#   --appliance    the appliance install, even where this is not detected as a Pi
#   --python-only  of the appliance install, only the venv in /opt/obscura (no apt, user,
#                  service); tools/check_pi_os_install.sh runs it in a Debian 12 arm64 root
#   --dry-run      print every step of the appliance install (or uninstall); change nothing
#   --uninstall    remove the service, the polkit rule, /opt/obscura and the numba cache;
#                  keep photos, configuration and the user
set -euo pipefail
cd "$(dirname "$0")"

PYTHON=${PYTHON:-python3}

PREFIX=/opt/obscura
VENV=$PREFIX/venv
SERVICE_USER=obscura
CONFIG_DIR=/etc/obscura
STATE_DIR=/var/lib/obscura
CACHE_DIR=/var/cache/obscura
UNIT_PATH=/etc/systemd/system/obscura.service
POLKIT_RULE=systemd/50-obscura-poweroff.rules
POLKIT_RULE_PATH=/etc/polkit-1/rules.d/50-obscura-poweroff.rules
COMMAND_LINK=/usr/local/bin/obscura
# What the venv installs from PyPI on Raspberry Pi OS, held to the system's numpy 1.x.
PI_CONSTRAINTS=constraints-raspberry-pi-os.txt
# python3-lgpio: gpiozero's pin backend on Bookworm (not on PyPI for aarch64).
APT_PACKAGES=(python3-picamera2 python3-libcamera python3-numpy python3-lgpio python3-venv
              python3-pip)

usage() {
    sed -n '2,24s/^# \{0,1\}//p' "$0"
}

target=""
uninstall=0
dry_run=0
for arg in "$@"; do
    case $arg in
        --dev) target=dev ;;
        --appliance) target=appliance ;;
        --python-only) target=python-only ;;
        --uninstall) uninstall=1 ;;
        --dry-run) dry_run=1 ;;
        -h | --help) usage; exit 0 ;;
        *) printf 'setup.sh: unknown option %s\n\n' "$arg" >&2; usage >&2; exit 2 ;;
    esac
done

is_raspberry_pi() {
    grep -qs "Raspberry Pi" /proc/device-tree/model
}

step() { printf '==> %s\n' "$*"; }

# Stop unless the userland is 64-bit. Ask the userland (dpkg's architecture, getconf), not
# the kernel: some Raspberry Pi OS images run a 64-bit kernel (uname -m: aarch64) under a
# 32-bit (armhf) userland, where no numba, llvmlite or numpy wheel installs either.
require_64_bit_userland() {
    local arch bits
    arch=$(dpkg --print-architecture 2>/dev/null || uname -m)
    bits=$(getconf LONG_BIT 2>/dev/null ||
           "$PYTHON" -c 'import struct; print(struct.calcsize("P") * 8)')
    case $arch in
        armhf | armel | i386 | armv6l | armv7l | i?86) bits=32 ;;
    esac
    if [ "$bits" != 64 ]; then
        printf 'setup.sh: this is a %s-bit operating system (%s): Obscura needs a 64-bit one.\n' \
            "$bits" "$arch" >&2
        printf '  numba, llvmlite and numpy have no 32-bit ARM builds. Install Raspberry Pi OS\n' >&2
        printf '  (64-bit), Bookworm or later, on a Raspberry Pi Zero 2 W, 3, 4, 5 or later, and\n' >&2
        printf '  run ./setup.sh again.\n' >&2
        exit 1
    fi
}
warn() { printf 'warning: %s\n' "$*" >&2; }

# The requirement that keeps the venv on the system's numpy (numpy==VERSION), which
# picamera2, simplejpeg and the other system packages are built against: a numpy 2 in the
# venv would shadow Bookworm's 1.24 and they would fail at import ("numpy.dtype size
# changed"). The other packages are held to versions that accept it by $PI_CONSTRAINTS.
system_numpy_requirement() {
    local version
    if version=$("$PYTHON" -c 'import numpy; print(numpy.__version__)' 2>/dev/null); then
        printf 'numpy==%s\n' "$version"
    elif [ "$dry_run" = 1 ]; then
        printf 'numpy==SYSTEM_VERSION\n'
    else
        printf 'setup.sh: %s has no numpy: install the system'"'"'s (sudo apt install python3-numpy)\n' \
            "$PYTHON" >&2
        exit 1
    fi
}

# Run a command of the appliance install, or only print it with --dry-run.
run() {
    if [ "$dry_run" = 1 ]; then
        printf '    %s\n' "$*"
    else
        "$@"
    fi
}

setup_dev() {
    local venv_flags=()
    local pip_flags=()
    local extras="dev"
    if is_raspberry_pi; then
        step "Raspberry Pi detected: the venv will see the system's picamera2, libcamera and numpy"
        venv_flags+=(--system-site-packages)
        pip_flags+=(--constraint "$PI_CONSTRAINTS" "$(system_numpy_requirement)")
    fi

    if [ ! -x .venv/bin/python ]; then
        step "creating .venv"
        "$PYTHON" -m venv "${venv_flags[@]}" .venv
    fi

    step "installing Obscura and its dependencies into .venv"
    .venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
    .venv/bin/python -m pip install --quiet --disable-pip-version-check "${pip_flags[@]}" \
        -e ".[${extras}]"

    step "compiling the numba kernels (cached on disk)"
    .venv/bin/obscura warm-cache

    # `obscura develop` and `batch` then start without numba (pipeline/compiled_kernels.py).
    # It needs a C compiler and Python's headers; without them numba's cache serves.
    step "compiling a develop's kernels ahead of time"
    if ! .venv/bin/python tools/build_compiled_kernels.py; then
        warn "could not compile the kernels ahead of time (a C compiler and Python's headers" \
             "are needed): obscura develop starts with numba instead"
    fi

    step "done: try  source .venv/bin/activate; obscura simulate -o scene.dng; obscura develop scene.dng -o photo.jpg"
}

check_system() {
    if ! is_raspberry_pi; then
        warn "this is not a Raspberry Pi: the service will not find a camera"
    fi
    local codename
    codename=$(. /etc/os-release 2>/dev/null && printf '%s' "${VERSION_CODENAME:-}")
    case $codename in
        bookworm | trixie | forky) ;;
        *) warn "Raspberry Pi OS Bookworm or later is expected (found '${codename:-unknown}')" ;;
    esac
}

# The appliance's Python environment: a venv in $VENV over the system's packages
# (picamera2, libcamera, numpy 1.x: --system-site-packages), Obscura and what it needs from
# PyPI held to that numpy by $PI_CONSTRAINTS, and the `obscura` command on the PATH.
install_python_environment() {
    local source_dir=$1 numpy_requirement
    numpy_requirement=$(system_numpy_requirement)
    step "Python environment in $VENV (sees the system's picamera2 and numpy: --system-site-packages)"
    if [ ! -x "$VENV/bin/python" ]; then
        run "$PYTHON" -m venv --system-site-packages "$VENV"
    fi
    # pip builds in the source tree; build a copy so that the checkout keeps no root-owned files.
    local build_dir=$PREFIX/build
    run rm -rf "$build_dir"
    run install -d "$build_dir"
    run tar -C "$source_dir" --exclude=./.venv --exclude=./.git -cf "$build_dir.tar" .
    run tar -C "$build_dir" -xf "$build_dir.tar"
    run "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
        --constraint "$build_dir/$PI_CONSTRAINTS" "$build_dir" "$numpy_requirement"
    run "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
        --no-deps --force-reinstall "$build_dir"
    run rm -rf "$build_dir" "$build_dir.tar"
    run ln -sfn "$VENV/bin/obscura" "$COMMAND_LINK"
}

install_appliance() {
    local source_dir admin_user
    source_dir=$PWD
    admin_user=${SUDO_USER:-$(id -un)}

    step "system packages: picamera2 and libcamera from Raspberry Pi OS"
    run apt-get update
    run apt-get install -y --no-install-recommends "${APT_PACKAGES[@]}"

    step "service user $SERVICE_USER, in the video (camera) and gpio (buttons, LED) groups"
    getent group gpio >/dev/null || run groupadd --system gpio
    if id -u "$SERVICE_USER" >/dev/null 2>&1; then
        run usermod --append --groups video,gpio "$SERVICE_USER"
    else
        run useradd --system --user-group --groups video,gpio --home-dir "$STATE_DIR" \
            --no-create-home --shell /usr/sbin/nologin "$SERVICE_USER"
    fi
    if [ "$admin_user" != root ]; then
        step "$admin_user may control the camera over SSH (group $SERVICE_USER; log in again)"
        run usermod --append --groups "$SERVICE_USER" "$admin_user"
    fi

    step "directories: $CONFIG_DIR, $STATE_DIR (photos), $CACHE_DIR (numba)"
    run install -d -o "$SERVICE_USER" -g "$SERVICE_USER" -m 0755 "$CONFIG_DIR" "$STATE_DIR"
    run install -d -o "$SERVICE_USER" -g "$SERVICE_USER" -m 0750 "$CACHE_DIR"

    install_python_environment "$source_dir"

    step "configuration: $CONFIG_DIR/config.toml"
    if [ -e "$CONFIG_DIR/config.toml" ]; then
        if [ "$dry_run" = 0 ] && ! "$VENV/bin/obscura" config check; then
            warn "fix $CONFIG_DIR/config.toml: until then the camera runs on its last good configuration"
        fi
    else
        run "$VENV/bin/obscura" config default --output "$CONFIG_DIR/config.toml"
        run chown "$SERVICE_USER:$SERVICE_USER" "$CONFIG_DIR/config.toml"
    fi

    step "compiling the numba kernels as $SERVICE_USER into $CACHE_DIR"
    run runuser -u "$SERVICE_USER" -- env --chdir=/ NUMBA_CACHE_DIR="$CACHE_DIR" \
        "$VENV/bin/obscura" warm-cache

    step "polkit rule: the power button (user $SERVICE_USER) may power the Pi off"
    run install -D -m 0644 "$source_dir/$POLKIT_RULE" "$POLKIT_RULE_PATH"

    step "systemd service obscura: enabled at boot, started now"
    local was_active=0
    if [ "$dry_run" = 0 ] && systemctl is-active --quiet obscura; then
        was_active=1
    fi
    run install -m 0644 "$source_dir/systemd/obscura.service" "$UNIT_PATH"
    run systemctl daemon-reload
    run systemctl enable --now obscura
    if [ "$was_active" = 1 ]; then
        run systemctl restart obscura
    fi

    step "done: ssh $(hostname 2>/dev/null || echo camera) obscura status"
}

uninstall_appliance() {
    step "stopping and removing the systemd service"
    if [ "$dry_run" = 1 ] || [ -e "$UNIT_PATH" ]; then
        run systemctl disable --now obscura
        run rm -f "$UNIT_PATH"
        run systemctl daemon-reload
    fi
    step "removing the polkit rule, $PREFIX, $CACHE_DIR and $COMMAND_LINK"
    run rm -f "$POLKIT_RULE_PATH"
    if [ "$dry_run" = 1 ] || [ -L "$COMMAND_LINK" ]; then
        run rm -f "$COMMAND_LINK"
    fi
    run rm -rf "$PREFIX" "$CACHE_DIR"
    step "kept: photos in $STATE_DIR, configuration in $CONFIG_DIR, the user $SERVICE_USER"
    step "to remove them too: sudo rm -rf $STATE_DIR $CONFIG_DIR && sudo userdel $SERVICE_USER"
}

if [ "$target" = dev ] && { [ "$dry_run" = 1 ] || [ "$uninstall" = 1 ]; }; then
    printf 'setup.sh: --dry-run and --uninstall are for the appliance install, not --dev\n' >&2
    exit 2
elif [ "$target" = python-only ] && [ "$uninstall" = 1 ]; then
    printf 'setup.sh: --python-only installs; --uninstall removes the whole appliance\n' >&2
    exit 2
elif [ "$target" != python-only ] && { [ "$dry_run" = 1 ] || [ "$uninstall" = 1 ]; }; then
    target=appliance
elif [ -z "$target" ]; then
    if is_raspberry_pi; then target=appliance; else target=dev; fi
fi

if [ "$uninstall" = 0 ]; then
    require_64_bit_userland
fi

if [ "$target" = dev ]; then
    setup_dev
    exit 0
fi

if [ "$dry_run" = 1 ]; then
    step "dry run: the steps below are printed, not taken"
elif [ "$(id -u)" -ne 0 ]; then
    step "the appliance install needs root: running it with sudo"
    exec sudo --preserve-env=PYTHON "$PWD/setup.sh" "$@"
fi

if [ "$target" = python-only ]; then
    install_python_environment "$PWD"
    step "done: $VENV/bin/obscura (compile its numba kernels with: obscura warm-cache)"
    exit 0
fi

check_system
if [ "$uninstall" = 1 ]; then
    uninstall_appliance
else
    install_appliance
fi
