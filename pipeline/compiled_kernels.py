"""Kernels compiled ahead of time, so that ``obscura develop``, ``merge`` and ``batch`` start
without numba.

A fresh process that runs our numba kernels from numba's on-disk cache still pays for
importing numba, setting up its compiler and loading each kernel: about 0.55 s, seven
times the develop of a 640x480 frame. ``tools/build_compiled_kernels.py`` (run by
``setup.sh``) compiles the kernels a develop of a frame or of a burst (with the default
merge) calls into C extension modules beside this one with numba's ahead-of-time
compiler (``numba.pycc``), for this machine's CPU, each for the argument types a develop
gives it, and writes a manifest (:data:`MANIFEST`): the source stamp they were built
from and, per kernel, its compiled variants and their argument types.

:func:`use_compiled_kernels` then puts a stand-in for the ``numba`` module in
``sys.modules`` before the pipeline is imported: its ``njit`` hands each kernel module
the compiled kernel in place of a numba dispatcher, and ``prange`` is ``range``. The
kernels are the same source, compiled by the same numba with the same options, parallel
loops included. Those call numba's threading layer by name (``numba_parallel_for``, its
scheduler, the thread counts), which numba binds with llvmlite when it starts. Here
:func:`_load_threading_layer` loads the layer's own extension module (numba's
``omppool``, or ``tbbpool`` or ``workqueue``: whichever numba ran on at build time) from
its file, without importing numba, and binds the names, defined by a small library the
build compiles (:data:`THREADING_SHIM`, from ``tools/compiled_threading_shim.c``), to the
layer's functions before the kernel modules are loaded. Its threads start with the first
kernel, as numba's do (so a process that has run none may still fork workers, as
``obscura batch`` does), and ``set_num_threads`` of the stand-in is numba's.

A compiled kernel checks each call's argument types against its variants first: the
compiled code trusts them (an array of another dtype would be read as this one). A call
no variant takes (a raw file of a kind the build never met, say) raises
:class:`CompiledKernelMismatch`; the command then runs again in a new process with numba
(``OBSCURA_COMPILED_KERNELS=0``, which also turns this off).
The modules are used only when the manifest's stamp matches the pipeline's sources and
numpy's version, and the threading layer's file is the one they were built against:
after an edit or an upgrade they are ignored until the next ``setup.sh``.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from pipeline.errors import CompiledKernelMismatch

#: The manifest the build writes beside the compiled modules.
MANIFEST = Path(__file__).with_name("_compiled_kernels.json")
#: The library that gives compiled parallel loops numba's threading layer.
THREADING_SHIM = Path(__file__).with_name("_compiled_threading.so")
#: Environment variable that turns the compiled kernels off ("0").
ENVIRONMENT_SWITCH = "OBSCURA_COMPILED_KERNELS"
_PACKAGE_DIR = Path(__file__).parent
#: The threading layer's functions, in the order of the shim's table.
_THREADING_FUNCTIONS = (
    "parallel_for", "do_scheduling_signed", "do_scheduling_unsigned", "allocate_sched",
    "deallocate_sched", "get_num_threads", "set_num_threads", "get_thread_id",
    "set_parallel_chunksize", "get_parallel_chunksize", "get_sched_size",
)  # fmt: skip
#: The threading layer's ``module`` and the ``shim`` once loaded (kept for the process's
#: life), how many threads it ``launched`` (0: not yet), and the ``count`` asked for (0: all).
_threads: dict[str, Any] = {}


def source_stamp() -> str:
    """A hash of the pipeline's Python sources and of numpy's version: the compiled
    kernels are current only while it is the one they were built from."""
    digest = hashlib.sha256(np.__version__.encode())
    for path in sorted(_PACKAGE_DIR.rglob("*.py")):
        digest.update(str(path.relative_to(_PACKAGE_DIR)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _arg_check(spec: Sequence[Any]) -> Callable[[object], bool]:
    """A test that a value has the numba type ``spec`` describes: ``["array", dtype,
    ndim, layout, mutable]`` or a scalar's numba type name (``int64``, ``float64``,
    ``float32``, ``uint64``, ``bool``), as numba's ``typeof`` would type it."""
    if spec[0] == "array":
        _, dtype_name, ndim, layout, mutable = spec
        dtype = np.dtype(dtype_name)

        def is_array(value: object) -> bool:
            return (
                type(value) is np.ndarray and value.dtype == dtype and value.ndim == ndim
                and (layout != "C" or value.flags.c_contiguous) and value.flags.aligned
                and bool(value.flags.writeable) == mutable
            )  # fmt: skip

        return is_array
    name = spec[0]
    if name == "bool":
        return lambda value: isinstance(value, (bool, np.bool_))
    scalar = np.dtype(name).type

    def is_scalar(value: object) -> bool:
        if isinstance(value, np.generic):
            return type(value) is scalar
        if isinstance(value, bool):
            return False
        if name == "int64":
            return isinstance(value, int)
        return name == "float64" and isinstance(value, float)

    return is_scalar


class CompiledKernel:
    """A kernel compiled ahead of time: calls the variant its arguments' types fit."""

    def __init__(self, qualified_name: str, variants: Sequence[tuple[Callable, Sequence]]) -> None:
        self.qualified_name = qualified_name
        self._variants = [(function, [_arg_check(spec) for spec in specs])
                          for function, specs in variants]  # fmt: skip

    def __call__(self, *args: object) -> object:
        if _threads.get("launched") == 0:  # the first kernel of a process that loaded them
            _launch_threads()
        for function, checks in self._variants:
            if len(checks) == len(args) and all(check(a) for check, a in zip(checks, args)):
                return function(*args)
        raise CompiledKernelMismatch(
            f"{self.qualified_name}: no compiled variant takes "
            + ", ".join(type(a).__name__ if not isinstance(a, np.ndarray)
                        else f"{a.dtype}[{a.ndim}d]" for a in args)  # fmt: skip
        )


