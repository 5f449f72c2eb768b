"""Start numba without SciPy: a command-line develop pays for numba's start-up every time.

numba imports SciPy twice without our kernels needing it: ``import numba`` checks SciPy's
version, and the first compiled function to run (from the on-disk cache or compiled)
initialises numba's CPU target, whose ``numba.np.arraymath`` looks for a BLAS in
``scipy.linalg.cython_blas``. Together that is 0.15-0.4 s of every ``obscura develop``.
No kernel of ours calls BLAS: numba would use it only to compile ``np.correlate`` and
``np.convolve`` (``np.dot``, ``@`` and ``np.linalg`` look for SciPy again when compiled),
so hiding SciPy while numba starts changes no result.

numba's parallel kernels run on GNU OpenMP, whose threads by default spin between
parallel regions: between a develop's 20-odd kernels they burn a core the main thread
and every other process could use (a 640x480 develop: 1.5 s CPU instead of 0.8; on a
loaded machine 0.5 s more wall-clock too). :func:`start_numba` asks them to sleep
(``OMP_WAIT_POLICY=passive``) unless the user chose otherwise; results do not change.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.util
import os
import sys
from collections.abc import Iterator
from importlib.machinery import ModuleSpec
from types import ModuleType


class _ScipyHider(importlib.abc.MetaPathFinder):
    """An import finder that reports SciPy as missing."""

    def find_spec(self, fullname: str, path: object = None,
                  target: object = None) -> ModuleSpec | None:
        if fullname == "scipy" or fullname.startswith("scipy."):
            raise ModuleNotFoundError(f"No module named {fullname!r}", name=fullname)
        return None


@contextlib.contextmanager
def scipy_hidden() -> Iterator[None]:
    """Within the block, ``import scipy`` fails as if SciPy were not installed.

    Does nothing when SciPy is already imported (hiding it would gain nothing).
    """
    if "scipy" in sys.modules:
        yield
        return
    hider = _ScipyHider()
    sys.meta_path.insert(0, hider)
    try:
        yield
    finally:
        sys.meta_path.remove(hider)


class _NumbaWithoutScipy(importlib.abc.MetaPathFinder):
    """An import finder that lets the first ``import numba`` run with SciPy hidden."""

    def find_spec(self, fullname: str, path: object = None,
                  target: object = None) -> ModuleSpec | None:
        if fullname != "numba":
            return None
        sys.meta_path.remove(self)  # once: later imports are the normal ones
        spec = importlib.util.find_spec(fullname)
        if spec is not None and isinstance(spec.loader, importlib.abc.Loader):
            spec.loader = _LoaderWithoutScipy(spec.loader)
        return spec


class _LoaderWithoutScipy(importlib.abc.Loader):
    """Wraps a module's loader: the module runs with SciPy hidden."""

    def __init__(self, loader: importlib.abc.Loader) -> None:
        self._loader = loader

    def create_module(self, spec: ModuleSpec) -> ModuleType | None:
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        with scipy_hidden():
            self._loader.exec_module(module)


def import_numba_without_scipy() -> None:
    """Make the process's first ``import numba``, wherever it is, run with SciPy hidden
    (its version check would import SciPy for nothing), without importing numba now:
    a command that needs no kernel (``obscura status``) never loads it."""
    if "numba" in sys.modules:
        return
    if not any(isinstance(finder, _NumbaWithoutScipy) for finder in sys.meta_path):
        sys.meta_path.insert(0, _NumbaWithoutScipy())


def let_idle_threads_sleep() -> None:
    """Ask OpenMP's threads to sleep between parallel regions (module notes), unless the
    user chose otherwise; read when OpenMP loads, so call it before."""
    os.environ.setdefault("OMP_WAIT_POLICY", "passive")


def start_numba() -> None:
    """Initialise numba's CPU target now, without SciPy, and let idle OpenMP threads
    sleep (idempotent, cheap once done).

    Call it before the first kernel of a command-line develop; otherwise the first
    kernel initialises the target, with SciPy, and OpenMP starts spinning.
    """
    from pipeline.compiled_kernels import in_use

    if in_use():
        return  # no numba in this process
    let_idle_threads_sleep()
    with scipy_hidden():
        from numba.core.registry import cpu_target

        cpu_target.target_context.refresh()


def collect_garbage_only_while_compiling() -> None:
    """For a process that develops and exits: Python's cyclic garbage collector off,
    until numba compiles a kernel (one not in its on-disk cache).

    numba loads hundreds of thousands of objects that the collector would otherwise scan
    again and again, a tenth to a quarter of a small develop's CPU time; reference
    counting still frees every frame. Compiling leaves cyclic garbage behind, though (a
    develop that compiles every kernel peaked at 0.90 GB without the collector, 0.57 GB
    with it), so numba's first compile turns the collector back on.
    """
    import gc

    from pipeline.compiled_kernels import in_use

    gc.disable()
    if in_use():
        return  # nothing compiles
    with scipy_hidden():
        from numba.core import event

    class _CollectWhileCompiling(event.Listener):
        def on_start(self, event: event.Event) -> None:
            gc.enable()

        def on_end(self, event: event.Event) -> None:
            pass

    event.register("numba:compile", _CollectWhileCompiling())
