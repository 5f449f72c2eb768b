"""Peak memory of the running benchmark process, for the scripts in ``bench/``."""

from __future__ import annotations

from pathlib import Path


def peak_rss_mb() -> float:
    """VmHWM of this process, MB (NaN where /proc has none)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")
