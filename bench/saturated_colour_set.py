"""A saturated, low-correlation colour validation set for demosaicing, split tuning / held-out.

Kodak's colours are soft: its channels move together, which is what colour-difference
demosaicing (GBTF) assumes. This set has what Kodak lacks, from images available offline:

- scikit-image's sample photos with their chroma doubled (YCbCr, BT.601) and clipped, so
  that hues saturate and channels stop following each other, and its natively saturated
  images (colour wheel, IHC stain, logo);
- synthetic saturated edges: anti-aliased random shapes and stripes of saturated colours
  over each other, each shape's colour with one or two channels near zero;
- synthetic colour sweeps: a hue sweep at full saturation with a chirp (fine detail) in
  one channel only;
- the simulator's ColorChecker chart (``hardware.imx477_simulator.render_colorchecker``).

The split is fixed here, before any measurement, and never tuned on: each kind of image
appears on both sides, with different photos and different seeds. Images are (H, W, 3)
float64 in [0, 1], display-encoded like the Kodak PNGs, with even sizes.

Needs scikit-image (a bench dependency only: ``pip install scikit-image``); imageio's
standard images need a download and are not used.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Literal

import numpy as np
import numpy.typing as npt

from hardware.imx477_simulator import render_colorchecker

Image = npt.NDArray[np.float64]
Part = Literal["tuning", "held_out"]

CHROMA_GAIN = 2.0
"""Factor on Cb and Cr of the boosted photos."""

SUPERSAMPLING = 4
"""Synthetic images are drawn at this many times their size and box-averaged down."""


def _skimage_photo(name: str, step: int = 1) -> Image:
    """One of scikit-image's bundled sample photos, RGB float64 in [0, 1], even size,
    keeping every ``step``-th row and column."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from skimage import data
    loaded = getattr(data, name)()
    if isinstance(loaded, tuple):  # stereo pairs: the left view
        loaded = loaded[0]
    image = np.asarray(loaded, dtype=np.float64)[::step, ::step] / 255.0
    if image.shape[2] == 4:  # RGBA: composite over white
        alpha = image[..., 3:]
        image = image[..., :3] * alpha + (1.0 - alpha)
    height, width = image.shape[0] // 2 * 2, image.shape[1] // 2 * 2
    return np.ascontiguousarray(image[:height, :width, :3])


def boost_chroma(image: Image, gain: float = CHROMA_GAIN) -> Image:
    """``image`` with its BT.601 Cb and Cr multiplied by ``gain``, clipped to [0, 1]."""
    red, green, blue = image[..., 0], image[..., 1], image[..., 2]
    luma = 0.299 * red + 0.587 * green + 0.114 * blue
    cb = gain * (blue - luma) / 1.772
    cr = gain * (red - luma) / 1.402
    out = np.empty_like(image)
    out[..., 0] = luma + 1.402 * cr
    out[..., 2] = luma + 1.772 * cb
    out[..., 1] = (luma - 0.299 * out[..., 0] - 0.114 * out[..., 2]) / 0.587
    return np.clip(out, 0.0, 1.0)


def _box_down(image: Image, factor: int) -> Image:
    """Mean over ``factor`` x ``factor`` blocks (anti-aliasing after supersampling)."""
    height, width = image.shape[0] // factor, image.shape[1] // factor
    blocks = image[: height * factor, : width * factor].reshape(height, factor, width, factor, 3)
    return blocks.mean(axis=(1, 3))


def _saturated_colour(rng: np.random.Generator) -> npt.NDArray[np.float64]:
    """A random saturated colour: a pure hue with one or two channels near zero."""
    colour = np.zeros(3)
    strong = rng.permutation(3)[: rng.integers(1, 3)]
    colour[strong] = rng.uniform(0.6, 1.0, size=strong.size)
    weak = np.setdiff1d(np.arange(3), strong)
    colour[weak] = rng.uniform(0.0, 0.15, size=weak.size)
    return colour


