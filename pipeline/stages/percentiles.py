"""Percentiles and medians of an array as numpy's default ("linear") method computes them,
without importing numpy.ma: ``np.percentile`` and ``np.median`` do on their first call
(through ``numpy.ma.is_masked`` and ``isMaskedArray``), 7-12 ms of every fresh
``obscura develop``, which takes a few of small images (exposure, black point, tone map,
noise model).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from pipeline.errors import InvalidParameterError


def percentiles(values: npt.ArrayLike, q: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """The ``q`` (0-100) percentiles of all of ``values``, interpolated linearly between
    the two nearest ranks, as ``np.percentile(values, q)``; float64, shaped as ``q``."""
    flat = np.asarray(values).ravel()
    if flat.size == 0:
        raise InvalidParameterError("percentiles of no values")
    fractions = np.asarray(q, dtype=np.float64) / 100.0
    if np.any((fractions < 0.0) | (fractions > 1.0)):
        raise InvalidParameterError(f"percentiles {q}: expected 0..100")
    positions = fractions * (flat.size - 1)
    below = np.floor(positions).astype(np.intp)
    above = np.minimum(below + 1, flat.size - 1)
    ordered = np.partition(flat, sorted({*below.ravel().tolist(), *above.ravel().tolist()}))
    low = ordered[below].astype(np.float64)
    return low + (positions - below) * (ordered[above] - low)


def median(values: npt.ArrayLike) -> float:
    """The median of all of ``values``, as ``np.median(values)``."""
    return float(percentiles(values, 50.0))
