"""Display encoding: the sRGB transfer function and quantisation."""

from __future__ import annotations

import functools

import numba
import numpy as np
import numpy.typing as npt

from pipeline.errors import InvalidParameterError


#: Degree of the polynomial for x^(1/2.4) on [0.5, 1] (relative error below 4e-7).
_POWER_DEGREE = 6


@functools.cache
def srgb_power_polynomial() -> npt.NDArray[np.float32]:
    """Coefficients (lowest power first) of x^(1/2.4) on [0.5, 1]: its Chebyshev
    interpolant of degree 6, for :func:`srgb_encode_row`."""
    chebyshev = np.polynomial.Chebyshev.interpolate(
        lambda x: x ** (1.0 / 2.4), _POWER_DEGREE, domain=[0.5, 1.0])
    return chebyshev.convert(kind=np.polynomial.Polynomial).coef.astype(np.float32)


@numba.njit(cache=True, nogil=True, inline="always")
def srgb_encode_row(values, power):
    """sRGB-encode display-linear ``values`` ((n,) float32) in place, clipped to [0, 1].

    The IEC 61966-2-1 transfer function, 12.92 x below 0.0031308 and 1.055 x^(1/2.4) -
    0.055 above, with x^(1/2.4) = 2^(-k/2.4) m^(1/2.4): m = 2^k x is brought into
    [0.5, 1] by exact steps of 2^8, 2^4, 2^2 and 2^1 (enough from 0.0031308 up), and
    m^(1/2.4) is the polynomial ``power`` (:func:`srgb_power_polynomial`). Arithmetic
    only, no table: the loop vectorises (error < 5e-7; ``pow`` is several times slower).
    """
    c0, c1, c2, c3 = power[0], power[1], power[2], power[3]
    c4, c5, c6 = power[4], power[5], power[6]
    for x in range(values.shape[0]):
        v = min(max(values[x], np.float32(0.0)), np.float32(1.0))
        m = v
        scale = np.float32(1.055)
        if m < np.float32(2.0**-8):
            m *= np.float32(2.0**8)
            scale *= np.float32(2.0 ** (-8 / 2.4))
        if m < np.float32(2.0**-4):
            m *= np.float32(2.0**4)
            scale *= np.float32(2.0 ** (-4 / 2.4))
        if m < np.float32(2.0**-2):
            m *= np.float32(2.0**2)
            scale *= np.float32(2.0 ** (-2 / 2.4))
        if m < np.float32(0.5):
            m *= np.float32(2.0)
            scale *= np.float32(2.0 ** (-1 / 2.4))
        root = c0 + m * (c1 + m * (c2 + m * (c3 + m * (c4 + m * (c5 + m * c6)))))
        encoded = scale * root - np.float32(0.055)
        values[x] = encoded if v > np.float32(0.0031308) else np.float32(12.92) * v


@numba.njit(cache=True, nogil=True, inline="always")
def lookup_row(table, index, fraction, out):
    """``out[x]`` = ``table`` interpolated at ``index[x] + fraction[x]`` (``index``
    unsigned: no negative-index check in the loop)."""
    for x in range(out.shape[0]):
        i = index[x]
        out[x] = table[i] + fraction[x] * (table[i + np.uint32(1)] - table[i])


@numba.njit(cache=True, nogil=True, inline="always")
def table_position_row(values, scale, size, index, fraction):
    """Where each of ``values`` (already in table units / ``scale``) falls in a table of
    ``size`` + 1 points: its integer ``index`` ((n,) uint32) and ``fraction``, clamped to
    the table."""
    for x in range(values.shape[0]):
        u = min(max(values[x] * scale, np.float32(0.0)), np.float32(size))
        # Clamped as an integer too: a NaN (which fastmath float clamps let through)
        # converts to any integer, and must never index outside the table.
        i = min(max(np.int32(u), np.int32(0)), np.int32(size - 1))
        index[x] = np.uint32(i)
        fraction[x] = u - np.float32(i)


@numba.njit(cache=True, parallel=True, nogil=True, fastmath=True)
def _encode_kernel(rgb, power):
    for y in numba.prange(rgb.shape[0]):
        srgb_encode_row(rgb[y].reshape(-1), power)  # the row's 3W values, contiguous


def encode_srgb(rgb: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """Clip display-linear (H, W, 3) float32 to [0, 1] and apply the sRGB curve, in place
    (:func:`srgb_encode_row`)."""
    _encode_kernel(rgb, srgb_power_polynomial())
    return rgb


@numba.njit(cache=True, parallel=True, nogil=True)
def _quantize_kernel(rgb, max_code, out):
    for y in numba.prange(rgb.shape[0]):
        values = rgb[y].reshape(-1)  # the row's 3W values, contiguous: the loop vectorises
        codes = out[y].reshape(-1)
        for i in range(values.shape[0]):
            v = min(max(values[i], np.float32(0.0)), np.float32(1.0))
            codes[i] = np.int32(v * max_code + np.float32(0.5))


def quantize(
    rgb: npt.NDArray[np.float32], dtype: type[np.uint8] | type[np.uint16]
) -> npt.NDArray[np.uint8] | npt.NDArray[np.uint16]:
    """Round encoded (H, W, 3) float32 in [0, 1] to the full range of uint8 or uint16."""
    dtype = np.dtype(dtype)
    if dtype not in (np.uint8, np.uint16):
        raise InvalidParameterError(f"dtype={dtype}: expected uint8 or uint16")
    out = np.empty(rgb.shape, dtype=dtype)
    _quantize_kernel(np.ascontiguousarray(rgb), np.float32(np.iinfo(dtype).max), out)
    return out
