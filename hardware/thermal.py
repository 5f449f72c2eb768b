"""The SoC's temperature, as the kernel reports it (thermal zone 0 on a Raspberry Pi)."""

from __future__ import annotations

from pathlib import Path

THERMAL_ZONE = Path("/sys/class/thermal/thermal_zone0/temp")


def soc_temperature_c(path: Path = THERMAL_ZONE) -> float | None:
    """The SoC temperature in degrees Celsius, or None where the kernel reports none."""
    try:
        return int(path.read_text(encoding="ascii").strip()) / 1000.0
    except (OSError, ValueError):
        return None
