"""Colour grading in OkLab/OkLCh: saturation, per-hue saturation and hue, monochrome, split toning.

Grading works on display-referred colour (after the tone curve) in OkLab, a perceptual
space whose hue lines stay put when chroma changes (Ottosson 2020; see
:mod:`pipeline.colour.metrics`): scaling (a, b) changes saturation without changing hue,
and rotating it changes hue without changing lightness.

* Per-hue saturation and hue shift are given at eight named hues and interpolated
  smoothly (smoothstep between neighbours) round the hue circle.
* Skin tones (OkLCh hue about 30-60 degrees: the ColorChecker's dark and light skin are
  at 42 and 38) are spared by a raised-cosine weight in hue, flat over the skin range and
  fading to zero 40 degrees either side: no band, and saturation and hue edits fade out
  there as ``skin_protection`` asks.
* Vibrance raises the chroma of muted colours more than of saturated ones.
* Monochrome takes linear luminance from a channel mix (a panchromatic emulsion, or one
  behind a colour filter) and drops chroma.
* Split toning adds a chroma offset of one hue in the shadows and another in the
  highlights, crossing over smoothly around a pivot lightness; it fades out on coloured
  pixels of skin hue, so toning never turns skin.
* Chroma gains never leave the sRGB gamut: the part of a gain above 1 is compressed
  exponentially toward the gamut boundary at the pixel's lightness and hue (found by
  bisection), so saturated colours keep their gradations instead of clipping flat. Tints
  that still overshoot are pulled toward the grey of equal lightness just enough to fit.

The functions work on arrays of colours in numpy: :mod:`pipeline.looks.look_pass` runs them once
per look on the nodes of a 3D LUT, so their cost does not depend on the image size.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import numpy as np
import numpy.typing as npt

from pipeline.colour.metrics import (
    linear_srgb_to_oklab,
    oklab_to_linear_srgb,
    oklab_to_oklch,
    oklch_to_oklab,
)
from pipeline.colour.transforms import LUMINANCE_WEIGHTS
from pipeline.errors import InvalidParameterError
from pipeline.parameters import bounded, check_bounds

#: OkLCh hue (degrees) of each named hue; sRGB's primaries and secondaries sit at about
#: red 29, yellow 110, green 142, cyan 195, blue 264, magenta 328.
HUE_CENTRES_DEG = {
    "red": 25.0, "orange": 55.0, "yellow": 100.0, "green": 140.0,
    "cyan": 195.0, "blue": 260.0, "purple": 300.0, "magenta": 330.0,
}  # fmt: skip
#: Skin protection: full within +-SKIN_CORE_DEG of SKIN_HUE_DEG, none beyond +-SKIN_EDGE_DEG.
SKIN_HUE_DEG = 45.0
SKIN_CORE_DEG = 15.0
SKIN_EDGE_DEG = 40.0
#: Chroma at which vibrance stops acting.
VIBRANCE_CHROMA = 0.2

_GAMUT_SEARCH_STEPS = 14


@dataclass(frozen=True)
class HueSaturation:
    """Chroma multipliers at the eight named hues (1 = unchanged)."""

    red: float = bounded(1.0, 0.0, 2.0, "chroma multiplier for reds")
    orange: float = bounded(1.0, 0.0, 2.0, "chroma multiplier for oranges")
    yellow: float = bounded(1.0, 0.0, 2.0, "chroma multiplier for yellows")
    green: float = bounded(1.0, 0.0, 2.0, "chroma multiplier for greens")
    cyan: float = bounded(1.0, 0.0, 2.0, "chroma multiplier for cyans")
    blue: float = bounded(1.0, 0.0, 2.0, "chroma multiplier for blues")
    purple: float = bounded(1.0, 0.0, 2.0, "chroma multiplier for purples")
    magenta: float = bounded(1.0, 0.0, 2.0, "chroma multiplier for magentas")

    def __post_init__(self) -> None:
        check_bounds(self)


@dataclass(frozen=True)
class HueShift:
    """Hue rotations (degrees, positive = counter-clockwise in OkLab) at the named hues."""

    red: float = bounded(0.0, -30.0, 30.0, "hue shift of reds, degrees")
    orange: float = bounded(0.0, -30.0, 30.0, "hue shift of oranges, degrees")
    yellow: float = bounded(0.0, -30.0, 30.0, "hue shift of yellows, degrees")
    green: float = bounded(0.0, -30.0, 30.0, "hue shift of greens, degrees")
    cyan: float = bounded(0.0, -30.0, 30.0, "hue shift of cyans, degrees")
    blue: float = bounded(0.0, -30.0, 30.0, "hue shift of blues, degrees")
    purple: float = bounded(0.0, -30.0, 30.0, "hue shift of purples, degrees")
    magenta: float = bounded(0.0, -30.0, 30.0, "hue shift of magentas, degrees")

    def __post_init__(self) -> None:
        check_bounds(self)


@dataclass(frozen=True)
class GradingParams:
    """Colour of a look; the defaults change nothing."""

    saturation: float = bounded(1.0, 0.0, 2.0, "chroma multiplier for every hue")
    vibrance: float = bounded(0.0, -1.0, 1.0, "extra chroma for muted colours")
    skin_protection: float = bounded(1.0, 0.0, 1.0, "how much skin hues are spared")
    monochrome: bool = False
    monochrome_mix: tuple[float, float, float] = tuple(LUMINANCE_WEIGHTS.tolist())
    saturation_by_hue: HueSaturation = field(default_factory=HueSaturation)
    hue_shift_deg: HueShift = field(default_factory=HueShift)

    def __post_init__(self) -> None:
        check_bounds(self)
        mix = self.monochrome_mix
        if len(mix) != 3 or min(mix) < 0 or sum(mix) <= 0:
            raise InvalidParameterError(
                f"monochrome_mix={mix!r}: expected three weights >= 0 with a positive sum"
            )

    @property
    def adjusts_chroma(self) -> bool:
        """Whether saturation, vibrance or hue are changed anywhere."""
        return (
            self.saturation != 1
            or self.vibrance != 0
            or self.saturation_by_hue != HueSaturation()
            or self.hue_shift_deg != HueShift()
        )

    @property
    def is_identity(self) -> bool:
        """Whether grading leaves every colour as it is."""
        return not (self.adjusts_chroma or self.monochrome)


@dataclass(frozen=True)
class SplitToning:
    """Tints of shadows and highlights, as OkLab chroma added at a hue."""

    shadows_hue_deg: float = bounded(0.0, 0.0, 360.0, "OkLCh hue of the shadow tint")
    shadows_chroma: float = bounded(0.0, 0.0, 0.1, "OkLab chroma of the shadow tint")
    highlights_hue_deg: float = bounded(0.0, 0.0, 360.0, "OkLCh hue of the highlight tint")
    highlights_chroma: float = bounded(0.0, 0.0, 0.1, "OkLab chroma of the highlight tint")
    balance: float = bounded(0.0, -1.0, 1.0, "moves the pivot: > 0 gives shadows more room")

    def __post_init__(self) -> None:
        check_bounds(self)

    @property
    def is_identity(self) -> bool:
        """Whether no tint is added."""
        return self.shadows_chroma == 0 and self.highlights_chroma == 0

    @property
    def pivot(self) -> float:
        """OkLab lightness where shadow and highlight tints weigh the same."""
        return 0.5 + 0.25 * self.balance


def _periodic_smoothstep(
    hue_deg: npt.NDArray[np.float64], values: dict[str, float]
) -> npt.NDArray[np.float64]:
    """Values at :data:`HUE_CENTRES_DEG`, eased with smoothstep between neighbours."""
    order = sorted(HUE_CENTRES_DEG, key=HUE_CENTRES_DEG.__getitem__)
    angles = np.array([HUE_CENTRES_DEG[n] for n in order])
    v = np.array([values[n] for n in order])
    i = (np.searchsorted(angles, hue_deg, side="right") - 1) % len(order)
    j = (i + 1) % len(order)
    t = ((hue_deg - angles[i]) % 360.0) / ((angles[j] - angles[i]) % 360.0)
    return v[i] + (v[j] - v[i]) * t * t * (3.0 - 2.0 * t)


def skin_weight(hue_deg: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Skin protection weight in [0, 1] of OkLCh hues (degrees): raised cosine, flat core."""
    d = np.abs((np.asarray(hue_deg, dtype=np.float64) - SKIN_HUE_DEG + 180.0) % 360.0 - 180.0)
    t = np.clip((d - SKIN_CORE_DEG) / (SKIN_EDGE_DEG - SKIN_CORE_DEG), 0.0, 1.0)
    return 0.5 + 0.5 * np.cos(np.pi * t)