def saturated_edges(height: int, width: int, seed: int) -> Image:
    """Random anti-aliased disks, rotated rectangles and stripe patches of saturated colours."""
    rng = np.random.default_rng(seed)
    s = SUPERSAMPLING
    rows, cols = np.mgrid[0 : height * s, 0 : width * s].astype(np.float64) / s
    image = np.empty((height * s, width * s, 3))
    image[:] = _saturated_colour(rng)
    for _ in range(40):
        cy, cx = rng.uniform(0, height), rng.uniform(0, width)
        size = rng.uniform(6, min(height, width) / 4)
        kind = rng.integers(3)
        if kind == 0:
            inside = (rows - cy) ** 2 + (cols - cx) ** 2 < size**2
        else:
            angle = rng.uniform(0, np.pi)
            u = (cols - cx) * np.cos(angle) + (rows - cy) * np.sin(angle)
            v = -(cols - cx) * np.sin(angle) + (rows - cy) * np.cos(angle)
            inside = (np.abs(u) < size) & (np.abs(v) < size * rng.uniform(0.3, 1.0))
            if kind == 2:  # stripes 4..8 pixels wide: a red or blue plane, sampled every
                # other pixel, cannot hold narrower ones
                period = rng.uniform(8.0, 16.0)
                inside &= (u % period) < period / 2
        image[inside] = _saturated_colour(rng)
    return _box_down(image, s)


def colour_sweep(height: int, width: int, seed: int) -> Image:
    """Full-saturation hue sweep along x; a chirp modulates one channel only, rising along y."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[0:height, 0:width].astype(np.float64)
    hue = (cols / width + rng.uniform()) % 1.0
    # HSV to RGB at S = V = 1, as a smooth triangle per channel.
    image = np.stack(
        [np.clip(np.abs(((hue + k / 3.0) % 1.0) * 6.0 - 3.0) - 1.0, 0.0, 1.0) for k in range(3)],
        axis=-1,
    )
    channel = rng.integers(3)
    max_frequency = rng.uniform(0.1, 0.2)  # cycles per pixel, below a red or blue plane's Nyquist (0.25)
    phase = 2.0 * np.pi * 0.5 * max_frequency * rows**2 / height
    modulation = 0.5 + 0.5 * np.cos(phase + 2.0 * np.pi * cols * rng.uniform(0.0, 0.05))
    image[..., channel] *= 0.3 + 0.7 * modulation
    return image


def colorchecker_chart() -> Image:
    """The simulator's ColorChecker Classic chart, sRGB-encoded, clipped to [0, 1], 48-pixel patches."""
    chart = render_colorchecker(patch_size_px=48, border_px=12).image_srgb
    return np.clip(chart.astype(np.float64), 0.0, 1.0)


_PARTS: dict[Part, tuple[tuple[str, Callable[[], Image]], ...]] = {
    "tuning": (
        ("astronaut x2 chroma", lambda: boost_chroma(_skimage_photo("astronaut"))),
        ("coffee x2 chroma", lambda: boost_chroma(_skimage_photo("coffee"))),
        ("motorcycle x2 chroma", lambda: boost_chroma(_skimage_photo("stereo_motorcycle"))),
        ("colour wheel", lambda: _skimage_photo("colorwheel")),
        ("IHC stain", lambda: _skimage_photo("immunohistochemistry")),
        ("edges seed 0", lambda: saturated_edges(256, 384, seed=0)),
        ("edges seed 1", lambda: saturated_edges(256, 384, seed=1)),
        ("sweep seed 0", lambda: colour_sweep(256, 384, seed=0)),
    ),
    "held_out": (
        ("chelsea x2 chroma", lambda: boost_chroma(_skimage_photo("chelsea"))),
        ("rocket x2 chroma", lambda: boost_chroma(_skimage_photo("rocket"))),
        ("retina", lambda: _skimage_photo("retina", step=2)),
        ("logo", lambda: _skimage_photo("logo")),
        ("ColorChecker chart", colorchecker_chart),
        ("edges seed 100", lambda: saturated_edges(256, 384, seed=100)),
        ("edges seed 101", lambda: saturated_edges(256, 384, seed=101)),
        ("sweep seed 100", lambda: colour_sweep(256, 384, seed=100)),
    ),
}


def saturated_colour_set(part: Part) -> list[tuple[str, Image]]:
    """The ``part`` ("tuning" or "held_out") of the set: (name, (H, W, 3) float64) pairs."""
    if part not in _PARTS:
        raise ValueError(f"part={part!r}: expected 'tuning' or 'held_out'")
    return [(name, make()) for name, make in _PARTS[part]]
