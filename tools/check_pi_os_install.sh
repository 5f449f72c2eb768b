#!/usr/bin/env bash
# Check the appliance's Python install on the Raspberry Pi's operating system: Raspberry Pi
# OS Bookworm is Debian 12, so this builds a Debian 12 (bookworm) arm64 root with debootstrap,
# runs it under qemu-user (binfmt_misc), and in it:
#
#   1. installs from apt what Raspberry Pi OS has: python3, python3-numpy (1.24), python3-pil,
#      python3-venv, python3-pip. picamera2, libcamera, lgpio and simplejpeg are Raspberry Pi
#      packages, not Debian's: the check stands in for picamera2 with the tests' fake, and
#      simplejpeg comes from PyPI (held by constraints-raspberry-pi-os.txt);
#   2. runs `./setup.sh --python-only` on a copy of this checkout (a fresh venv in
#      /opt/obscura/venv over the system's packages, as on the Pi);
#   3. checks that the venv's numpy is the system's 1.x, imports every module of pipeline,
#      hardware and firmware, and streams frames through the picamera2 backend (fake camera);
#   4. develops a real DNG from DATA_DIR to a JPEG and merges a burst of 3 real DNGs, all on
#      aarch64 numba (skipped, saying so, when DATA_DIR is absent).
#
#   sudo tools/check_pi_os_install.sh [DATA_DIR]      (DATA_DIR: default ../shared/data)
#
# Needs root (debootstrap, chroot, mounts), network access to deb.debian.org and PyPI the
# first time, and on a non-arm64 machine qemu-user-static and binfmt-support (installed
# with apt-get when missing). The root is cached in $OBSCURA_PI_ROOT_CACHE (default
# /var/cache/obscura-pi-os-root), one per package list, with pip's download cache and the
# numba cache in it: the first run builds it (debootstrap), later runs only reinstall the
# venv and compile the numba kernels of source files that changed. Every step is timed.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
DATA_DIR=${1:-$REPO/../shared/data}
CACHE_ROOT=${OBSCURA_PI_ROOT_CACHE:-/var/cache/obscura-pi-os-root}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
SUITE=bookworm
ARCH=arm64
PACKAGES=python3,python3-numpy,python3-pil,python3-venv,python3-pip,ca-certificates
KEY=$(printf '%s %s %s\n' "$SUITE" "$ARCH" "$PACKAGES" | sha256sum | cut -c1-12)
ROOT=$CACHE_ROOT/$SUITE-$ARCH-$KEY
SITE_PACKAGES=/opt/obscura/venv/lib/python3.11/site-packages
# The burst merged and the DNG developed, under DATA_DIR.
BURST=(raw/pi_imx296_mex2025/burst_static_64set_first10/image_0{0,1,2}.dng)
DNG=raw/pi_arducam_pivariety_1920x1200/image1.dng

say() { printf '==> %s\n' "$*"; }
fail() { printf 'check_pi_os_install: %s\n' "$*" >&2; exit 1; }

started=$(date +%s)
step_started=$started
timed() {  # timed LABEL: print how long the step since the last call took
    local now
    now=$(date +%s)
    printf '    (%s: %d s)\n' "$1" "$((now - step_started))"
    step_started=$now
}

if [ "$(id -u)" -ne 0 ]; then
    exec sudo "$0" "$@"
fi

host_tools() {
    local missing=()
    command -v debootstrap >/dev/null || missing+=(debootstrap)
    if [ "$(uname -m)" != aarch64 ] && [ ! -e /usr/libexec/qemu-binfmt/aarch64-binfmt-P ] &&
        ! command -v qemu-aarch64-static >/dev/null; then
        missing+=(qemu-user-static binfmt-support)
    fi
    if [ "${#missing[@]}" -gt 0 ]; then
        say "installing ${missing[*]} on this machine"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null ||
            { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null; }
    fi
}

# Let the kernel run aarch64 programs through qemu (binfmt_misc, with the F flag so that the
# interpreter works inside the chroot).
enable_qemu() {
    [ "$(uname -m)" = aarch64 ] && return 0
    local binfmt=/proc/sys/fs/binfmt_misc
    [ -e "$binfmt/status" ] || mount binfmt_misc -t binfmt_misc "$binfmt"
    if [ ! -e "$binfmt/qemu-aarch64" ]; then
        update-binfmts --enable qemu-aarch64 2>/dev/null ||
            sed -n '/^:qemu-aarch64:/p' /usr/lib/binfmt.d/qemu-aarch64.conf >"$binfmt/register"
    fi
    [ -e "$binfmt/qemu-aarch64" ] || fail "could not register qemu-aarch64 with binfmt_misc"
}

