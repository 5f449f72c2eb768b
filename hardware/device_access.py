"""Whether this process may open the camera's device nodes.

systemd turns a unit's ``DeviceAllow=char-video4linux`` (and ``char-media``,
``char-dma_heap``) into device rules when the service starts, from the drivers registered
in ``/proc/devices`` at that moment. When the camera's drivers load later in the boot, their
nodes appear but stay closed to the running service: ``open()`` fails with ``EPERM`` (the
device cgroup's answer; missing file permissions give ``EACCES`` instead). Only a new
process of the unit gets them, so the daemon exits for systemd to restart it
(:data:`EXIT_RESTART`, ``RestartForceExitStatus=`` in the unit).
"""

from __future__ import annotations

import errno
import glob
import os
from collections.abc import Callable, Sequence

#: Exit status asking systemd for a new process (EX_TEMPFAIL in sysexits.h).
EXIT_RESTART = 75
#: The nodes libcamera opens for a Raspberry Pi camera.
CAMERA_DEVICE_GLOBS = ("/dev/media*", "/dev/video*", "/dev/v4l-subdev*", "/dev/dma_heap/*")


def _try_open(path: str) -> None:
    os.close(os.open(path, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC))


def blocked_camera_devices(
    patterns: Sequence[str] = CAMERA_DEVICE_GLOBS,
    open_device: Callable[[str], None] = _try_open,
) -> list[str]:
    """The camera device nodes that exist but that the device rules keep this process from
    opening (``EPERM``); empty when every node opens, or fails for another reason."""
    blocked = []
    for pattern in patterns:
        for path in sorted(glob.glob(pattern)):
            try:
                open_device(path)
            except OSError as exc:
                if exc.errno == errno.EPERM:
                    blocked.append(path)
    return blocked
