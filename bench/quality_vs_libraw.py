"""Benchmark: image quality of our colorimetric develop against LibRaw's, side by side.

    .venv/bin/python bench/quality_vs_libraw.py [--gains 1 4 16] [--scenes 24]

Each Kodak scene goes through the IMX477 simulator at each analogue gain (no lens
vignetting, no hot pixels, no motion: what is left is the sensor's mosaic, noise, colour
response and 12-bit quantisation), is written as a DNG, and is developed twice from that
file: by our ``neutral`` look (black level, white balance, GBTF demosaic, DNG colour
matrices, nothing else) and by rawpy/LibRaw's ``postprocess()`` (its default AHD demosaic and
its DHT, camera white balance, sRGB primaries, linear 16-bit, no auto-brightening). Both are compared with the scene
itself in linear sRGB after one least-squares exposure gain per image (the two handle
BaselineExposure differently): CPSNR of the sRGB-encoded images (10 px border excluded)
and the mean CIEDE2000 over every pixel. Higher dB and lower dE are better.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import numpy.typing as npt
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
KODAK = REPO.parent / "shared" / "data" / "kodak24"
BORDER_PX = 10

from hardware.imx477_simulator import Imx477Simulator, SensorSettings  # noqa: E402
from pipeline.colour.metrics import (  # noqa: E402
    delta_e_ciede2000,
    linear_srgb_to_lab_d50,
    srgb_decode,
    srgb_encode,
)
from pipeline.develop import DevelopParams, develop  # noqa: E402
from pipeline.formats.dng_reader import read_dng  # noqa: E402
from pipeline.formats.encoders.dng import encode_dng  # noqa: E402

#: Scene value that just reaches the white level: a little headroom over diffuse white.
HEADROOM = 1.25


def simulate_dng(scene_path: Path, gain: float, destination: Path) -> npt.NDArray[np.float64]:
    """Write one simulated HQ-camera frame of the scene; return the scene, linear sRGB."""
    scene = np.asarray(Image.open(scene_path).convert("RGB"))
    camera = Imx477Simulator(scene, seed=7, hot_pixel_count=0, vignetting_strength=0.0)
    exposure = camera.exposure_time_us_for(HEADROOM, analogue_gain=gain)
    destination.write_bytes(
        encode_dng(camera.capture(SensorSettings(exposure_time_us=exposure, analogue_gain=gain)))
    )
    return srgb_decode(scene.astype(np.float64) / 255.0)


def develop_ours(dng: Path) -> npt.NDArray[np.float64]:
    """Our colorimetric develop, linear sRGB."""
    encoded = develop(read_dng(dng), DevelopParams(look="neutral"))
    return srgb_decode(encoded.astype(np.float64))


def develop_libraw(dng: Path, demosaic: str) -> npt.NDArray[np.float64]:
    """LibRaw's develop of the same file with its ``demosaic`` algorithm, linear sRGB."""
    import rawpy

    with rawpy.imread(str(dng)) as raw:
        image = raw.postprocess(
            demosaic_algorithm=rawpy.DemosaicAlgorithm[demosaic], use_camera_wb=True,
            output_color=rawpy.ColorSpace.sRGB, gamma=(1, 1), no_auto_bright=True,
            output_bps=16, user_flip=0,
        )  # fmt: skip
    return image.astype(np.float64) / 65535.0


def scores(result: npt.NDArray[np.float64], truth: npt.NDArray[np.float64]) -> tuple[float, float]:
    """(CPSNR dB, mean CIEDE2000) of ``result`` against ``truth`` after an exposure match."""
    inner = np.s_[BORDER_PX:-BORDER_PX, BORDER_PX:-BORDER_PX]
    result, truth = result[inner], truth[inner]
    unclipped = truth.max(axis=-1) < 0.9
    gain = np.sum(result[unclipped] * truth[unclipped]) / np.sum(result[unclipped] ** 2)
    matched = np.clip(result * gain, 0.0, 1.0)
    error = srgb_encode(matched) - srgb_encode(truth)
    cpsnr = float(10.0 * np.log10(1.0 / np.mean(error**2)))
    delta_e = delta_e_ciede2000(linear_srgb_to_lab_d50(matched), linear_srgb_to_lab_d50(truth))
    return cpsnr, float(np.mean(delta_e))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gains", type=float, nargs="+", default=[1.0, 4.0, 16.0])
    parser.add_argument("--scenes", type=int, default=24, help="first N Kodak images")
    parser.add_argument("--libraw", nargs="+", default=["AHD", "DHT"], help="demosaics")
    args = parser.parse_args()
    scenes = sorted(KODAK.glob("kodim*.png"))[: args.scenes]
    developers = {"ours": develop_ours} | {
        f"LibRaw {name}": lambda path, name=name: develop_libraw(path, name) for name in args.libraw
    }
    print(f"{len(scenes)} Kodak scenes through the IMX477 simulator; mean over scenes; "
          "'wins': scenes where ours has the higher CPSNR")  # fmt: skip
    print(f"{'gain':>5}  {'developer':<12} {'CPSNR dB':>8} {'CIEDE2000':>9}  ours: {'dB':>6} "
          f"{'dE ratio':>8} {'wins':>6}")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        dng = Path(tmp) / "frame.dng"
        for gain in args.gains:
            results: dict[str, list[tuple[float, float]]] = {name: [] for name in developers}
            for scene in scenes:
                truth = simulate_dng(scene, gain, dng)
                for name, developer in developers.items():
                    results[name].append(scores(developer(dng), truth))
            ours = np.array(results["ours"])
            for name, values in results.items():
                mean = np.mean(values, axis=0)
                line = f"{gain:5.0f}  {name:<12} {mean[0]:8.2f} {mean[1]:9.2f}"
                if name != "ours":
                    theirs = np.array(values)
                    wins = int(np.sum(ours[:, 0] > theirs[:, 0]))
                    line += (f"  {ours[:, 0].mean() - mean[0]:+10.2f} "
                             f"{ours[:, 1].mean() / mean[1]:8.2f} {wins:>3}/{len(scenes)}")  # fmt: skip
                print(line)


if __name__ == "__main__":
    main()
