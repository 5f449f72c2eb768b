"""Kernels compiled ahead of time: the type checks that guard them, and (when set-up built
them) a develop that runs on them without numba, as numba would develop it."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipeline.compiled_kernels import (
    MANIFEST,
    CompiledKernel,
    _arg_check,
    _NotCompiled,
    _numba_stand_in,
    source_stamp,
)
from pipeline.errors import CompiledKernelMismatch
from pipeline.formats.dng_reader import read_dng

REPO = Path(__file__).resolve().parents[1]


def test_arrays_are_checked_as_numba_types_them() -> None:
    check = _arg_check(["array", "float32", 2, "C", True])
    assert check(np.zeros((2, 3), np.float32))
    assert not check(np.zeros((2, 3), np.float64))  # another dtype
    assert not check(np.zeros((2, 3, 1), np.float32))  # another ndim
    assert not check(np.zeros((3, 2), np.float32).T)  # not C-contiguous
    read_only = np.zeros((2, 3), np.float32)
    read_only.flags.writeable = False
    assert not check(read_only)
    assert not check([[0.0]])
    assert _arg_check(["array", "float32", 2, "A", True])(np.zeros((3, 2), np.float32).T)


def test_scalars_are_checked_as_numba_types_them() -> None:
    assert _arg_check(["int64"])(3) and _arg_check(["int64"])(np.int64(3))
    assert not _arg_check(["int64"])(True) and not _arg_check(["int64"])(3.0)
    assert not _arg_check(["int64"])(np.int32(3))
    assert _arg_check(["float64"])(0.5) and _arg_check(["float64"])(np.float64(0.5))
    assert not _arg_check(["float64"])(np.float32(0.5)) and not _arg_check(["float64"])(1)
    assert _arg_check(["float32"])(np.float32(0.5)) and not _arg_check(["float32"])(0.5)
    assert _arg_check(["uint64"])(np.uint64(7)) and not _arg_check(["uint64"])(7)
    assert _arg_check(["bool"])(False) and _arg_check(["bool"])(np.bool_(True))
    assert not _arg_check(["bool"])(0)


def test_a_compiled_kernel_calls_the_variant_its_arguments_fit() -> None:
    calls = []
    images = {bits: ["array", f"uint{bits}", 3, "C", True] for bits in (8, 16)}
    kernel = CompiledKernel("pipeline.example.kernel", [
        (lambda a, s: calls.append(("u8", a.dtype, s)), [images[8], ["float32"]]),
        (lambda a, s: calls.append(("u16", a.dtype, s)), [images[16], ["float32"]]),
    ])  # fmt: skip
    kernel(np.zeros((1, 1, 3), np.uint16), np.float32(2))
    kernel(np.zeros((1, 1, 3), np.uint8), np.float32(1))
    assert [c[0] for c in calls] == ["u16", "u8"]
    with pytest.raises(CompiledKernelMismatch, match=r"example.kernel: .*float32\[3d\], float"):
        kernel(np.zeros((1, 1, 3), np.float32), 1.0)
    with pytest.raises(CompiledKernelMismatch):
        kernel(np.zeros((1, 1, 3), np.uint8))  # too few arguments


def test_the_stand_in_gives_modules_compiled_kernels_and_python_loops() -> None:
    def kernel(x):  # what a module would decorate
        return x

    def helper(x):
        return x

    name = f"{__name__}.{kernel.__qualname__}"  # as the stand-in looks kernels up
    compiled = CompiledKernel(name, [(lambda x: 2 * x, [["int64"]])])
    numba = _numba_stand_in({name: compiled})
    assert numba.njit(cache=True, parallel=True)(kernel) is compiled
    assert numba.njit(kernel) is compiled
    assert compiled(3) == 6
    missing = numba.njit(inline="always")(helper)
    assert isinstance(missing, _NotCompiled)
    with pytest.raises(CompiledKernelMismatch, match="helper was not compiled ahead of time"):
        missing(1)
    assert numba.prange is range and numba.compiled_ahead_of_time


def _built() -> bool:
    try:
        return json.loads(MANIFEST.read_text())["stamp"] == source_stamp()
    except (OSError, ValueError, KeyError):
        return False


def _obscura(*args: str, compiled: bool) -> subprocess.CompletedProcess:
    """``obscura ARGS`` as typed at a shell (so the compiled kernels may be used), with
    the modules it imported listed on stderr (``-X importtime``)."""
    environment = {**os.environ, "OBSCURA_COMPILED_KERNELS": "1" if compiled else "0"}
    return subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "firmware.cli", *args], cwd=REPO,
        env=environment, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def _imports_numba(result: subprocess.CompletedProcess) -> bool:
    return any(re.search(r"\|\s+numba$", line) for line in result.stderr.splitlines())


@pytest.mark.skipif(not _built(), reason="set-up did not compile the kernels (no C compiler?)")
def test_a_develop_runs_on_the_compiled_kernels_as_numba_develops(tmp_path) -> None:
    source = tmp_path / "scene.dng"
    assert subprocess.run([sys.executable, "-m", "firmware.cli", "simulate", "-o", str(source),
                           "--size", "320x240"], cwd=REPO, timeout=300).returncode == 0  # fmt: skip
    outputs = {}
    for compiled in (True, False):
        outputs[compiled] = tmp_path / f"compiled_{compiled}.jpg"
        result = _obscura("develop", str(source), "-o", str(outputs[compiled]), compiled=compiled)
        assert result.returncode == 0, result.stderr[-2000:]
        assert _imports_numba(result) is not compiled
    ours, numbas = (np.asarray(Image.open(outputs[c]), dtype=np.int64) for c in (True, False))
    # The same source and compiler; fastmath lets the two reorder sums differently.
    assert np.abs(ours - numbas).max() <= 8 and np.abs(ours - numbas).mean() < 0.01


@pytest.mark.skipif(not _built(), reason="set-up did not compile the kernels (no C compiler?)")
def test_a_develop_that_needs_another_kernel_runs_again_with_numba(tmp_path) -> None:
    # A build that did not compile the kernel merge (its kernels left out of a copy of the
    # manifest): the command starts on the compiled kernels, meets one it lacks, and runs
    # again with numba (the same command line: the copy stays in use, numba does not).
    burst = tmp_path / "burst.dng"
    assert subprocess.run([sys.executable, "-m", "firmware.cli", "simulate", "-o", str(burst),
                           "--size", "128x96", "--frames", "2"], cwd=REPO,
                          timeout=300).returncode == 0  # fmt: skip
    manifest = json.loads(MANIFEST.read_text())
    manifest["kernels"] = {name: variants for name, variants in manifest["kernels"].items()
                           if ".kernel_regression." not in name}  # fmt: skip
    partial = tmp_path / "manifest.json"
    partial.write_text(json.dumps(manifest))
    output = tmp_path / "merged.jpg"
    frames = sorted(str(p) for p in tmp_path.glob("burst_*.dng"))
    command = [sys.executable, "-X", "importtime", "-c",
               "import sys; from pathlib import Path; import pipeline.compiled_kernels as c; "
               f"c.MANIFEST = Path({str(partial)!r}); from firmware.cli import main; "
               "sys.exit(main())",
               "develop", *frames, "-o", str(output), "--merge", "kernel"]  # fmt: skip
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300,
                            env={**os.environ, "OBSCURA_COMPILED_KERNELS": "1"})  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert _imports_numba(result) and output.stat().st_size > 0
    assert "obscura: error" not in result.stderr


@pytest.mark.skipif(not _built(), reason="set-up did not compile the kernels (no C compiler?)")
def test_compiled_parallel_loops_run_on_numbas_threading_layer_started_with_the_first_kernel() -> None:
    script = """
