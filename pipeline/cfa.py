"""Colour filter array (Bayer) patterns."""

from __future__ import annotations

from enum import Enum

import numpy as np
import numpy.typing as npt

from pipeline.errors import InvalidParameterError

RED, GREEN, BLUE = 0, 1, 2


class CfaPattern(str, Enum):
    """The 2x2 Bayer tile, read row by row from the top-left pixel."""

    RGGB = "RGGB"
    BGGR = "BGGR"
    GRBG = "GRBG"
    GBRG = "GBRG"

    @classmethod
    def parse(cls, value: "str | CfaPattern") -> "CfaPattern":
        """Return the pattern named by ``value`` (case-insensitive)."""
        if isinstance(value, CfaPattern):
            return value
        try:
            return cls(str(value).upper())
        except ValueError:
            names = ", ".join(p.value for p in cls)
            raise InvalidParameterError(f"pattern={value!r}: expected one of {names}") from None

    @classmethod
    def from_channels(cls, channels: "tuple[int, int, int, int]") -> "CfaPattern":
        """Pattern from four channel indices (0=R, 1=G, 2=B), as in the DNG CFAPattern tag."""
        letters = "".join("RGB"[c] if 0 <= c <= 2 else "?" for c in channels)
        return cls.parse(letters)

    @property
    def channels(self) -> npt.NDArray[np.int64]:
        """(2, 2) int64: channel index (0=R, 1=G, 2=B) of each site of the tile."""
        return np.array(["RGB".index(c) for c in self.value], dtype=np.int64).reshape(2, 2)

    def shifted(self, dy: int, dx: int) -> "CfaPattern":
        """The pattern seen by a crop that starts ``dy`` rows and ``dx`` columns in."""
        c = self.channels
        tile = [c[(y + dy) % 2, (x + dx) % 2] for y in range(2) for x in range(2)]
        return CfaPattern.from_channels(tuple(int(v) for v in tile))
