"""Colour shading: a Pi camera lens's colour and luminance shading, corrected as the Pi does.

For a frame from a sensor whose tuning ships with Obscura
(:data:`pipeline.colour.alsc_tuning.SENSORS`: the Raspberry Pi cameras', the HQ camera's
IMX477 among them), the Pi's ISP multiplies the raw by its ALSC tables before the white
balance (:mod:`pipeline.colour.alsc_tuning`): the chrominance tables at the frame's colour
temperature and the luminance table at its ``luminance_strength``. This stage applies the
same tables, at the colour temperature of the frame's white balance (the point of the
tuning's ``ct_curve`` nearest it), with red and blue scaled so that the frame centre keeps
its white balance (:func:`shading_map`), so neutrals stay neutral across the frame, corners
included.

The sensor is the one the camera metadata's model names (as libcamera picks the tuning
file by the sensor's name: our camera's frames, rpicam-apps' DNGs). A picamera2 DNG names
none (its Model is PiDNG's); its colour matrix, which the Pi built from the tuning's,
tells it (:mod:`pipeline.colour.pi_ccm`), and since such a file does not say which sensor
mode took it, only a frame with the proportions of the sensor's whole pixel array
(:data:`SENSOR_ARRAYS_PX`: a full or binned mode, which sees the field the tables cover) is
corrected; a cropped mode's would need the tables cut to its crop. Its white balance is
then the Pi's AWB's, meant for the raw after the tables, and they are applied as the Pi
applies them (:func:`shading_map`).

A lens profile's flat field (``CameraMetadata.lens_shading``, applied by
:mod:`pipeline.stages.lens_shading`) wins over the tuning: it was measured on this lens
and already corrects both its colour and its luminance shading, so with one present this
stage does nothing. Frames from other sensors are left untouched.

The Pi's cell tables give a value at each cell's centre; its ISPs interpolate them
bilinearly onto a grid of vertices at the cells' corners (``resampleTable`` of
libcamera's ``vc4.cpp`` and ``pisp.cpp``; the VC4 uses two vertices per cell for the
4056 x 3040 mode, the PiSP one), which the hardware interpolates bilinearly per pixel:
this stage builds that vertex grid and applies it with :func:`pipeline.stages.lens_shading.apply`.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from pipeline.cfa import CfaPattern
from pipeline.colour.alsc_tuning import SENSORS, Platform, pi_alsc
from pipeline.colour.pi_ccm import tuning_of
from pipeline.raw_frame import CameraMetadata, LensShadingMap
from pipeline.stages import lens_shading

#: Each shipped sensor's whole pixel array, (width, height) (the Linux drivers' modes).
SENSOR_ARRAYS_PX = {
    "imx219": (3280, 2464), "imx296": (1456, 1088), "imx477": (4056, 3040),
    "imx500": (4056, 3040), "imx708": (4608, 2592), "imx708_wide": (4608, 2592),
    "ov5647": (2592, 1944),
}  # fmt: skip
#: How far a frame's width / height may be from its sensor array's to count as all of it.
ASPECT_TOLERANCE = 0.01
#: Vertices per table cell of each ISP's shading grid (VC4 at 4056 x 3040: 33 x 25).
VERTICES_PER_CELL: dict[Platform, int] = {"vc4": 2, "pisp": 1}


def sensor_of(metadata: CameraMetadata, shape: tuple[int, int]) -> str | None:
    """The sensor whose tables correct an (H, W) ``shape`` frame: the one its model names,
    else (a frame with its sensor array's proportions) the one its colour matrix was built
    for; None for any other frame."""
    model = metadata.model.strip().lower()
    if model in SENSORS:
        return model
    sensor = tuning_of(metadata)
    if sensor is None:
        return None
    width, height = SENSOR_ARRAYS_PX[sensor]
    aspect = (shape[1] / shape[0]) / (width / height)
    return sensor if abs(aspect - 1.0) <= ASPECT_TOLERANCE else None


def applies_to(metadata: CameraMetadata, shape: tuple[int, int]) -> bool:
    """Whether a tuning's shading applies: a frame of a shipped sensor's
    (:func:`sensor_of`) without a lens profile's flat field."""
    return metadata.lens_shading is None and sensor_of(metadata, shape) is not None


def _vertex_grid(cells: npt.NDArray[np.float64], points: tuple[int, int]) -> npt.NDArray[np.float64]:
    """``resampleTable``: a cell-centred (rows, cols) table sampled bilinearly at ``points``
    vertices spanning the frame edge to edge, held at the outermost cell centres."""
    rows, cols = cells.shape

    def axis(n_cells: int, n_points: int) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.float64]]:
        position = -0.5 + np.arange(n_points) * (n_cells / (n_points - 1))
        low = np.floor(position).astype(np.int64)
        fraction = position - low
        high = np.minimum(low + 1, n_cells - 1)
        return np.maximum(low, 0), high, fraction

    y_low, y_high, fy = axis(rows, points[0])
    x_low, x_high, fx = axis(cols, points[1])
    above = cells[y_low][:, x_low] * (1 - fx) + cells[y_low][:, x_high] * fx
    below = cells[y_high][:, x_low] * (1 - fx) + cells[y_high][:, x_high] * fx
    return above * (1 - fy[:, None]) + below * fy[:, None]


