"""Colour shading recovered from a camera ISP's own JPEG of the same raw frame.

The Pi's ISP corrects a lens's colour shading before its white balance, with the ALSC
tables of the sensor's tuning file (libcamera's ``rpi.alsc``; Raspberry Pi, "The Raspberry
Pi Camera Algorithm and Tuning Guide"). Obscura ships those tables for the Pi's
own cameras (:mod:`pipeline.colour.alsc_tuning`); a third-party module (an Arducam
Pivariety sensor) runs on a tuning we do not have. Its JPEG of a raw frame still carries
them: at each flat part of the picture the ISP computed

    jpeg = T(M diag(1 / n) diag(s(p)) c)

from the raw's camera RGB ``c`` at position ``p``, the tables' gains ``s(p)``, the as-shot
neutral ``n`` (the AWB gains are ``1 / n``), the colour correction matrix ``M`` (the one a
Pi DNG records: PiDNG and rpicam-apps write the CCM's inverse as ColorMatrix1) and ``T``,
the ISP's gamma curve with whatever global tone it added, the same curve on R, G and B.

:func:`fit_isp_colour_shading` fits ``T^-1`` (piecewise linear in the JPEG value) and
``log s`` (even in the distance from the frame centre: 1, r^2, r^4 of the flat-field
calibration's basis, :func:`pipeline.stages.flat_field.smooth_basis`) by alternating
least squares over blocks that are flat, unclipped and near-neutral in both images (in a
grey block R, G and B sit at one point of the curve, so the colour ratios found hardly
depend on the curve). The model is radial on purpose: the Pi's ALSC is adaptive (``n_iter``
100 in every Pi tuning: ``Alsc::doAlsc`` in libcamera's ``controller/rpi/alsc.cpp`` solves,
in each frame, for per-cell gains on top of the calibrated tables that make neighbouring
cells of similar colour come out alike), so a table read off one frame holds that frame's
adjustments too; its radially symmetric part is the lens's,
and carries over to other scenes (fitted on one Arducam frame and its Pi JPEG, with every
term of the flat-field basis the whites of two other scenes stayed 4-5 a*b* from neutral,
radially 2). A luminance shading and the tone curve can trade against each other (a
corner made brighter reads as either), so only the chrominance is kept: the returned table
has green 1 everywhere and red and blue relative to it, centre included, because the
frame's white balance was measured by the Pi after the tables (as for the tuning's own
tables, :mod:`pipeline.stages.colour_shading`). It corrects colour, not vignetting.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from pipeline.colour.matrix import camera_to_srgb_matrix
from pipeline.colour.metrics import srgb_decode
from pipeline.errors import InvalidParameterError
from pipeline.raw_frame import LensShadingMap, RawFrame
from pipeline.stages.flat_field import site_planes, smooth_basis

FloatArray = npt.NDArray[np.float64]

#: Block side, in JPEG pixels: each block's flatness is judged on the JPEG's 2x2 means.
BLOCK_PX = 16
#: How far the JPEG's width / height may be from the raw's: a JPEG scaled from the whole
#: frame is used, a crop of it (another field of view) is not.
ASPECT_TOLERANCE = 0.01
#: A block is flat where each JPEG channel's standard deviation is at most this (0-1 scale):
#: about 4 levels of 255, above a JPEG's own noise on a flat wall, below any texture.
MAX_JPEG_STD = 0.016
#: A block is near-neutral where its JPEG channels' means differ by at most this (0-1
#: scale). Only such blocks are used: there R, G and B sit at nearly the same point of the
#: tone curve, so the colour ratios found do not depend on the curve being exactly right,
#: and no channel is pushed out of gamut (a screen's or a saturated label's is).
MAX_JPEG_CHROMA = 0.08
#: JPEG values used: above the toe, where the curve is steep and the noise large, and below
#: clipping.
JPEG_RANGE = (0.08, 0.92)
#: Raw level (share of the white level) above which a channel may have clipped.
MAX_RAW_LEVEL = 0.9
#: Fewest blocks, and the least share of the frame's rows and columns they must span.
MIN_BLOCKS = 100
MIN_SPAN = 0.5
#: Knots of the inverse tone curve over the JPEG's 0-1, and the weight of its second
#: differences (smoothness) against the blocks.
TONE_KNOTS = 18
TONE_SMOOTHNESS = 1.0
#: Alternating rounds; blocks that fit worst are dropped after the first half.
ROUNDS = 12
OUTLIER_SHARE = 0.1
#: The gains a lens's colour shading can need (the Pi's tuning tables for its cameras span
#: about 0.9 to 2.5 at the corners); outside this the JPEG is not the raw's.
GAIN_RANGE = (0.5, 4.0)
#: Largest RMS error of the model over the blocks kept, in JPEG levels of 255. The Pi's JPEG
#: of its raw departs from it by about 2 levels (its local contrast, denoise and JPEG);
#: another frame's, by tens.
MAX_RESIDUAL_LEVELS = 8.0
#: The terms of :func:`~pipeline.stages.flat_field.smooth_basis` fitted: 1, r^2, r^4 (see
#: the module's notes).
RADIAL_TERMS = [0, 5, 6]


class IspShadingError(InvalidParameterError):
    """A raw frame and JPEG from which no colour shading can be recovered; the message
    says why."""


@dataclass(frozen=True)
class IspColourShading:
    """A recovered colour shading table and how well the model explains the JPEG."""

    shading: LensShadingMap
    #: Centre gains of red and blue over green.
    centre_gains: tuple[float, float]
    #: Blocks used, and the RMS of the model's error on them in JPEG levels (of 255).
    blocks: int
    residual_levels: float


def _half_planes(frame: RawFrame) -> FloatArray:
    """(H/2, W/2, 3) camera RGB of each 2x2 tile, black subtracted, 1 at the white level."""
    sites = site_planes([frame])
    channels = frame.metadata.cfa_pattern.channels.ravel()
    return np.stack([sites[channels == c].mean(axis=0) for c in range(3)], axis=-1)


def _grid_means(values: FloatArray, rows: int, cols: int) -> FloatArray:
    """(rows, cols, c) means of ``values`` (h, w, c) over a grid of rows x cols equal
    rectangles (to the pixel) covering it, from its integral image."""
    h, w, c = values.shape
    integral = np.zeros((h + 1, w + 1, c))
    integral[1:, 1:] = values.cumsum(axis=0).cumsum(axis=1)
    ys = np.round(np.linspace(0, h, rows + 1)).astype(np.int64)
    xs = np.round(np.linspace(0, w, cols + 1)).astype(np.int64)
    sums = (integral[ys[1:]][:, xs[1:]] - integral[ys[:-1]][:, xs[1:]]
            - integral[ys[1:]][:, xs[:-1]] + integral[ys[:-1]][:, xs[:-1]])
    areas = np.diff(ys)[:, None, None] * np.diff(xs)[None, :, None]
    return sums / areas


def _tone_basis(values: FloatArray) -> FloatArray:
    """(len(values), TONE_KNOTS) piecewise-linear hat functions on knots evenly over 0-1."""
    position = np.clip(values, 0.0, 1.0) * (TONE_KNOTS - 1)
    low = np.minimum(position.astype(np.int64), TONE_KNOTS - 2)
    fraction = position - low
    basis = np.zeros((len(values), TONE_KNOTS))
    rows = np.arange(len(values))
    basis[rows, low] = 1.0 - fraction
    basis[rows, low + 1] = fraction
    return basis


def _fit_tone(jpeg: FloatArray, target: FloatArray) -> FloatArray:
    """Knot values of the inverse tone curve taking ``jpeg`` (n, 3) to ``target`` (n, 3),
    least relative error, smooth and rising; scaled to 1 at the top knot."""
    basis = _tone_basis(jpeg.ravel()) / target.ravel()[:, None]
    weight = np.sqrt(TONE_SMOOTHNESS * len(basis) / TONE_KNOTS)
    smooth = np.diff(np.eye(TONE_KNOTS), 2, axis=0) * weight
    knots, *_ = np.linalg.lstsq(np.vstack([basis, smooth]),
                                np.concatenate([np.ones(len(basis)), np.zeros(len(smooth))]),
                                rcond=None)
    knots = np.maximum.accumulate(np.maximum(knots, 0.0))
    return knots / knots[-1]


def fit_isp_colour_shading(
    frame: RawFrame, isp_jpeg: npt.NDArray[np.uint8], grid_size: tuple[int, int] = (24, 32)
) -> IspColourShading:
    """The colour shading an ISP applied to ``frame`` in making ``isp_jpeg``.

    Parameters
    ----------
    frame : RawFrame
        The raw frame, with the white balance (AsShotNeutral) and colour matrix its ISP used.
    isp_jpeg : (h, w, 3) uint8
        The ISP's own JPEG of exactly this frame: the whole field of view, at the raw's
        size or scaled (picamera2's main stream of the same request), not cropped.
    grid_size : (gh, gw)
        Grid points of the returned table, at the frame's corners and evenly between.

    Raises
    ------
    IspShadingError
        The JPEG is not the frame's size, the frame records no white balance, too few
        flat, unclipped, near-neutral blocks span the frame, or the model does not explain
        the JPEG (another frame's) or finds gains no lens needs.
    """
    height, width = frame.shape
    jpeg_height, jpeg_width = isp_jpeg.shape[:2]
    aspect = (jpeg_width / max(jpeg_height, 1)) / (width / height)
    if isp_jpeg.ndim != 3 or isp_jpeg.shape[2] != 3 or abs(aspect - 1.0) > ASPECT_TOLERANCE:
        raise IspShadingError(
            f"the JPEG is {jpeg_width}x{jpeg_height} and the raw {width}x{height}: not the "
            "same field of view; give the ISP's JPEG of exactly this raw frame, uncropped"
        )
    metadata = frame.metadata
    if metadata.as_shot_neutral is None:
        raise IspShadingError("the raw records no white balance (AsShotNeutral): the ISP's "
                              "gains are unknown")
    neutral = np.asarray(metadata.as_shot_neutral, dtype=np.float64)
    to_srgb = camera_to_srgb_matrix(metadata, neutral).astype(np.float64) / neutral  # M diag(1/n)
    to_camera = np.linalg.inv(to_srgb)  # sRGB -> camera RGB, unbalanced

    by, bx = jpeg_height // BLOCK_PX, jpeg_width // BLOCK_PX
    jpeg = isp_jpeg[: by * BLOCK_PX, : bx * BLOCK_PX].astype(np.float64) / 255.0
    half = BLOCK_PX // 2
    jpeg = jpeg.reshape(by * half, 2, bx * half, 2, 3).mean(axis=(1, 3))
    tiles = jpeg.reshape(by, half, bx, half, 3)
    jpeg_mean, jpeg_std = tiles.mean(axis=(1, 3)), tiles.std(axis=(1, 3))
    # The raw over the same parts of the field (the JPEG's last partial block left out).
    covered = _half_planes(frame)
    covered = covered[: round(covered.shape[0] * by * BLOCK_PX / jpeg_height),
                      : round(covered.shape[1] * bx * BLOCK_PX / jpeg_width)]
    raw_mean = _grid_means(covered, by, bx)
    usable = (
        np.all(jpeg_std <= MAX_JPEG_STD, axis=-1)
        & (np.ptp(jpeg_mean, axis=-1) <= MAX_JPEG_CHROMA)
        & np.all((jpeg_mean >= JPEG_RANGE[0]) & (jpeg_mean <= JPEG_RANGE[1]), axis=-1)
        & np.all((raw_mean > 0) & (raw_mean < MAX_RAW_LEVEL), axis=-1)
    )
    rows, cols = np.nonzero(usable)
    spans = ((np.ptp(rows) + 1) / by, (np.ptp(cols) + 1) / bx) if len(rows) else (0.0, 0.0)
    if len(rows) < MIN_BLOCKS or min(spans) < MIN_SPAN:
        raise IspShadingError(
            f"{len(rows)} flat, unclipped, near-neutral blocks, spanning {spans[0]:.0%} of "
            f"the rows and {spans[1]:.0%} of the columns: at least {MIN_BLOCKS} spanning "
            f"{MIN_SPAN:.0%} of each are needed; use a frame with white or grey walls, paper "
            "or cloud across it"
        )
    raw = raw_mean[usable]
    jpeg = jpeg_mean[usable]
    block_px = (height / jpeg_height * BLOCK_PX, width / jpeg_width * BLOCK_PX)  # in raw pixels
    half_diag = np.hypot(height / 2, width / 2)
    block_y = ((rows + 0.5) * block_px[0] - height / 2) / half_diag
    block_x = ((cols + 0.5) * block_px[1] - width / 2) / half_diag
    basis = smooth_basis(block_y, block_x)[:, RADIAL_TERMS]

    # Start from the sRGB curve and no shading; alternate the curve and the gains.
    knots = srgb_decode(np.linspace(0.0, 1.0, TONE_KNOTS))
    keep = np.ones(len(raw), dtype=bool)
    for round_ in range(ROUNDS):
        linear = _tone_basis(jpeg.ravel()).dot(knots).reshape(jpeg.shape)
        shaded = np.maximum(linear @ to_camera.T, 1e-6)  # s(p) c, as the ISP had it
        observed = np.log(shaded / raw)
        coeffs, *_ = np.linalg.lstsq(basis[keep], observed[keep], rcond=None)
        log_gains = basis @ coeffs
        predicted = np.maximum((raw * np.exp(log_gains)) @ to_srgb.T, 1e-6)
        if round_ == ROUNDS // 2:
            error = np.abs(observed - log_gains).max(axis=1)
            keep = error <= np.quantile(error, 1.0 - OUTLIER_SHARE)
        knots = _fit_tone(jpeg[keep], predicted[keep])
    # The model's JPEG values: the last round's prediction through the fitted curve.
    model_jpeg = np.interp(predicted[keep], knots, np.linspace(0.0, 1.0, TONE_KNOTS))
    residual = float(np.sqrt(np.mean((model_jpeg - jpeg[keep]) ** 2))) * 255.0
    if residual > MAX_RESIDUAL_LEVELS:
        raise IspShadingError(
            f"the raw explains the JPEG's flat blocks only to {residual:.1f} levels RMS (at "
            f"most {MAX_RESIDUAL_LEVELS:g} of 255): is the JPEG the ISP's of this raw?"
        )

    # Chrominance only: red and blue over green, on the table's grid.
    gh, gw = grid_size
    grid_y = (np.linspace(0.0, height - 1.0, gh) + 0.5 - height / 2) / half_diag
    grid_x = (np.linspace(0.0, width - 1.0, gw) + 0.5 - width / 2) / half_diag
    gy, gx = np.meshgrid(grid_y, grid_x, indexing="ij")
    grid_log = smooth_basis(gy.ravel(), gx.ravel())[:, RADIAL_TERMS] @ coeffs
    chroma = np.exp(grid_log - grid_log[:, 1:2]).T.reshape(3, gh, gw)
    low, high = float(chroma.min()), float(chroma.max())
    if not (GAIN_RANGE[0] <= low and high <= GAIN_RANGE[1]):
        raise IspShadingError(
            f"the colour gains found span {low:.2f} to {high:.2f} (a lens's colour shading "
            f"needs {GAIN_RANGE[0]:g} to {GAIN_RANGE[1]:g}): is the JPEG the ISP's of this raw?"
        )
    centre = smooth_basis(np.zeros(1), np.zeros(1))[:, RADIAL_TERMS] @ coeffs
    centre_gains = (float(np.exp(centre[0, 0] - centre[0, 1])),
                    float(np.exp(centre[0, 2] - centre[0, 1])))
    gains = chroma[metadata.cfa_pattern.channels.ravel()].astype(np.float32)
    return IspColourShading(LensShadingMap(gains=gains), centre_gains, int(keep.sum()), residual)
