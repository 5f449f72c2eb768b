"""The Raspberry Pi's lens shading tables for its cameras' sensors, as its ISP applies them.

libcamera's Raspberry Pi ALSC ("auto lens shading correction", ``rpi.alsc``) [ALSC]_ keeps,
in the sensor's tuning file, a luminance table (``luminance_lut``, applied at
``luminance_strength``) and per-colour-temperature chrominance tables
(``calibrations_Cr``, ``calibrations_Cb``), each one value per cell of a grid over the
whole frame (16 x 12 cells on a Pi 4 and earlier, VC4; 32 x 32 on a Pi 5, PiSP). Before
its adaptive part runs (which needs the ISP's statistics and is bounded to +-5 %,
``lambda_bound``), the Pi's gain for each cell is (``Alsc::switchMode`` and
``Alsc::doAlsc`` with unit lambdas, ``compensateLambdasForCal`` and
``addLuminanceToTables``)::

    lum = (luminance_lut - 1) * luminance_strength + 1
    R = Cr(ct) / min(Cr(ct)) * lum,   G = lum,   B = Cb(ct) / min(Cb(ct)) * lum

where ``Cr(ct)`` interpolates the two calibrations either side of the AWB's colour
temperature linearly in ct and holds the end ones beyond them (``getCalTable``). The final
``normalise`` of each table is a no-op in libcamera since 2023 (its ``std::for_each``
discards the divided values), so the tables are used as above. The tables are in the
image's default orientation (libcamera passes only the user's transform, identity by
default) and cover the sensor's full field of view, which every mode of the HQ camera
sees (``resampleCalTable`` is then the identity; another sensor's cropped modes see part
of it). The AWB works on statistics with these
tables applied (``rpi.awb``; the tuning tool calibrates ``ct_curve`` on patches corrected
by them), so the white balance the Pi reports (ColourGains, and the AsShotNeutral of its
DNGs) is meant for the raw *after* the tables.

The tables ship in ``pipeline/colour/data/<sensor>_<platform>.json`` (:data:`SENSORS`; the
Pi 5's only for the IMX477): the ``rpi.alsc`` and ``rpi.ccm`` sections and the ``rpi.awb``
``ct_curve`` of libcamera's ``src/ipa/rpi/{vc4,pisp}/data/<sensor>.json``, copied
verbatim, Copyright (c) 2019-2020 Raspberry Pi Ltd, BSD-2-Clause (the notice and licence
text are in each file).

References
----------
.. [ALSC] Raspberry Pi, libcamera ``src/ipa/rpi/controller/rpi/alsc.cpp`` and
   ``src/ipa/rpi/{vc4/vc4.cpp,pisp/pisp.cpp}`` (``resampleTable``),
   https://github.com/raspberrypi/libcamera.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt

from pipeline.errors import InvalidParameterError

Platform = Literal["vc4", "pisp"]
PLATFORMS: tuple[Platform, ...] = ("vc4", "pisp")
#: The sensors whose tuning ships, by libcamera's tuning-file names: the Raspberry Pi
#: cameras' (Camera Module 2, the Global Shutter, HQ and AI cameras, Camera Module 3 and
#: its wide version, Camera Module 1).
SENSORS = ("imx219", "imx296", "imx477", "imx500", "imx708", "imx708_wide", "ov5647")
DATA_DIR = Path(__file__).with_name("data")
#: Grid cells of each platform's tables, (rows, columns).
TABLE_CELLS: dict[Platform, tuple[int, int]] = {"vc4": (12, 16), "pisp": (32, 32)}


@dataclass(frozen=True, eq=False)
class AlscTuning:
    """One platform's ``rpi.alsc`` tables and ``rpi.awb`` colour-temperature curve.

    Attributes
    ----------
    platform : {"vc4", "pisp"}
        The ISP the tuning is for.
    luminance_lut : (rows, cols) float64
        Luminance gain per cell (top row first, as the image is shown).
    luminance_strength : float
        Fraction of the luminance correction applied.
    cr_temperatures_k, cb_temperatures_k : (n,) float64
        Colour temperatures of the chrominance calibrations, increasing.
    cr_tables, cb_tables : (n, rows, cols) float64
        ``calibrations_Cr`` / ``calibrations_Cb``: relative red / blue gain per cell.
    ct_curve : (m, 3) float64
        ``(ct K, r, b)``: the camera's R/G and B/G for a grey under light of ``ct``.
    """

    platform: Platform
    luminance_lut: npt.NDArray[np.float64]
    luminance_strength: float
    cr_temperatures_k: npt.NDArray[np.float64]
    cr_tables: npt.NDArray[np.float64]
    cb_temperatures_k: npt.NDArray[np.float64]
    cb_tables: npt.NDArray[np.float64]
    ct_curve: npt.NDArray[np.float64]

    def rgb_gains(
        self, colour_temperature_k: float, luminance_strength: float | None = None
    ) -> npt.NDArray[np.float64]:
        """(3, rows, cols) float64: the Pi's R, G, B gain per cell at ``colour_temperature_k``,
        with the luminance table at ``luminance_strength`` (the tuning's when None; 1.0 gives
        the inverse of the lens's whole shading, as calibrated)."""
        strength = self.luminance_strength if luminance_strength is None else luminance_strength
        luminance = (self.luminance_lut - 1.0) * strength + 1.0
        red = at_colour_temperature(colour_temperature_k, self.cr_temperatures_k, self.cr_tables)
        blue = at_colour_temperature(colour_temperature_k, self.cb_temperatures_k, self.cb_tables)
        return np.stack([red / red.min() * luminance, luminance, blue / blue.min() * luminance])

    def colour_temperature_k(self, neutral: npt.ArrayLike) -> float:
        """Colour temperature whose ``ct_curve`` point is nearest the camera's white.

        ``neutral`` is the camera's (R, G, B) response to the scene white (AsShotNeutral,
        the inverse of the Pi's ColourGains). Outside the curve it is held at the ends.
        """
        rgb = np.asarray(neutral, dtype=np.float64)
        if rgb.shape != (3,) or not np.all(np.isfinite(rgb)) or np.any(rgb <= 0):
            raise InvalidParameterError(f"neutral={rgb.tolist()}: expected three positive numbers")
        temperatures = np.linspace(self.ct_curve[0, 0], self.ct_curve[-1, 0], 2048)
        r = np.interp(temperatures, self.ct_curve[:, 0], self.ct_curve[:, 1])
        b = np.interp(temperatures, self.ct_curve[:, 0], self.ct_curve[:, 2])
        distance = (r - rgb[0] / rgb[1]) ** 2 + (b - rgb[2] / rgb[1]) ** 2
        return float(temperatures[int(np.argmin(distance))])


def at_colour_temperature(
    ct: float, temperatures: npt.NDArray[np.float64], tables: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """The calibration ``tables`` (one per increasing ``temperatures``) at ``ct``, as the Pi's
    ALSC (``getCalTable``) and CCM (``calculateCcm``) take them: linear in ct between the
    calibrations, the end ones beyond them."""
    if ct <= temperatures[0]:
        return tables[0]
    if ct >= temperatures[-1]:
        return tables[-1]
    i = int(np.searchsorted(temperatures, ct))
    ct0, ct1 = temperatures[i - 1], temperatures[i]
    return (tables[i - 1] * (ct1 - ct) + tables[i] * (ct - ct0)) / (ct1 - ct0)


def _calibrations(
    alsc: dict, key: str, cells: tuple[int, int], path: Path
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    entries = alsc[key]
    temperatures = np.array([float(e["ct"]) for e in entries])
    if len(entries) == 0 or np.any(np.diff(temperatures) <= 0):
        raise InvalidParameterError(f"{path}: {key} must list calibrations in increasing ct")
    tables = np.array([e["table"] for e in entries], dtype=np.float64)
    if tables.shape[1] != cells[0] * cells[1] or np.any(tables <= 0):
        raise InvalidParameterError(
            f"{path}: {key} tables have {tables.shape[1]} values: expected {cells[0] * cells[1]} > 0"
        )
    return temperatures, tables.reshape(-1, *cells)


@functools.cache
def tuning_data(sensor: str, platform: Platform = "vc4") -> dict:
    """The shipped tuning data of ``sensor`` for ``platform``, read once."""
    return json.loads(tuning_path(sensor, platform).read_text())


def tuning_path(sensor: str, platform: Platform = "vc4") -> Path:
    """The shipped tuning data file of ``sensor`` for ``platform``."""
    if sensor not in SENSORS:
        raise InvalidParameterError(f"sensor={sensor!r}: expected one of {', '.join(SENSORS)}")
    if platform not in PLATFORMS:
        raise InvalidParameterError(f"platform={platform!r}: expected one of {', '.join(PLATFORMS)}")
    path = DATA_DIR / f"{sensor}_{platform}.json"
    if not path.is_file():
        raise InvalidParameterError(f"no {platform} tuning ships for the {sensor}")
    return path


@functools.cache
def pi_alsc(sensor: str, platform: Platform = "vc4") -> AlscTuning:
    """The ALSC tuning of ``sensor`` (:data:`SENSORS`) for ``platform`` ("vc4": Pi 4 and
    earlier, "pisp": Pi 5).

    Raises
    ------
    InvalidParameterError
        An unknown sensor or platform, one whose tuning does not ship, or a data file
        whose tables do not fit its grid.
    """
    path = tuning_path(sensor, platform)
    data = tuning_data(sensor, platform)
    alsc = data["rpi.alsc"]
    cells = TABLE_CELLS[platform]
    lut = np.asarray(alsc["luminance_lut"], dtype=np.float64)
    if lut.size != cells[0] * cells[1] or np.any(lut <= 0):
        raise InvalidParameterError(
            f"{path}: luminance_lut has {lut.size} values: expected {cells[0] * cells[1]} > 0"
        )
    cr_temperatures, cr_tables = _calibrations(alsc, "calibrations_Cr", cells, path)
    cb_temperatures, cb_tables = _calibrations(alsc, "calibrations_Cb", cells, path)
    curve = np.asarray(data["rpi.awb"]["ct_curve"], dtype=np.float64).reshape(-1, 3)
    return AlscTuning(
        platform=platform,
        luminance_lut=lut.reshape(cells),
        luminance_strength=float(alsc.get("luminance_strength", 1.0)),
        cr_temperatures_k=cr_temperatures,
        cr_tables=cr_tables,
        cb_temperatures_k=cb_temperatures,
        cb_tables=cb_tables,
        ct_curve=curve,
    )
