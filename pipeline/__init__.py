"""Obscura's image pipeline: pure functions on arrays, no hardware.

The single-frame develop is composed in :mod:`pipeline.develop`; each stage is its own
module. ``from pipeline import demosaic`` is the public demosaicing entry point.
"""

from pipeline.numba_runtime import scipy_hidden

with scipy_hidden():  # numba's version check would import SciPy for nothing (numba_runtime)
    import numba  # noqa: F401

from pipeline.burst import align_and_merge  # noqa: F401 (public API, pipeline.burst)
from pipeline.demosaic import demosaic

__all__ = ["demosaic"]
