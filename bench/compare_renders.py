"""Side by side: our looks, LibRaw and the Pi's own JPEG of the same raw, with figures.

    .venv/bin/python bench/compare_renders.py [DNG ...] [--pi-jpeg DNG=JPG ...] [--out DIR]
        [--imx477-sim grey|SCENE.png ...] [--shading-from DNG=JPG]

Look at every rendering change here before it lands. For each raw file (default: the real
Pi DNGs in ../shared/data) it writes ``DIR/<name>_full.png``, each render in full view
(scaled to one width) side by side, and ``DIR/<name>_crops.png``, 100 % crops of the same places: the flattest dark
region, the brightest region and the busiest (most detailed) one. Renders: our ``standard``
look, the same with ``--white-balance auto`` (the image's own estimate instead of the
file's AsShotNeutral), our ``neutral`` look (the colorimetric output, as its 8-bit JPEG), LibRaw's default
develop through rawpy (AHD, camera white balance, sRGB, auto-brightness as dcraw does), and
the Raspberry Pi ISP's own JPEG where one is given (image1's ``cap_dng_jpg0.jpg`` is found
by default). An HQ camera (IMX477) frame with no lens profile also gets our standard look
without the colour shading the Pi's tuning corrects (:mod:`pipeline.stages.colour_shading`),
so its effect is seen. A frame of the camera whose Pi JPEG ``--shading-from`` names (default:
image1's, when present; same model and size) also gets our standard look with the colour
shading recovered from that pair (:mod:`pipeline.stages.isp_colour_shading`, as ``obscura
calibrate pi-jpeg`` stores it): on image1 itself that is in-sample, on the other frames
of the camera held out. No real HQ camera DNG is at hand, so ``--imx477-sim`` renders one with
the IMX477 simulator (2028x1520, the binned full field of view, 4850 K, no lens profile):
``grey`` is an evenly lit mid-grey wall, anything else an sRGB image of the scene.

Figures printed for each render, all measured the same way on the same pixels:

- ``dark1``: the darkest 1 % of luma (8-bit Rec. 601 luma, 1st percentile): how black the
  blacks are (lifted, murky blacks read 30-40; the Pi ISP and LibRaw about 18-20);
- ``shadow_hp``: shadow noise as seen at 100 %: on the flattest dark 48 px blocks of the
  raw (chosen once from the raw's green channel, so every render is measured on the same
  blocks), the standard deviation of the linear luminance's high-pass (minus a Gaussian of
  2 px) over the block's mean, median over the blocks;
- ``clip%``: share of pixels with a channel at 255;
- ``white a*b*``: how neutral the whites are: the median CIELAB (D50) a* and b* of the bright
  flat 24 px blocks (blocks chosen once, on our standard render: mean above 85 % and
  standard deviation under 3 % of full scale), the same blocks in every render (a white
  wall or paper reads near 0, 0; green is a* < 0, yellow b* > 0);
- ``corner_dab``: the largest CIELAB (D50) a*b* distance of a corner (a tenth of each side)
  from the centre: how neutral the corners stay where the centre is, which means something
  only on an evenly lit uniform surface (``--imx477-sim grey``).

For the neutral look's 16-bit TIFF, the share of pixels with a channel at 65535 is printed
next to the raw's own clipped share (``raw_clip%``: mosaic sites at the white level).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
DATA = REPO.parent / "shared" / "data" / "raw"
PI_JPEGS = {"image1.dng": "cap_dng_jpg0.jpg"}

from hardware.simulated_camera import gaussian_blur  # noqa: E402
from hardware.imx477_simulator import Imx477Simulator, SensorSettings  # noqa: E402
from pipeline.colour.metrics import linear_srgb_to_lab_d50, srgb_decode  # noqa: E402
from pipeline.develop import DevelopParams, develop  # noqa: E402
from pipeline.formats.encoders.dng import encode_dng  # noqa: E402
from pipeline.formats.raw_files import read_raw  # noqa: E402
from pipeline.raw_frame import LensShadingMap, RawFrame  # noqa: E402
from pipeline.stages import colour_shading  # noqa: E402
from pipeline.stages.black_level import normalize  # noqa: E402
from pipeline.stages.isp_colour_shading import fit_isp_colour_shading  # noqa: E402

BLOCK_PX = 48
#: Bright flat blocks for ``white a*b*``: size, lowest mean and largest deviation (0-1).
WHITE_BLOCK_PX = 24
WHITE_MIN_MEAN = 0.85
WHITE_MAX_STD = 0.03
CROP_PX = 256
FULL_WIDTH_PX = 640
#: Blocks measured for shadow noise: the flattest of the darkest quarter.
SHADOW_BLOCKS = 12
#: The simulated HQ camera frame: the binned full field of view, and its light.
SIM_SIZE = (1520, 2028)
SIM_COLOUR_TEMPERATURE_K = 4850.0
#: The README's sheet, left to right.
DOCS_RENDERS = ("obscura standard", "standard, Pi shading", "Pi ISP JPEG")
#: The render with the colour shading recovered from a Pi JPEG (``--shading-from``).
PI_SHADING = "standard, Pi shading"


def luma_601(rgb8: npt.NDArray[np.uint8]) -> npt.NDArray[np.float64]:
    """Rec. 601 luma of an 8-bit RGB image, 0-255."""
    return rgb8.astype(np.float64) @ np.array([0.299, 0.587, 0.114])


def raw_green(path: Path) -> tuple[npt.NDArray[np.float64], float]:
    """The raw's mean green per 2x2 cell, normalised 0-1 (half resolution), and the
    share of mosaic sites at the white level."""
    frame = read_raw(path)
    meta = frame.metadata
    norm = normalize(frame.cfa, meta.black_level, meta.white_level)
    greens = np.argwhere(meta.cfa_pattern.channels == 1)  # the 2x2 tile's green sites
    green = sum(norm[dy::2, dx::2].astype(np.float64) for dy, dx in greens) / len(greens)
    return green, float(np.mean(frame.cfa >= meta.white_level))


def shadow_blocks(green_half: npt.NDArray[np.float64]) -> list[tuple[int, int]]:
    """Top-left corners (full-resolution px) of the flattest dark blocks: among blocks in
    the darkest quarter (but above the noise floor), those whose 4x-averaged signal varies
    least relative to their mean (structure, not noise)."""
    half = BLOCK_PX // 2
    h, w = green_half.shape
    candidates = []
    for y in range(0, h - half + 1, half):
        for x in range(0, w - half + 1, half):
            block = green_half[y : y + half, x : x + half]
            mean = block.mean()
            coarse = block.reshape(half // 4, 4, half // 4, 4).mean(axis=(1, 3))
            candidates.append((mean, coarse.std() / max(mean, 1e-6), 2 * y, 2 * x))
    means = np.array([c[0] for c in candidates])
    floor = 0.004
    dark = [c for c in candidates if floor < c[0] <= np.percentile(means[means > floor], 25)]
    dark.sort(key=lambda c: c[1])
    return [(c[2], c[3]) for c in dark[:SHADOW_BLOCKS]]


def shadow_highpass(rgb8: npt.NDArray[np.uint8], blocks: list[tuple[int, int]]) -> float:
    """Median over ``blocks`` of std(high-pass of linear luminance) / mean(luminance)."""
    linear = srgb_decode(rgb8.astype(np.float64) / 255.0) @ np.array([0.2126, 0.7152, 0.0722])
    ratios = []
    for y, x in blocks:
        pad = 8
        y0, x0 = max(y - pad, 0), max(x - pad, 0)
        region = linear[y0 : y + BLOCK_PX + pad, x0 : x + BLOCK_PX + pad]
        highpass = region - gaussian_blur(region, 2.0)
        inner = (slice(y - y0, y - y0 + BLOCK_PX), slice(x - x0, x - x0 + BLOCK_PX))
        mean = region[inner].mean()
        if mean > 0:
            ratios.append(highpass[inner].std() / mean)
    return float(np.median(ratios)) if ratios else float("nan")


def render_ours(frame: RawFrame, look: str, white_balance: str = "as-shot"
                ) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.float32]]:
    """Our develop: 8-bit (as the JPEG encoder gets it) and the float result."""
    image = develop(frame, DevelopParams(look=look, white_balance=white_balance))
    return np.clip(np.round(image * 255.0), 0, 255).astype(np.uint8), image


def white_blocks(rgb8: npt.NDArray[np.uint8]) -> list[tuple[int, int]]:
    """Top-left corners of the bright flat blocks where ``white a*b*`` is measured."""
    grey = rgb8.astype(np.float64).mean(axis=2) / 255.0
    n = WHITE_BLOCK_PX
    return [(y, x) for y in range(0, grey.shape[0] - n + 1, n)
            for x in range(0, grey.shape[1] - n + 1, n)
            if grey[y : y + n, x : x + n].mean() > WHITE_MIN_MEAN
            and grey[y : y + n, x : x + n].std() < WHITE_MAX_STD]  # fmt: skip


def white_ab(rgb8: npt.NDArray[np.uint8], blocks: list[tuple[int, int]]) -> tuple[float, float]:
    """Median a* and b* (CIELAB, D50) of the blocks' mean colours; NaN without blocks."""
    if not blocks:
        return float("nan"), float("nan")
    n = WHITE_BLOCK_PX
    means = np.array([rgb8[y : y + n, x : x + n].reshape(-1, 3).mean(axis=0) / 255.0
                      for y, x in blocks])  # fmt: skip
    lab = linear_srgb_to_lab_d50(srgb_decode(means))
    return float(np.median(lab[:, 1])), float(np.median(lab[:, 2]))


