"""Hot and dead pixel correction on the mosaic.

A site is a candidate when it stands far outside the range of its eight same-colour
neighbours (two sites away): brighter than ``hot_ratio`` times the brightest of them plus
``margin``, or than the brightest by ``sigmas`` standard deviations of the noise at that
level (with the frame's noise model); or darker than the darkest divided by ``dead_ratio``
and, by more than ``sigmas`` noise sigmas, below it. In the shadows a fixed ratio or
margin would be larger than the signal itself and a dead site there would never be found,
nor a hot one that doubles a dark neighbourhood; the noise tells how far outside its
neighbours' range a live site can fall (beyond the extreme of eight by four sigma: about
once in ten million sites).

A candidate is corrected, replaced by the median of those eight, only if it is isolated:
optics spread any real point or line of light (or of shadow) over the sites next to it,
while a defect leaves them alone. So each pair of facing neighbours (north and south, of
one colour; west and east, of the other) is compared with the sites of its own colour one
step further out along the other axis, on each side (for north and south: the pair two
columns to the west, and the pair two columns to the east); if either pair is brighter
than both its sides (darker, for a dark candidate) by more than ``ISOLATION_SIGMAS``
noise sigmas and ``ISOLATION_SHARE`` of the candidate's own excess, the candidate is
detail and stays. A linear gradient or a step edge beside a defect leaves one side at
least as bright as the pair, so it does not hide the defect. It keeps stars and specks
that a lens spreads over a few sites; detail sharp to the single site (a scene sampled
with no lens blur, as the simulator does) cannot be told from a defect by any spatial
test. The price: two defects side by side are left alone. This is the classic single-site "pixel median" filter of dcraw and LibRaw
(see also Ramanath et al., "Color image processing pipeline", IEEE Signal Processing
Magazine 22(1), 2005, sec. "Defective pixels") with a test for isolation added.
"""

from __future__ import annotations

import numba
import numpy as np
import numpy.typing as npt

from pipeline.noise_model import NoiseModel

#: A defect lies this many noise sigmas beyond the extreme of its eight neighbours.
DEFECT_SIGMAS = 4.0
#: Detail, not a defect, where the neighbours next to a candidate stand out from those
#: one step further out, on both sides, by this many noise sigmas (of the difference of
#: their means).
ISOLATION_SIGMAS = 3.0
#: ... and by this share of the candidate's own excess over its eight neighbours' range: a
#: lens spreads a point of light at least this much onto the sites next to it (a Gaussian
#: blur of 0.5 px standard deviation puts 13 % there), while a sharp scene's texture can
#: lift them by many sigmas with no defect at all.
ISOLATION_SHARE = 0.1


@numba.njit(cache=True, nogil=True, inline="always")
def _median8(v):
    # Insertion sort of eight values; the median is the mean of the middle two.
    for i in range(1, 8):
        key = v[i]
        j = i - 1
        while j >= 0 and v[j] > key:
            v[j + 1] = v[j]
            j -= 1
        v[j + 1] = key
    return np.float32(0.5) * (v[3] + v[4])


@numba.njit(cache=True, nogil=True, inline="always")
def _sigma(level, noise_scale, noise_offset):
    return np.sqrt(noise_scale * max(level, np.float32(0.0)) + noise_offset)


@numba.njit(cache=True, nogil=True, inline="always")
def _stands_out(cfa, y, x, sign, excess, noise_scale, noise_offset):
    # Whether the sites next to (y, x) stand out, in the direction ``sign`` (+1 brighter,
    # -1 darker), from those of their colour one step further out on each side, by more
    # than the noise and than ISOLATION_SHARE of the candidate's own ``excess`` (module
    # docstring). Each side is compared on its own and the lesser difference counts, so a
    # step edge beside a defect (one side like the pair, one not) does not hide it.
    ns = np.float32(0.5) * (cfa[y - 1, x] + cfa[y + 1, x])
    west = np.float32(0.5) * (cfa[y - 1, x - 2] + cfa[y + 1, x - 2])
    east = np.float32(0.5) * (cfa[y - 1, x + 2] + cfa[y + 1, x + 2])
    we = np.float32(0.5) * (cfa[y, x - 1] + cfa[y, x + 1])
    north = np.float32(0.5) * (cfa[y - 2, x - 1] + cfa[y - 2, x + 1])
    south = np.float32(0.5) * (cfa[y + 2, x - 1] + cfa[y + 2, x + 1])
    # The difference of two means of two: one sigma of the sites' noise.
    k = np.float32(ISOLATION_SIGMAS)
    share = np.float32(ISOLATION_SHARE) * excess
    ns_out = min(sign * (ns - west), sign * (ns - east))
    we_out = min(sign * (we - north), sign * (we - south))
    return (ns_out > max(k * _sigma(max(west, east), noise_scale, noise_offset), share)) or (
        we_out > max(k * _sigma(max(north, south), noise_scale, noise_offset), share))


#: Corrections a row's first search keeps; a row with more (a frame with defects by the
#: thousand) is searched again with room for every site.
CORRECTIONS_PER_ROW = 32