class _NotCompiled:
    """A numba function with no compiled variant (an inlined helper, or a kernel the
    build's develops never called): calling it means numba is needed."""

    def __init__(self, function: Callable) -> None:
        self.qualified_name = f"{function.__module__}.{function.__qualname__}"

    def __call__(self, *args: object, **kwargs: object) -> object:
        raise CompiledKernelMismatch(f"{self.qualified_name} was not compiled ahead of time")


def _numba_stand_in(kernels: dict[str, CompiledKernel]) -> ModuleType:
    """A module that answers the pipeline's uses of numba with the compiled kernels."""
    module = ModuleType("numba", "Compiled kernels standing in for numba (compiled_kernels.py).")

    def njit(*args: Any, **options: Any) -> Any:
        def decorate(function: Callable) -> CompiledKernel | _NotCompiled:
            name = f"{function.__module__}.{function.__qualname__}"
            return kernels.get(name) or _NotCompiled(function)

        if len(args) == 1 and callable(args[0]) and not options:
            return decorate(args[0])  # @njit without arguments
        return decorate

    module.njit = njit  # type: ignore[attr-defined]
    module.prange = range  # type: ignore[attr-defined]
    module.set_num_threads = set_num_threads  # type: ignore[attr-defined]
    module.get_num_threads = get_num_threads  # type: ignore[attr-defined]
    module.compiled_ahead_of_time = True  # type: ignore[attr-defined]
    return module


def _load_threading_layer(layer: dict[str, Any]) -> None:
    """Load the threading layer's module the manifest names and bind the shim's names to
    its functions (module notes); its threads start with the first kernel
    (:func:`_launch_threads`), so that a process may fork until then. Raises ImportError
    if its file is not the one the kernels were built against."""
    import ctypes
    import importlib.util

    from pipeline.numba_runtime import let_idle_threads_sleep

    path = Path(layer["path"])
    if not path.is_file() or path.stat().st_size != layer["size"]:
        raise ImportError(f"{path}: not the threading layer the kernels were built against")
    let_idle_threads_sleep()  # as numba's own start
    spec = importlib.util.spec_from_file_location(layer["module"], path)
    if spec is None or spec.loader is None:
        raise ImportError(f"{path}: cannot be loaded")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    shim = ctypes.CDLL(str(THREADING_SHIM), mode=ctypes.RTLD_GLOBAL)
    addresses = [getattr(module, name) for name in _THREADING_FUNCTIONS]
    shim.obscura_bind_threading((ctypes.c_void_p * len(addresses))(*addresses))
    _threads.update(module=module, shim=shim, launched=0, count=0)


def _launch_threads() -> None:
    """Start the threading layer's threads, as many as numba would
    (``NUMBA_NUM_THREADS``, else one per core this process may use), and use those
    :func:`set_num_threads` asked for (all by default)."""
    import ctypes

    module = _threads["module"]
    launched = _threads_to_launch()
    ctypes.CFUNCTYPE(None, ctypes.c_int)(module.launch_threads)(launched)
    _threads["launched"] = launched
    set_num_threads(min(_threads["count"] or launched, launched))


def _threads_to_launch() -> int:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return int(os.environ.get("NUMBA_NUM_THREADS") or cores or 1)


def get_num_threads() -> int:
    """The threads the compiled parallel loops use (as ``numba.get_num_threads``)."""
    return _threads.get("count") or _threads.get("launched") or _threads_to_launch()


def set_num_threads(count: int) -> None:
    """The threads the compiled parallel loops of this thread use (as
    ``numba.set_num_threads``: 1 to the threads launched)."""
    import ctypes

    launched = _threads.get("launched")
    if count < 1 or (launched and count > launched):
        raise ValueError(f"set_num_threads({count}): expected 1..{launched or 'the cores'}")
    _threads["count"] = count
    if launched:
        ctypes.CFUNCTYPE(None, ctypes.c_int)(_threads["module"].set_num_threads)(count)


def threads_started() -> bool:
    """Whether the compiled kernels' threads have started (a fork would lose them)."""
    return bool(_threads.get("launched"))


def in_use() -> bool:
    """Whether this process runs the compiled kernels (:func:`use_compiled_kernels`)."""
    return getattr(sys.modules.get("numba"), "compiled_ahead_of_time", False)


def use_compiled_kernels() -> bool:
    """Run this process's kernels from the compiled modules, if they are built, current
    and allowed (module notes), and numba is not imported yet; whether they are used."""
    if os.environ.get(ENVIRONMENT_SWITCH, "1") == "0" or "numba" in sys.modules:
        return in_use()
    try:
        manifest = json.loads(MANIFEST.read_text())
        if manifest.get("stamp") != source_stamp():
            return False
        _load_threading_layer(manifest["threading"])
        kernels = {}
        for name, variants in manifest["kernels"].items():
            loaded = []
            for module_name, symbol, specs in variants:
                module = importlib.import_module(f"pipeline.{module_name}")
                loaded.append((getattr(module, symbol), specs))
            kernels[name] = CompiledKernel(name, loaded)
    except (OSError, ValueError, KeyError, TypeError, ImportError, AttributeError):
        return False  # not built, or built by another version: numba it is
    sys.modules["numba"] = _numba_stand_in(kernels)
    return True