import ctypes, sys
import numpy as np
from pipeline import compiled_kernels
assert compiled_kernels.use_compiled_kernels()
assert not compiled_kernels.threads_started()  # a process may still fork
assert sys.modules["numba"].get_num_threads() == 2  # what the first kernel will launch
from pipeline.stages import black_level
shim = ctypes.CDLL(str(compiled_kernels.THREADING_SHIM))
raw = np.arange(64 * 48, dtype=np.uint16).reshape(48, 64)
normalized = black_level.normalize(raw, (64.0,) * 4, 4095.0)
assert compiled_kernels.threads_started() and shim.get_num_threads() == 2
np.testing.assert_allclose(normalized, (raw - 64.0) / (4095.0 - 64.0), atol=1e-6)
sys.modules["numba"].set_num_threads(1)  # as numba's: the loops of this thread on one
assert shim.get_num_threads() == 1 and sys.modules["numba"].get_num_threads() == 1
try:
    sys.modules["numba"].set_num_threads(3)  # more than were launched
except ValueError:
    pass
else:
    raise AssertionError("set_num_threads took 3 of 2 threads")
assert shim.get_num_threads() == 1
assert not any(name.startswith("numba.") for name in sys.modules)
"""
    environment = {**os.environ, "NUMBA_NUM_THREADS": "2"}
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=environment,
                            capture_output=True, text=True, timeout=120)  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]


@pytest.mark.skipif(not _built(), reason="set-up did not compile the kernels (no C compiler?)")
def test_a_batch_runs_on_the_compiled_kernels_as_numba_develops(tmp_path) -> None:
    sources = tmp_path / "in"
    sources.mkdir()
    for seed in (1, 2):
        assert subprocess.run([sys.executable, "-m", "firmware.cli", "simulate", "-o",
                               str(sources / f"scene{seed}.dng"), "--size", "160x120",
                               "--seed", str(seed)], cwd=REPO, timeout=300).returncode == 0  # fmt: skip
    outputs = {}
    for compiled in (True, False):
        outputs[compiled] = tmp_path / f"out_{compiled}"
        result = _obscura("batch", str(sources), "-o", str(outputs[compiled]), "--jobs", "2",
                          compiled=compiled)  # fmt: skip
        assert result.returncode == 0, result.stderr[-2000:]
        assert _imports_numba(result) is not compiled
    for name in ("scene1.jpg", "scene2.jpg"):
        ours, numbas = (np.asarray(Image.open(outputs[c] / name), dtype=np.int64)
                        for c in (True, False))  # fmt: skip
        assert np.abs(ours - numbas).max() <= 8 and np.abs(ours - numbas).mean() < 0.01


@pytest.mark.skipif(not _built(), reason="set-up did not compile the kernels (no C compiler?)")
def test_a_merge_runs_on_the_compiled_kernels_as_numba_merges(tmp_path) -> None:
    burst = tmp_path / "burst.dng"
    assert subprocess.run([sys.executable, "-m", "firmware.cli", "simulate", "-o", str(burst),
                           "--size", "320x240", "--frames", "3", "--gain", "8",
                           "--motion-px", "2"], cwd=REPO, timeout=300).returncode == 0  # fmt: skip
    frames = sorted(str(p) for p in tmp_path.glob("burst_*.dng"))
    merged = {}
    for compiled in (True, False):
        output = tmp_path / f"merged_{compiled}.dng"
        result = _obscura("merge", *frames, "-o", str(output), compiled=compiled)
        assert result.returncode == 0, result.stderr[-2000:]
        assert _imports_numba(result) is not compiled
        merged[compiled] = read_dng(output).cfa.astype(np.int64)
    assert np.abs(merged[True] - merged[False]).max() <= 2