def corner_dab(rgb8: npt.NDArray[np.uint8]) -> float:
    """Largest a*b* distance (CIELAB D50) of a corner's mean colour from the centre's."""
    h, w, _ = rgb8.shape
    bh, bw = h // 10, w // 10
    blocks = [rgb8[:bh, :bw], rgb8[:bh, -bw:], rgb8[-bh:, :bw], rgb8[-bh:, -bw:],
              rgb8[(h - bh) // 2 : (h + bh) // 2, (w - bw) // 2 : (w + bw) // 2]]
    lab = [linear_srgb_to_lab_d50(srgb_decode(b.reshape(-1, 3) / 255.0).mean(axis=0))
           for b in blocks]
    return max(float(np.hypot(*(corner[1:] - lab[-1][1:]))) for corner in lab[:-1])


def write_imx477_sim(scene: str, out_dir: Path) -> Path:
    """A simulated HQ camera DNG of ``scene`` ("grey": a mid-grey wall) with no lens profile."""
    if scene == "grey":
        image = np.full((64, 64, 3), 118, dtype=np.uint8)  # 18 % grey, sRGB-encoded
        name = "imx477_sim_grey"
    else:
        image = np.asarray(Image.open(scene).convert("RGB"))
        name = f"imx477_sim_{Path(scene).stem}"
    camera = Imx477Simulator(image, seed=1, output_size=SIM_SIZE)
    settings = SensorSettings(exposure_time_us=camera.exposure_time_us_for(1.3),
                              colour_temperature_k=SIM_COLOUR_TEMPERATURE_K)
    frame = camera.capture(settings)
    # A Pi frame carries no flat field: only a lens profile adds one.
    frame = RawFrame(frame.cfa, dataclasses.replace(frame.metadata, lens_shading=None))
    path = out_dir / f"{name}.dng"
    path.write_bytes(encode_dng(frame))
    return path


def render_libraw(path: Path) -> npt.NDArray[np.uint8]:
    """LibRaw's default develop (rawpy): AHD, camera white balance, sRGB, 8-bit."""
    import rawpy

    with rawpy.imread(str(path)) as raw:
        return raw.postprocess(use_camera_wb=True, output_bps=8)


def crop_places(rgb8: npt.NDArray[np.uint8], blocks: list[tuple[int, int]]) -> dict[str, tuple[int, int]]:
    """Top-left corners of the crops: flattest dark, brightest, most detailed."""
    luma = luma_601(rgb8)
    h, w = luma.shape
    step = CROP_PX // 2
    best_bright, best_detail = (0.0, (0, 0)), (0.0, (0, 0))
    for y in range(0, h - CROP_PX + 1, step):
        for x in range(0, w - CROP_PX + 1, step):
            patch = luma[y : y + CROP_PX, x : x + CROP_PX]
            best_bright = max(best_bright, (float(np.percentile(patch, 90)), (y, x)))
            detail = float(np.abs(np.diff(patch, axis=1)).mean())
            best_detail = max(best_detail, (detail, (y, x)))
    dy, dx = blocks[0] if blocks else (0, 0)
    dark = (min(max(dy - CROP_PX // 3, 0), h - CROP_PX), min(max(dx - CROP_PX // 3, 0), w - CROP_PX))
    return {"dark": dark, "bright": best_bright[1], "detail": best_detail[1]}


def compose(renders: dict[str, npt.NDArray[np.uint8]], places: dict[str, tuple[int, int]],
            full_width_px: int = FULL_WIDTH_PX) -> tuple[Image.Image, Image.Image]:
    """Two sheets, a column per render: the full views, and the crops at 100 % (a row per
    place), so that an image viewer that scales the sheet down does not hide the pixels."""
    names = list(renders)
    first = renders[names[0]]
    full_h = round(first.shape[0] * full_width_px / first.shape[1])
    label_h = 16
    full = Image.new("RGB", (full_width_px * len(names), label_h + full_h), (40, 40, 40))
    crops = Image.new("RGB", ((CROP_PX + 4) * len(names), label_h + len(places) * (CROP_PX + 4)),
                      (40, 40, 40))
    for i, name in enumerate(names):
        image = Image.fromarray(renders[name])
        ImageDraw.Draw(full).text((i * full_width_px + 4, 2), name, fill=(255, 255, 255))
        full.paste(image.resize((full_width_px, full_h), Image.LANCZOS), (i * full_width_px, label_h))
        x = i * (CROP_PX + 4)
        ImageDraw.Draw(crops).text((x + 4, 2), name, fill=(255, 255, 255))
        for j, (y0, x0) in enumerate(places.values()):
            crop = image.crop((x0, y0, x0 + CROP_PX, y0 + CROP_PX))
            crops.paste(crop, (x, label_h + j * (CROP_PX + 4)))
    return full, crops


def docs_sheet(images: list[npt.NDArray[np.uint8]],
               places: dict[str, tuple[int, int]]) -> Image.Image:
    """For the README: the full views side by side, then a row per place of its crops at
    100 %, in the same order."""
    group_w = len(images) * (CROP_PX + 4)
    width = len(places) * (group_w + 8)
    part_w = width // len(images)
    full_h = round(images[0].shape[0] * part_w / images[0].shape[1])
    sheet = Image.new("RGB", (width, full_h + 8 + CROP_PX), (40, 40, 40))
    for i, image in enumerate(images):
        sheet.paste(Image.fromarray(image).resize((part_w, full_h), Image.LANCZOS), (i * part_w, 0))
    for j, (y0, x0) in enumerate(places.values()):
        for i, image in enumerate(images):
            crop = Image.fromarray(image[y0 : y0 + CROP_PX, x0 : x0 + CROP_PX])
            sheet.paste(crop, (j * (group_w + 8) + i * (CROP_PX + 4), full_h + 8))
    return sheet


def pi_shading(pair: str) -> tuple[RawFrame, LensShadingMap]:
    """``DNG=JPG``: the frame, and the colour shading its Pi JPEG shows."""
    dng, jpeg = pair.split("=", 1)
    frame = read_raw(Path(dng))
    fit = fit_isp_colour_shading(frame, np.asarray(Image.open(jpeg).convert("RGB")))
    print(f"colour shading from {Path(jpeg).name}: centre red x{fit.centre_gains[0]:.3f}, blue "
          f"x{fit.centre_gains[1]:.3f} over green ({fit.blocks} blocks, "
          f"{fit.residual_levels:.1f} levels RMS)")
    return frame, fit.shading


def compare(path: Path, pi_jpeg: Path | None, out_dir: Path, docs: Path | None = None,
            shading_from: tuple[RawFrame, LensShadingMap] | None = None) -> None:
    green, raw_clipped = raw_green(path)
    blocks = shadow_blocks(green)
    renders: dict[str, npt.NDArray[np.uint8]] = {}
    frame = read_raw(path)
    renders["obscura standard"], _ = render_ours(frame, "standard")
    if colour_shading.applies_to(frame.metadata, frame.shape):
        # A flat lens profile wins over the tuning's tables and corrects nothing.
        flat = LensShadingMap(np.ones((4, 2, 2), dtype=np.float32))
        unshaded = dataclasses.replace(frame.metadata, lens_shading=flat)
        renders["standard, no col. shading"], _ = render_ours(RawFrame(frame.cfa, unshaded),
                                                               "standard")
    if shading_from is not None and (shading_from[0].metadata.model, shading_from[0].shape) == (
            frame.metadata.model, frame.shape):
        shaded = dataclasses.replace(frame.metadata, lens_shading=shading_from[1])
        renders[PI_SHADING], _ = render_ours(RawFrame(frame.cfa, shaded), "standard")
    renders["standard, auto WB"], _ = render_ours(frame, "standard", "auto")
    renders["obscura neutral"], neutral = render_ours(frame, "neutral")
    renders["LibRaw (rawpy)"] = render_libraw(path)
    if pi_jpeg is not None and pi_jpeg.is_file():
        renders["Pi ISP JPEG"] = np.asarray(Image.open(pi_jpeg).convert("RGB"))
    shape = renders["obscura standard"].shape
    renders = {k: v for k, v in renders.items() if v.shape == shape}
    print(f"{path.name}: raw_clip% {100 * raw_clipped:.2f}, neutral TIFF clip% "
          f"{100 * float(np.mean(np.any(np.round(neutral * 65535) >= 65535, axis=2))):.2f}, "
          f"{len(blocks)} shadow blocks")
    whites = white_blocks(renders["obscura standard"])
    for name, rgb8 in renders.items():
        luma = luma_601(rgb8)
        a, b = white_ab(rgb8, whites)
        print(f"  {name:<18} dark1 {np.percentile(luma, 1):5.1f}   "
              f"shadow_hp {shadow_highpass(rgb8, blocks):.3f}   "
              f"clip% {100 * float(np.mean(np.any(rgb8 == 255, axis=2))):.2f}   "
              f"white a*b* {a:5.1f} {b:5.1f}   corner_dab {corner_dab(rgb8):.2f}")
    full, crops = compose(renders, crop_places(renders["obscura standard"], blocks))
    full.save(out_dir / f"{path.stem}_full.png")
    crops.save(out_dir / f"{path.stem}_crops.png")
    print(f"  -> {out_dir / path.stem}_full.png, {path.stem}_crops.png")
    if docs is not None and "Pi ISP JPEG" in renders:
        places = crop_places(renders["obscura standard"], blocks)
        docs_sheet([renders[name] for name in DOCS_RENDERS], places).save(docs, quality=90)
        print(f"  -> {docs}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("raws", nargs="*", type=Path)
    parser.add_argument("--pi-jpeg", action="append", default=[], metavar="DNG=JPG",
                        help="the Pi ISP's JPEG of a raw file")
    parser.add_argument("--out", type=Path, default=Path("/tmp/obscura_compare"))
    parser.add_argument("--docs", type=Path, default=None, metavar="JPG",
                        help="also write ours next to the Pi ISP's JPEG, full and at 100 %%, "
                             "for the README (docs/image1_vs_pi_isp.jpg)")
    parser.add_argument("--shading-from", default=None, metavar="DNG=JPG",
                        help="recover the colour shading from a Pi JPEG of a raw (default: "
                             "image1's) and render that camera's frames with it too")
    parser.add_argument("--imx477-sim", action="append", default=[], metavar="grey|SCENE",
                        help="also compare a simulated HQ camera frame (no lens profile)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    simulated = [write_imx477_sim(scene, args.out) for scene in args.imx477_sim]
    raws = args.raws or sorted(DATA.glob("pi_arducam_pivariety_1920x1200/*.dng")) + sorted(
        DATA.glob("pi_imx296_mex2025/*.dng"))
    jpegs = {Path(k).name: Path(v) for k, v in (item.split("=", 1) for item in args.pi_jpeg)}
    shading_pair = args.shading_from
    image1 = DATA / "pi_arducam_pivariety_1920x1200" / "image1.dng"
    if shading_pair is None and image1.is_file():
        shading_pair = f"{image1}={image1.parent / PI_JPEGS[image1.name]}"
    shading_from = pi_shading(shading_pair) if shading_pair else None
    for raw in simulated + raws:
        default = raw.parent / PI_JPEGS[raw.name] if raw.name in PI_JPEGS else None
        compare(raw, jpegs.get(raw.name, default), args.out, args.docs, shading_from)


if __name__ == "__main__":
    main()
