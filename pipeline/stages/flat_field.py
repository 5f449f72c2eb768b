"""Flat-field calibration: a lens shading table from frames of an evenly lit white surface.

Each CFA site's plane is block-averaged and its gain (the inverse of the level) fitted
with a smooth even polynomial in the distance from the optical centre and its axes (lens
falloff is smooth: cos^4-law vignetting plus a mild colour-dependent term, whose inverse
is a polynomial in r^2; see Goldman, "Vignette and Exposure Calibration and
Compensation", IEEE TPAMI 32(12), 2010, for the radial model). The gains on the coarse
grid of :class:`pipeline.raw_frame.LensShadingMap` are the fit's, times what the blocks
depart from it by (a lens's shading is not quite a polynomial), interpolated.
Each site is normalised to its own centre, so both the falloff and the colour cast across
the field are corrected while the white balance at the centre is left alone.

A frame that is not a flat field is refused rather than turned into a table that would
blotch every later shot: its blocks must follow the smooth fit to within
``MAX_RESIDUAL_RMS`` (texture, edges and uneven light do not), no more than
``MAX_UNUSABLE_FRACTION`` of them may be too dark or clipped, and the gains must stay
within what a lens's vignetting can need (``MIN_GAIN`` to ``MAX_GAIN``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from pipeline.errors import InvalidParameterError
from pipeline.raw_frame import LensShadingMap, RawFrame

BLOCK_PX = 16
MIN_LEVEL = 0.05
MAX_LEVEL = 0.95
#: Largest share of blocks that may be too dark or clipped (a flat field has neither).
MAX_UNUSABLE_FRACTION = 0.05
#: Largest RMS of the blocks' relative deviation from the smooth fit. A flat field of the
#: simulator's lens (the IMX477 tuning's tables: a real lens as the Pi calibrated it)
#: deviates by about 1.2%, with 3x its shading 2%; real scenes (the Pi DNGs in ../shared)
#: by 50% or more.
MAX_RESIDUAL_RMS = 0.03
#: The strongest corner falloff of a real lens is about 3 EV (a fast wide lens wide open:
#: cos^4 of a 33 degree field angle alone is 1.1 EV on the HQ sensor with a 6 mm lens,
#: plus the mechanical vignetting of its f/1.2 aperture), so no gain exceeds 2**3.
MAX_GAIN = 8.0
#: The frame centre sits near the lens's brightest point; a field 1 EV brighter than the
#: centre is uneven light, not vignetting.
MIN_GAIN = 0.5
SITE_NAMES = ("top-left", "top-right", "bottom-left", "bottom-right")


class FlatFieldError(InvalidParameterError):
    """Frames that are not a usable flat field; the message says why."""


def site_planes(frames: Sequence[RawFrame]) -> npt.NDArray[np.float64]:
    """(4, H/2, W/2) float64 mean of the frames' sites (row-major in the 2x2 tile), black
    subtracted, 1 at the white level."""
    first = frames[0]
    height, width = first.shape
    black = np.asarray(first.metadata.black_level, dtype=np.float64).reshape(2, 2)
    white = float(first.metadata.white_level)
    acc = np.zeros((4, height // 2, width // 2))
    for frame in frames:
        if frame.shape != first.shape or frame.metadata.cfa_pattern != first.metadata.cfa_pattern:
            raise InvalidParameterError(
                f"flat frames differ: {frame.shape} {frame.metadata.cfa_pattern.value} vs "
                f"{first.shape} {first.metadata.cfa_pattern.value}"
            )
        for site in range(4):
            dy, dx = divmod(site, 2)
            plane = frame.cfa[dy : height - (height % 2) : 2, dx : width - (width % 2) : 2]
            acc[site] += (plane - black[dy, dx]) / (white - black[dy, dx])
    return acc / len(frames)


def smooth_basis(
    ny: npt.NDArray[np.float64], nx: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """(..., 10) smooth basis at normalised positions (from the frame centre, over the
    half-diagonal): even radial terms plus low-order terms for an off-centre optical axis."""
    r2 = ny * ny + nx * nx
    return np.stack(
        [np.ones_like(r2), nx, ny, nx * ny, nx * nx - ny * ny, r2, r2 * r2, r2**3, r2 * nx, r2 * ny],
        axis=-1,
    )


def lens_shading_from_flat(
    frames: Sequence[RawFrame], grid_size: tuple[int, int] = (24, 32)
) -> LensShadingMap:
    """Lens shading gains from raw frames of a uniformly lit, unclipped white surface.

    Parameters
    ----------
    frames : sequence of RawFrame
        One or more frames of the same size and pattern (more frames, less noise). Their
        centre should sit between 5% and 95% of the white level.
    grid_size : (gh, gw)
        Grid points of the table, at the frame's corners and evenly between.

    Returns
    -------
    LensShadingMap
        Gains >= about 1 that make the flat field flat when applied by
        :func:`pipeline.stages.lens_shading.apply`.

    Raises
    ------
    FlatFieldError
        The frames are too dark or clipped, are not flat (a scene, uneven light), or
        would need gains outside ``MIN_GAIN``..``MAX_GAIN``.
    """
    if not frames:
        raise InvalidParameterError("frames is empty: a flat field needs at least one frame")
    gh, gw = grid_size
    if gh < 2 or gw < 2:
        raise InvalidParameterError(f"grid_size={grid_size}: expected at least (2, 2)")
    planes = site_planes(frames)
    _, ph, pw = planes.shape
    by, bx = ph // BLOCK_PX, pw // BLOCK_PX
    if by < 4 or bx < 4:
        raise InvalidParameterError(f"frames of {frames[0].shape} are too small for a flat field")
    blocks = planes[:, : by * BLOCK_PX, : bx * BLOCK_PX].reshape(4, by, BLOCK_PX, bx, BLOCK_PX)
    means = blocks.mean(axis=(2, 4))
    # Normalised coordinates of block centres and grid points, in full-frame pixels.
    height, width = frames[0].shape
    half_diag = np.hypot(height / 2, width / 2)
    cy = ((np.arange(by) + 0.5) * BLOCK_PX * 2 - height / 2) / half_diag
    cx = ((np.arange(bx) + 0.5) * BLOCK_PX * 2 - width / 2) / half_diag
    gy = (np.linspace(0.0, height - 1.0, gh) + 0.5 - height / 2) / half_diag
    gx = (np.linspace(0.0, width - 1.0, gw) + 0.5 - width / 2) / half_diag
    # Grid points in block units (0 at the first block's centre).
    grid_by = np.linspace(0.0, height - 1.0, gh) / (2 * BLOCK_PX) - 0.5
    grid_bx = np.linspace(0.0, width - 1.0, gw) / (2 * BLOCK_PX) - 0.5
    block_basis = smooth_basis(*np.meshgrid(cy, cx, indexing="ij"))
    grid_basis = smooth_basis(*np.meshgrid(gy, gx, indexing="ij"))
    centre_basis = smooth_basis(np.zeros(1), np.zeros(1))
    gains = np.empty((4, gh, gw), dtype=np.float32)
    for site in range(4):
        level = means[site]
        usable = (level > MIN_LEVEL) & (level < MAX_LEVEL)
        unusable = 1.0 - float(usable.mean())
        if unusable > MAX_UNUSABLE_FRACTION:
            raise FlatFieldError(
                f"not a flat field: {unusable:.0%} of the frame is too dark or clipped "
                f"(at most {MAX_UNUSABLE_FRACTION:.0%}); fill the frame with an evenly lit "
                "white surface exposed to about half scale"
            )
        # The gain, not the level, is the smooth polynomial: 1 / level of a 1 / (1 + a r^2)
        # or cos^4 falloff is a polynomial in r^2. Fitted for the least relative error.
        basis = block_basis[usable]
        coeffs, *_ = np.linalg.lstsq(basis * level[usable, None], np.ones(len(basis)), rcond=None)
        smooth_gain = basis @ coeffs
        if np.any(smooth_gain <= 0):
            raise FlatFieldError("not a flat field: its brightness does not vary smoothly")
        residual_rms = float(np.sqrt(np.mean((level[usable] * smooth_gain - 1.0) ** 2)))
        if residual_rms > MAX_RESIDUAL_RMS:
            raise FlatFieldError(
                f"not a flat field: the {SITE_NAMES[site]} CFA site departs from a smooth "
                f"falloff by {residual_rms:.1%} RMS (at most {MAX_RESIDUAL_RMS:.0%}): "
                "texture, edges or uneven light; shoot an evenly lit white surface, "
                "defocused, filling the frame"
            )
        centre = float((centre_basis @ coeffs)[0])
        # What the polynomial leaves (a real lens's tables are not one: the Pi's own for
        # the HQ lens depart from the best fit by about 1 % RMS, 4 % at worst) is kept,
        # interpolated from the blocks to the grid.
        left = np.ones((by, bx))
        left[usable] = level[usable] * smooth_gain
        along_x = np.array([np.interp(grid_bx, np.arange(bx), row) for row in left])
        left_at_grid = np.array([np.interp(grid_by, np.arange(by), col) for col in along_x.T]).T
        site_gains = (grid_basis @ coeffs) / centre / left_at_grid
        low, high = float(site_gains.min()), float(site_gains.max())
        if not (MIN_GAIN <= low and high <= MAX_GAIN):
            raise FlatFieldError(
                f"not a flat field: it needs gains of {low:.2f} to {high:.2f} "
                f"(a lens's vignetting needs {MIN_GAIN:g} to {MAX_GAIN:g}, at most 3 EV of "
                "corner falloff): uneven light or a scene, not a lens's falloff"
            )
        gains[site] = site_gains.astype(np.float32)
    return LensShadingMap(gains=gains)
