"""Focus assist without a screen: a peak-holding meter, a text bar and an LED blink rate."""

from __future__ import annotations

from dataclasses import dataclass, field

from pipeline.errors import InvalidParameterError

MIN_BLINK_HZ = 0.5
MAX_BLINK_HZ = 8.0


@dataclass
class FocusMeter:
    """Tracks the focus measure and its peak since the last reset."""

    peak: float = 0.0
    current: float = 0.0
    history: list[float] = field(default_factory=list)

    def update(self, value: float) -> float:
        """Record a new measure; returns it as a fraction of the peak so far (0..1)."""
        if value < 0:
            raise InvalidParameterError(f"value={value}: a focus measure is never negative")
        self.current = value
        self.peak = max(self.peak, value)
        return self.fraction

    @property
    def fraction(self) -> float:
        """Current measure over the peak so far (1.0 at the peak)."""
        return self.current / self.peak if self.peak > 0 else 0.0

    def bar(self, width: int = 40) -> str:
        """A text bar that grows as focus improves, with a mark at the peak so far."""
        filled = round(self.fraction * width)
        return "[" + "#" * filled + "-" * (width - filled) + "|" + f"] {self.fraction:5.1%}"


def blink_rate_hz(fraction: float) -> float:
    """LED blink rate for a focus fraction: faster as focus nears the peak.

    Quadratic in the fraction, so the rate changes fastest near best focus, where the eye
    needs the finest cue.
    """
    fraction = min(max(fraction, 0.0), 1.0)
    return MIN_BLINK_HZ + (MAX_BLINK_HZ - MIN_BLINK_HZ) * fraction * fraction
