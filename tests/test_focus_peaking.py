"""Focus peaking: marks on sharp edges only, at any exposure; the grey preview of a raw frame."""

from __future__ import annotations

import numpy as np
import pytest

from hardware.simulated_camera import gaussian_blur
from pipeline.errors import InvalidParameterError
from pipeline.focus.peaking import (
    PEAKING_MIN_CONTRAST,
    focus_peaking_overlay,
    grey_preview_from_raw,
    relative_contrast,
)
from tests.conftest import ALL_PATTERNS, mosaic_frame


def _chart(seed: int, h: int = 96, w: int = 128) -> np.ndarray:
    """Left half: a noisy checkerboard of 8 px squares (sharp edges); right half: flat grey."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:h, :w]
    image = np.full((h, w), 200.0, np.float32)
    checker = ((yy // 8 + xx // 8) % 2).astype(np.float32)
    image[:, : w // 2] = 50.0 + 900.0 * checker[:, : w // 2]
    image += rng.normal(0.0, 2.0, image.shape).astype(np.float32)
    return np.maximum(image, 0).astype(np.float32)


def _marked(overlay: np.ndarray) -> np.ndarray:
    return overlay[..., 3] > 0


def test_overlay_marks_sharp_edges_not_flat_areas() -> None:
    image = _chart(seed=1)
    overlay = focus_peaking_overlay(image, colour=(0, 255, 0))
    assert overlay.shape == (96, 128, 4) and overlay.dtype == np.uint8
    marked = _marked(overlay)
    # On the checkerboard edges (columns/rows next to a multiple of 8), not inside squares.
    edge = np.zeros_like(marked)
    for k in range(8, 64, 8):
        edge[:, k - 1 : k + 1] = True
    for k in range(8, 96, 8):
        edge[k - 1 : k + 1, :64] = True
    assert marked[:, :64].sum() > 200
    assert np.all(edge[marked]), "only edge pixels are marked"
    assert not marked[:, 66:].any(), "the flat half stays clear"
    assert np.all(overlay[marked] == (0, 255, 0, 255))
    assert np.all(overlay[~marked] == 0)


def test_threshold_adapts_to_exposure() -> None:
    image = _chart(seed=2)
    full = _marked(focus_peaking_overlay(image))
    for scale in (0.5, 0.05, 8.0):
        scaled = _marked(focus_peaking_overlay(image * np.float32(scale)))
        assert np.mean(full != scaled) < 0.002, scale


def test_blurred_edges_are_not_marked() -> None:
    image = _chart(seed=3)
    sharp = _marked(focus_peaking_overlay(image)).sum()
    slightly = _marked(focus_peaking_overlay(gaussian_blur(image[..., None], 1.0)[..., 0])).sum()
    blurred = _marked(focus_peaking_overlay(gaussian_blur(image[..., None], 3.0)[..., 0])).sum()
    # A slightly soft edge still stands out; a defocused one (sigma 3 px) is not marked.
    assert sharp >= slightly > 0 and blurred == 0


def test_explicit_threshold_and_flat_or_black_images() -> None:
    image = _chart(seed=4)
    contrast = relative_contrast(image)
    overlay = focus_peaking_overlay(image, threshold=0.1)
    assert np.array_equal(_marked(overlay), contrast >= 0.1)
    assert not _marked(focus_peaking_overlay(np.full((16, 16), 300.0, np.float32))).any()
    assert not _marked(focus_peaking_overlay(np.zeros((16, 16), np.float32))).any()
    assert PEAKING_MIN_CONTRAST < float(contrast.max())


@pytest.mark.parametrize(
    ("kwargs", "word"),
    [({"grey": np.zeros((2, 9), np.float32)}, "grey"),
     ({"grey": np.zeros((9, 9, 3), np.float32)}, "grey"),
     ({"colour": (255, 0)}, "colour"),
     ({"colour": (300, 0, 0)}, "colour"),
     ({"threshold": 0.0}, "threshold"),
     ({"threshold": float("nan")}, "threshold")],
)
def test_bad_parameters_name_themselves(kwargs: dict, word: str) -> None:
    args = {"grey": np.ones((9, 9), np.float32), **kwargs}
    with pytest.raises(InvalidParameterError, match=word):
        focus_peaking_overlay(**args)


@pytest.mark.parametrize("pattern", ALL_PATTERNS)
def test_grey_preview_from_raw_bins_downscales_and_keeps_aspect(pattern: str) -> None:
    rng = np.random.default_rng(5)
    rgb = np.full((120, 160, 3), 0.5, np.float32)
    rgb[:, :80] = rng.uniform(0.2, 0.3, (120, 80, 3)).astype(np.float32)
    frame = mosaic_frame(rgb, pattern, black=256.0, white=4095.0)
    grey = grey_preview_from_raw(frame, (30, 50))
    assert grey.dtype == np.float32
    assert grey.shape == (30, 40)  # 60x80 tiles, by the smallest factor (2) that fits
    # Black subtracted, linear: the flat half reads half of white above black.
    assert grey[:, 21:].mean() == pytest.approx(0.5 * (4095 - 256), rel=1e-3)
    whole = grey_preview_from_raw(frame, (1000, 1000))
    assert whole.shape == (60, 80)
    with pytest.raises(InvalidParameterError, match="size"):
        grey_preview_from_raw(frame, (0, 10))