mounted=()
unmount_all() {
    local i
    for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do
        umount -R "${mounted[i]}" 2>/dev/null || umount -l "${mounted[i]}" 2>/dev/null || true
    done
    mounted=()
}
trap unmount_all EXIT

# Mounts an interrupted run (kill -9) left in the cache: never delete through them.
release_stale_mounts() {
    local target
    findmnt -rn -o TARGET | { grep -F "$CACHE_ROOT/" || true; } | sort -r |
        while IFS= read -r target; do
            umount -R "$target" 2>/dev/null || umount -l "$target"
        done
    if findmnt -rn -o TARGET | grep -qF "$CACHE_ROOT/"; then
        fail "cannot unmount what an earlier run mounted under $CACHE_ROOT"
    fi
}

mount_into_root() {  # mount_into_root TARGET MOUNT_ARGUMENTS...
    local target=$ROOT$1
    shift
    mkdir -p "$target"
    mountpoint -q "$target" || mount "$@" "$target"
    mounted+=("$target")
}

build_root() {
    local status=0
    say "building the Debian 12 arm64 root (debootstrap; cached in $ROOT)"
    rm -rf --one-file-system "$ROOT.partial"
    mkdir -p "$CACHE_ROOT"
    debootstrap --arch="$ARCH" --variant=minbase --include="$PACKAGES" "$SUITE" \
        "$ROOT.partial" "$MIRROR" >"$CACHE_ROOT/debootstrap.log" 2>&1 || status=$?
    umount -R "$ROOT.partial/proc" 2>/dev/null || true  # debootstrap leaves its /proc mounted
    if [ "$status" != 0 ]; then
        tail -20 "$CACHE_ROOT/debootstrap.log" >&2
        fail "debootstrap failed (log: $CACHE_ROOT/debootstrap.log)"
    fi
    rm -rf --one-file-system "$ROOT"
    mv "$ROOT.partial" "$ROOT"
    touch "$ROOT/.obscura-root-complete"
    timed "debootstrap"
}

# (OBSCURA_WARM_DEVELOPER=0: `obscura develop` leaves no server behind in the root, which
# would keep its mounts busy.)
in_root() {  # in_root COMMAND...: run a command in the root, with a clean environment
    chroot "$ROOT" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
        LANG=C.UTF-8 PYTHON=python3 PIP_CERT=/etc/obscura-check-ca.crt \
        PIP_DISABLE_PIP_VERSION_CHECK=1 NUMBA_CACHE_DIR=/var/cache/obscura \
        OBSCURA_WARM_DEVELOPER=0 "$@"
}

# Numba's cache is valid while a kernel's source file keeps its modification time (and
# size). pip writes every file anew, so give each installed module of Obscura a time that
# depends only on its content: unchanged files keep their compiled kernels between runs,
# changed ones are compiled again.
stamp_sources_by_content() {
    local file hash
    while IFS= read -r -d '' file; do
        hash=$(sha256sum "$file" | cut -c1-7)
        touch -d "@$((1000000000 + 16#$hash))" "$file"
    done < <(find "$ROOT$SITE_PACKAGES/pipeline" "$ROOT$SITE_PACKAGES/hardware" \
        "$ROOT$SITE_PACKAGES/firmware" -name '*.py' -print0)
}

host_tools
enable_qemu
mkdir -p "$CACHE_ROOT"
exec 9>"$CACHE_ROOT/.lock"
flock 9  # one check at a time uses the cached root
release_stale_mounts
if [ ! -e "$ROOT/.obscura-root-complete" ]; then
    build_root
else
    say "Debian 12 arm64 root: cached ($ROOT)"
fi

say "mounting /proc, /sys, /dev and the data folder in the root"
cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
# This machine's certificate authorities, for pip (they may include a proxy's).
cp "${PIP_CERT:-/etc/ssl/certs/ca-certificates.crt}" "$ROOT/etc/obscura-check-ca.crt"
mount_into_root /proc -t proc proc
mount_into_root /sys -t sysfs sysfs
mount_into_root /dev --rbind /dev
mount --make-rslave "$ROOT/dev"
have_data=0
if [ -d "$DATA_DIR/raw" ]; then
    have_data=1
    mount_into_root /mnt/data --bind "$DATA_DIR"
    mount -o remount,bind,ro "$ROOT/mnt/data"
