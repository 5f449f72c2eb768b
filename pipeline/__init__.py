"""Obscura's image pipeline: pure functions on arrays, no hardware.

The single-frame develop is composed in :mod:`pipeline.develop`; each stage is its own
module. ``from pipeline import demosaic`` is the public demosaicing entry point.
"""

from pipeline.burst import align_and_merge  # noqa: F401 (public API, pipeline.burst)
from pipeline.demosaic import demosaic

__all__ = ["demosaic"]
