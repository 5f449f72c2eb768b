"""Flat-field calibration: a lens shading table from frames of an evenly lit white surface.

Each CFA site's plane is block-averaged, fitted with a smooth even polynomial in the
distance from the optical centre and its axes (lens falloff is smooth: cos^4-law
vignetting plus a mild colour-dependent term; see Goldman, "Vignette and Exposure
Calibration and Compensation", IEEE TPAMI 32(12), 2010, for the radial model), and
inverted into gains on the coarse grid of :class:`pipeline.raw_frame.LensShadingMap`.
Each site is normalised to its own centre, so both the falloff and the colour cast across
the field are corrected while the white balance at the centre is left alone.
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


def _site_planes(frames: Sequence[RawFrame]) -> npt.NDArray[np.float64]:
    """(4, H/2, W/2) float64 mean of the frames' normalised sites."""
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


def _design(ny: npt.NDArray[np.float64], nx: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Smooth basis: even radial terms plus low-order terms for an off-centre optical axis."""
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
        :func:`pipeline.lens_shading.apply`.
    """
    if not frames:
        raise InvalidParameterError("frames is empty: a flat field needs at least one frame")
    gh, gw = grid_size
    if gh < 2 or gw < 2:
        raise InvalidParameterError(f"grid_size={grid_size}: expected at least (2, 2)")
    planes = _site_planes(frames)
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
    block_basis = _design(*np.meshgrid(cy, cx, indexing="ij"))
    grid_basis = _design(*np.meshgrid(gy, gx, indexing="ij"))
    centre_basis = _design(np.zeros(1), np.zeros(1))
    gains = np.empty((4, gh, gw), dtype=np.float32)
    for site in range(4):
        level = means[site]
        usable = (level > MIN_LEVEL) & (level < MAX_LEVEL)
        if usable.sum() < block_basis.shape[-1] * 3:
            raise InvalidParameterError(
                "the flat field is too dark or clipped: expose a white surface to about half scale"
            )
        coeffs, *_ = np.linalg.lstsq(block_basis[usable], level[usable], rcond=None)
        fitted = grid_basis @ coeffs
        centre = float((centre_basis @ coeffs)[0])
        gains[site] = (centre / np.maximum(fitted, 1e-3 * centre)).astype(np.float32)
    return LensShadingMap(gains=gains)
