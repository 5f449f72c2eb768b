"""Displays attached to the Pi (HDMI, DSI, DPI), as the kernel's DRM subsystem lists them.

Every connector is a directory ``/sys/class/drm/card<N>-<connector>`` (``card1-HDMI-A-1``,
``card1-DSI-1``) whose ``status`` reads ``connected`` when a display is plugged in, and
whose ``modes`` lists the display's modes, preferred first (``1920x1080``). Nothing here
touches the display; the camera backend decides whether to show a preview on it.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pipeline.errors import InvalidParameterError

logger = logging.getLogger(__name__)

DRM_ROOT = Path("/sys/class/drm")
PreviewSetting = Literal["auto", "on", "off"]
PREVIEW_SETTINGS: tuple[str, ...] = ("auto", "on", "off")

_MODE = re.compile(r"^(\d+)x(\d+)")


@dataclass(frozen=True)
class Display:
    """A connected display: its DRM connector (``card1-HDMI-A-1``) and preferred mode
    (width, height) in pixels, or None when the kernel lists none."""

    connector: str
    size: tuple[int, int] | None = None


def connected_displays(drm_root: Path = DRM_ROOT) -> list[Display]:
    """The displays whose connector ``status`` reads ``connected``, in connector order;
    empty where there is no DRM (a container, a laptop without the directory)."""
    displays = []
    for status in sorted(Path(drm_root).glob("card*-*/status")):
        try:
            if status.read_text(encoding="ascii").strip() != "connected":
                continue
        except (OSError, UnicodeDecodeError):
            continue
        displays.append(Display(status.parent.name, _preferred_size(status.parent / "modes")))
    return displays


def _preferred_size(modes: Path) -> tuple[int, int] | None:
    try:
        first = modes.read_text(encoding="ascii").splitlines()[:1]
    except (OSError, UnicodeDecodeError):
        return None
    match = _MODE.match(first[0].strip()) if first else None
    return (int(match.group(1)), int(match.group(2))) if match else None


def preview_display(setting: str, drm_root: Path = DRM_ROOT) -> Display | None:
    """Where a preview should go for ``display.preview = setting``: None for ``"off"``, or
    for ``"auto"`` without a connected display; ``"on"`` gives the first connected display,
    or a display of unknown connector and size when none is found (the preview library then
    picks one)."""
    if setting not in PREVIEW_SETTINGS:
        raise InvalidParameterError(
            f"display.preview={setting!r}: expected one of {', '.join(PREVIEW_SETTINGS)}"
        )
    if setting == "off":
        return None
    displays = connected_displays(drm_root)
    if displays:
        return displays[0]
    if setting == "on":
        logger.info("display.preview = on but no connected display found under %s", drm_root)
        return Display("unknown")
    return None
