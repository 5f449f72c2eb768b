"""Compile the kernels of a develop and a burst merge ahead of time (``pipeline/compiled_kernels.py``).

    .venv/bin/python tools/build_compiled_kernels.py

``setup.sh`` runs it on a development machine. It needs a C compiler and Python's
headers; without them it says so and the develop keeps using numba's cache.

1. In a child process, develops a small simulated frame (every look, JPEG and 16-bit
   TIFF, the as-shot and the auto white balance; with a lens profile's shading map,
   without one, and without a noise profile either) and a small simulated burst (every
   burst mode with the default merge, and ``obscura merge`` with each merge and as a
   LinearRaw DNG) with numba, and collects every kernel's compiled argument types (numba
   compiles one variant per type signature, not per image size).
2. Compiles each kernel's variants with numba's ahead-of-time compiler (``numba.pycc``)
   for this machine's CPU, grouped by the kernels' ``parallel``, fastmath and error-model
   options (pycc applies one set of options to a whole module: set here by giving its
   compiler our own ``Flags``), into ``pipeline/_compiled_*.so``. A parallel kernel's
   loops call numba's threading layer by name; ``tools/compiled_threading_shim.c``,
   built into ``pipeline/_compiled_threading.so``, defines those names, and the develop
   binds them to the threading layer's own module (:mod:`pipeline.compiled_kernels`).
3. Writes the manifest (``pipeline/_compiled_kernels.json``): the source stamp, the
   threading layer's module, and per kernel its variants' module, symbol and argument
   types.

The manifest is written last, and only when every module compiled: a failed or
interrupted build leaves none, and the develop uses numba.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def develop_examples(folder: Path) -> None:
    """Develop a small simulated frame every way a one-frame develop can go, and a small
    simulated burst in every mode (the default merge) and to a merged DNG (each merge, and
    the kernel merge's LinearRaw)."""
    import numpy as np

    from firmware.develop_file import develop_burst_files, develop_file, merge_files
    from hardware.imx477_simulator import Imx477Simulator, SensorSettings
    from pipeline.burst import BURST_MODES, MERGE_METHODS
    from pipeline.develop import DevelopParams
    from pipeline.formats.encoders.dng import encode_dng
    from pipeline.looks.look import look_names
    from pipeline.raw_frame import RawFrame

    scene = np.random.default_rng(0).integers(0, 256, size=(24, 32, 3), dtype=np.uint8)
    camera = Imx477Simulator(scene, seed=0, output_size=(48, 64), hot_pixel_count=2)
    frame = camera.capture(SensorSettings(exposure_time_us=camera.exposure_time_us_for(1.0)))
    profiled = folder / "profiled.dng"
    profiled.write_bytes(encode_dng(frame))
    plain = folder / "plain.dng"  # no shading map: the tuning's tables (colour shading)
    metadata = dataclasses.replace(frame.metadata, lens_shading=None)
    plain.write_bytes(encode_dng(RawFrame(frame.cfa, metadata)))
    bare = folder / "bare.dng"  # no noise profile either: the noise is fitted to the frame
    metadata = dataclasses.replace(metadata, noise_profile=None)
    bare.write_bytes(encode_dng(RawFrame(frame.cfa, metadata)))
    for source in (profiled, plain, bare):
        for look in look_names():
            develop_file(source, folder / "out.jpg", DevelopParams(look=look))
        develop_file(source, folder / "out.tif", DevelopParams(look="neutral"))
        develop_file(source, folder / "out.jpg", DevelopParams(white_balance="auto"))
    # Large enough for every stage of the burst pipeline (its pyramid, the shrink's window).
    camera = Imx477Simulator(scene, seed=1, output_size=(240, 320), motion_px=2)
    settings = SensorSettings(camera.exposure_time_us_for(1.0, 4.0), analogue_gain=4.0)
    burst = [folder / f"burst_{number}.dng" for number in range(3)]
    for path in burst:
        path.write_bytes(encode_dng(camera.capture(settings)))
    for mode in BURST_MODES:
        develop_burst_files(burst, folder / "out.jpg", DevelopParams(), mode=mode)
    for merge in MERGE_METHODS:
        merge_files(burst, folder / "merged.dng", merge=merge)
    merge_files(burst, folder / "merged.dng", linear_raw=True)


def _spec(numba_type: object) -> list | None:
    """The manifest's form of an argument's numba type (see
    :func:`pipeline.compiled_kernels._arg_check`), or None for a type it does not check."""
    from numba.core import types

    if isinstance(numba_type, types.Array):
        if numba_type.layout not in ("C", "A") or not numba_type.aligned:
            return None
        return ["array", str(numba_type.dtype), numba_type.ndim, numba_type.layout,
                numba_type.mutable]  # fmt: skip
    if isinstance(numba_type, types.Boolean):
        return ["bool"]
    if str(numba_type) in ("int64", "float64", "float32", "uint64"):
        return [str(numba_type)]
    return None


def discover_kernels() -> dict[str, dict]:
    """Develop the examples with numba and return, per kernel (qualified name), its
    options (``parallel``, ``fastmath``, ``error_model``) and its variants' argument specs."""
    from numba.core.registry import CPUDispatcher

    with tempfile.TemporaryDirectory() as folder:
        develop_examples(Path(folder))
    kernels: dict[str, dict] = {}
    for module_name, module in sorted(sys.modules.items()):
        if not module_name.startswith("pipeline."):
            continue
        for dispatcher in vars(module).values():
            if not isinstance(dispatcher, CPUDispatcher):
                continue
            function = dispatcher.py_func
            if function.__module__ != module_name or not dispatcher.signatures:
                continue
            specs = [[_spec(t) for t in signature] for signature in dispatcher.signatures]
            options = dispatcher.targetoptions
            kernels[f"{module_name}.{function.__qualname__}"] = {
                "parallel": bool(options.get("parallel", False)),
                "fastmath": bool(options.get("fastmath", False)),
                "error_model": options.get("error_model", "python"),
                "variants": [v for v in specs if all(s is not None for s in v)],
            }
    return kernels


def _numba_type(spec: list) -> object:
    """The numba type an argument spec (:func:`_spec`) stands for."""
    from numba.core import types

    if spec[0] == "array":
        _, dtype, ndim, layout, mutable = spec
        return types.Array(getattr(types, dtype), ndim, layout, readonly=not mutable)
    return types.boolean if spec[0] == "bool" else getattr(types, spec[0])


def compile_group(module_name: str, parallel: bool, fastmath: bool, error_model: str,
                  kernels: list[tuple[str, object, list]]) -> dict[str, list]:
    """Compile ``kernels`` ((qualified name, Python function, argument specs of each
    variant)) into ``pipeline/<module_name>.so``; their manifest entries."""
    from numba.core.compiler import Flags
    from numba.core.cpu import FastMathOptions, ParallelOptions
    from numba.pycc import CC
    from numba.pycc import compiler as pycc_compiler

    class KernelFlags(Flags):
        """pycc's flags for every function of the module, with the kernels' options."""

        def __init__(self, copy_of: Flags | None = None) -> None:
            super().__init__(copy_of)
            if copy_of is None:
                self.auto_parallel = ParallelOptions(parallel)
                self.fastmath = FastMathOptions(fastmath)
                self.error_model = error_model

    cc = CC(module_name)
    cc.output_dir = str(REPO / "pipeline")
    cc.target_cpu = "host"
    entries: dict[str, list] = {}
    for number, (name, function, variants) in enumerate(kernels):
        for index, specs in enumerate(variants):
            symbol = f"k{number}_{index}"
            cc.export(symbol, tuple(_numba_type(spec) for spec in specs))(function)
            entries.setdefault(name, []).append([module_name, symbol, specs])
    original = pycc_compiler.Flags
    pycc_compiler.Flags = KernelFlags
    try:
        cc.compile()
    finally:
        pycc_compiler.Flags = original
    return entries


def build_threading_shim() -> None:
    """Compile ``tools/compiled_threading_shim.c`` into :data:`THREADING_SHIM`."""
    from numba.pycc.platform import Toolchain

    from pipeline.compiled_kernels import THREADING_SHIM

    toolchain = Toolchain()
    with tempfile.TemporaryDirectory() as folder:
        objects = toolchain.compile_objects(
            [str(REPO / "tools" / "compiled_threading_shim.c")], folder, extra_cflags=["-O2"]
        )
        toolchain.link_shared(str(THREADING_SHIM), objects)


def threading_layer() -> dict[str, object]:
    """The module of the threading layer numba's parallel loops run on here (``omppool``,
    ``tbbpool`` or ``workqueue``): its name, file and size (a numba upgrade changes it)."""
    import importlib.util

    from numba.np.ufunc import parallel

    parallel._launch_threads()
    name = {"omp": "omppool", "tbb": "tbbpool"}.get(parallel._threading_layer, "workqueue")
    path = Path(importlib.util.find_spec(f"numba.np.ufunc.{name}").origin)
    return {"module": name, "path": str(path), "size": path.stat().st_size}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--discover", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.discover:  # step 1, in the child process
        json.dump(discover_kernels(), sys.stdout)
        return 0
    from pipeline.compiled_kernels import MANIFEST, source_stamp

    MANIFEST.unlink(missing_ok=True)
    for old in (REPO / "pipeline").glob("_compiled_*.so"):
        old.unlink()
    started = time.monotonic()
    child = subprocess.run([sys.executable, __file__, "--discover"], check=True,
                           stdout=subprocess.PIPE,
                           env={**os.environ, "OBSCURA_WARM_DEVELOPER": "0"})  # fmt: skip
    discovered = json.loads(child.stdout)
    groups: dict[tuple[bool, bool, str], list[tuple[str, object, list]]] = {}
    for name, kernel in sorted(discovered.items()):
        module_name, _, qualname = name.rpartition(".")
        function = getattr(importlib.import_module(module_name), qualname).py_func
        key = (kernel["parallel"], kernel["fastmath"], kernel["error_model"])
        groups.setdefault(key, []).append((name, function, kernel["variants"]))
    kernels: dict[str, list] = {}
    for number, ((parallel, fastmath, error_model), group) in enumerate(sorted(groups.items())):
        module_name = f"_compiled_{number}"
        print(f"compiling {len(group)} kernels (parallel {parallel}, fastmath {fastmath}, "
              f"{error_model} errors) into pipeline/{module_name}", flush=True)  # fmt: skip
        kernels |= compile_group(module_name, parallel, fastmath, error_model, group)
    build_threading_shim()
    MANIFEST.write_text(json.dumps(
        {"stamp": source_stamp(), "threading": threading_layer(), "kernels": kernels}, indent=1
    ))  # fmt: skip
    print(f"{sum(len(v) for v in kernels.values())} variants of {len(kernels)} kernels "
          f"in {time.monotonic() - started:.0f} s: {MANIFEST}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
