"""Colour shading: a Pi camera lens's colour and luminance shading, corrected as the Pi does.

For a frame from a sensor whose tuning ships with Obscura
(:data:`pipeline.colour.alsc_tuning.SENSORS`: the Raspberry Pi cameras', the HQ camera's
IMX477 among them), the Pi's ISP multiplies the raw by its ALSC tables before the white
balance (:mod:`pipeline.colour.alsc_tuning`): the chrominance tables at the frame's colour
temperature and the luminance table at its ``luminance_strength``. This stage applies the
same tables, at the colour temperature of the frame's white balance (the point of the
tuning's ``ct_curve`` nearest it), so neutrals stay neutral across the frame, corners
included. The frame's white balance is taken to be meant for the raw after the tables, as
the Pi's AWB gains are (its statistics are taken after them): so it is in every Pi DNG
(picamera2's, rpicam-apps', ours) and in the simulator's frames, whose lens shades as the
tables calibrated (:mod:`hardware.imx477_simulator`).

The sensor is the one the camera metadata's model names (as libcamera picks the tuning
file by the sensor's name: our camera's frames, rpicam-apps' DNGs). A picamera2 DNG names
none (its Model is PiDNG's); its colour matrix, which the Pi built from the tuning's,
tells it (:mod:`pipeline.colour.pi_ccm`), and since such a file does not say which sensor
mode took it, only a frame with the proportions of the sensor's whole pixel array
(:data:`SENSOR_ARRAYS_PX`: a full or binned mode, which sees the field the tables cover) is
corrected; a cropped mode's would need the tables cut to its crop.

A lens profile's flat field (``CameraMetadata.lens_shading``, applied by
:mod:`pipeline.stages.lens_shading`) wins over the tuning: it was measured on this lens
and already corrects both its colour and its luminance shading, so with one present this
stage does nothing (the camera scales the profile's table to the tuning's centre gains,
:func:`with_pis_white_balance`, so that the Pi's white balance still holds). Frames from
other sensors are left untouched.

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


def vertex_gains(
    sensor: str, platform: Platform, colour_temperature_k: float,
    luminance_strength: float | None = None,
) -> npt.NDArray[np.float64]:
    """(3, gh, gw): ``sensor``'s tuning's R, G, B gains at ``colour_temperature_k`` on the
    ISP's vertex grid (corners at the frame's corner pixels, as
    :class:`~pipeline.raw_frame.LensShadingMap`), with the luminance table at
    ``luminance_strength`` (the tuning's when None)."""
    cells = pi_alsc(sensor, platform).rgb_gains(colour_temperature_k, luminance_strength)
    per_cell = VERTICES_PER_CELL[platform]
    points = (cells.shape[1] * per_cell + 1, cells.shape[2] * per_cell + 1)
    return np.stack([_vertex_grid(table, points) for table in cells])


def shading_map(
    pattern: CfaPattern, neutral: npt.ArrayLike, platform: Platform = "vc4",
    sensor: str = "imx477",
) -> LensShadingMap:
    """``sensor``'s tuning's gains for a frame whose white is ``neutral``, per CFA site, as
    the Pi applies them: ``neutral`` is meant for the raw after them, as the Pi's AWB gains
    are (on the VC4 at 4850 K the IMX477's blue table is 1.7 % above its green at the frame
    centre; the OV5647's, 9.5 %).

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
    """
    tuning = pi_alsc(sensor, platform)
    rgb = vertex_gains(sensor, platform, tuning.colour_temperature_k(neutral))
    return LensShadingMap(gains=rgb[pattern.channels.ravel()].astype(np.float32))


def tuning_centre_gains(
    metadata: CameraMetadata, shape: tuple[int, int], platform: Platform = "vc4",
) -> npt.NDArray[np.float64]:
    """(4,) per CFA site: the frame's sensor's tuning gains at the frame centre, relative to
    green (what the Pi's white balance was measured after); ones for a frame of another
    sensor or with no white balance recorded."""
    sensor = sensor_of(metadata, shape)
    if sensor is None or metadata.as_shot_neutral is None:
        return np.ones(4)
    pattern = metadata.cfa_pattern
    tables = shading_map(pattern, metadata.as_shot_neutral, platform, sensor).gains
    gh, gw = tables.shape[1:]  # odd: the middle vertex is the frame centre
    centre = tables[:, gh // 2, gw // 2].astype(np.float64)
    return centre / centre[list(pattern.channels.ravel()).index(1)]


def with_pis_white_balance(
    flat_field: LensShadingMap, metadata: CameraMetadata, shape: tuple[int, int],
    platform: Platform = "vc4",
) -> LensShadingMap:
    """A lens profile's ``flat_field`` (gains 1 at the frame centre) for a frame whose white
    balance is the Pi's: times its sensor's tuning's gains at the centre
    (:func:`tuning_centre_gains`), so the centre gets what the Pi's AWB measured; unchanged
    for a frame of another sensor or with no white balance recorded."""
    if sensor_of(metadata, shape) is None or metadata.as_shot_neutral is None:
        return flat_field
    scaled = flat_field.gains * tuning_centre_gains(metadata, shape, platform)[:, None, None]
    return LensShadingMap(gains=scaled.astype(np.float32))


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
    gains = shading_map(metadata.cfa_pattern, neutral, platform, sensor)
    return lens_shading.apply(cfa, gains, out=out)