def _in_gamut(lch: npt.NDArray[np.float64]) -> npt.NDArray[np.bool_]:
    rgb = oklab_to_linear_srgb(oklch_to_oklab(lch))
    return np.all((rgb >= -1e-9) & (rgb <= 1.0 + 1e-9), axis=-1)


def max_chroma(
    lightness: npt.NDArray[np.float64], hue_deg: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """OkLCh chroma of the sRGB gamut boundary at each lightness and hue (bisection)."""
    low = np.zeros_like(lightness)
    high = np.full_like(lightness, 0.4)  # above sRGB's largest OkLCh chroma (0.32)
    for _ in range(_GAMUT_SEARCH_STEPS):
        mid = 0.5 * (low + high)
        inside = _in_gamut(np.stack([lightness, mid, hue_deg], axis=-1))
        low = np.where(inside, mid, low)
        high = np.where(inside, high, mid)
    return low


def _compress_gain(chroma: npt.NDArray[np.float64], target: npt.NDArray[np.float64],
                   limit: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """``target`` chroma, with the part above ``min(chroma, limit)`` approaching ``limit``
    exponentially: slope 1 where it starts, never beyond ``limit``."""
    base = np.minimum(chroma, limit)
    room = np.maximum(limit - base, 1e-12)
    excess = np.maximum(target - base, 0.0)
    return np.where(target <= base, target, base + room * -np.expm1(-excess / room))


def grade(
    rgb: npt.ArrayLike, params: GradingParams, toning: SplitToning
) -> npt.NDArray[np.float64]:
    """Grade linear-sRGB colours in [0, 1].

    Parameters
    ----------
    rgb : (..., 3) array_like
        Linear sRGB in [0, 1].
    params, toning : GradingParams, SplitToning
        The look's colour.

    Returns
    -------
    (..., 3) float64
        Linear sRGB in [0, 1]; monochrome colours have exactly equal channels.
    """
    rgb = np.clip(np.asarray(rgb, dtype=np.float64), 0.0, 1.0)
    if params.monochrome:
        mix = np.asarray(params.monochrome_mix) / sum(params.monochrome_mix)
        grey = rgb @ mix
        lch = np.stack([np.cbrt(grey), np.zeros_like(grey), np.zeros_like(grey)], axis=-1)
    else:
        grey = None
        lch = oklab_to_oklch(linear_srgb_to_oklab(rgb))
    lightness, chroma, hue = lch[..., 0], lch[..., 1], lch[..., 2]
    protect = params.skin_protection * skin_weight(hue)
    if params.adjusts_chroma:
        names = [f.name for f in fields(HueSaturation)]
        gains = {n: getattr(params.saturation_by_hue, n) for n in names}
        shifts = {n: getattr(params.hue_shift_deg, n) for n in names}
        gain = params.saturation * _periodic_smoothstep(hue, gains)
        muted = np.maximum(1.0 - chroma / VIBRANCE_CHROMA, 0.0)
        gain = gain * (1.0 + params.vibrance * muted * muted)
        gain = 1.0 + (gain - 1.0) * (1.0 - protect)
        hue = hue + _periodic_smoothstep(hue, shifts) * (1.0 - protect)
        # Only colours whose chroma grows, or whose hue turns, can leave the gamut.
        moved = (gain > 1.0) | (hue != lch[..., 2])
        target = chroma * gain
        chroma = target.copy()
        chroma[moved] = _compress_gain(
            lch[..., 1][moved], target[moved], max_chroma(lightness[moved], hue[moved])
        )
    lab = oklch_to_oklab(np.stack([lightness, chroma, hue], axis=-1))
    if not toning.is_identity:
        # Shadows get the shadow tint and highlights the highlight tint, crossing smoothly
        # over 0.35 either side of the pivot; coloured pixels of skin hue are left alone.
        t = np.clip((lightness - toning.pivot) / 0.7 + 0.5, 0.0, 1.0)
        weight = 1.0 - protect * np.minimum(chroma / 0.04, 1.0)
        highlights = t * t * (3.0 - 2.0 * t) * weight
        shadows = weight - highlights
        for w, c, h in ((shadows, toning.shadows_chroma, toning.shadows_hue_deg),
                        (highlights, toning.highlights_chroma, toning.highlights_hue_deg)):
            lab[..., 1] += w * c * np.cos(np.radians(h))
            lab[..., 2] += w * c * np.sin(np.radians(h))
    elif grey is not None:
        return np.repeat(grey[..., None], 3, axis=-1)
    out = oklab_to_linear_srgb(lab)
    # Whatever still overshoots moves toward the grey of its lightness until it fits.
    grey_level = np.clip(lab[..., :1], 0.0, 1.0) ** 3
    over = np.where(out > 1.0, (1.0 - grey_level) / np.maximum(out - grey_level, 1e-12), 1.0)
    under = np.where(out < 0.0, grey_level / np.maximum(grey_level - out, 1e-12), 1.0)
    t = np.minimum(np.minimum(over, under).min(axis=-1, keepdims=True), 1.0)
    return np.clip(grey_level + t * (out - grey_level), 0.0, 1.0)
