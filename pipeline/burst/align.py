"""Tile alignment of a burst frame to the reference, coarse to fine, with sub-pixel refinement.

HDR+ alignment (Hasinoff, Sharlet, Geiss, Adams, Barron, Kainz, Chen, Levoy, "Burst
photography for high dynamic range and low-light imaging on mobile cameras", ACM TOG
35(6), 2016, DOI 10.1145/2980179.2980254, sec. 4; implemented and analysed by Monod,
Delon, Veit, "An Analysis and Implementation of the HDR+ Burst Denoising Method", IPOL 11,
2021, DOI 10.5201/ipol.2021.336): the mosaic is averaged over each 2x2 Bayer tile into a
grey image at half resolution, a pyramid is built from it (downsampling factors 2, 4, 4,
so the coarsest level sees 64 raw pixels per pixel), and at each level every tile is
matched within a small search radius around the best of three candidate displacements
inherited from the coarser level (the tile's own and its two nearest neighbours'), L2 at
coarse levels and L1 at the finest. The integer displacement at the finest level is then
refined to sub-pixel precision by the inverse compositional Lucas-Kanade algorithm with a
translation model (Baker and Matthews, "Lucas-Kanade 20 Years On", IJCV 56(3), 2004,
sec. 3.2; as used for burst alignment by Wronski et al., "Handheld Multi-Frame
Super-Resolution", ACM TOG 38(4), 2019, sec. 5.1).

Displacements are in grey pixels (two raw pixels each): tile ``(i, j)`` of the reference
matches the alternate frame at ``reference position + flow[i, j]``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba
import numpy as np
import numpy.typing as npt

from pipeline.errors import InvalidParameterError
from pipeline.raw_frame import RawFrame


@dataclass(frozen=True)
class AlignParams:
    """Pyramid and tile settings, finest level first (HDR+'s, sec. 4, but for a search
    radius of 2 instead of 4 at the second level: its start comes from a level only 4x
    coarser, so +-2 covers the rounding, at a quarter of the cost).

    Attributes
    ----------
    downsample_factors : tuple of int
        Factor between each level and the next finer one; the first level is the grey
        image itself (factor 1).
    tile_sizes_px : tuple of int
        Tile side per level, in that level's pixels.
    search_radii_px : tuple of int
        Search radius per level around the inherited displacement.
    refine_iterations : int
        Lucas-Kanade iterations at the finest level (0 = integer displacements).
    """

    downsample_factors: tuple[int, ...] = (1, 2, 4, 4)
    tile_sizes_px: tuple[int, ...] = (16, 16, 16, 8)
    search_radii_px: tuple[int, ...] = (1, 2, 4, 4)
    refine_iterations: int = 3

    def __post_init__(self) -> None:
        n = len(self.downsample_factors)
        if n < 1 or len(self.tile_sizes_px) != n or len(self.search_radii_px) != n:
            raise InvalidParameterError(
                f"downsample_factors={self.downsample_factors}, tile_sizes_px="
                f"{self.tile_sizes_px}, search_radii_px={self.search_radii_px}: expected "
                "three tuples of one equal length >= 1"
            )
        if self.downsample_factors[0] != 1 or min(self.downsample_factors) < 1:
            raise InvalidParameterError(
                f"downsample_factors={self.downsample_factors}: expected (1, f1, f2, ...), f >= 1"
            )
        if min(self.tile_sizes_px) < 4 or any(t % 2 for t in self.tile_sizes_px):
            raise InvalidParameterError(
                f"tile_sizes_px={self.tile_sizes_px}: expected even sizes >= 4"
            )
        if min(self.search_radii_px) < 0 or self.refine_iterations < 0:
            raise InvalidParameterError(
                f"search_radii_px={self.search_radii_px}, refine_iterations="
                f"{self.refine_iterations}: expected >= 0"
            )


@dataclass(frozen=True, eq=False)
class TileFlow:
    """Per-tile displacements of one alternate frame at grey (half raw) resolution.

    Tiles abut (HDR+ overlaps them by half for its Fourier-domain merge; the spatial
    merge here interpolates displacements between tile centres instead, at a quarter
    of the matching cost).

    ``flow`` is (ny, nx, 2) float32 (dy, dx); tile ``(i, j)`` covers grey pixels
    ``[i * stride, i * stride + tile)`` x ``[j * stride, j * stride + tile)``.
    """

    flow: npt.NDArray[np.float32]
    tile_px: int
    stride_px: int


@numba.njit(cache=True, parallel=True, nogil=True)
def _bayer_grey_kernel(cfa, black, scale, gain, out):
    h, w = out.shape
    for y in numba.prange(h):
        for x in range(w):
            acc = np.float32(0.0)
            for dy in range(2):
                for dx in range(2):
                    v = np.float32(cfa[2 * y + dy, 2 * x + dx]) - black[dy, dx]
                    acc += v * scale[dy, dx]
            out[y, x] = acc * np.float32(0.25) * gain


def bayer_grey(frame: RawFrame, gain: float = 1.0) -> npt.NDArray[np.float32]:
    """(H/2, W/2) float32 mean of each 2x2 Bayer tile, black 0, white ``gain``.

    Parameters
    ----------
    frame : RawFrame
        Its mosaic is normalised per site with its black and white levels.
    gain : float
        Multiplies the result (an exposure ratio, to compare frames in one scale).
    """
    meta = frame.metadata
    black = np.asarray(meta.black_level, dtype=np.float32).reshape(2, 2)
    scale = (1.0 / (np.float32(meta.white_level) - black)).astype(np.float32)
    out = np.empty((frame.shape[0] // 2, frame.shape[1] // 2), dtype=np.float32)
    _bayer_grey_kernel(frame.cfa, black, scale, np.float32(gain), out)
    return out


@numba.njit(cache=True, parallel=True, nogil=True)
def _box_downsample_kernel(image, factor, out):
    h, w = out.shape
    norm = np.float32(1.0 / (factor * factor))
    for y in numba.prange(h):
        for x in range(w):
            acc = np.float32(0.0)
            for dy in range(factor):
                for dx in range(factor):
                    acc += image[y * factor + dy, x * factor + dx]
            out[y, x] = acc * norm


def downsample_grey(image: npt.NDArray[np.float32], factor: int) -> npt.NDArray[np.float32]:
    """(h // factor, w // factor) float32 means of factor x factor blocks (at least 1 x 1)."""
    h = max(image.shape[0] // factor, 1)
    w = max(image.shape[1] // factor, 1)
    out = np.empty((h, w), dtype=np.float32)
    _box_downsample_kernel(image, min(factor, image.shape[0], image.shape[1]), out)
    return out


def grey_pyramid(grey: npt.NDArray[np.float32], params: AlignParams) -> list[npt.NDArray[np.float32]]:
    """The grey image and its box-downsampled levels, finest first."""
    levels = [grey]
    for factor in params.downsample_factors[1:]:
        levels.append(downsample_grey(levels[-1], factor))
    return levels


@numba.njit(cache=True, nogil=True)
def _tile_distance(ref, alt, y0, x0, tile, dy, dx, is_l2):
    h, w = alt.shape
    rh, rw = ref.shape
    is_inside = (
        y0 + tile <= rh and x0 + tile <= rw and y0 + dy >= 0 and x0 + dx >= 0
        and y0 + dy + tile <= h and x0 + dx + tile <= w
    )  # fmt: skip
    if is_inside:  # the common case: rows without clamping, four partial sums
        s0 = np.float32(0.0)
        s1 = np.float32(0.0)
        s2 = np.float32(0.0)
        s3 = np.float32(0.0)
        quads = tile - tile % 4
        for i in range(tile):
            ref_row = ref[y0 + i, x0 : x0 + tile]
            alt_row = alt[y0 + i + dy, x0 + dx : x0 + dx + tile]
            for j in range(0, quads, 4):
                d0 = ref_row[j] - alt_row[j]
                d1 = ref_row[j + 1] - alt_row[j + 1]
                d2 = ref_row[j + 2] - alt_row[j + 2]
                d3 = ref_row[j + 3] - alt_row[j + 3]
                if is_l2:
                    s0 += d0 * d0
                    s1 += d1 * d1
                    s2 += d2 * d2
                    s3 += d3 * d3
                else:
                    s0 += abs(d0)
                    s1 += abs(d1)
                    s2 += abs(d2)
                    s3 += abs(d3)
            for j in range(quads, tile):
                d0 = ref_row[j] - alt_row[j]
                s0 += d0 * d0 if is_l2 else abs(d0)
        return (s0 + s1) + (s2 + s3)
    total = np.float32(0.0)
    for i in range(tile):
        yr = min(y0 + i, rh - 1)
        ya = min(max(y0 + i + dy, 0), h - 1)
        for j in range(tile):
            xr = min(x0 + j, rw - 1)
            xa = min(max(x0 + j + dx, 0), w - 1)
            d = ref[yr, xr] - alt[ya, xa]
            total += d * d if is_l2 else abs(d)
    return total


@numba.njit(cache=True, parallel=True, nogil=True)
def _match_level_kernel(ref, alt, tile, stride, radius, coarse, factor, coarse_tile, coarse_stride, is_l2, out):  # fmt: skip
    ny, nx, _ = out.shape
    cny, cnx, _ = coarse.shape
    for t in numba.prange(ny * nx):
        ty = t // nx
        tx = t % nx
        y0 = ty * stride
        x0 = tx * stride
        # This tile's centre in the coarser level, the nearest coarse tile and the next
        # nearest in each direction: three candidate displacements (HDR+ sec. 4).
        cy = (y0 + 0.5 * tile) / factor - 0.5 * coarse_tile
        cx = (x0 + 0.5 * tile) / factor - 0.5 * coarse_tile
        ky = min(max(int(round(cy / coarse_stride)), 0), cny - 1)
        kx = min(max(int(round(cx / coarse_stride)), 0), cnx - 1)
        ky2 = min(max(ky + (1 if cy > ky * coarse_stride else -1), 0), cny - 1)
        kx2 = min(max(kx + (1 if cx > kx * coarse_stride else -1), 0), cnx - 1)
        best = np.float32(np.inf)
        by = 0
        bx = 0
        for c in range(3):
            iy = ky2 if c == 1 else ky
            ix = kx2 if c == 2 else kx
            dy = int(round(coarse[iy, ix, 0] * factor))
            dx = int(round(coarse[iy, ix, 1] * factor))
            d = _tile_distance(ref, alt, y0, x0, tile, dy, dx, is_l2)
            if d < best:
                best = d
                by = dy
                bx = dx
        cy0 = by
        cx0 = bx
        for sy in range(-radius, radius + 1):
            for sx in range(-radius, radius + 1):
                if sy == 0 and sx == 0:
                    continue
                d = _tile_distance(ref, alt, y0, x0, tile, cy0 + sy, cx0 + sx, is_l2)
                if d < best:
                    best = d
                    by = cy0 + sy
                    bx = cx0 + sx
        out[ty, tx, 0] = by
        out[ty, tx, 1] = bx


@numba.njit(cache=True, nogil=True)
def sample_bilinear(image, y, x):
    """``image`` at float position (y, x), clamped to the edges (numba, float32)."""
    h, w = image.shape
    y = min(max(y, np.float32(0.0)), np.float32(h - 1))
    x = min(max(x, np.float32(0.0)), np.float32(w - 1))
    y0 = min(int(y), h - 2) if h > 1 else 0
    x0 = min(int(x), w - 2) if w > 1 else 0
    fy = y - y0
    fx = x - x0
    y1 = min(y0 + 1, h - 1)
    x1 = min(x0 + 1, w - 1)
    top = image[y0, x0] + fx * (image[y0, x1] - image[y0, x0])
    bottom = image[y1, x0] + fx * (image[y1, x1] - image[y1, x0])
    return top + fy * (bottom - top)


@numba.njit(cache=True, nogil=True)
def _shifted_tile_error(ref, alt, y0, y1, x0, x1, dy, dx, gxs, gys):
    # Sum over the tile of grad(ref) * (alt(p + d) - ref(p)): the displacement is one for
    # the whole tile, so are the bilinear weights.
    h, w = alt.shape
    iy = int(math.floor(dy))
    ix = int(math.floor(dx))
    ty = np.float32(dy - iy)
    tx = np.float32(dx - ix)
    one = np.float32(1.0)
    w00 = (one - ty) * (one - tx)
    w01 = (one - ty) * tx
    w10 = ty * (one - tx)
    w11 = ty * tx
    bx = np.float32(0.0)
    by = np.float32(0.0)
    if y0 + iy >= 0 and y1 + iy < h and x0 + ix >= 0 and x1 + ix < w:  # inside: no clamping
        k = 0
        for y in range(y0, y1):
            top = alt[y + iy]
            bottom = alt[y + iy + 1]
            for x in range(x0, x1):
                xa = x + ix
                value = w00 * top[xa] + w01 * top[xa + 1] + w10 * bottom[xa] + w11 * bottom[xa + 1]
                e = value - ref[y, x]
                bx += gxs[k] * e
                by += gys[k] * e
                k += 1
        return by, bx
    for y in range(y0, y1):
        ya = min(max(y + iy, 0), h - 1)
        yb = min(max(y + iy + 1, 0), h - 1)
        for x in range(x0, x1):
            xa = min(max(x + ix, 0), w - 1)
            xb = min(max(x + ix + 1, 0), w - 1)
            value = w00 * alt[ya, xa] + w01 * alt[ya, xb] + w10 * alt[yb, xa] + w11 * alt[yb, xb]
            e = value - ref[y, x]
            k = (y - y0) * (x1 - x0) + (x - x0)
            bx += gxs[k] * e
            by += gys[k] * e
    return by, bx


@numba.njit(cache=True, parallel=True, nogil=True)
def _refine_ica_kernel(ref, alt, tile, stride, iterations, flow):
    # Inverse compositional Lucas-Kanade, translation only: the Hessian comes from the
    # reference tile's gradients once; each iteration warps the alternate bilinearly.
    h, w = ref.shape
    ny, nx, _ = flow.shape
    for t in numba.prange(ny * nx):
        ty = t // nx
        tx = t % nx
        y0 = max(ty * stride, 1)
        x0 = max(tx * stride, 1)
        y1 = min(ty * stride + tile, h - 1)
        x1 = min(tx * stride + tile, w - 1)
        if y1 <= y0 or x1 <= x0:
            continue
        gxs = np.empty((y1 - y0) * (x1 - x0), dtype=np.float32)
        gys = np.empty((y1 - y0) * (x1 - x0), dtype=np.float32)
        sxx = np.float32(0.0)
        sxy = np.float32(0.0)
        syy = np.float32(0.0)
        k = 0
        for y in range(y0, y1):
            for x in range(x0, x1):
                gx = np.float32(0.5) * (ref[y, x + 1] - ref[y, x - 1])
                gy = np.float32(0.5) * (ref[y + 1, x] - ref[y - 1, x])
                gxs[k] = gx
                gys[k] = gy
                k += 1
                sxx += gx * gx
                sxy += gx * gy
                syy += gy * gy
        det = sxx * syy - sxy * sxy
        trace = sxx + syy
        if trace <= 0 or det <= np.float32(1e-3) * trace * trace:
            continue  # flat or one-dimensional texture: keep the integer displacement
        iy = flow[ty, tx, 0]
        ix = flow[ty, tx, 1]
        dy = iy
        dx = ix
        for _ in range(iterations):
            by, bx = _shifted_tile_error(ref, alt, y0, y1, x0, x1, dy, dx, gxs, gys)
            dx -= (syy * bx - sxy * by) / det
            dy -= (sxx * by - sxy * bx) / det
        if abs(dy - iy) <= 1.0 and abs(dx - ix) <= 1.0:
            flow[ty, tx, 0] = dy
            flow[ty, tx, 1] = dx


def align_tiles_hasinoff2016(
    reference_pyramid: list[npt.NDArray[np.float32]],
    alternate_grey: npt.NDArray[np.float32],
    params: AlignParams,
) -> TileFlow:
    """Align one alternate frame's grey image to the reference's pyramid.

    Parameters
    ----------
    reference_pyramid : list of (h, w) float32
        :func:`grey_pyramid` of the reference frame's :func:`bayer_grey`.
    alternate_grey : (H/2, W/2) float32
        The alternate frame's grey image, in the reference's scale.
    params : AlignParams

    Returns
    -------
    TileFlow
        Sub-pixel displacements of the finest level's tiles, grey pixels.
    """
    alt_pyramid = grey_pyramid(alternate_grey, params)
    coarse = np.zeros((1, 1, 2), dtype=np.float32)
    coarse_tile, coarse_stride, factor = 1, 1 << 30, 1
    n_levels = len(params.downsample_factors)
    for level in range(n_levels - 1, -1, -1):
        ref, alt = reference_pyramid[level], alt_pyramid[level]
        tile = params.tile_sizes_px[level]
        stride = tile
        ny = max((ref.shape[0] - tile) // stride + 1, 1)
        nx = max((ref.shape[1] - tile) // stride + 1, 1)
        flow = np.empty((ny, nx, 2), dtype=np.float32)
        _match_level_kernel(
            ref, alt, tile, stride, params.search_radii_px[level], coarse, factor,
            coarse_tile, coarse_stride, level > 0, flow,
        )  # fmt: skip
        coarse, coarse_tile, coarse_stride = flow, tile, stride
        factor = params.downsample_factors[level]
    if params.refine_iterations:
        _refine_ica_kernel(
            reference_pyramid[0], alt_pyramid[0], coarse_tile, coarse_stride,
            params.refine_iterations, coarse,
        )  # fmt: skip
    return TileFlow(coarse, coarse_tile, coarse_stride)
