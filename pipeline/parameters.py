"""Bounded parameters for the frozen dataclasses of pipeline stages.

A field made with :func:`bounded` carries its domain; :func:`check_bounds` (called from
``__post_init__``) rejects values outside it with an error naming the field and value,
and the look-file reader uses the same bounds, so a TOML file and Python code are
validated by one schema.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from pipeline.errors import InvalidParameterError


def bounded(default: float, low: float, high: float, help: str) -> Any:
    """A float dataclass field with default ``default`` and domain ``[low, high]``."""
    return dataclasses.field(default=default, metadata={"bounds": (low, high), "help": help})


def check_bounds(params: object) -> None:
    """Raise InvalidParameterError for any :func:`bounded` field outside its domain."""
    for f in dataclasses.fields(params):  # type: ignore[arg-type]
        if "bounds" not in f.metadata:
            continue
        low, high = f.metadata["bounds"]
        value = getattr(params, f.name)
        if not low <= value <= high:
            raise InvalidParameterError(f"{f.name}={value!r}: expected {low}..{high}")
