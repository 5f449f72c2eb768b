"""Starting numba for a process that develops and exits."""

from __future__ import annotations

import subprocess
import sys

_COLLECTOR_BEFORE_AND_AFTER_A_COMPILE = """
import gc
from pipeline.numba_runtime import collect_garbage_only_while_compiling

collect_garbage_only_while_compiling()
print(gc.isenabled())
import numba
import numpy as np
from pipeline.colour.output_transform import quantize

quantize(np.zeros((2, 2, 3), np.float32), np.uint8)  # a kernel from the on-disk cache
print(gc.isenabled())
numba.njit(lambda x: x + 1)(1)  # not cached: numba compiles it
print(gc.isenabled())
"""


def test_the_collector_is_off_until_numba_compiles() -> None:
    # (The kernels are in numba's on-disk cache after ./setup.sh, as on a camera.)
    out = subprocess.run([sys.executable, "-c", _COLLECTOR_BEFORE_AND_AFTER_A_COMPILE],
                         capture_output=True, text=True, check=True, timeout=300)  # fmt: skip
    # Off while nothing compiles; on once something does (compiling leaves cyclic garbage:
    # a develop that compiled every kernel peaked at 0.90 GB without the collector).
    assert out.stdout.split() == ["False", "False", "True"]