def _at_centre(grid: npt.NDArray[np.float64]) -> float:
    """A corner-sampled grid's bilinear value at the frame centre."""
    rows, cols = grid.shape
    y, x = (rows - 1) / 2, (cols - 1) / 2
    y0, x0 = min(int(y), rows - 2), min(int(x), cols - 2)
    fy, fx = y - y0, x - x0
    top = grid[y0, x0] * (1 - fx) + grid[y0, x0 + 1] * fx
    bottom = grid[y0 + 1, x0] * (1 - fx) + grid[y0 + 1, x0 + 1] * fx
    return float(top * (1 - fy) + bottom * fy)


def shading_map(
    pattern: CfaPattern, neutral: npt.ArrayLike, platform: Platform = "vc4",
    sensor: str = "imx477", pis_white_balance: bool = False,
) -> LensShadingMap:
    """``sensor``'s tuning's gains for a frame whose white is ``neutral``, per CFA site.

    The Pi's own AWB gains are meant for the raw after its tables (on the VC4 at 4850 K
    the IMX477's blue table is 1.7 % above its minimum at the centre; the OV5647's, 10 %).
    For a frame whose white balance is known to be the Pi's (``pis_white_balance``: a
    picamera2 DNG), the tables are used as the Pi uses them. Otherwise the red and blue
    gains are scaled to the green's at the frame centre, so the frame's white balance holds
    there unchanged: a simulated HQ frame's white balance is meant for the raw as the
    centre sees it, and a frame whose model names its sensor may be the simulator's.

    Parameters
    ----------
    pattern : CfaPattern
        The frame's Bayer pattern.
    neutral : (3,) array_like
        The camera's response to the scene white (AsShotNeutral), which sets the colour
        temperature of the chrominance tables.
    platform : {"vc4", "pisp"}
        Whose tuning: a Pi 4 and earlier, or a Pi 5 (the IMX477's only).
    sensor : str
        One of :data:`~pipeline.colour.alsc_tuning.SENSORS`.
    pis_white_balance : bool
        Whether ``neutral`` is the Pi's own AWB's, for the raw after its tables.
    """
    tuning = pi_alsc(sensor, platform)
    cells = tuning.rgb_gains(tuning.colour_temperature_k(neutral))
    per_cell = VERTICES_PER_CELL[platform]
    points = (cells.shape[1] * per_cell + 1, cells.shape[2] * per_cell + 1)
    rgb = np.stack([_vertex_grid(table, points) for table in cells])
    if not pis_white_balance:
        centre = np.array([_at_centre(plane) for plane in rgb])
        rgb *= (centre[1] / centre)[:, None, None]
    return LensShadingMap(gains=rgb[pattern.channels.ravel()].astype(np.float32))


def apply(
    cfa: npt.NDArray[np.float32],
    metadata: CameraMetadata,
    neutral: npt.ArrayLike,
    platform: Platform = "vc4",
    out: npt.NDArray[np.float32] | None = None,
) -> npt.NDArray[np.float32]:
    """Correct an (H, W) float32 mosaic's lens shading with its sensor's Pi tuning.

    Only when :func:`applies_to` the frame (a shipped sensor's, with no lens profile's flat
    field, which wins); otherwise the mosaic is returned unchanged (copied into ``out``
    when given one that is not ``cfa``). ``neutral`` is the frame's white balance, the
    camera's response to the scene white; see :func:`shading_map`.
    """
    sensor = sensor_of(metadata, cfa.shape)
    if metadata.lens_shading is not None or sensor is None:
        if out is None or out is cfa:
            return cfa
        out[...] = cfa
        return out
    # Known by its colour matrix: a picamera2 DNG, whose white balance is the Pi's AWB's.
    pis_white_balance = metadata.model.strip().lower() not in SENSORS
    gains = shading_map(metadata.cfa_pattern, neutral, platform, sensor, pis_white_balance)
    return lens_shading.apply(cfa, gains, out=out)
