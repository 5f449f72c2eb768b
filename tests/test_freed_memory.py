"""Freed memory kept by a process that develops frame after frame, and given back."""

from __future__ import annotations

import subprocess
import sys

import pytest

_RELEASED_ON_FREE = """
import os, sys
import numpy as np
from firmware.freed_memory import release_freed_memory, reuse_freed_memory

def resident() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

if sys.argv[1] != "default":
    assert reuse_freed_memory()
block = np.ones(64 << 20, dtype=np.uint8)  # one 12 MP frame's plane, roughly
before = resident()
del block
if sys.argv[1] == "release":
    release_freed_memory()
print(before - resident())
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_freed_memory_is_kept_when_asked_and_given_back_when_released() -> None:
    # By default a large block is the C library's own mapping, handed back to the system
    # when freed (and faulted in and zeroed again for the next frame); a batch worker or
    # the warm developer keeps it, and the warm developer gives it back when idle.
    released = {
        mode: int(subprocess.run([sys.executable, "-c", _RELEASED_ON_FREE, mode],
                                 capture_output=True, text=True, check=True).stdout)
        for mode in ("default", "reuse", "release")
    }  # fmt: skip
    assert released["default"] > 48 << 20
    assert released["reuse"] < 8 << 20
    assert released["release"] > 48 << 20
