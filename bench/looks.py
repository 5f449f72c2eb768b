"""Benchmark: a look's display-referred pass on a 12 MP image, against the tone curve.

    .venv/bin/python bench/looks.py [--repeat 5] [--size 3040x4056]

Times :func:`pipeline.looks.look_pass.apply_look` for every built-in look, each stage alone
(grading, vignette, LUT, grain) and everything at once with a 33-point LUT, and the
existing tone curve + sRGB stage (:func:`pipeline.stages.tone_curve.apply`) on the same image
in the same run. Best-of-N wall-clock, interleaved, on a shared machine: compare the ratios.
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import numpy as np

from pipeline.looks.colour_grading import GradingParams, SplitToning
from pipeline.looks.grain import GrainParams
from pipeline.looks.look import Look, builtin_looks, find_look
from pipeline.looks.look_pass import apply_look
from pipeline.looks.lut3d import LutParams, identity_lut
from pipeline.looks.vignette import VignetteParams
from pipeline.stages.tone_curve import FilmicCurve
from pipeline.stages.tone_curve import apply as apply_tone_curve


def best_times(repeat: int, image: np.ndarray, jobs: dict) -> dict[str, float]:
    """Best wall-clock seconds of each ``job(copy of image)``, the jobs interleaved round
    by round so a busy moment on the shared machine hits all of them alike."""
    best = dict.fromkeys(jobs, float("inf"))
    work = np.empty_like(image)
    for _ in range(repeat):
        for name, fn in jobs.items():
            np.copyto(work, image)
            start = time.perf_counter()
            fn(work)
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--size", default="3040x4056", help="HxW")
    args = parser.parse_args()
    h, w = (int(v) for v in args.size.split("x"))

    rng = np.random.default_rng(0)
    # A smooth colourful field with noise: realistic branch behaviour, all hues, all levels.
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    image = np.stack(
        [0.5 + 0.45 * np.sin(xx / 300.0), 0.5 + 0.45 * np.sin(yy / 230.0 + 1.0),
         0.5 + 0.45 * np.sin((xx + yy) / 410.0 + 2.0)], axis=-1,
    ).astype(np.float32)  # fmt: skip
    del yy, xx
    image += rng.normal(0.0, 0.01, image.shape).astype(np.float32)
    np.clip(image, 0.0, 1.0, out=image)

    base = find_look("standard")
    lut = LutParams(file=None, lut=identity_lut(33))  # type: ignore[arg-type]
    stages = {
        "grading only": dataclasses.replace(base, colour=GradingParams(saturation=1.1)),
        "split toning only": dataclasses.replace(
            base, split_toning=SplitToning(shadows_chroma=0.02, highlights_chroma=0.02)
        ),
        "vignette only": dataclasses.replace(base, vignette=VignetteParams(amount=0.2)),
        "LUT only (sRGB)": dataclasses.replace(base, lut=lut),
        "grain only": dataclasses.replace(base, grain=GrainParams(amount=0.05)),
    }
    everything = dataclasses.replace(
        find_look("classic"), name="everything", lut=lut, grain=GrainParams(amount=0.05)
    )
    looks: dict[str, Look] = {
        **{n: look for n, look in builtin_looks().items() if not look.colorimetric},
        **stages,
        "classic + LUT + grain": everything,
    }

    curve = FilmicCurve(contrast=1.35, white=4.0)
    for look in looks.values():  # compile
        apply_look(image[:64, :64].copy(), look)
    apply_tone_curve(image[:64, :64].copy(), curve)

    jobs = {"tone curve + sRGB (baseline)": lambda im: apply_tone_curve(im, curve)}
    for name, look in looks.items():
        jobs[name] = lambda im, look=look: apply_look(im, look)
    best = best_times(args.repeat, image, jobs)
    baseline = best["tone curve + sRGB (baseline)"]
    print(f"{h}x{w}, best of {args.repeat}, interleaved")
    for name, seconds in best.items():
        print(f"{name:<30} {seconds * 1e3:7.1f} ms  {seconds / baseline:5.2f}x")


if __name__ == "__main__":
    main()
