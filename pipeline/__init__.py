"""Obscura's image pipeline: pure functions on arrays, no hardware.

The single-frame develop is composed in :mod:`pipeline.develop`; each stage is its own
module in :mod:`pipeline.stages`. Beside them: file formats (:mod:`pipeline.formats`),
colour science (:mod:`pipeline.colour`), looks and their data (:mod:`pipeline.looks`),
bursts (:mod:`pipeline.burst`) and focus assist (:mod:`pipeline.focus`).
``from pipeline import demosaic`` is the public demosaicing entry point.
"""

from pipeline.numba_runtime import scipy_hidden

with scipy_hidden():  # numba's version check would import SciPy for nothing (numba_runtime)
    import numba  # noqa: F401

from pipeline.stages.demosaic import demosaic

__all__ = ["demosaic"]


def __getattr__(name: str) -> object:
    """``align_and_merge`` (public API, :mod:`pipeline.burst`), imported on first use."""
    if name == "align_and_merge":
        from pipeline.burst import align_and_merge

        return align_and_merge
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
