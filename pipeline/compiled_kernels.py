"""Kernels compiled ahead of time, so that a one-file ``obscura develop`` starts without numba.

A fresh process that runs our numba kernels from numba's on-disk cache still pays for
importing numba, setting up its compiler and loading each kernel: about 0.55 s, seven
times the develop of a 640x480 frame. ``tools/build_compiled_kernels.py`` (run by
``setup.sh``) compiles the kernels a one-frame develop calls into C extension modules
beside this one with numba's ahead-of-time compiler (``numba.pycc``), for this machine's
CPU, each for the argument types a develop gives it, and writes a manifest
(:data:`MANIFEST`): the source stamp they were built from and, per kernel, its compiled
variants and their argument types.

:func:`use_compiled_kernels` then puts a stand-in for the ``numba`` module in
``sys.modules`` before the pipeline is imported: its ``njit`` hands each kernel module
the compiled kernel in place of a numba dispatcher, and ``prange`` is ``range``. The
kernels are the same source, compiled by the same numba, but run on one thread (numba's
parallel loops need its threading layer, which ahead-of-time code does not have).

A compiled kernel checks each call's argument types against its variants first: the
compiled code trusts them (an array of another dtype would be read as this one). A call
no variant takes raises :class:`CompiledKernelMismatch`; the command then runs again in
a new process with numba (``OBSCURA_COMPILED_KERNELS=0``, which also turns this off).
The modules are used only when the manifest's stamp matches the pipeline's sources and
numpy's version: after an edit they are ignored until the next ``setup.sh``.
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
#: Environment variable that turns the compiled kernels off ("0").
ENVIRONMENT_SWITCH = "OBSCURA_COMPILED_KERNELS"
_PACKAGE_DIR = Path(__file__).parent


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
        for function, checks in self._variants:
            if len(checks) == len(args) and all(check(a) for check, a in zip(checks, args)):
                return function(*args)
        raise CompiledKernelMismatch(
            f"{self.qualified_name}: no compiled variant takes "
            + ", ".join(type(a).__name__ if not isinstance(a, np.ndarray)
                        else f"{a.dtype}[{a.ndim}d]" for a in args)  # fmt: skip
        )


class _NotCompiled:
    """A numba function with no compiled variant (an inlined helper, or a kernel a
    one-frame develop never calls): calling it means numba is needed."""

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
    module.compiled_ahead_of_time = True  # type: ignore[attr-defined]
    return module


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
