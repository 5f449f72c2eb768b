"""A physically modelled Raspberry Pi HQ Camera (Sony IMX477) that renders raw frames.

The simulator turns an sRGB scene into the 12-bit Bayer mosaic the HQ camera would deliver:

1. **Geometry.** Each frame views the scene through a pose from a seeded, bounded random
   walk (handheld shake: translation plus a small rotation about the frame centre),
   sampled bilinearly; an optional flat-coloured object moves across the scene.
2. **Colour.** The scene is taken as linear sRGB of a D65-balanced rendering. Under an
   illuminant of colour temperature ``ct`` the sensor's response is
   ``camera = diag(1/gains(ct)) @ inv(CCM(ct)) @ linear_srgb``, with the AWB gains and CCM
   of Raspberry Pi's own IMX477 tuning, so the Pi's white balance and CCM (and so the DNG
   ColorMatrix that rpicam-apps writes) invert it exactly.
3. **Photometry.** ``electrons = camera * shading * sensitivity * lux * t`` plus shot
   noise (the Gaussian approximation to Poisson, variance = ``electrons``), clipped to
   [0, full well]; ``DN = black + electrons * system_gain * analogue_gain`` plus read noise
   (before and after the analogue gain), rounded and clipped to 12 bits. A few hot pixels
   add dark current at fixed seeded sites. The normals come from a counter-based generator
   (the SplitMix64 finaliser of Steele, Lea and Flood, OOPSLA 2014, and Box-Muller) keyed
   per frame by a draw from the simulator's seeded ``numpy`` Generator, so rows render in
   parallel and frames stay reproducible.

The constants (:class:`SensorModel`) and where they come from:

- black level 256 DN (12-bit) = ``rpi.black_level`` 4096 (16-bit) in libcamera's
  ``src/ipa/rpi/vc4/data/imx477.json`` [RPiTuning]_; white level 4095;
- system gain 0.47 DN/e- at unity analogue gain, read noise 1.53 DN at gain 1 and 11.50 DN
  at gain 16, and clipping at 8180 e-, all measured on an HQ camera by J. Hogan [Hogan]_.
  The tuning's ``rpi.noise`` slope (2.767 on 16-bit data, i.e. sigma**2 = 0.4785 * DN at
  12 bits) agrees with the gain. The two read-noise figures fix a pre-gain part
  (1.52 e-) and a post-gain part (1.35 DN) of ``sigma_read**2 = (g*k*pre)**2 + post**2``;
- sensitivity 544 e- per lux-second for a white (Y = 1) surface at the centre of a green
  pixel: our estimate from the tuning's ``rpi.lux`` reference (830 lux, 27242 us, gain 1
  gave Y = 17755 of 65535), *assuming* the calibration scene averaged 18 % reflectance;
- lens shading: the lens the tuning was calibrated with, which shades each colour as the
  inverse of the tuning's ALSC tables at the frame's colour temperature, with the whole
  ``luminance_lut`` (about 1.6x gain in the corner cells; the Pi corrects it at
  ``luminance_strength`` 0.5), spread over the pixels from the Pi's vertex grid
  (:func:`pipeline.stages.colour_shading.vertex_gains`) as the correction spreads it. As
  on a real Pi, the white balance the tuning's ``ct_curve`` gives is then meant for the
  raw after the tables (at 4850 K the raw's centre is 1.7 % less blue, relative to green,
  than without them);
- hot pixels: dark current drawn log-uniformly in 1e5..1e6 e-/s, an invented but typical
  order of magnitude for the brightest defects of small-pixel CMOS sensors.

The HQ camera reports ``SBGGR12_CSI2P`` for its full-resolution mode: the IMX477's native
order is RGGB, but the module is mounted upside down and libcamera applies a 180 degree
flip by default, which makes it BGGR [Plowman]_.

References
----------
.. [RPiTuning] Raspberry Pi, libcamera ``src/ipa/rpi/vc4/data/imx477.json`` and
   ``src/ipa/rpi/controller/rpi/{awb,ccm,lux}.cpp``, https://github.com/raspberrypi/libcamera.
.. [Hogan] J. Hogan, "Pi HQ Cam Sensor Performance", Strolls with my Dog, 2020,
   https://www.strollswithmydog.com/pi-hq-cam-sensor-performance/.
.. [Plowman] D. Plowman, picamera2 issues #405 and #368 (2022): "the sensor's native Bayer
   format is RGGB but it is actually mounted upside down", https://github.com/raspberrypi/picamera2.
.. [rpicam] Raspberry Pi, rpicam-apps ``image/dng.cpp``, https://github.com/raspberrypi/rpicam-apps.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numba
import numpy as np
import numpy.typing as npt

from hardware.picamera2_metadata import camera_metadata_from_picamera2
from pipeline.cfa import CfaPattern
from pipeline.colour import metrics as colour_metrics
from pipeline.errors import InvalidParameterError
from pipeline.formats.picamera2_raw import pack_raw
from pipeline.raw_frame import LensShadingMap, RawFrame
from pipeline.stages import colour_shading, lens_shading

#: ``rpi.awb`` ``ct_curve`` of imx477.json [RPiTuning]_: (ct K, r, b), where the AWB gains
#: at ``ct`` are ``1 / r`` (red) and ``1 / b`` (blue), as ``Awb::setColourTemperature`` sets them.
IMX477_CT_CURVE: tuple[tuple[float, float, float], ...] = (
    (2360.0, 0.6009, 0.3093), (2848.0, 0.5071, 0.4), (2903.0, 0.4905, 0.4392),
    (3628.0, 0.4261, 0.5564), (3643.0, 0.4228, 0.5623), (4660.0, 0.3529, 0.68),
    (5579.0, 0.3227, 0.7), (6125.0, 0.3129, 0.71), (6671.0, 0.3065, 0.72),
    (7217.0, 0.3014, 0.73), (7763.0, 0.295, 0.74), (9505.0, 0.2524, 0.7856),
)  # fmt: skip

#: The Pi 5's (PiSP) ``rpi.awb`` ``ct_curve`` of ``src/ipa/rpi/pisp/data/imx477.json``
#: [RPiTuning]_: the same sensor calibrated again for the PiSP; its ``rpi.ccm`` is the same.
IMX477_PISP_CT_CURVE: tuple[tuple[float, float, float], ...] = (
    (2850.0, 0.4307, 0.3957), (2960.0, 0.4159, 0.4313), (3580.0, 0.3771, 0.5176),
    (4559.0, 0.3031, 0.6573), (5881.0, 0.2809, 0.6942), (7600.0, 0.2263, 0.7762),
)  # fmt: skip
#: The tunings the simulator can follow: the Pi 4 and earlier (VC4) and the Pi 5 (PiSP).
CT_CURVES = {"vc4": IMX477_CT_CURVE, "pisp": IMX477_PISP_CT_CURVE}

#: ``rpi.ccm`` of imx477.json [RPiTuning]_: (ct K, row-major CCM from white-balanced camera
#: RGB to linear sRGB).
IMX477_CCMS: tuple[tuple[float, tuple[float, ...]], ...] = (
    (2850.0, (1.97469, -0.71439, -0.26031, -0.43521, 2.09769, -0.66248,
              -0.04826, -0.84642, 1.89468)),
    (2960.0, (2.12952, -0.91185, -0.21768, -0.38018, 1.90789, -0.52771,
              0.03988, -1.10079, 2.06092)),
    (3580.0, (2.03422, -0.80048, -0.23374, -0.39089, 1.97221, -0.58132,
              -0.08969, -0.61439, 1.70408)),
    (4559.0, (2.15423, -0.98143, -0.17279, -0.38131, 2.14763, -0.76632,
              -0.10069, -0.54383, 1.64452)),
    (5881.0, (2.18464, -0.95493, -0.22971, -0.36826, 2.00298, -0.63471,
              -0.15219, -0.38055, 1.53274)),
    (7600.0, (2.30687, -0.97295, -0.33392, -0.30872, 2.32779, -1.01908,
              -0.17761, -0.55891, 1.73651)),
)  # fmt: skip

# Ccm::applySaturation's luma/chroma matrices (ccm.cpp [RPiTuning]_): the Pi reports
# Y2RGB @ diag(1, s, s) @ RGB2Y @ CCM, which is not exactly the CCM even for s = 1.
_RGB_TO_YCBCR = np.array([[0.299, 0.587, 0.114], [-0.169, -0.331, 0.500], [0.500, -0.419, -0.081]])
_YCBCR_TO_RGB = np.array([[1.000, 0.000, 1.402], [1.000, -0.345, -0.714], [1.000, 1.771, 0.000]])

#: libcamera's ``rpi.lux`` reference [RPiTuning]_: exposure (us), gain, lux, Y (16-bit).
LUX_REFERENCE = (27242.0, 1.0, 830.0, 17755.0)

IMX477_MODEL = "imx477"
IMX477_PATTERN = CfaPattern.BGGR
IMX477_BIT_DEPTH = 12
#: Raw formats of the full-resolution mode that :meth:`Imx477Simulator.capture_picamera2` emits.
RAW_FORMATS = ("SBGGR12_CSI2P", "SBGGR12")
#: Exposure limits of the 4056x3040 mode as picamera2 lists them (picamera2 issue #405).
EXPOSURE_LIMITS_US = (114, 239_542_228)
#: Shortest frame duration of the 4056x3040 mode on a Pi 4 (10 fps), microseconds.
MIN_FRAME_DURATION_US = 100_000
#: Analogue gain range of the tuning's exposure profiles.
ANALOGUE_GAIN_LIMITS = (1.0, 16.0)
#: Colour temperature of the light when a capture does not say (daylight, D65), K.
DEFAULT_COLOUR_TEMPERATURE_K = 6500.0
#: Temperature the simulated sensor reports (a typical HQ camera reading indoors), Celsius.
SENSOR_TEMPERATURE_C = 40.0


def awb_gains(colour_temperature_k: float, tuning: str = "vc4") -> tuple[float, float]:
    """Red and blue gains the Pi applies at ``colour_temperature_k`` (1 / ``ct_curve`` of
    the ``tuning``, "vc4" or "pisp": :data:`CT_CURVES`).

    Raises
    ------
    InvalidParameterError
        Outside the curve's domain (2360..9505 K for VC4), or an unknown tuning.
    """
    if tuning not in CT_CURVES:
        raise InvalidParameterError(f"tuning={tuning!r}: expected one of {', '.join(CT_CURVES)}")
    curve = CT_CURVES[tuning]
    ct = np.array([p[0] for p in IMX477_CT_CURVE])  # the domain the VC4 tuning covers
    if not ct[0] <= colour_temperature_k <= ct[-1]:
        raise InvalidParameterError(
            f"colour_temperature_k={colour_temperature_k}: expected {ct[0]:.0f}..{ct[-1]:.0f} K"
        )
    temperatures = [p[0] for p in curve]
    r = np.interp(colour_temperature_k, temperatures, [p[1] for p in curve])
    b = np.interp(colour_temperature_k, temperatures, [p[2] for p in curve])
    return (float(1.0 / r), float(1.0 / b))


def colour_correction_matrix(colour_temperature_k: float) -> npt.NDArray[np.float64]:
    """(3, 3) CCM the Pi reports at ``colour_temperature_k``.

    Interpolated linearly in temperature between the tuning's matrices (clamped at the
    ends) and passed through ``Ccm::applySaturation`` at saturation 1, as libcamera does.
    """
    temperatures = [c[0] for c in IMX477_CCMS]
    matrices = np.array([c[1] for c in IMX477_CCMS]).reshape(-1, 3, 3)
    if colour_temperature_k <= temperatures[0]:
        ccm = matrices[0]
    elif colour_temperature_k >= temperatures[-1]:
        ccm = matrices[-1]
    else:
        i = int(np.searchsorted(temperatures, colour_temperature_k))
        lam = (colour_temperature_k - temperatures[i - 1]) / (temperatures[i] - temperatures[i - 1])
        ccm = lam * matrices[i] + (1.0 - lam) * matrices[i - 1]
    return np.clip(_YCBCR_TO_RGB @ _RGB_TO_YCBCR @ ccm, -8.0, 7.9999)


@dataclass(frozen=True)
class SensorModel:
    """Photometric and noise constants of the simulated IMX477 (sources in the module doc).

    Attributes
    ----------
    black_level_dn, white_level_dn : int
        Raw black and clipping levels (12-bit DN).
    system_gain_dn_per_e : float
        DN per electron at analogue gain 1.
    read_noise_pre_gain_e : float
        Read noise added before the analogue gain, electrons RMS.
    read_noise_post_gain_dn : float
        Read noise added after the analogue gain (ADC and downstream), DN RMS.
    full_well_e : float
        Electrons at which a pixel saturates.
    sensitivity_e_per_lux_s : float
        Electrons per lux-second collected from a white (Y = 1) surface, green pixel, centre.
    hot_pixel_rate_e_per_s : (float, float)
        Range of the dark current of hot pixels (drawn log-uniformly).
    """

    black_level_dn: int = 256
    white_level_dn: int = 4095
    system_gain_dn_per_e: float = 0.47
    read_noise_pre_gain_e: float = 1.52
    read_noise_post_gain_dn: float = 1.35
    full_well_e: float = 8180.0
    sensitivity_e_per_lux_s: float = 544.0
    hot_pixel_rate_e_per_s: tuple[float, float] = (1.0e5, 1.0e6)

    def read_noise_dn(self, analogue_gain: float) -> float:
        """RMS read noise in DN at ``analogue_gain`` (excluding quantisation)."""
        pre = analogue_gain * self.system_gain_dn_per_e * self.read_noise_pre_gain_e
        return math.sqrt(pre * pre + self.read_noise_post_gain_dn**2)

    def noise_profile(self, analogue_gain: float) -> tuple[float, float]:
        """DNG NoiseProfile ``(S, O)`` at ``analogue_gain``: variance = S * x + O.

        ``x`` is the raw signal normalised to [0, 1] between black and white (DNG 1.6,
        NoiseProfile tag). ``S`` is the shot noise of the conversion gain; ``O`` is the read
        noise plus 1/12 DN**2 of rounding.
        """
        full_scale = float(self.white_level_dn - self.black_level_dn)
        scale = analogue_gain * self.system_gain_dn_per_e / full_scale
        offset = (self.read_noise_dn(analogue_gain) ** 2 + 1.0 / 12.0) / full_scale**2
        return (scale, offset)


@dataclass(frozen=True)
class SensorSettings:
    """What the camera is asked to do for one capture.

    Attributes
    ----------
    exposure_time_us : float
        Exposure in microseconds (the sensor applies, and reports, a whole number).
    analogue_gain : float
        Analogue gain, 1..16 (ISO = 100 * gain).
    colour_temperature_k : float
        Colour temperature of the scene illuminant, 2360..9505 K; the white balance and
        CCM in the metadata are the Pi's for this temperature.
    """

    exposure_time_us: float
    analogue_gain: float = 1.0
    colour_temperature_k: float = DEFAULT_COLOUR_TEMPERATURE_K

    def __post_init__(self) -> None:
        lo, hi = EXPOSURE_LIMITS_US
        if not lo <= self.exposure_time_us <= hi:
            raise InvalidParameterError(
                f"exposure_time_us={self.exposure_time_us}: expected {lo}..{hi}"
            )
        glo, ghi = ANALOGUE_GAIN_LIMITS
        if not glo <= self.analogue_gain <= ghi:
            raise InvalidParameterError(
                f"analogue_gain={self.analogue_gain}: expected {glo}..{ghi}"
            )
        awb_gains(self.colour_temperature_k)  # validates the temperature


@dataclass(frozen=True)
class Pose:
    """Where the camera pointed for one frame, as the content's motion in the frame.

    Scene content appears rotated by ``rotation_deg`` about the frame centre (positive
    turns +x towards +y, i.e. clockwise on screen since y points down) and then shifted by
    (``dx_px``, ``dy_px``) output pixels.
    """

    dx_px: float
    dy_px: float
    rotation_deg: float


@dataclass(frozen=True)
class MovingObject:
    """A flat-coloured rectangle moving across the scene at constant velocity.

    Attributes
    ----------
    top_left_yx : (float, float)
        Scene-pixel position of the top-left corner in the first frame.
    size_yx : (float, float)
        Height and width in scene pixels.
    velocity_yx_px_per_frame : (float, float)
        Displacement per captured frame, scene pixels.
    colour_srgb : (float, float, float)
        sRGB-encoded colour in [0, 1].
    """

    top_left_yx: tuple[float, float]
    size_yx: tuple[float, float]
    velocity_yx_px_per_frame: tuple[float, float]
    colour_srgb: tuple[float, float, float]


@numba.njit(cache=True, nogil=True, inline="always")
def _splitmix64(x):
    # SplitMix64 finaliser (Steele, Lea, Flood 2014): a counter -> 64 random bits.
    z = x + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


@numba.njit(cache=True, parallel=True, nogil=True)
def _render_mosaic_kernel(
    scene, response, channels, pose, transmission, electrons_per_unit, full_well_e,
    dn_per_e, read_sigma_dn, black, white, moving, noise_key, noise_scale, out,
):  # fmt: skip
    h, w = out.shape
    sh, sw, _ = scene.shape
    scale_x = np.float32(sw / w)
    scale_y = np.float32(sh / h)
    half_w = np.float32(0.5 * w)
    half_h = np.float32(0.5 * h)
    tx, ty, cos_t, sin_t = pose[0], pose[1], pose[2], pose[3]
    for y in numba.prange(h):
        py = np.float32(y) + np.float32(0.5) - half_h
        for x in range(w):
            # Two standard normals (shot, read) by Box-Muller from one 64-bit hash of the
            # pixel's index, keyed per frame.
            bits = _splitmix64(noise_key + np.uint64(y * w + x))
            u1 = np.float32((bits >> np.uint64(40)) + np.uint64(1)) * np.float32(2.0**-24)
            u2 = np.float32(bits & np.uint64(0xFFFFFF)) * np.float32(2.0**-24)
            radius = np.float32(math.sqrt(np.float32(-2.0) * math.log(u1)))
            angle = np.float32(2.0 * math.pi) * u2
            z_shot = radius * np.float32(math.cos(angle)) * noise_scale
            z_read = radius * np.float32(math.sin(angle)) * noise_scale
            c = channels[y & 1, x & 1]
            px = np.float32(x) + np.float32(0.5) - half_w
            # Scene point shown here: undo the content's rotation and shift.
            qx = px - tx
            qy = py - ty
            u = (cos_t * qx + sin_t * qy + half_w) * scale_x - np.float32(0.5)
            v = (-sin_t * qx + cos_t * qy + half_h) * scale_y - np.float32(0.5)
            if (
                moving[7] > 0
                and moving[0] <= v < moving[0] + moving[2]
                and moving[1] <= u < moving[1] + moving[3]
            ):
                r = moving[4]
                g = moving[5]
                b = moving[6]
            else:
                u = min(max(u, np.float32(0.0)), np.float32(sw - 1))
                v = min(max(v, np.float32(0.0)), np.float32(sh - 1))
                x0 = min(int(u), sw - 2)
                y0 = min(int(v), sh - 2)
                fx = u - np.float32(x0)
                fy = v - np.float32(y0)
                w00 = (np.float32(1.0) - fx) * (np.float32(1.0) - fy)
                w01 = fx * (np.float32(1.0) - fy)
                w10 = (np.float32(1.0) - fx) * fy
                w11 = fx * fy
                r = (
                    w00 * scene[y0, x0, 0]
                    + w01 * scene[y0, x0 + 1, 0]
                    + w10 * scene[y0 + 1, x0, 0]
                    + w11 * scene[y0 + 1, x0 + 1, 0]
                )
                g = (
                    w00 * scene[y0, x0, 1]
                    + w01 * scene[y0, x0 + 1, 1]
                    + w10 * scene[y0 + 1, x0, 1]
                    + w11 * scene[y0 + 1, x0 + 1, 1]
                )
                b = (
                    w00 * scene[y0, x0, 2]
                    + w01 * scene[y0, x0 + 1, 2]
                    + w10 * scene[y0 + 1, x0, 2]
                    + w11 * scene[y0 + 1, x0 + 1, 2]
                )
            signal = response[c, 0] * r + response[c, 1] * g + response[c, 2] * b
            signal = max(signal, np.float32(0.0))
            electrons = signal * electrons_per_unit * transmission[y, x]
            electrons += np.float32(math.sqrt(electrons)) * z_shot
            electrons = min(max(electrons, np.float32(0.0)), full_well_e)
            value = black + electrons * dn_per_e + read_sigma_dn * z_read
            value = min(max(value + np.float32(0.5), np.float32(0.0)), white)
            out[y, x] = np.uint16(value)


@dataclass(frozen=True)
class ColorCheckerChart:
    """A rendered ColorChecker Classic.

    Attributes
    ----------
    image_srgb : (H, W, 3) float32
        sRGB-encoded image (extended encoding: the cyan patch is slightly out of gamut).
    patch_centres_yx : (24, 2) int64
        Pixel centre of each patch, in :data:`pipeline.colour.metrics.COLORCHECKER_NAMES` order.
    patch_size_px : int
        Side of each square patch.
    """

    image_srgb: npt.NDArray[np.float32]
    patch_centres_yx: npt.NDArray[np.int64]
    patch_size_px: int


def render_colorchecker(patch_size_px: int = 64, border_px: int = 16) -> ColorCheckerChart:
    """Render the 6 x 4 ColorChecker Classic with black borders, from the X-Rite reference.

    Patch colours are :func:`pipeline.colour.metrics.colorchecker_linear_srgb` (D50
    reference Bradford-adapted to D65), sRGB-encoded. The image is
    ``(4 * patch + 5 * border, 6 * patch + 7 * border)`` pixels, even when both sizes are.
    """
    if patch_size_px < 1 or border_px < 0:
        raise InvalidParameterError(
            f"patch_size_px={patch_size_px}, border_px={border_px}: expected >= 1 and >= 0"
        )
    step = patch_size_px + border_px
    height = 4 * patch_size_px + 5 * border_px
    width = 6 * patch_size_px + 7 * border_px
    colours = colour_metrics.srgb_encode(colour_metrics.colorchecker_linear_srgb()).astype(
        np.float32
    )
    image = np.zeros((height, width, 3), dtype=np.float32)
    centres = np.empty((24, 2), dtype=np.int64)
    for i in range(24):
        row, col = divmod(i, 6)
        y0 = border_px + row * step
        x0 = border_px + col * step
        image[y0 : y0 + patch_size_px, x0 : x0 + patch_size_px] = colours[i]
        centres[i] = (y0 + patch_size_px // 2, x0 + patch_size_px // 2)
    return ColorCheckerChart(image, centres, patch_size_px)


def _scene_to_linear(scene_srgb: npt.ArrayLike) -> npt.NDArray[np.float32]:
    """(H, W, 3) sRGB (uint8, uint16 or float) -> contiguous linear float32."""
    scene = np.asarray(scene_srgb)
    if scene.ndim != 3 or scene.shape[2] != 3 or scene.shape[0] < 2 or scene.shape[1] < 2:
        raise InvalidParameterError(
            f"scene_srgb has shape {scene.shape}: expected (H, W, 3), H, W >= 2"
        )
    if scene.dtype == np.uint8 or scene.dtype == np.uint16:
        levels = np.iinfo(scene.dtype).max
        lut = colour_metrics.srgb_decode(np.arange(levels + 1, dtype=np.float64) / levels)
        return np.ascontiguousarray(lut.astype(np.float32)[scene])
    if np.issubdtype(scene.dtype, np.floating):
        return np.ascontiguousarray(colour_metrics.srgb_decode(scene.astype(np.float32)))
    raise InvalidParameterError(
        f"scene_srgb has dtype {scene.dtype}: expected uint8, uint16 or float"
    )


class Imx477Simulator:
    """Renders raw frames of an sRGB scene as a Raspberry Pi HQ Camera would capture them.

    Parameters
    ----------
    scene_srgb : (Hs, Ws, 3) uint8, uint16 or float
        The scene, sRGB-encoded (floats may exceed 1 for highlights). It is stretched to
        fill the output frame.
    seed : int
        Seeds every random process (noise, hot pixels, motion): equal seeds and equal
        capture sequences give identical frames.
    output_size : (int, int), optional
        (H, W) of the raw frames, both even; defaults to the scene size.
    illuminance_lux : float
        Illuminance on the scene; a white surface then gives
        ``sensitivity * lux * exposure`` electrons in a green pixel.
    motion_px : float
        Largest handheld translation from the first frame, output pixels (0 = tripod).
    motion_rotation_deg : float
        Largest handheld rotation from the first frame, degrees.
    hot_pixel_count : int
        Number of hot pixels, at fixed seeded sites.
    vignetting_strength : float
        Scales the lens's shading, the correcting gains' departure from 1 (0 = none, 1 = the
        lens the IMX477 tuning was calibrated with).
    moving_object : MovingObject, optional
        A patch moving across the scene from frame to frame.
    adds_noise : bool
        False renders noiseless frames (still rounded to 12 bits): with the same seed and
        capture sequence, the clean twins of a noisy simulator's frames.
    sensor : SensorModel
        Photometric and noise constants.
    tuning : {"vc4", "pisp"}
        Whose calibration the sensor's colour response and reported gains follow: a Pi 4's
        libcamera tuning or a Pi 5's (:data:`CT_CURVES`).
    """

    def __init__(
        self,
        scene_srgb: npt.ArrayLike,
        *,
        seed: int,
        output_size: tuple[int, int] | None = None,
        illuminance_lux: float = 1000.0,
        motion_px: float = 0.0,
        motion_rotation_deg: float = 0.0,
        hot_pixel_count: int = 8,
        vignetting_strength: float = 1.0,
        moving_object: MovingObject | None = None,
        adds_noise: bool = True,
        sensor: SensorModel = SensorModel(),
        tuning: str = "vc4",
    ) -> None:
        awb_gains(6500.0, tuning)  # validates the tuning
        self._tuning = tuning
        self._scene = _scene_to_linear(scene_srgb)
        if output_size is None:
            output_size = (self._scene.shape[0], self._scene.shape[1])
        height, width = (int(v) for v in output_size)
        if height < 2 or width < 2 or height % 2 or width % 2:
            raise InvalidParameterError(f"output_size={output_size}: expected even sizes >= 2")
        if illuminance_lux <= 0:
            raise InvalidParameterError(f"illuminance_lux={illuminance_lux}: expected > 0")
        if motion_px < 0 or motion_rotation_deg < 0:
            raise InvalidParameterError(
                f"motion_px={motion_px}, motion_rotation_deg={motion_rotation_deg}: expected >= 0"
            )
        if not 0 <= hot_pixel_count <= height * width:
            raise InvalidParameterError(
                f"hot_pixel_count={hot_pixel_count}: expected 0..{height * width}"
            )
        if vignetting_strength < 0:
            raise InvalidParameterError(f"vignetting_strength={vignetting_strength}: expected >= 0")
        self._size = (height, width)
        self._illuminance_lux = float(illuminance_lux)
        self._motion_px = float(motion_px)
        self._motion_rotation_deg = float(motion_rotation_deg)
        self._vignetting_strength = float(vignetting_strength)
        self._transmission_of: tuple[float | None, npt.NDArray[np.float32]] = (None, np.ones(0))
        self._moving_object = moving_object
        self._noise_scale = np.float32(1.0 if adds_noise else 0.0)
        self._sensor = sensor

        noise_seed, hot_seed, motion_seed = np.random.SeedSequence(seed).spawn(3)
        self._noise_rng = np.random.default_rng(noise_seed)
        self._motion_rng = np.random.default_rng(motion_seed)
        hot_rng = np.random.default_rng(hot_seed)
        flat = hot_rng.choice(height * width, size=hot_pixel_count, replace=False)
        self._hot_pixels = np.stack(np.divmod(flat, width), axis=1).astype(np.int64)
        lo, hi = sensor.hot_pixel_rate_e_per_s
        self._hot_rates = np.exp(hot_rng.uniform(np.log(lo), np.log(hi), size=hot_pixel_count))

        self._poses: list[Pose] = []
        self._timestamp_ns = 1_000_000_000

    @property
    def output_size(self) -> tuple[int, int]:
        """(H, W) of the raw frames."""
        return self._size

    @property
    def hot_pixels(self) -> npt.NDArray[np.int64]:
        """(N, 2) int64 (y, x) of the hot pixels."""
        return self._hot_pixels.copy()

    @property
    def poses(self) -> tuple[Pose, ...]:
        """The pose of every frame captured so far, in capture order."""
        return tuple(self._poses)

    def exposure_time_us_for(self, scene_value: float = 1.0, analogue_gain: float = 1.0) -> float:
        """Exposure (us) at which a neutral linear ``scene_value`` reaches the white level.

        Measured in green at the frame centre before the lens's shading (which takes up to
        1.2 % there), so with this exposure the black-subtracted, white-normalised raw equals
        the linear scene value (DNG BaselineExposure 0), less that.
        """
        sensor = self._sensor
        full_scale = sensor.white_level_dn - sensor.black_level_dn
        per_second = (
            scene_value * sensor.sensitivity_e_per_lux_s * self._illuminance_lux
            * sensor.system_gain_dn_per_e * analogue_gain
        )  # fmt: skip
        return 1e6 * full_scale / per_second

    def lens_shading_map(
        self, colour_temperature_k: float = DEFAULT_COLOUR_TEMPERATURE_K
    ) -> LensShadingMap | None:
        """The gains that undo the simulated lens shading under light of
        ``colour_temperature_k`` exactly, or None without shading: the tuning's vertex grid,
        points at the frame's corner pixels and evenly between (as
        :class:`pipeline.raw_frame.LensShadingMap` specifies), one plane per CFA site."""
        if self._vignetting_strength == 0:
            return None
        rgb = colour_shading.vertex_gains(IMX477_MODEL, self._tuning, colour_temperature_k,
                                          luminance_strength=1.0)  # fmt: skip
        gains = 1.0 + self._vignetting_strength * (rgb[IMX477_PATTERN.channels.ravel()] - 1.0)
        return LensShadingMap(gains.astype(np.float32))

    def _transmission(self, colour_temperature_k: float) -> npt.NDArray[np.float32]:
        """(H, W) float32: the share of the light the lens passes to each pixel, the inverse
        of :meth:`lens_shading_map` as :func:`pipeline.stages.lens_shading.apply` spreads it
        over the pixels (kept for the last colour temperature asked)."""
        key = float(colour_temperature_k)
        if self._transmission_of[0] != key:
            shading = self.lens_shading_map(key)
            ones = np.ones(self._size, dtype=np.float32)
            gains = ones if shading is None else lens_shading.apply(ones, shading)
            self._transmission_of = (key, np.reciprocal(gains, out=gains))
        return self._transmission_of[1]

    def _next_pose(self) -> Pose:
        if not self._poses or (self._motion_px == 0 and self._motion_rotation_deg == 0):
            return Pose(0.0, 0.0, 0.0)
        last = self._poses[-1]
        step = self._motion_rng.normal(size=3) / 3.0
        dx = last.dx_px + step[0] * self._motion_px
        dy = last.dy_px + step[1] * self._motion_px
        shift = math.hypot(dx, dy)
        if shift > self._motion_px:
            dx, dy = dx * self._motion_px / shift, dy * self._motion_px / shift
        rotation = last.rotation_deg + step[2] * self._motion_rotation_deg
        rotation = min(max(rotation, -self._motion_rotation_deg), self._motion_rotation_deg)
        return Pose(float(dx), float(dy), float(rotation))

    def _moving_object_params(self, frame_index: int) -> npt.NDArray[np.float32]:
        params = np.zeros(8, dtype=np.float32)
        obj = self._moving_object
        if obj is not None:
            params[0] = obj.top_left_yx[0] + frame_index * obj.velocity_yx_px_per_frame[0]
            params[1] = obj.top_left_yx[1] + frame_index * obj.velocity_yx_px_per_frame[1]
            params[2:4] = obj.size_yx
            params[4:7] = colour_metrics.srgb_decode(np.asarray(obj.colour_srgb, dtype=np.float64))
            params[7] = 1.0
        return params

    def _capture(self, settings: SensorSettings) -> tuple[npt.NDArray[np.uint16], dict[str, Any]]:
        """Render one frame: the (H, W) uint16 mosaic and its picamera2-style metadata."""
        sensor = self._sensor
        exposure_us = int(round(settings.exposure_time_us))
        gain = float(settings.analogue_gain)
        ct = float(settings.colour_temperature_k)
        red_gain, blue_gain = awb_gains(ct, self._tuning)
        ccm = colour_correction_matrix(ct)
        response = np.diag([1.0 / red_gain, 1.0, 1.0 / blue_gain]) @ np.linalg.inv(ccm)

        pose = self._next_pose()
        frame_index = len(self._poses)
        self._poses.append(pose)
        theta = math.radians(pose.rotation_deg)
        pose_params = np.array(
            [pose.dx_px, pose.dy_px, math.cos(theta), math.sin(theta)], dtype=np.float32
        )

        height, width = self._size
        dn_per_e = gain * sensor.system_gain_dn_per_e
        noise_key = np.uint64(self._noise_rng.integers(0, 2**64, dtype=np.uint64))
        mosaic = np.empty((height, width), dtype=np.uint16)
        _render_mosaic_kernel(
            self._scene,
            response.astype(np.float32),
            IMX477_PATTERN.channels,
            pose_params,
            self._transmission(ct),
            np.float32(sensor.sensitivity_e_per_lux_s * self._illuminance_lux * exposure_us * 1e-6),
            np.float32(sensor.full_well_e),
            np.float32(dn_per_e),
            np.float32(sensor.read_noise_dn(gain)),
            np.float32(sensor.black_level_dn),
            np.float32(sensor.white_level_dn),
            self._moving_object_params(frame_index),
            noise_key,
            self._noise_scale,
            mosaic,
        )
        if len(self._hot_pixels):
            ys, xs = self._hot_pixels[:, 0], self._hot_pixels[:, 1]
            dark_dn = (
                np.minimum(self._hot_rates * exposure_us * 1e-6, sensor.full_well_e) * dn_per_e
            )
            mosaic[ys, xs] = np.minimum(mosaic[ys, xs] + np.round(dark_dn), sensor.white_level_dn)

        frame_duration_us = max(MIN_FRAME_DURATION_US, exposure_us)
        timestamp_ns = self._timestamp_ns
        self._timestamp_ns += frame_duration_us * 1000
        metadata = {
            "SensorTimestamp": timestamp_ns,
            "ExposureTime": exposure_us,
            "AnalogueGain": gain,
            "DigitalGain": 1.0,
            "ColourGains": (red_gain, blue_gain),
            "ColourCorrectionMatrix": tuple(float(v) for v in ccm.ravel()),
            "ColourTemperature": int(round(ct)),
            "SensorBlackLevels": (sensor.black_level_dn * 16,) * 4,
            "FrameDuration": frame_duration_us,
            "Lux": self._lux_estimate(mosaic, exposure_us, gain),
            "SensorTemperature": SENSOR_TEMPERATURE_C,
            "ScalerCrop": (0, 0, width, height),
        }
        return mosaic, metadata

    def _lux_estimate(self, mosaic: npt.NDArray[np.uint16], exposure_us: int, gain: float) -> float:
        """libcamera's ``Lux::process`` estimate, with Y taken as the mean green level."""
        sensor = self._sensor
        # BGGR: greens at (0, 1) and (1, 0) of each tile; every 4th tile is plenty.
        greens = mosaic[0::8, 1::8].astype(np.float32)
        level = (float(greens.mean()) - sensor.black_level_dn) / (
            sensor.white_level_dn - sensor.black_level_dn
        )
        ref_exposure_us, ref_gain, ref_lux, ref_y = LUX_REFERENCE
        return (
            max(level, 0.0)
            * 65535.0
            / ref_y
            * (ref_exposure_us / exposure_us)
            * (ref_gain / gain)
            * ref_lux
        )

    def capture(self, settings: SensorSettings) -> RawFrame:
        """Capture one raw frame, with metadata as rpicam-apps would write it to a DNG.

        The metadata adds, beyond rpicam-apps, the NoiseProfile of the noise model and
        the exact lens shading map of the simulated shading.
        """
        mosaic, metadata = self._capture(settings)
        profile = self._sensor.noise_profile(settings.analogue_gain)
        camera = camera_metadata_from_picamera2(
            metadata, IMX477_PATTERN, IMX477_BIT_DEPTH, IMX477_MODEL, noise_profile=(profile,) * 3
        )
        shading = self.lens_shading_map(settings.colour_temperature_k)
        camera = dataclasses.replace(camera, lens_shading=shading)
        return RawFrame(mosaic, camera)

    def capture_picamera2(
        self, settings: SensorSettings, format_name: str = "SBGGR12_CSI2P"
    ) -> tuple[npt.NDArray[np.uint8], dict[str, Any]]:
        """Capture one frame as picamera2 hands it over: the raw buffer and the metadata.

        Parameters
        ----------
        settings : SensorSettings
        format_name : {"SBGGR12_CSI2P", "SBGGR12"}
            MIPI CSI-2 packed (3 bytes per 2 pixels) or unpacked 16-bit little-endian.

        Returns
        -------
        buffer : (H, stride) uint8
            The raw stream's array, as ``request.make_array("raw")`` returns it, with the
            Pi 4 row alignment (:func:`pipeline.formats.picamera2_raw.pack_raw`).
        metadata : dict
            ``request.get_metadata()``: libcamera control names and units (ExposureTime
            in us, SensorBlackLevels in 16-bit units, SensorTimestamp in ns, ...).
        """
        if format_name not in RAW_FORMATS:
            raise InvalidParameterError(
                f"format_name={format_name!r}: expected one of {RAW_FORMATS}"
            )
        mosaic, metadata = self._capture(settings)
        return pack_raw(mosaic, format_name), metadata