else
    say "no data folder at $DATA_DIR: the develop and merge checks will be skipped"
fi

say "copying this checkout to /tmp/obscura-src in the root; ./setup.sh --python-only"
rm -rf --one-file-system "$ROOT/tmp/obscura-src" "$ROOT/tmp/obscura-check" "$ROOT/opt/obscura"
mkdir -p "$ROOT/tmp/obscura-src" "$ROOT/tmp/obscura-check"
tar -C "$REPO" --exclude=./.venv --exclude=./.git --exclude='*/__pycache__' -cf - . |
    tar -C "$ROOT/tmp/obscura-src" -xf -
cp "$REPO/tests/fake_picamera2.py" "$ROOT/tmp/obscura-check/"
in_root bash /tmp/obscura-src/setup.sh --python-only
stamp_sources_by_content
timed "setup.sh --python-only"

say "the venv: aarch64, the system's numpy 1.x, every module imports, picamera2 backend (fake camera)"
cat >"$ROOT/tmp/obscura-check/check_venv.py" <<'EOF'
import importlib
import pkgutil
import platform
import sys
import time

import numpy

assert platform.machine() == "aarch64", platform.machine()
assert numpy.__version__.startswith("1."), f"numpy {numpy.__version__} in the venv, not 1.x"
assert numpy.__file__.startswith("/usr/lib/python3/dist-packages/"), numpy.__file__
import numba, simplejpeg, tifffile, imagecodecs  # noqa: E401  (built against numpy 1.x?)

sys.path.insert(0, "/tmp/obscura-check")  # the tests' fake picamera2, and nothing else
import fake_picamera2

sys.modules["picamera2"] = fake_picamera2.make_module()
modules = 0
for name in ("pipeline", "hardware", "firmware"):
    package = importlib.import_module(name)
    for info in pkgutil.walk_packages(package.__path__, name + "."):
        importlib.import_module(info.name)
        modules += 1
from hardware.picamera2_camera import Picamera2Camera

# Under qemu the first frames wait for numba to compile the raw unpacking: no 2 s timeout.
with Picamera2Camera(picamera2_module=fake_picamera2.make_module(), ring_frames=4,
                     frame_timeout_s=600.0) as camera:
    shot = camera.grab_zsl(2, time.monotonic_ns())
assert shot.reference.frame.cfa.shape == camera.frame_shape
print(f"    numpy {numpy.__version__} (system), numba {numba.__version__}, "
      f"{modules} modules imported, picamera2 backend streamed {camera.frame_shape}")
EOF
in_root /opt/obscura/venv/bin/python /tmp/obscura-check/check_venv.py
timed "imports and camera"

if [ "$have_data" = 1 ]; then
    say "obscura develop $DNG (aarch64 numba)"
    in_root /opt/obscura/venv/bin/obscura develop "/mnt/data/$DNG" -o /tmp/obscura-check/photo.jpg
    timed "develop"
    say "obscura merge: a burst of ${#BURST[@]} DNGs"
    in_root /opt/obscura/venv/bin/obscura merge -o /tmp/obscura-check/merged.dng \
        "${BURST[@]/#//mnt/data/}"
    timed "merge"
    cat >"$ROOT/tmp/obscura-check/check_outputs.py" <<'EOF'
from PIL import Image

from pipeline.formats.dng_reader import read_dng

with Image.open("/tmp/obscura-check/photo.jpg") as photo:
    assert photo.format == "JPEG" and min(photo.size) > 100, (photo.format, photo.size)
    size = photo.size
merged = read_dng("/tmp/obscura-check/merged.dng")
assert merged.cfa.shape == (1088, 1456), merged.cfa.shape
print(f"    photo.jpg {size[0]}x{size[1]}, merged.dng {merged.cfa.shape[1]}x{merged.cfa.shape[0]}")
EOF
    in_root /opt/obscura/venv/bin/python /tmp/obscura-check/check_outputs.py
else
    say "SKIPPED: develop and merge (no data folder at $DATA_DIR)"
fi

say "passed: Obscura installs and runs on Debian 12 arm64 in $(($(date +%s) - started)) s"