@numba.njit(cache=True, parallel=True, nogil=True)
def _find_kernel(cfa, rows, hot_ratio, dead_ratio, margin, sigmas, noise_scale, noise_offset,
                 columns, values, counts):
    """For each row ``rows[i]`` of ``cfa`` (which it only reads): how many sites to correct
    (``counts[i]``), and the first ``columns.shape[1]`` of them, their columns and their
    new values (``columns[i]``, ``values[i]``)."""
    h, w = cfa.shape
    capacity = columns.shape[1]
    for i in numba.prange(rows.shape[0]):
        y = rows[i]
        counts[i] = 0
        if y < 2 or y >= h - 2 or w < 5:
            continue
        # The test is a branch-free loop the compiler vectorises; candidates are rare, so
        # the isolation test and the medians are a second pass over the few flagged sites.
        flagged = np.empty(w, dtype=np.int8)
        for x in range(w):
            flagged[x] = 0
        for x in range(2, w - 2):
            a, b, c, d = cfa[y - 2, x - 2], cfa[y - 2, x], cfa[y - 2, x + 2], cfa[y, x - 2]
            e, f, g, k = cfa[y, x + 2], cfa[y + 2, x - 2], cfa[y + 2, x], cfa[y + 2, x + 2]
            lo = min(min(min(a, b), min(c, d)), min(min(e, f), min(g, k)))
            hi = max(max(max(a, b), max(c, d)), max(max(e, f), max(g, k)))
            centre = cfa[y, x]
            hot = (centre > hi * hot_ratio + margin) | (
                centre > hi + sigmas * _sigma(hi, noise_scale, noise_offset))
            dead = centre < min(lo / dead_ratio, lo - sigmas * _sigma(lo, noise_scale,
                                                                       noise_offset))
            flagged[x] = np.int8(hot) - np.int8(dead)
        v = np.empty(8, dtype=np.float32)
        found = 0
        for x in range(2, w - 2):
            if flagged[x] == 0:
                continue
            v[0] = cfa[y - 2, x - 2]
            v[1] = cfa[y - 2, x]
            v[2] = cfa[y - 2, x + 2]
            v[3] = cfa[y, x - 2]
            v[4] = cfa[y, x + 2]
            v[5] = cfa[y + 2, x - 2]
            v[6] = cfa[y + 2, x]
            v[7] = cfa[y + 2, x + 2]
            sign = np.float32(flagged[x])
            excess = cfa[y, x] - v.max() if flagged[x] > 0 else v.min() - cfa[y, x]
            if not _stands_out(cfa, y, x, sign, excess, noise_scale, noise_offset):
                if found < capacity:
                    columns[i, found] = x
                    values[i, found] = _median8(v)
                found += 1
        counts[i] = found


@numba.njit(cache=True, nogil=True)
def _apply_kernel(out, rows, columns, values, counts):
    """Write the corrections :func:`_find_kernel` found (the rows that found no more than
    it kept) into ``out``."""
    for i in range(rows.shape[0]):
        if counts[i] <= columns.shape[1]:
            for j in range(counts[i]):
                out[rows[i], columns[i, j]] = values[i, j]


def correct_hot_and_dead(
    cfa: npt.NDArray[np.float32],
    hot_ratio: float = 2.0,
    dead_ratio: float = 2.0,
    margin: float = 0.02,
    noise: NoiseModel | None = None,
    sigmas: float = DEFECT_SIGMAS,
    out: npt.NDArray[np.float32] | None = None,
) -> npt.NDArray[np.float32]:
    """Replace isolated defective sites of a normalised (H, W) float32 mosaic, into
    ``out`` (a new array by default; ``cfa`` itself to correct it in place).

    Works for every Bayer pattern: the eight neighbours two sites away always share the
    centre's colour. ``margin`` is in normalised units (1.0 = white); ``noise`` (the
    frame's noise model, normalised units) sets how far outside its neighbours' range a
    defect lies and what isolates it, else ``margin`` does.
    """
    scale, offset = (0.0, margin**2 / sigmas**2) if noise is None else (noise.scale,
                                                                       noise.offset)
    thresholds = (np.float32(hot_ratio), np.float32(dead_ratio), np.float32(margin),
                  np.float32(sigmas), np.float32(scale), np.float32(offset))  # fmt: skip
    # Every correction is found from the mosaic as it is before any is written, so the
    # result is the same in place or not.
    searches = []
    rows, capacity = np.arange(cfa.shape[0], dtype=np.int64), CORRECTIONS_PER_ROW
    while rows.size:
        columns = np.empty((rows.size, capacity), dtype=np.int64)
        values = np.empty((rows.size, capacity), dtype=np.float32)
        counts = np.empty(rows.size, dtype=np.int64)
        _find_kernel(cfa, rows, *thresholds, columns, values, counts)
        searches.append((rows, columns, values, counts))
        rows, capacity = rows[counts > capacity], cfa.shape[1]
    if out is None:
        out = cfa.copy()
    elif out is not cfa:
        out[...] = cfa
    for search in searches:
        _apply_kernel(out, *search)
    return out
