"""Obscura's image pipeline: pure functions on arrays, no hardware.

The single-frame develop is composed in :mod:`pipeline.develop`; each stage is its own
module in :mod:`pipeline.stages`. Beside them: file formats (:mod:`pipeline.formats`),
colour science (:mod:`pipeline.colour`), looks and their data (:mod:`pipeline.looks`),
bursts (:mod:`pipeline.burst`) and focus assist (:mod:`pipeline.focus`).
``from pipeline import demosaic`` is the public demosaicing entry point.
"""

from pipeline.numba_runtime import import_numba_without_scipy

import_numba_without_scipy()  # when a kernel module first imports numba (numba_runtime)

__all__ = ["demosaic"]


def __getattr__(name: str) -> object:
    """The public API, imported on first use, so that importing a light module of the
    package (``pipeline.errors`` for the command line's ``status`` or ``config``) does
    not load numba and the kernels: ``demosaic`` (:mod:`pipeline.stages.demosaic`) and
    ``align_and_merge`` (:mod:`pipeline.burst`)."""
    if name == "demosaic":
        from pipeline.stages.demosaic import demosaic

        return demosaic
    if name == "align_and_merge":
        from pipeline.burst import align_and_merge

        return align_and_merge
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
