"""Freed memory kept by a process that develops frame after frame, and given back."""

from __future__ import annotations

import os
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


_HUGE_PAGES_AFTER = """
import os, sys
from firmware.freed_memory import fault_in_small_pages
first = fault_in_small_pages()
import numpy as np
core = getattr(np, "_core", None) or np.core  # numpy 2, numpy 1 (Debian 12)
print(first, fault_in_small_pages(), core.multiarray._set_madvise_hugepage(True))
"""


@pytest.mark.parametrize(("environment", "expected"), [
    ({}, "True False False"),  # numpy told before its import; too late after it
    ({"NUMPY_MADVISE_HUGEPAGE": "1"}, "True False True"),  # the user's own choice stands
])  # fmt: skip
def test_develop_processes_ask_numpy_for_ordinary_pages(environment, expected) -> None:
    env = {k: v for k, v in os.environ.items() if k != "NUMPY_MADVISE_HUGEPAGE"}
    answer = subprocess.run([sys.executable, "-c", _HUGE_PAGES_AFTER],
                            env={**env, **environment}, capture_output=True, text=True,
                            check=True).stdout.split()
    assert " ".join(answer) == expected
